from graphdex.common.tokens import approximate_token_counts
from graphdex.ingest.chunking import Chunker


def test_chunks_respect_size_and_overlap(embedder):
    text = " ".join(f"Sentence number {i} talks about the river town of Elm{i}." for i in range(60))
    chunker = Chunker(embedder.count_tokens, max_tokens=60, overlap=20)
    chunks = chunker.split(text)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.tokens <= 60
        assert text[chunk.start : chunk.end] == chunk.text
    for previous, current in zip(chunks, chunks[1:]):
        assert current.start < previous.end, "consecutive chunks must overlap"
        assert current.end > previous.end, "each chunk must bring new text"
    assert chunks[0].start == 0 and chunks[-1].end == len(text)


def test_no_overlap_when_disabled():
    text = "One short sentence. " * 40
    chunks = Chunker(approximate_token_counts, max_tokens=30, overlap=0).split(text)
    for previous, current in zip(chunks, chunks[1:]):
        assert current.start >= previous.end


def test_sentence_longer_than_a_chunk_is_cut_on_words(embedder):
    words = " ".join(f"word{i}" for i in range(500))
    chunks = Chunker(embedder.count_tokens, max_tokens=50, overlap=10).split(words)
    assert len(chunks) >= 10
    assert all(c.tokens <= 50 for c in chunks)
    assert all(not c.text.startswith(" ") and not c.text.endswith(" ") for c in chunks)
    assert "word0" in chunks[0].text and "word499" in chunks[-1].text


def test_short_and_empty_text():
    chunker = Chunker(approximate_token_counts, max_tokens=100, overlap=10)
    assert chunker.split("   \n ") == []
    only = chunker.split("Just one sentence.")
    assert len(only) == 1 and only[0].text == "Just one sentence."
