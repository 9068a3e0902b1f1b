"""Larger real-text corpora for the growth benchmark: wiki-passages plus prose that Debian packages ship.

Issue 14 needs corpora of 1x to 20x the words of wiki-passages made of real text, not copies of wiki-passages (copies
would merge into the same entities and make the graph grow slower than a real corpus does). The only outside source
this machine reaches is the package registries, so the extra prose comes from Debian documentation packages, fetched
with ``apt-get download`` and unpacked with ``dpkg-deb -x``:

- dict-foldoc: the Free On-line Dictionary of Computing, one encyclopedia entry per document (people, companies,
  languages, standards: the most wiki-like of what Debian ships);
- dict-jargon: the Jargon File, hackers' slang and lore, one entry per document;
- debian-handbook (English pages only), debian-reference-en, debian-history (English): books, one page per document;
- dict-devil: Ambrose Bierce's The Devil's Dictionary, one entry per document;
- debian-faq, developers-reference, debian-policy: Debian's FAQ, developers' guide and policy manuals, one page per
  document;
- gimp-help-en: the GIMP user manual, one page per document;
- linux-doc-6.1: the Linux kernel's documentation (English pages; the largest source, 40% of the pool);
- git-doc, postgresql-doc-15, python3.11-doc, python-django-doc and sqlite3-doc: manuals, one HTML page per document
  (more commands and code than the others; without them the packages fall short of 20x).

dict-gcide (mostly the 1913 Webster's) was left out: its 22 million words of short definitions would outweigh all the rest.

HTML goes through graphdex's own converter (``ingest/converters.py``), the way an uploaded file would. Documents are
deduplicated by their whitespace-normalised text and ordered deterministically: each package's documents are sorted
by their path or headword, and the packages are interleaved in proportion to their size, so that every prefix of the
pool has the same mix. A size of N takes wiki-passages and then the shortest prefix of the pool that brings the word
count to N times wiki-passages' own; a larger size is therefore a superset of a smaller one. The pool holds about
24x; a larger size fails, saying how many words it needs.

Adding a package changes the interleaving, and so the composition of every size but 1x. The 10x of docs/scaling.md's
growth runs came from ten packages (all the above but dict-jargon, debian-policy, gimp-help-en, linux-doc-6.1,
python-django-doc and sqlite3-doc, which were added for 20x): today's 10x has about as many words but is a different
document set, so its figures do not compare one to one with those runs.

    python bench/corpora.py fetch             # download and unpack the packages into ~/.cache/graphdex/corpora
    python bench/corpora.py stats --sizes 1,10,20
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import gzip
import hashlib
import json
import logging
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from urllib.parse import unquote

from graphdex.ingest.converters import convert
from graphdex.ingest.documents import SourceDocument
from graphdex.ingest.layout import ConversionError
from harness import WIKI_PASSAGES, BenchError, load_passages, print_table

log = logging.getLogger(__name__)

CACHE = Path.home() / ".cache" / "graphdex" / "corpora"
# Pages of these names are navigation, not prose (indexes, tables of contents, search pages).
_SKIPPED_PAGES = re.compile(r"(^|/)(genindex.*|py-modindex|search|index|bookindex|ix\d+|toc|legalnotice|copyright|about|bugs|download)\.html$")
_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@dataclass(frozen=True)
class Package:
    """A Debian package and how to read documents out of its unpacked tree."""

    name: str
    read: Callable[[Path], Iterator[tuple[str, str, str]]]  # unpacked root -> (key, title, text), any order


def _html_pages(folder: str, pattern: str = "*.html", exclude: tuple[str, ...] = ()) -> Callable[[Path], Iterator[tuple[str, str, str]]]:
    """Every page under ``folder`` but navigation and the keys matching an ``exclude`` glob (single-page copies of a
    book's chapters, translations, pages that are lists or tables rather than prose)."""

    def read(root: Path) -> Iterator[tuple[str, str, str]]:
        base = root / folder
        for path in sorted(base.rglob(pattern)):
            key = path.relative_to(base).as_posix()
            # some books are folders named like a page (debian-policy's policy.html/)
            if not path.is_file() or _SKIPPED_PAGES.search(key) or "_sources" in key or any(fnmatchcase(key, glob) for glob in exclude):
                continue
            try:
                converted = convert(path.read_bytes(), ".html")
            except ConversionError as error:
                log.info("skipping %s: %s", path, error)
                continue
            yield key, converted.title or path.stem, converted.text

    return read


def _decode_offset(value: str) -> int:
    number = 0
    for char in value:
        number = number * 64 + _BASE64.index(char)
    return number


def _dictd(name: str) -> Callable[[Path], Iterator[tuple[str, str, str]]]:
    """Entries of a dictd database (``NAME.index``: headword, base64 offset and length into ``NAME.dict.dz``)."""

    def read(root: Path) -> Iterator[tuple[str, str, str]]:
        folder = root / "usr" / "share" / "dictd"
        data = gzip.decompress((folder / f"{name}.dict.dz").read_bytes())  # a dictzip file is a valid gzip file
        for line in (folder / f"{name}.index").read_text(encoding="utf-8").splitlines():
            headword, offset, length = line.split("\t")[:3]
            if headword.startswith("00-database") or headword.startswith("00database"):
                continue
            start = _decode_offset(offset)
            text = data[start : start + _decode_offset(length)].decode("utf-8", "replace")
            yield headword, headword, text

    return read


PACKAGES: tuple[Package, ...] = (
    Package("dict-foldoc", _dictd("foldoc")),
    Package("debian-handbook", _html_pages("usr/share/doc/debian-handbook/html/en-US")),
    Package("debian-reference-en", _html_pages("usr/share/debian-reference", "*.en.html")),
    Package("debian-history", _html_pages("usr/share/doc/debian-history/docs", "*.en.html")),
    Package("dict-devil", _dictd("devil")),
    Package("debian-faq", _html_pages("usr/share/doc/debian/FAQ", "*.en.html")),
    Package("developers-reference", _html_pages("usr/share/developers-reference", exclude=("developers-reference.html",))),
    Package("git-doc", _html_pages("usr/share/doc/git-doc")),
    Package("postgresql-doc-15", _html_pages("usr/share/doc/postgresql-doc-15/html")),
    Package("python3.11-doc", _html_pages("usr/share/doc/python3.11/html")),
    # the kernel's own translations are not English; the maintainers list and the sysfs ABI listings are tables
    Package("linux-doc-6.1", _html_pages("usr/share/doc/linux-doc-6.1/html",
                                         exclude=("translations/*", "process/maintainers.html", "admin-guide/abi*.html"))),
    Package("python-django-doc", _html_pages("usr/share/doc/python-django-doc/html", exclude=("_modules/*",))),  # _modules: source code
    # capi3ref.html repeats c3ref/ on one page; requirements.html repeats sentences of the other pages; the rest are indexes
    Package("sqlite3-doc", _html_pages("usr/share/doc/sqlite3", exclude=(
        "capi3ref.html", "requirements.html", "doc_*_crossref.html", "sitemap.html", "keyword_index.html", "docs.html", "doclist.html",
        "chronology.html", "syntax/*"))),
    Package("gimp-help-en", _html_pages("usr/share/gimp/2.0/help/en", exclude=("gimp-help-index.html",))),
    Package("dict-jargon", _dictd("jargon")),
    Package("debian-policy", _html_pages("usr/share/doc/debian-policy", exclude=("*-policy-1.html",))),  # -1: single-page copies
)


def _words(text: str) -> int:
    return len(text.split())


def _unpacked(package: str) -> Path:
    """The unpacked tree of the package's downloaded .deb (``fetch`` puts it there)."""
    debs = sorted((CACHE / "debs").glob(f"{package}_*.deb"))
    if not debs:
        raise BenchError(f"{package} is not downloaded: run `python bench/corpora.py fetch` first")
    deb = debs[-1]
    root = CACHE / "unpacked" / deb.stem
    if not root.is_dir():
        partial = root.with_name(root.name + ".partial")
        subprocess.run(["rm", "-rf", str(partial)], check=True)
        partial.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True)
        partial.rename(root)
    return root


def package_version(package: str) -> str:
    """The version in the downloaded .deb's file name (``name_version_arch.deb``)."""
    return unquote(_unpacked(package).name.split("_")[1])  # apt writes an epoch's colon as %3a


def fetch() -> None:
    """Downloads the packages' .debs (the versions apt has now) and unpacks them."""
    (CACHE / "debs").mkdir(parents=True, exist_ok=True)
    missing = [p.name for p in PACKAGES if not list((CACHE / "debs").glob(f"{p.name}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=CACHE / "debs", check=True)
    for package in PACKAGES:
        _unpacked(package.name)


def _normalised_digest(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).lower().encode()).hexdigest()


def package_documents(package: Package) -> list[SourceDocument]:
    """The package's documents, sorted by key, without empty ones."""
    version = package_version(package.name)
    documents = []
    for key, title, text in sorted(package.read(_unpacked(package.name)), key=lambda item: item[0]):
        if _words(text) < 5:
            continue
        documents.append(SourceDocument(f"deb:{package.name}/{key}", title, text, {"package": package.name, "version": version}))
    return documents


def _package_documents_cached(package: Package) -> list[SourceDocument]:
    """``package_documents``, kept as JSON lines in the cache per package version: converting the HTML pages takes
    seconds per package, and every phase of the growth benchmark is a process of its own."""
    cached = CACHE / "prepared" / f"{package.name}_{package_version(package.name)}.jsonl"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        with partial.open("w", encoding="utf-8") as out:
            for d in package_documents(package):
                out.write(json.dumps({"source": d.source, "title": d.title, "text": d.text, "metadata": d.metadata}) + "\n")
        partial.replace(cached)
    records = [json.loads(line) for line in cached.read_text(encoding="utf-8").splitlines()]
    return [SourceDocument(r["source"], r["title"], r["text"], r["metadata"]) for r in records]


def extra_pool(seen: set[str]) -> list[SourceDocument]:
    """Every package's documents, deduplicated against ``seen`` (digests, updated) and each other, interleaved so that
    each package's share of any prefix is its share of the whole pool."""
    per_package: list[list[SourceDocument]] = []
    for package in PACKAGES:
        kept = []
        for document in _package_documents_cached(package):
            digest = _normalised_digest(document.text)
            if digest not in seen:
                seen.add(digest)
                kept.append(document)
        per_package.append(kept)
    # the i-th of n documents of a package sits at (i + 0.5) / n; ties keep the package order
    ranked = [((i + 0.5) / len(docs), order, doc) for order, docs in enumerate(per_package) for i, doc in enumerate(docs)]
    return [doc for _, _, doc in sorted(ranked, key=lambda item: (item[0], item[1]))]


@dataclass
class Corpus:
    size: int
    documents: list[SourceDocument]

    @property
    def words(self) -> int:
        return sum(_words(d.text) for d in self.documents)

    def composition(self) -> dict[str, dict[str, object]]:
        """Per source (wiki-passages or a package with its version): documents and words."""
        parts: dict[str, dict[str, object]] = {}
        for document in self.documents:
            name = document.metadata.get("package", "wiki-passages")
            part = parts.setdefault(name, {"version": document.metadata.get("version", ""), "documents": 0, "words": 0})
            part["documents"] = int(part["documents"]) + 1
            part["words"] = int(part["words"]) + _words(document.text)
        return parts


def build_corpora(sizes: list[int], wiki: Path = WIKI_PASSAGES) -> dict[int, Corpus]:
    """Size N = wiki-passages plus the shortest prefix of the extra pool reaching N x wiki-passages' words."""
    base = load_passages(wiki)
    seen = {_normalised_digest(d.text) for d in base}
    base_words = sum(_words(d.text) for d in base)
    pool = extra_pool(seen) if max(sizes) > 1 else []
    cumulative, running = [], 0
    for document in pool:
        running += _words(document.text)
        cumulative.append(running)
    corpora = {}
    for size in sizes:
        wanted = (size - 1) * base_words
        if wanted > running:
            raise BenchError(f"size {size} needs {wanted:,} extra words; the packages hold {running:,}")
        take = next((i + 1 for i, total in enumerate(cumulative) if total >= wanted), 0) if wanted > 0 else 0
        corpora[size] = Corpus(size, base + pool[:take])
    return corpora


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("fetch", "stats"))
    parser.add_argument("--sizes", default="1,10,20", help="corpus sizes, in multiples of wiki-passages (default: %(default)s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.command == "fetch":
        fetch()
        return
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    corpora = build_corpora(sizes)
    rows = []
    for size, corpus in corpora.items():
        for name, part in corpus.composition().items():
            rows.append([f"{size}x", f"{name} {part['version']}".strip(), part["documents"], part["words"]])
        rows.append([f"{size}x", "total", len(corpus.documents), corpus.words])
    print_table("Growth corpora", ["size", "source", "documents", "words"], rows)


if __name__ == "__main__":
    main()
