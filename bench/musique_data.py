"""Build ``bench/data/musique-train-dev``: a MuSiQue-style 2–4 hop development QA set made from the train split only.

Issue 22 needs a MuSiQue-style set of 2–4 hop questions to develop against. The MuSiQue dev questions that the
HippoRAG papers report on are held out for evaluation, so nothing may be tuned on them; this set draws its questions
from the MuSiQue **train** split instead, and this script never reads a dev file. The source is the small train subset
that HippoRAG 1 ships for its hyperparameter tuning (OSU-NLP-Group/HippoRAG at a pinned commit):
``data/musique_train.json`` (questions, each with its 20 paragraphs, supporting and distractors) and
``data/musique_train_corpus.json`` (the pool of those paragraphs).

Selection: answerable questions whose supporting paragraphs are all in the pool, grouped by hop count (the id prefix:
``2hop__``, ``3hop1__``, ``4hop3__`` ...; else the length of the decomposition), then a fixed-seed sample of each
group. The corpus is every paragraph of the chosen questions, deduplicated by (title, text), each with the id
``p`` + 12 hex digits of sha1(title + newline + text). Passages and questions are written in a seeded shuffle, so
nothing can depend on the source order and a prefix of the questions (``retrieval_eval.py --limit``) mixes hop counts.
The output follows ../shared/data/README.md (QA sets), with a ``type`` (2hop, 3hop, 4hop) per question.

    python bench/musique_data.py --source /work/.mirror/OSU-NLP-Group+HippoRAG/repo

``--source`` is a directory holding the two JSON files, or a git repository of OSU-NLP-Group/HippoRAG (bare or not),
read at the pinned commit with ``git show``.
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import hashlib
import json
import logging
import random
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SOURCE_REPO = "OSU-NLP-Group/HippoRAG"
SOURCE_COMMIT = "3d95d255a8db0c1699b853cfb4fbe5056708162d"
QUESTIONS_FILE = "musique_train.json"
POOL_FILE = "musique_train_corpus.json"
DEFAULT_OUT = REPO / "bench" / "data" / "musique-train-dev"
DEFAULT_SEED = 20261204
HOP_PREFIX = re.compile(r"(\d)hop")
# hop type -> (option, default count): the source holds 100 questions in all, so by default every one is taken
WANTED = {"2hop": ("two-hop", 100), "3hop": ("three-hop", 100), "4hop": ("four-hop", 100)}

log = logging.getLogger(__name__)

Record = dict[str, Any]
PassageKey = tuple[str, str]


def read_source(source: Path, name: str) -> Any:
    """One source file, from the directory ``source`` or from the git repository ``source`` at the pinned commit."""
    if (source / name).is_file():
        raw = (source / name).read_bytes()
    else:
        command = ["git", "-C", str(source), "show", f"{SOURCE_COMMIT}:data/{name}"]
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"{source} holds no {name} and git cannot read it: {result.stderr.decode().strip()}")
        raw = result.stdout
    if raw.startswith(b"version https://git-lfs"):
        raise SystemExit(f"{name} in {source} is a Git LFS pointer, not the data")
    return json.loads(raw)


def passage_key(paragraph: Record) -> PassageKey:
    return paragraph["title"], paragraph["paragraph_text"]


def passage_id(key: PassageKey) -> str:
    title, text = key
    return "p" + hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:12]


def hop_type(record: Record) -> str:
    match = HOP_PREFIX.match(record["id"])
    return f"{match.group(1) if match else len(record['question_decomposition'])}hop"


def supporting_keys(record: Record) -> list[PassageKey]:
    """The supporting paragraphs in the order of the question's hops."""
    hop_of = {step["paragraph_support_idx"]: n for n, step in enumerate(record["question_decomposition"])}
    support = sorted((p for p in record["paragraphs"] if p["is_supporting"]), key=lambda p: hop_of.get(p["idx"], len(hop_of)))
    return list(dict.fromkeys(passage_key(p) for p in support))


def eligible(records: list[Record], pool: set[PassageKey]) -> list[Record]:
    """Answerable questions with supporting paragraphs, all of them in the pool; the others are logged and left out."""
    kept = []
    for record in records:
        support = supporting_keys(record)
        if not record.get("answerable", True):
            log.warning("left out %s: not answerable", record["id"])
        elif not support:
            log.warning("left out %s: no supporting paragraph", record["id"])
        elif missing := [key[0] for key in support if key not in pool]:
            log.warning("left out %s: supporting paragraphs not in %s: %s", record["id"], POOL_FILE, missing)
        else:
            kept.append(record)
    return kept


def stratified_sample(records: list[Record], wanted: dict[str, int], rng: random.Random) -> tuple[list[Record], dict[str, int]]:
    """A sample of ``wanted[type]`` questions per hop type (all of them when fewer exist); also the numbers available."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r["id"]):
        groups[hop_type(record)].append(record)
    chosen = []
    for kind, count in wanted.items():
        group = groups[kind]
        if len(group) < count:
            log.warning("only %d eligible %s questions, %d wanted: taking all of them", len(group), kind, count)
        chosen += rng.sample(group, min(count, len(group)))
    return chosen, {kind: len(groups[kind]) for kind in wanted}


def build_passages(questions: list[Record], pool: set[PassageKey], rng: random.Random) -> list[Record]:
    """Every paragraph of the questions, once, in a seeded shuffle."""
    keys = {passage_key(p) for record in questions for p in record["paragraphs"]}
    if outside := len(keys - pool):
        log.warning("%d paragraphs of the chosen questions are not in %s; kept anyway", outside, POOL_FILE)
    passages = sorted(({"id": passage_id(key), "title": key[0], "text": key[1]} for key in keys), key=lambda p: p["id"])
    if len({p["id"] for p in passages}) != len(passages):
        raise SystemExit("two distinct passages share an id: lengthen the id")
    rng.shuffle(passages)
    return passages


def question_entry(record: Record) -> Record:
    answers = [a.strip() for a in [record["answer"], *record.get("answer_aliases", [])] if a.strip()]
    return {
        "id": record["id"],
        "question": record["question"].strip(),
        "answers": list(dict.fromkeys(answers)),
        "supporting": [passage_id(key) for key in supporting_keys(record)],
        "type": hop_type(record),
    }


def write_jsonl(path: Path, rows: list[Record]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def readme(questions: list[Record], passages: list[Record], wanted: dict[str, int], available: dict[str, int], seed: int) -> str:
    taken = {kind: sum(q["type"] == kind for q in questions) for kind in wanted}
    rows = "\n".join(f"| {kind} | {available[kind]} | {wanted[kind]} | {taken[kind]} |" for kind in wanted)
    words = sum(len(p["text"].split()) for p in passages)
    options = " ".join(f"--{WANTED[kind][0]} {count}" for kind, count in wanted.items())
    return f"""# musique-train-dev

A MuSiQue-style 2–4 hop development QA set (issue 22), built **only from the MuSiQue train split**, so that the
MuSiQue dev questions stay unseen for evaluation. Format: the QA-set format of `/work/shared/data/README.md`, plus a
`type` (2hop, 3hop, 4hop) per question.

## Source
- Repository {SOURCE_REPO} (HippoRAG 1), commit {SOURCE_COMMIT}, files `data/{QUESTIONS_FILE}`
  (a small subset of the MuSiQue train split, used by HippoRAG for hyperparameter tuning: questions, each with its 20
  paragraphs, supporting and distractors) and `data/{POOL_FILE}` (the pool of those paragraphs). Train split only:
  no dev file is read.
- Licence: MuSiQue is distributed under CC BY 4.0, as stated in the README of its own repository,
  StonyBrookNLP/musique. The HippoRAG repository has no licence statement for its data at that commit (its later
  LICENSE, MIT, covers its code). Attribution: Trivedi, Balasubramanian, Khot and Sabharwal, "MuSiQue: Multihop
  Questions via Single-hop Question Composition", TACL 2022.

## Selection
Answerable questions whose supporting paragraphs are all in the pool, grouped by hop count (from the id prefix),
then a sample of each group with `random.Random({seed})`; a type with fewer eligible questions than wanted is taken
whole (see the table). `answers` = the answer and its aliases; `supporting` = the
supporting paragraphs in hop order. The corpus is every paragraph (supporting and distractor) of the chosen
questions, deduplicated by (title, text); passage id = `p` + the first 12 hex digits of sha1(title + "\\n" + text).
Both files are in a seeded shuffle.

| type | eligible in source | wanted | taken |
|---|---|---|---|
{rows}

{len(questions)} questions; {len(passages):,} passages, {words:,} words (whitespace-split passage text).

## Rebuild
From the repository root, with `--source` a directory holding the two files or a git clone of {SOURCE_REPO}:

    python bench/musique_data.py --source /work/.mirror/OSU-NLP-Group+HippoRAG/repo --seed {seed} {options}
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, metavar="DIR_OR_GITDIR",
                        help=f"directory holding {QUESTIONS_FILE} and {POOL_FILE}, or a git repository of {SOURCE_REPO}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="sampling and shuffling seed (default: %(default)s)")
    for kind, (option, default) in WANTED.items():
        parser.add_argument(f"--{option}", type=int, default=default, help=f"{kind} questions wanted (default: %(default)s)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    records = read_source(args.source, QUESTIONS_FILE)
    pool = {(p["title"], p["text"]) for p in read_source(args.source, POOL_FILE)}
    log.info("source: %d questions, %d pool passages", len(records), len(pool))
    wanted = {kind: getattr(args, option.replace("-", "_")) for kind, (option, _) in WANTED.items()}
    rng = random.Random(args.seed)
    chosen, available = stratified_sample(eligible(records, pool), wanted, rng)
    passages = build_passages(chosen, pool, rng)
    questions = [question_entry(record) for record in chosen]
    rng.shuffle(questions)
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "passages.jsonl", passages)
    write_jsonl(args.out / "questions.jsonl", questions)
    (args.out / "README.md").write_text(readme(questions, passages, wanted, available, args.seed), encoding="utf-8")
    log.info("wrote %d questions and %d passages to %s", len(questions), len(passages), args.out)


if __name__ == "__main__":
    main()
