"""The sample corpus shipped with graphdex, so `graphdex demo` works on a fresh clone with no data of one's own.

400 Wikipedia passages from the 2WikiMultihopQA passage pool (Apache-2.0), including the film and director
passages that the sample questions need: each question is answered by hopping from a film to its director.
"""

from pathlib import Path

SAMPLE_CORPUS = Path(__file__).parent / "sample_corpus" / "wiki_sample.jsonl"

SAMPLE_QUESTIONS = [
    "When was the director of The Nice Guys born?",
    "When did the director of Woman Without a Past die?",
    "When was the director of West of Shanghai born?",
    "Who directed Kanchana Sita?",
]
