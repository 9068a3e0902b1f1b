"""Summaries merge exactly: the merge of the summaries of any split of an element's contributions, in any order, is
the summary of all of them, bounded lists included (what lets a batch add to a hub without reading it)."""

import random

from graphdex.graph.model import NodeType
from graphdex.ingest.summaries import PROVENANCE_IDS, SUMMARY_SENTENCES, merge, summarize


def entity_contributions(n: int, rng: random.Random) -> dict:
    """``n`` chunks over ``n // 3`` documents naming one entity; sentences repeat across chunks."""
    return {f"doc-{i // 3:04d}:{i % 3:05d}": {"names": {rng.choice(["Ada", "Ada Lovelace", "Lovelace"]): rng.randint(1, 3)},
                                              "types": {rng.choice(["PERSON", "ORG"]): 1},
                                              "sentence": f"sentence {rng.randint(0, n // 2)}" if rng.random() < 0.9 else ""}
            for i in range(n)}


def relation_contributions(n: int, rng: random.Random) -> dict:
    out = {}
    for i in range(n):
        part = {"keywords": rng.sample(["wrote", "married", "met", "knew"], 2), "first_name": rng.choice(["Ada", "A. Lovelace"]),
                "second_name": "Babbage", "kind": rng.choice(["dependency", "llm"]), "sentence": f"s{i % 40}", "direction": rng.choice([1, -1])}
        if rng.random() < 0.5:
            part["strength"] = rng.randint(1, 10)
        out[f"doc-{i:04d}:00000"] = part
    return out


def split_and_merge(type_, contrib: dict, rng: random.Random) -> dict:
    chunks = list(contrib)
    rng.shuffle(chunks)
    cuts = sorted(rng.sample(range(1, len(chunks)), 4))
    parts = [chunks[a:b] for a, b in zip([0, *cuts], [*cuts, len(chunks)], strict=True)]
    summaries = [summarize(type_, {c: contrib[c] for c in part}) for part in parts]
    rng.shuffle(summaries)
    merged: dict = {}
    for summary in summaries:
        merged = merge(merged, summary) if rng.random() < 0.5 else merge(summary, merged)
    return merged


def test_merged_summaries_of_any_split_equal_the_summary_of_all():
    rng = random.Random(7)
    cases = [(NodeType.ENTITY, entity_contributions(300, rng)), (NodeType.RELATION, relation_contributions(120, rng)),
             (None, {f"d:{i}": {"count": i % 4 + 1, "keywords": ["x"] if i % 2 else []} for i in range(90)})]
    for type_, contrib in cases:
        whole = summarize(type_, contrib)
        for _ in range(5):
            assert split_and_merge(type_, contrib, rng) == whole, type_
    entity = summarize(NodeType.ENTITY, cases[0][1])
    assert entity["support"] == 300 and len(entity["chunks"]) == PROVENANCE_IDS and entity["chunks"] == sorted(cases[0][1])[:PROVENANCE_IDS]
    assert len(entity["sentences"]) == SUMMARY_SENTENCES
    first: dict[str, str] = {}
    for chunk in sorted(cases[0][1]):
        sentence = cases[0][1][chunk]["sentence"]
        if sentence:
            first.setdefault(sentence, chunk)
    assert entity["sentences"] == sorted([c, s] for s, c in first.items())[:SUMMARY_SENTENCES], "the first distinct sentences, in chunk order"
