"""Reading a JSON answer (statements with their source numbers) back into prose with [n] citations, piece by piece."""

from __future__ import annotations

import json

import pytest

from graphdex.query.cited_json import CitedJsonReader, answer_schema

ANSWER = {"statements": [{"text": 'Kessler was born in "Leipzig" [9], \u00e9migr\u00e9e.', "sources": [2, 7, 2]},
                         {"text": "She directed The Harbor Lights.", "sources": [1, 3]}]}


def read(text: str, sources: int, step: int) -> tuple[str, list[int]]:
    reader = CitedJsonReader(sources)
    prose = "".join(reader.feed(text[i : i + step]) for i in range(0, len(text), step))
    return prose, reader.cited


@pytest.mark.parametrize("step", [1, 2, 5, 13, 10_000])
def test_any_split_of_the_stream_reads_the_same(step):
    prose, cited = read(json.dumps(ANSWER), 3, step)  # json.dumps writes the accents as \\u escapes
    # 7 is outside the context and 2 is cited once; the model's own "[9]" is text, not a citation
    assert prose == 'Kessler was born in "Leipzig" (9), \u00e9migr\u00e9e. [2] She directed The Harbor Lights. [1][3]'
    assert cited == [2, 1, 3]


def test_an_answer_cut_at_the_token_limit_keeps_what_it_completed():
    text = json.dumps(ANSWER)
    prose, cited = read(text[: text.index("Harbor")], 3, 4)
    assert prose.endswith("[2] She directed The ") and cited == [2]


def test_fields_out_of_order_or_out_of_place_are_not_prose():
    text = '{"note": "ignore me", "statements": [{"sources": [1], "text": "First."}, {"text": "No source.", "sources": []}], "extra": [4]}'
    prose, cited = read(text, 2, 3)
    assert prose == "[1] First. No source." and cited == [1]


def test_the_schema_allows_only_the_context_numbers():
    schema = answer_schema(4)
    sources = schema["properties"]["statements"]["items"]["properties"]["sources"]
    assert sources["items"]["enum"] == [1, 2, 3, 4] and sources["minItems"] == 1
    assert answer_schema(1)["properties"]["statements"]["items"]["properties"]["sources"]["maxItems"] == 1
