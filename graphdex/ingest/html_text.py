"""HTML as plain text with its h1-h6 headings as sections, on the standard library's HTML parser.

Why not a content-extraction library (trafilatura, readability): those are built to find the article in a crawled web
page and drop the rest, so on a saved documentation page or a short note they may drop real content or return
nothing, and they bring a dozen dependencies. Files given to graphdex are documents someone chose to index; keeping
all their visible text, minus what is never content (scripts, styles, navigation menus, hidden elements), is
predictable and keeps every heading.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from graphdex.ingest.layout import Layout, TextBuilder, one_line

# Never document text: code, styling, embedded objects, menus. <head> holds only <title> worth reading.
_SKIPPED = {"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "nav", "head", "select"}
# Elements that end the current paragraph (the text before and after them are separate blocks).
_BLOCKS = {
    "address", "article", "aside", "blockquote", "body", "dd", "details", "div", "dl", "dt", "fieldset", "figcaption",
    "figure", "footer", "form", "header", "hr", "li", "main", "ol", "p", "pre", "section", "summary", "table", "tbody",
    "thead", "tfoot", "tr", "ul", "caption",
}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_CELLS = {"td", "th"}
# Elements without an end tag: they must not open a skipped region or count as nesting.
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)


def decode_html(data: bytes) -> str:
    """HTML bytes as text: a byte order mark, else the charset a <meta> declares, else UTF-8, else Windows-1252 (what
    browsers assume for an undeclared legacy page)."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, "replace")
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        try:
            return data.decode(codecs.lookup(declared.group(1).decode("ascii")).name, "replace")
        except LookupError:
            pass  # an unknown charset name: fall through to the usual guesses
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("windows-1252", "replace")


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.builder = TextBuilder()
        self.title = ""
        self.first_h1 = ""
        self._line: list[str] = []  # inline text of the block being read
        self._skip: list[str] = []  # open elements whose content is left out
        self._heading = ""  # the heading element being read, if any
        self._in_title = False
        self._pre = 0

    def _flush(self) -> None:
        if self._heading:
            return  # a block inside a heading (<h2><div>...</div></h2>) stays part of the heading
        text = "".join(self._line)
        self._line = []
        self.builder.block(text if self._pre else re.sub(r"[ \t\r\f\v]*\n[ \t\r\f\v]*", "\n", text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self._skip in ([], ["head"]):  # the page's title, not an <svg>'s
            self._in_title = True
        elif self._skip:
            if tag not in _VOID:
                self._skip.append(tag)
        elif (tag in _SKIPPED or any(name == "hidden" for name, _ in attrs)) and tag not in _VOID:
            self._flush()
            self._skip.append(tag)
        elif tag in _HEADINGS:
            self._end_heading()  # a heading left open ends where the next begins, as browsers read it
            self._flush()
            self._heading = tag
        elif tag == "br":
            self._line.append("\n")
        elif tag in _CELLS:
            if "".join(self._line).strip():
                self._line.append(" | ")
        elif tag in _BLOCKS:
            self._flush()
            self._pre += tag == "pre"

    def _end_heading(self) -> None:
        if not self._heading:
            return
        text = one_line("".join(self._line))
        if self._heading == "h1" and not self.first_h1:
            self.first_h1 = text
        self._line, self._heading = [], ""
        self.builder.heading(text)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif self._skip:
            if tag in self._skip:  # close up to the matching element, forgiving unclosed children
                del self._skip[len(self._skip) - 1 - self._skip[::-1].index(tag):]
        elif tag in _HEADINGS:
            self._end_heading()
        elif tag in _BLOCKS:
            self._flush()
            self._pre = max(0, self._pre - (tag == "pre"))

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self._line.append(data if self._pre else re.sub(r"[ \t\r\n\f\v]+", " ", data))

    def close(self) -> None:
        super().close()
        self._end_heading()
        self._flush()


def html_to_text(data: bytes) -> tuple[str, Layout, str | None]:
    """The visible text of an HTML file, its layout (h1-h6 as sections) and its title (<title>, else the first h1)."""
    parser = _HtmlText()
    parser.feed(decode_html(data))
    parser.close()
    title = one_line(parser.title) or parser.first_h1 or None
    return parser.builder.text, parser.builder.layout, title
