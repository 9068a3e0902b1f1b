"""Reading documents from files and folders: text (.txt, .md, .json, .jsonl) as it is, and PDF, Word, PowerPoint,
Excel and HTML files through ingest/converters.py, every one held to the same limits."""

from __future__ import annotations

import json
import logging
import os
import re
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphdex.common import strict_json
from graphdex.common.errors import InvalidInput
from graphdex.graph.model import MAX_NAME_CHARS
from graphdex.ingest.converters import CONVERTERS, convert
from graphdex.ingest.layout import ConversionError, Layout, markdown_layout

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".json", ".jsonl")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + tuple(CONVERTERS)

# One set of limits for every way in (JSON bodies, uploaded files, `graphdex ingest`), so a document accepted by one
# is accepted by all, on either store. A title also names the entity its document is about.
MAX_TITLE_CHARS = MAX_NAME_CHARS
MAX_SOURCE_CHARS = 2000
# Metadata is stored as JSON and read back recursively; deeper nesting than this is no metadata a person wrote.
MAX_METADATA_DEPTH = 32
# Error messages quote at most this much of what they refuse: enough to find it, never the whole input back.
EXCERPT_CHARS = 200


class DocumentError(InvalidInput):
    """A document or file cannot be read; the message names it and says why."""


@dataclass
class SourceDocument:
    """A document as given by the user, before it gets an id.

    ``source`` identifies the document across ingests: the same source with new text replaces the old version.
    ``layout`` says where its sections and pages begin in ``text`` (empty for plain text and JSON records); it is not
    part of the document's version, which its title and text alone decide.
    """

    source: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    layout: Layout = field(default_factory=Layout)


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` characters of ``value`` for a message, safe to encode as UTF-8 (lone surrogates replaced)."""
    text = value if isinstance(value, str) else _bounded_repr(value, limit)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.encode("utf-8", "replace").decode("utf-8")


def _bounded_repr(value: Any, limit: int) -> str:
    """repr that stops early on long or deeply nested data (a plain repr would build it all, or overflow the stack)."""
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = shortener.maxlong = limit
    try:
        return shortener.repr(value)
    except ValueError:  # an integer too long for Python to print
        return f"<{type(value).__name__}>"


def text_problem(text: str) -> str | None:
    """Why a document's text cannot be indexed, or None: the same answer for the API's schema and for files."""
    if not text.strip():
        return "text is blank"
    if "\x00" in text:
        return "text contains NUL characters (binary content?)"
    if not _encodable(text):
        return "text is not valid Unicode (a lone surrogate)"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _depth(value: Any) -> int:
    """Nesting depth of JSON-like data, counted without recursion (the data may be nested past the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level <= MAX_METADATA_DEPTH:
                stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def check_document(doc: SourceDocument, where: str) -> SourceDocument:
    """Refuses, with a DocumentError saying where and why, a document the indexer could not index or store."""
    problem = text_problem(doc.text)
    if problem is None and len(doc.title) > MAX_TITLE_CHARS:
        problem = f"title is {len(doc.title):,} characters long; at most {MAX_TITLE_CHARS:,} are allowed"
    if problem is None and len(doc.source) > MAX_SOURCE_CHARS:
        problem = f"source (or id) is {len(doc.source):,} characters long; at most {MAX_SOURCE_CHARS:,} are allowed"
    if problem is None and not (_encodable(doc.title) and _encodable(doc.source)):
        problem = "title or source is not valid Unicode (a lone surrogate)"
    if problem is None:
        problem = _metadata_problem(doc.metadata)
    if problem is not None:
        raise DocumentError(f"{excerpt(where)}: {problem}")
    return doc


def _metadata_problem(metadata: dict[str, Any]) -> str | None:
    if _depth(metadata) > MAX_METADATA_DEPTH:
        return f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep"
    try:
        json.dumps(metadata, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as error:  # huge integers, lone surrogates
        return f"metadata cannot be stored as JSON: {excerpt(str(error))}"
    return None


def decode_text(data: bytes, name: str) -> str:
    """Bytes of a text file as str; binary or non-UTF-8 content is refused with a message naming the file."""
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{name}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"{name}: not valid UTF-8 (byte {error.start}); convert it to UTF-8 first") from error


def _title_of(text: str, fallback: str) -> str:
    heading = _HEADING.search(text[:2000])
    if heading:
        return heading.group(1).strip()
    return fallback


def document_from_record(record: Any, source: str) -> SourceDocument:
    """A JSON record ``{"title": ..., "text": ...}`` (plus optional ``id``, ``source``, ``metadata``) as a document,
    checked against the same limits as the API's JSON body."""
    where = excerpt(source)
    if not isinstance(record, dict):
        raise DocumentError(f"{where}: expected an object with `title` and `text`, got {type(record).__name__}")
    text = record.get("text")
    if not isinstance(text, str):
        raise DocumentError(f"{where}: record has no string `text` field")
    title = record.get("title")
    if title is not None and not isinstance(title, str):
        raise DocumentError(f"{where}: `title` must be a string")
    own_source = record.get("source")
    if isinstance(own_source, (dict, list)):
        raise DocumentError(f"{where}: `source` must be a string")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DocumentError(f"{where}: `metadata` must be an object")
    if record.get("id") is not None:
        metadata = {**metadata, "id": excerpt(record["id"], MAX_SOURCE_CHARS + 1)}
    return check_document(SourceDocument(source=str(own_source or source), title=title or "", text=text, metadata=metadata), where)


def _records_of(text: str, name: str, lines: bool) -> Iterator[tuple[Any, str]]:
    """The records of a .jsonl (``lines``) or .json text, each with where it was found."""
    if lines:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            yield _parsed(line, f"{name}:{number}"), f"line {number}"
        return
    data = _parsed(text, name)
    if isinstance(data, dict) and isinstance(data.get("documents"), list):
        data = data["documents"]
    records = data if isinstance(data, list) else [data]
    for number, record in enumerate(records):
        yield record, f"record {number}"


def _parsed(text: str, where: str) -> Any:
    """JSON text as data; what Python's parser cannot take (bad syntax, nesting past the stack, integers of thousands
    of digits) is the file's fault, so it becomes a DocumentError naming where."""
    try:
        return strict_json.loads(text)  # NaN, Infinity and 1e400 are refused as in request bodies
    except json.JSONDecodeError as error:
        raise DocumentError(f"{where}: invalid JSON at line {error.lineno}: {error.msg}") from error
    except RecursionError:
        raise DocumentError(f"{where}: invalid JSON: nested too deeply to read") from None
    except ValueError as error:  # e.g. an integer longer than Python converts
        raise DocumentError(f"{where}: invalid JSON: {excerpt(str(error))}") from None


def _record_source(origin: str, record: Any, position: str) -> str:
    """Records are identified by their own id, else their title, so reordering a file does not re-ingest it."""
    if isinstance(record, dict):
        for key in ("id", "source", "title"):
            value = record.get(key)
            if value and isinstance(value, (str, int, float)):
                return f"{origin}#{value}"
    return f"{origin}#{position}"


def _check_suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"{name}: unsupported file type {suffix or '(none)'}; graphdex reads {', '.join(SUPPORTED_SUFFIXES)}")
    return suffix


def documents_from_text(text: str, origin: str, suffix: str) -> Iterator[SourceDocument]:
    """The documents in one file's text; ``origin`` (a path, or the name of an upload) becomes their source."""
    stem = Path(origin).stem
    if suffix in (".txt", ".md"):
        if not text.strip():
            raise DocumentError(f"{origin}: the file is empty")
        title = _title_of(text, stem)[:MAX_TITLE_CHARS]  # derived, not given: shortened rather than refused
        layout = markdown_layout(text) if suffix == ".md" else Layout()
        yield check_document(SourceDocument(source=origin, title=title, text=text, metadata={"path": origin}, layout=layout), origin)
        return
    for record, position in _records_of(text, origin, lines=suffix == ".jsonl"):
        document = document_from_record(record, _record_source(origin, record, position))
        document.title = document.title or stem[:MAX_TITLE_CHARS]
        yield document


def converted_document(data: bytes, origin: str, suffix: str, where: str) -> SourceDocument:
    """A PDF, Office or HTML file as one document with its layout. Its title is the one the file names (document
    properties, the first heading or slide title, <title>), else the file name; ``where`` names it in errors."""
    if not data.strip():
        raise DocumentError(f"{where}: the file is empty")
    try:
        converted = convert(data, suffix)
    except ConversionError as error:
        raise DocumentError(f"{where}: {error}") from None
    if converted.metadata.get("pages_without_text"):  # indexed, but a person should know what was left out
        log.warning("%s: page(s) %s have no text layer (scanned?) and are left out", where, converted.metadata["pages_without_text"])
    title = (converted.title or Path(origin).stem)[:MAX_TITLE_CHARS]  # derived, not given: shortened rather than refused
    document = SourceDocument(source=origin, title=title, text=converted.text, metadata={"path": origin, **converted.metadata},
                              layout=converted.layout)
    return check_document(document, where)


def _documents_of(data: bytes, origin: str, suffix: str, where: str) -> Iterator[SourceDocument]:
    if suffix in CONVERTERS:
        yield converted_document(data, origin, suffix, where)
    else:
        yield from documents_from_text(decode_text(data, where), origin, suffix)


def load_file(path: Path) -> Iterator[SourceDocument]:
    if not path.exists():
        raise DocumentError(f"{path}: no such file or folder")
    path = path.resolve()
    suffix = _check_suffix(str(path))
    try:
        data = path.read_bytes()
    except OSError as error:  # unreadable (permissions, a folder named like a file...): the file's problem, named
        raise DocumentError(f"{path}: cannot be read: {error.strerror or error}") from None
    yield from _documents_of(data, str(path), suffix, str(path))


def load_upload(filename: str, data: bytes) -> list[SourceDocument]:
    """The documents of an uploaded file, checked like a file on disk; refused uploads raise DocumentError."""
    suffix = _check_suffix(filename)
    if not data.strip():
        raise DocumentError(f"{filename}: the file is empty")
    return list(_documents_of(data, f"upload:{filename}", suffix, filename))


@dataclass
class FileScan:
    """The files to read under some paths, and what a folder walk left out, each with the reason."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _skip_reason(name: str, folder: bool) -> str | None:
    if name.startswith("."):
        return "hidden folder" if folder else "hidden file"
    if not folder and name.startswith("~$"):
        return "Office lock file"
    if not folder and Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
        return f"unsupported file type {Path(name).suffix.lower() or '(none)'}"
    return None


def scan_paths(paths: list[Path]) -> FileScan:
    """The files to read: each path given that is not a folder (even hidden or unsupported: asked for by name, it is
    read or refused with its reason), and the supported files in each folder, recursively, in a stable order. Hidden
    entries, Office lock files (~$name.docx), unsupported types and links to folders are skipped, each listed once
    with the reason (a hidden folder as a whole)."""
    scan = FileScan()
    for path in paths:
        if not path.is_dir():
            scan.files.append(path)
            continue
        found: list[Path] = []
        def unlisted(error: OSError) -> None:
            scan.skipped.append((Path(error.filename), f"cannot be listed: {error.strerror}"))

        for folder, subfolders, names in os.walk(path, onerror=unlisted):
            here = Path(folder)
            for name in list(subfolders):
                reason = "link to a folder (not followed)" if (here / name).is_symlink() else _skip_reason(name, folder=True)
                if reason:
                    subfolders.remove(name)
                    scan.skipped.append((here / name, reason))
            subfolders.sort()
            for name in sorted(names):
                reason = _skip_reason(name, folder=False) or (None if (here / name).is_file() else "not a regular file")
                if reason:
                    scan.skipped.append((here / name, reason))
                else:
                    found.append(here / name)
        scan.files += sorted(found)
    return scan


def load_paths(paths: list[Path]) -> Iterator[SourceDocument]:
    """Every document under ``paths``; the first unreadable file stops it with its DocumentError."""
    for file in scan_paths(paths).files:
        yield from load_file(file)
