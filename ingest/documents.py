"""Reading documents from files and folders (.txt, .md, .json, .jsonl)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".json", ".jsonl")


class DocumentError(ValueError):
    """A document or file cannot be read; the message names it and says why."""


@dataclass
class SourceDocument:
    """A document as given by the user, before it gets an id.

    ``source`` identifies the document across ingests: the same source with new text replaces the old version.
    """

    source: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def decode_text(data: bytes, name: str) -> str:
    """Bytes of a text file as str; binary or non-UTF-8 content is refused with a message naming the file."""
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{name}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"{name}: not valid UTF-8 (byte {error.start}); convert it to UTF-8 first") from error


def _read_text(path: Path) -> str:
    return decode_text(path.read_bytes(), str(path))


def _title_of(text: str, fallback: str) -> str:
    heading = _HEADING.search(text[:2000])
    if heading:
        return heading.group(1).strip()
    return fallback


def document_from_record(record: Any, source: str) -> SourceDocument:
    """A JSON record ``{"title": ..., "text": ...}`` (plus optional ``id``, ``source``, ``metadata``) as a document."""
    if not isinstance(record, dict):
        raise DocumentError(f"{source}: expected an object with `title` and `text`, got {type(record).__name__}")
    text = record.get("text")
    if not isinstance(text, str):
        raise DocumentError(f"{source}: record has no string `text` field")
    title = record.get("title")
    if title is not None and not isinstance(title, str):
        raise DocumentError(f"{source}: `title` must be a string")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DocumentError(f"{source}: `metadata` must be an object")
    if record.get("id") is not None:
        metadata = {**metadata, "id": str(record["id"])}
    return SourceDocument(source=str(record.get("source") or source), title=title or "", text=text, metadata=metadata)


def _records_of(text: str, name: str, lines: bool) -> Iterator[tuple[Any, str]]:
    """The records of a .jsonl (``lines``) or .json text, each with where it was found."""
    if lines:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line), f"line {number}"
            except json.JSONDecodeError as error:
                raise DocumentError(f"{name}:{number}: invalid JSON: {error.msg}") from error
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DocumentError(f"{name}: invalid JSON at line {error.lineno}: {error.msg}") from error
    if isinstance(data, dict) and isinstance(data.get("documents"), list):
        data = data["documents"]
    records = data if isinstance(data, list) else [data]
    for number, record in enumerate(records):
        yield record, f"record {number}"


def _record_source(origin: str, record: Any, position: str) -> str:
    """Records are identified by their own id, else their title, so reordering a file does not re-ingest it."""
    if isinstance(record, dict):
        for key in ("id", "source", "title"):
            if record.get(key):
                return f"{origin}#{record[key]}"
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
        yield SourceDocument(source=origin, title=_title_of(text, stem), text=text, metadata={"path": origin})
        return
    for record, position in _records_of(text, origin, lines=suffix == ".jsonl"):
        document = document_from_record(record, _record_source(origin, record, position))
        document.title = document.title or stem
        yield document


def load_file(path: Path) -> Iterator[SourceDocument]:
    path = path.resolve()
    suffix = _check_suffix(str(path))
    yield from documents_from_text(_read_text(path), str(path), suffix)


def load_upload(filename: str, data: bytes) -> list[SourceDocument]:
    """The documents of an uploaded file, checked like a file on disk; refused uploads raise DocumentError."""
    suffix = _check_suffix(filename)
    if not data.strip():
        raise DocumentError(f"{filename}: the file is empty")
    return list(documents_from_text(decode_text(data, filename), f"upload:{filename}", suffix))


def iter_files(paths: list[Path]) -> list[Path]:
    """Supported files under ``paths`` (folders recursively, hidden entries skipped), sorted for a stable order."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise DocumentError(f"{path}: no such file or folder")
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            files.append(path)
    return files


def load_paths(paths: list[Path]) -> Iterator[SourceDocument]:
    for file in iter_files(paths):
        yield from load_file(file)
