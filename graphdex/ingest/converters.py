"""Office, PDF and HTML files as plain text with their structure (headings, pages, slides, sheets).

One small converter per format, behind ``convert``. Each uses a maintained library that reads the format itself, with
no model and nothing fetched at run time, chosen because it exposes the structure retrieval needs:

- PDF: pypdfium2 (PDFium, the PDF engine of Chromium) gives the text layer page by page, so every chunk knows its
  page; it reads damaged files as well as any viewer does and tells an encrypted file from a broken one.
- DOCX: python-docx walks paragraphs and tables in document order with their style names, which is where Word keeps
  headings ("Heading 1", "Title", or a custom style based on them).
- PPTX: python-pptx gives each slide's title placeholder (the section), its text frames, tables and speaker notes.
- XLSX: openpyxl in read-only mode streams rows without loading the workbook into memory; each sheet is a section.
- HTML: our own converter on the standard library's parser (ingest/html_text.py).

A wider converter such as markitdown would cover more formats, but it renders every format to Markdown and drops the
page numbers, and it brings dozens of dependencies; these four libraries are all the formats here need.

The converters raise ConversionError with a reason a person can act on (encrypted, no text layer, not a valid file);
any other failure inside a library on a malformed file is reported the same way, never as a traceback.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphdex.ingest.html_text import html_to_text
from graphdex.ingest.layout import ConversionError, Layout, TextBuilder, one_line

log = logging.getLogger(__name__)


@dataclass
class Converted:
    """A file's text, its layout, a title when the file names one, and facts about the file worth keeping as the
    document's metadata (its format, its page count)."""

    text: str
    layout: Layout
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


# PDFium keeps global state and is not thread-safe: the API converts uploads on worker threads, so one at a time.
_PDFIUM_LOCK = threading.Lock()


def _pdf(data: bytes) -> Converted:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_raw

    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as error:
            if getattr(error, "err_code", None) == pdfium_raw.FPDF_ERR_PASSWORD:
                raise ConversionError("the PDF is encrypted with a password; save an unprotected copy and ingest that") from None
            raise ConversionError(f"not a readable PDF ({error})") from None
        try:
            builder = TextBuilder()
            empty_pages: list[int] = []
            for number in range(1, len(pdf) + 1):
                page = pdf[number - 1]
                textpage = page.get_textpage()
                try:
                    text = textpage.get_text_range()
                finally:
                    textpage.close()
                    page.close()
                text = text.replace("\r\n", "\n").replace("\r", "\n")
                if not text.strip():
                    empty_pages.append(number)
                    continue
                builder.page(number)
                builder.block(text)
            title = one_line(pdf.get_metadata_dict().get("Title") or "") or None
            pages = len(pdf)
        finally:
            pdf.close()
    if not builder.text:
        raise ConversionError(f"no text layer on any of its {pages} page(s): a scanned PDF? run OCR on it first")
    metadata: dict[str, Any] = {"format": "pdf", "pages": pages}
    if empty_pages:
        metadata["pages_without_text"] = empty_pages
    return Converted(builder.text, builder.layout, title, metadata)


_HEADING_STYLE = re.compile(r"^(?:heading \d+|title)$", re.IGNORECASE)


def _is_heading(paragraph: Any) -> bool:
    """Whether a Word paragraph is a heading: its style, or a style it is based on, is Title or Heading N."""
    style = paragraph.style
    for _ in range(10):  # base styles chain; a cycle in a broken file must not hang
        if style is None:
            return False
        if _HEADING_STYLE.match(style.name or ""):
            return True
        style = style.base_style
    return False


def _table_rows(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Table rows as lines of their non-empty cells joined by " | ": one row, one line, whatever its cells hold."""
    for row in rows:
        line = " | ".join(cell for cell in (one_line(str(value)) for value in row if value is not None) if cell)
        if line:
            yield line


def _docx_cells(row: Any) -> list[str]:
    """A Word table row's cell texts, a merged cell once (python-docx lists it under every column it spans)."""
    cells = row.cells
    return [cell.text for i, cell in enumerate(cells) if i == 0 or cell._tc is not cells[i - 1]._tc]


def _docx(data: bytes) -> Converted:
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    builder = TextBuilder()
    first_heading: str | None = None
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for line in _table_rows(_docx_cells(row) for row in item.rows):
                builder.block(line)
        elif _is_heading(item) and item.text.strip():
            first_heading = first_heading or one_line(item.text)
            builder.heading(item.text)
        else:
            builder.block(item.text)
    title = one_line(document.core_properties.title or "") or first_heading
    return Converted(builder.text, builder.layout, title, {"format": "docx"})


def _pptx(data: bytes) -> Converted:
    import pptx
    from pptx.shapes.group import GroupShape

    presentation = pptx.Presentation(io.BytesIO(data))

    def shape_texts(shapes: Iterable[Any], title_shape: Any) -> Iterator[str]:
        for shape in shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if isinstance(shape, GroupShape):
                yield from shape_texts(shape.shapes, None)
            elif shape.has_table:
                yield from _table_rows([cell.text for cell in row.cells if not cell.is_spanned] for row in shape.table.rows)
            elif shape.has_text_frame:
                yield shape.text_frame.text

    builder = TextBuilder()
    first_title: str | None = None
    slides = 0
    for number, slide in enumerate(presentation.slides, start=1):
        slides = number
        builder.page(number)
        title_shape = slide.shapes.title
        slide_title = title_shape.text_frame.text.strip() if title_shape is not None and title_shape.has_text_frame else ""
        first_title = first_title or one_line(slide_title) or None
        builder.heading(slide_title or f"Slide {number}", in_text=bool(slide_title))
        for text in shape_texts(slide.shapes, title_shape):
            builder.block(text)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            builder.block(slide.notes_slide.notes_text_frame.text)
    title = first_title or one_line(presentation.core_properties.title or "") or None
    return Converted(builder.text, builder.layout, title, {"format": "pptx", "slides": slides})


def _xlsx(data: bytes) -> Converted:
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        builder = TextBuilder()
        for sheet in workbook.worksheets:
            rows = _table_rows(sheet.iter_rows(values_only=True))
            first = next(rows, None)
            if first is None:
                continue  # an empty sheet is no section
            builder.heading(sheet.title)
            builder.block(first)
            for line in rows:
                builder.block(line)
        title = one_line(workbook.properties.title or "") or None
    finally:
        workbook.close()
    return Converted(builder.text, builder.layout, title, {"format": "xlsx"})


def _html(data: bytes) -> Converted:
    text, layout, title = html_to_text(data)
    return Converted(text, layout, title, {"format": "html"})


CONVERTERS: dict[str, Callable[[bytes], Converted]] = {
    ".pdf": _pdf, ".docx": _docx, ".pptx": _pptx, ".xlsx": _xlsx, ".html": _html, ".htm": _html,
}

_FORMAT_NAMES = {".pdf": "PDF", ".docx": "Word", ".pptx": "PowerPoint", ".xlsx": "Excel", ".html": "HTML", ".htm": "HTML"}
_ZIP_FORMATS = (".docx", ".pptx", ".xlsx")
# A library's own message says what is wrong inside the file; past this length it is a dump, not a reason.
_REASON_CHARS = 200
# python-docx, python-pptx and openpyxl (its shared strings, styles and workbook) parse XML parts whole, into trees
# several times their size: past this many unpacked bytes of such parts in one package the file is refused before
# anything is parsed, so a small upload cannot expand into gigabytes (a 711 KB DOCX whose document.xml unpacks to
# 250 MB held a server for two minutes and 3 GB). 32 MiB of Word XML is a document of some 5,000 pages; parsed, it
# takes a few hundred MB. (Python's zipfile never unpacks a part past the size its entry declares.)
MAX_PARSED_XML_BYTES = 32 * 1024 * 1024
# Worksheets are read row by row (openpyxl's read-only mode), so they may be larger; the text they give is bounded by
# MAX_CONVERTED_CHARS in any case.
MAX_STREAMED_XML_BYTES = 128 * 1024 * 1024


def _streamed(suffix: str, part: str) -> bool:
    return suffix == ".xlsx" and part.startswith("xl/worksheets/")


def _check_package(data: bytes, suffix: str) -> None:
    """Refuses an Office file that is no zip package (a renamed file, a truncated download, an old binary .doc) or
    whose XML would unpack past MAX_PARSED_XML_BYTES (MAX_STREAMED_XML_BYTES for worksheets), reading only the
    package's directory."""
    name = _FORMAT_NAMES[suffix]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            parts = [(part.filename, part.file_size) for part in package.infolist() if part.filename.endswith((".xml", ".rels"))]
    except zipfile.BadZipFile:
        old_binary = ", maybe an old binary .doc/.ppt/.xls" if data[:4] == bytes.fromhex("d0cf11e0") else ""
        raise ConversionError(f"not a valid {name} file (not a zip package{old_binary})") from None
    parsed = sum(size for part, size in parts if not _streamed(suffix, part))
    streamed = sum(size for part, size in parts if _streamed(suffix, part))
    if parsed > MAX_PARSED_XML_BYTES:
        raise ConversionError(f"this {name} file's XML unpacks to {parsed:,} bytes; at most {MAX_PARSED_XML_BYTES:,} are read "
                              "(split the document, or save it without embedded content)")
    if streamed > MAX_STREAMED_XML_BYTES:
        raise ConversionError(f"this {name} file's worksheets unpack to {streamed:,} bytes; at most {MAX_STREAMED_XML_BYTES:,} are read")


def convert(data: bytes, suffix: str) -> Converted:
    """The text and structure of a file of a converted format (``suffix``, lower case, one of CONVERTERS).

    Raises ConversionError with the reason when the file cannot be read or holds no text."""
    if suffix in _ZIP_FORMATS:
        _check_package(data, suffix)
    try:
        converted = CONVERTERS[suffix](data)
    except ConversionError:
        raise
    except Exception as error:  # noqa: BLE001 - a malformed file can fail anywhere inside a library; it is the file's fault
        log.debug("converting a %s file failed", suffix, exc_info=True)
        reason = f"{type(error).__name__}: {error}"
        raise ConversionError(f"not a valid {_FORMAT_NAMES[suffix]} file ({reason[:_REASON_CHARS]})") from None
    if not converted.text.strip():
        raise ConversionError("no text found")
    return converted
