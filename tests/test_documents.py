import json

import pytest

from graphdex.ingest.documents import DocumentError, load_paths


def test_reads_every_supported_format_from_a_folder(tmp_path):
    (tmp_path / "a.txt").write_text("Plain text about Oslo.")
    (tmp_path / "b.md").write_text("# Bergen notes\n\nBergen is rainy.")
    (tmp_path / "c.json").write_text(json.dumps([{"title": "One", "text": "First."}, {"id": "x2", "title": "Two", "text": "Second."}]))
    (tmp_path / "d.jsonl").write_text('{"title": "Three", "text": "Third."}\n\n{"title": "Four", "text": "Fourth."}\n')
    (tmp_path / "ignored.csv").write_text("a,b")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "e.txt").write_text("hidden")
    docs = list(load_paths([tmp_path]))
    titles = [d.title for d in docs]
    assert titles == ["a", "Bergen notes", "One", "Two", "Three", "Four"]
    sources = [d.source for d in docs]
    assert len(set(sources)) == 6
    assert sources[3].endswith("c.json#x2"), "a record's own id identifies it"
    assert sources[4].endswith("d.jsonl#Three")


def test_clear_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 latin-1")
    with pytest.raises(DocumentError, match="not valid UTF-8"):
        list(load_paths([bad]))
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\x00\x01\x02")
    with pytest.raises(DocumentError, match="binary"):
        list(load_paths([binary]))
    csv = tmp_path / "x.csv"
    csv.write_text("a")
    with pytest.raises(DocumentError, match="unsupported file type"):
        list(load_paths([csv]))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"title": "ok", "text": "fine"}\n{not json}\n')
    with pytest.raises(DocumentError, match="broken.jsonl:2"):
        list(load_paths([broken]))
    not_numbers = tmp_path / "numbers.jsonl"
    not_numbers.write_text('{"title": "ok", "text": "fine"}\n{"title": "t", "text": "x", "metadata": {"n": Infinity}}\n')
    with pytest.raises(DocumentError, match="numbers.jsonl:2: invalid JSON at line 1: Infinity is not JSON"):
        list(load_paths([not_numbers]))
    missing_text = tmp_path / "m.json"
    missing_text.write_text('[{"title": "no text"}]')
    with pytest.raises(DocumentError, match="no string `text`"):
        list(load_paths([missing_text]))
    with pytest.raises(DocumentError, match="no such file"):
        list(load_paths([tmp_path / "nope"]))


def test_files_are_held_to_the_api_limits(tmp_path):
    from graphdex.ingest.documents import MAX_TITLE_CHARS

    cases = {
        "deep.json": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        "huge.jsonl": ('{"title": "t", "text": "x", "id": ' + "9" * 5000 + "}", "digits"),
        "title.jsonl": (json.dumps({"title": "t" * (MAX_TITLE_CHARS + 1), "text": "x y"}), f"title is {MAX_TITLE_CHARS + 1:,} characters"),
        "nul.json": (json.dumps([{"title": "t", "text": "a\u0000b"}]), "NUL"),
        "blank.jsonl": (json.dumps({"title": "t", "text": " \n "}), "blank"),
        "late-nul.txt": ("a" * 10_000 + "\u0000", "NUL"),
    }
    for name, (content, reason) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(DocumentError, match=reason) as caught:
            list(load_paths([path]))
        assert name in str(caught.value) and len(str(caught.value)) < 600


def test_a_long_heading_is_shortened_to_a_title_not_refused(tmp_path):
    from graphdex.ingest.documents import MAX_TITLE_CHARS

    path = tmp_path / "long.md"
    path.write_text("# " + "word " * 390 + "\n\nThe body.")
    [document] = load_paths([path])
    assert len(document.title) == MAX_TITLE_CHARS
