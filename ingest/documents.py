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


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{path}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"{path}: not valid UTF-8 (byte {error.start}); convert it to UTF-8 first") from error


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


def _records_of(path: Path) -> Iterator[tuple[Any, str]]:
    text = _read_text(path)
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line), f"line {number}"
            except json.JSONDecodeError as error:
                raise DocumentError(f"{path}:{number}: invalid JSON: {error.msg}") from error
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DocumentError(f"{path}: invalid JSON at line {error.lineno}: {error.msg}") from error
    if isinstance(data, dict) and isinstance(data.get("documents"), list):
        data = data["documents"]
    records = data if isinstance(data, list) else [data]
    for number, record in enumerate(records):
        yield record, f"record {number}"


def _record_source(path: Path, record: Any, position: str) -> str:
    """Records are identified by their own id, else their title, so reordering a file does not re-ingest it."""
    if isinstance(record, dict):
        for key in ("id", "source", "title"):
            if record.get(key):
                return f"{path}#{record[key]}"
    return f"{path}#{position}"


def load_file(path: Path) -> Iterator[SourceDocument]:
    path = path.resolve()
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"{path}: unsupported file type {suffix or '(none)'}; graphdex reads {', '.join(SUPPORTED_SUFFIXES)}")
    if suffix in (".txt", ".md"):
        text = _read_text(path)
        yield SourceDocument(source=str(path), title=_title_of(text, path.stem), text=text, metadata={"path": str(path)})
        return
    for record, position in _records_of(path):
        document = document_from_record(record, _record_source(path, record, position))
        document.title = document.title or path.stem
        yield document


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
