"""Where a document's sections and pages begin in its text.

A converted PDF or Word file is flattened to plain text before chunking; what it knew about its structure (headings,
page breaks, slides, sheets) is kept beside the text as character offsets. The chunker uses section starts as hard
boundaries, so a chunk never mixes the end of one section with the start of the next, and every chunk records the
heading it falls under and the page it is on: retrieval can cite "report.pdf, page 4" instead of a bare file name.

Offsets rather than a tree: they survive the JSON round trip through the ingestion queue unchanged, and answering
"which section is offset N in" is a binary search.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from graphdex.common.errors import InvalidInput

# A section title is repeated on every chunk of its section: long enough to recognise, never a whole paragraph that
# someone styled as a heading.
MAX_SECTION_CHARS = 300
# Conversion stops past this much text: a small compressed upload (a zip bomb disguised as .xlsx or .docx) could
# otherwise expand to gigabytes in memory before any other limit is checked.
MAX_CONVERTED_CHARS = 20_000_000


# Control characters in a converted file are layout debris (PDFium marks soft hyphens with one), and a NUL would get
# the whole document refused as binary: they are dropped. Tabs and line breaks stay.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ConversionError(InvalidInput):
    """A file cannot be turned into text; the message says why (the caller adds the file's name)."""


@dataclass
class Layout:
    """Section and page starts of a document's text, each as (character offset, value), in ascending offset order."""

    sections: list[tuple[int, str]] = field(default_factory=list)
    pages: list[tuple[int, int]] = field(default_factory=list)

    def boundaries(self) -> list[int]:
        """Offsets the chunker must not pack across: where each section begins."""
        return [offset for offset, _ in self.sections]

    def locate(self, start: int, end: int) -> dict[str, Any]:
        """Where the text from ``start`` to ``end`` lies: its section, its first page and, when it runs onto a later
        page, its last. Only what is known is returned, so a plain-text chunk gets no keys at all."""
        found: dict[str, Any] = {}
        section = _at(self.sections, start)
        if section is not None:
            found["section"] = section
        page = _at(self.pages, start)
        if page is not None:
            found["page"] = page
            last = _at(self.pages, max(start, end - 1))
            if last is not None and last != page:
                found["page_end"] = last
        return found

    def to_json(self) -> dict[str, list[list[Any]]]:
        return {"sections": [list(s) for s in self.sections], "pages": [list(p) for p in self.pages]}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Layout:
        """The layout ``to_json`` wrote; a queue entry written before layouts existed has none."""
        if not data:
            return cls()
        return cls([(int(o), str(t)) for o, t in data.get("sections", [])], [(int(o), int(n)) for o, n in data.get("pages", [])])


def _at(marks: list[tuple[int, Any]], offset: int) -> Any:
    """The value of the last mark at or before ``offset`` (None before the first)."""
    position = bisect_right(marks, offset, key=lambda mark: mark[0])
    return marks[position - 1][1] if position else None


def one_line(text: str) -> str:
    """Text with its runs of white space, line breaks included, as single spaces: how a title or heading reads."""
    return " ".join(text.split())


def section_title(text: str) -> str:
    """A heading as a one-line section title of bounded length."""
    title = one_line(text)
    return title if len(title) <= MAX_SECTION_CHARS else title[: MAX_SECTION_CHARS - 1] + "…"


class TextBuilder:
    """Assembles a converted document: blocks of text separated by blank lines (which the chunker treats as sentence
    ends), with the offsets of headings and page starts recorded as they are written.

    A heading followed directly by another (a chapter title, then its first subsection) does not become a section of
    its own: a section holding nothing but its title would be a chunk with nothing to retrieve. The later heading
    names the section instead, which starts at the earlier one. A page start ends that merging, so an empty slide
    keeps its own place.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.layout = Layout()
        self._bare_heading = False  # the last section so far holds only its heading

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def _write(self, text: str) -> None:
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        self._parts.append(text)
        self._length += len(text)
        if self._length > MAX_CONVERTED_CHARS:
            raise ConversionError(f"the text is longer than {MAX_CONVERTED_CHARS:,} characters")

    def _next_offset(self) -> int:
        return self._length + (2 if self._parts else 0)

    def page(self, number: int) -> None:
        """The next block starts page (or slide) ``number``."""
        offset = self._next_offset()
        if self.layout.pages and self.layout.pages[-1][0] == offset:
            self.layout.pages.pop()  # the previous page had no text
        self.layout.pages.append((offset, number))
        self._bare_heading = False

    def heading(self, text: str, *, in_text: bool = True) -> None:
        """A section starts here, titled ``text``; ``in_text=False`` names a section the file gives no heading
        (an untitled slide) without putting a made-up title into the document's words."""
        text = _CONTROL.sub("", text)
        title = section_title(text)
        if not title:
            return
        sections, offset = self.layout.sections, self._next_offset()
        if self._bare_heading or (sections and sections[-1][0] == offset):  # the last section is still empty
            sections[-1] = (sections[-1][0], title)
        else:
            sections.append((offset, title))
        if in_text:
            self._write(one_line(text))  # the words in full; only the section's name is shortened
        self._bare_heading = True

    def block(self, text: str) -> None:
        """A paragraph, list item, table row or page of body text (surrounding blank space dropped)."""
        text = _CONTROL.sub("", text).strip()
        if text:
            self._write(text)
            self._bare_heading = False


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")


def markdown_layout(text: str) -> Layout:
    """The sections of a Markdown text: its ATX headings (``#`` to ``######``), outside fenced code blocks (where a
    ``#`` line is a shell comment). Headings with only blank lines between them make one section, as in TextBuilder.
    The text itself is left as written: its hash identifies the document's version."""
    layout = Layout()
    fence = ""
    bare_heading = False
    offset = 0
    for line in text.splitlines(keepends=True):
        start, offset = offset, offset + len(line)
        opened = _FENCE.match(line)
        if fence:
            fence = "" if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence) else fence
            bare_heading = False
            continue
        if opened:
            fence = opened.group(1)
            bare_heading = False
            continue
        heading = _ATX_HEADING.match(line.rstrip("\r\n"))
        if heading:
            title = section_title(heading.group(1))
            if bare_heading:
                layout.sections[-1] = (layout.sections[-1][0], title)
            else:
                layout.sections.append((start + len(line) - len(line.lstrip()), title))
            bare_heading = True
        elif line.strip():
            bare_heading = False
    return layout
