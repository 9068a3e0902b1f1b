"""PDF, Word, PowerPoint, Excel and HTML files: converted with their headings and pages, refused clearly when they
cannot be read, indexed by `graphdex ingest` and the upload API, and cited with their page or section.

Every file is written here, at test time, by the libraries that write these formats (fpdf2, python-docx,
python-pptx, openpyxl), so the tests read real files and ship none.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import docx
import openpyxl
import pptx
import pytest
from fastapi.testclient import TestClient
from pptx.util import Inches
from typer.testing import CliRunner

from graphdex.api.app import create_app
from graphdex.api.cli import app as cli
from graphdex.graph.model import NodeType
from graphdex.ingest import converters
from graphdex.ingest import layout as layout_module
from graphdex.ingest.chunking import Chunker
from graphdex.ingest.documents import MAX_TITLE_CHARS, DocumentError, load_file, load_upload, scan_paths
from tests.helpers import make_pdf, wait_until_settled

PDF_PAGES = [
    "Lake Bled lies in the Julian Alps of north-western Slovenia. The lake is fed by warm springs and by the stream "
    "that comes down from the Pokljuka plateau above the village.",
    "The island in the middle of the lake holds the pilgrimage church of the Assumption of Mary. Visitors who ring "
    "its wishing bell are said to have their wish granted by the Virgin.",
    "Bled Castle stands on a cliff one hundred metres above the northern shore. It was first mentioned in a deed of "
    "the German king Henry the Second in the year 1004.",
]


def make_scanned_pdf(path: Path) -> Path:
    return make_pdf(path, ["", ""])


def make_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Field notes on Slovenian lakes", 0)
    document.add_paragraph("These notes were gathered over two summers of walking in the Alps.")
    document.add_heading("Lake Bohinj", 1)
    document.add_paragraph("Lake Bohinj is the largest permanent lake in Slovenia, inside the Triglav National Park.")
    document.add_heading("Fishing rules", 2)
    document.add_paragraph("Anglers at Bohinj need a daily permit from the local fishing club and may keep two trout.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Fish", "Season"
    table.cell(1, 0).text, table.cell(1, 1).text = "Lake trout", "April to September"
    merged = table.add_row().cells
    merged[0].merge(merged[1]).text = "No fishing from boats"
    document.save(str(path))
    return path


def make_pptx(path: Path) -> Path:
    deck = pptx.Presentation()
    cover = deck.slides.add_slide(deck.slide_layouts[0])
    cover.shapes.title.text = "Alpine lakes survey"
    cover.placeholders[1].text = "Results of the 2023 season"
    results = deck.slides.add_slide(deck.slide_layouts[1])
    results.shapes.title.text = "Water temperature"
    results.placeholders[1].text = "Lake Bohinj reached 24 degrees in August.\nLake Bled stayed two degrees warmer."
    results.notes_slide.notes_text_frame.text = "Mention the heat wave of the first week of August."
    untitled = deck.slides.add_slide(deck.slide_layouts[6])  # blank layout: no title placeholder
    box = untitled.shapes.add_textbox(Inches(1), Inches(1), Inches(6), Inches(2))
    box.text_frame.text = "Volunteers counted four hundred swans on the eastern shore."
    deck.save(str(path))
    return path


def make_xlsx(path: Path) -> Path:
    workbook = openpyxl.Workbook()
    depths = workbook.active
    depths.title = "Depths"
    depths.append(["Lake", "Greatest depth (m)", "Mean depth (m)"])
    depths.append(["Bohinj", 45, 28])
    depths.append(["Bled", 30.6, 17.9])
    depths.append(["Krn", 17, 17])
    workbook.create_sheet("Unused")
    visitors = workbook.create_sheet("Visitors")
    visitors.append(["Lake", "Visitors in 2022"])
    visitors.append(["Bled", "about one million"])
    workbook.save(str(path))
    return path


HTML = """<!doctype html>
<html><head><meta charset="windows-1250"><title>Rivers of Slovenia</title><style>body { color: black }</style>
<script>document.write("not content")</script></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<h1>The Soča</h1><p>The Soča is an emerald river that flows from the Julian Alps to the Adriatic &amp; Italy.</p>
<h2>Kayaking</h2><p>Kayakers come to Bovec for the white water<br>between May and October.</p>
<div hidden>A hidden draft paragraph.</div>
<h2>History</h2><p>The front line of the Isonzo battles ran along the river in the First World War.</p>
</body></html>"""


def make_html(path: Path) -> Path:
    path.write_bytes(HTML.encode("windows-1250"))
    return path


def section_of(document, phrase: str) -> str | None:
    return document.layout.locate(document.text.index(phrase), document.text.index(phrase) + len(phrase)).get("section")


def test_pdf_text_is_read_page_by_page(tmp_path):
    [document] = load_file(make_pdf(tmp_path / "bled.pdf", PDF_PAGES, title="Guide to Bled"))
    assert document.title == "Guide to Bled"
    assert document.metadata["format"] == "pdf" and document.metadata["pages"] == 3
    for number, page in enumerate(PDF_PAGES, start=1):
        where = document.text.index(" ".join(page.split()[:2]))
        assert document.layout.locate(where, where + 10) == {"page": number}
    start = document.text.index("wishing bell")
    assert document.layout.locate(start, document.text.index("cliff")) == {"page": 2, "page_end": 3}
    [untitled] = load_file(make_pdf(tmp_path / "untitled.pdf", PDF_PAGES[:1]))
    assert untitled.title == "untitled", "no title in the PDF's properties: the file name"


def test_a_pdf_with_some_scanned_pages_keeps_the_others_and_says_which(tmp_path, caplog):
    [document] = load_file(make_pdf(tmp_path / "mixed.pdf", [PDF_PAGES[0], "", PDF_PAGES[2]]))
    assert document.metadata["pages_without_text"] == [2]
    castle = document.text.index("Bled Castle")
    assert document.layout.locate(castle, castle + 5) == {"page": 3}
    assert "mixed.pdf: page(s) [2] have no text layer" in caplog.text


def test_docx_headings_become_sections(tmp_path):
    [document] = load_file(make_docx(tmp_path / "notes.docx"))
    assert document.title == "Field notes on Slovenian lakes"
    assert section_of(document, "two summers of walking") == "Field notes on Slovenian lakes"
    assert section_of(document, "largest permanent lake") == "Lake Bohinj"
    assert section_of(document, "daily permit") == "Fishing rules"
    assert "Lake trout | April to September" in document.text
    assert "\n\nNo fishing from boats\n\n" in document.text + "\n\n", "a merged cell is written once"
    assert section_of(document, "Lake trout") == "Fishing rules"


def test_pptx_slides_are_sections_and_pages(tmp_path):
    [document] = load_file(make_pptx(tmp_path / "survey.pptx"))
    assert document.title == "Alpine lakes survey" and document.metadata["slides"] == 3
    start = document.text.index("24 degrees")
    assert document.layout.locate(start, start + 5) == {"section": "Water temperature", "page": 2}
    assert "heat wave" in document.text, "speaker notes are part of the slide"
    swans = document.text.index("four hundred swans")
    assert document.layout.locate(swans, swans + 5) == {"section": "Slide 3", "page": 3}
    assert "Slide 3" not in document.text, "an untitled slide gets a section name, not made-up words"


def test_xlsx_sheets_are_sections(tmp_path):
    [document] = load_file(make_xlsx(tmp_path / "lakes.xlsx"))
    assert document.title == "lakes"
    assert "Bohinj | 45 | 28" in document.text and "Bled | about one million" in document.text
    assert "Krn | 17 | 17" in document.text, "equal neighbours in a sheet are two values"
    assert section_of(document, "Bohinj | 45") == "Depths"
    assert section_of(document, "about one million") == "Visitors"
    assert [title for _, title in document.layout.sections] == ["Depths", "Visitors"], "an empty sheet is no section"


def test_html_keeps_headings_and_visible_text_only(tmp_path):
    [document] = load_file(make_html(tmp_path / "rivers.htm"))
    assert document.title == "Rivers of Slovenia"
    assert "The Soča is an emerald river" in document.text, "the declared charset is honoured"
    assert "Adriatic & Italy" in document.text
    assert section_of(document, "emerald river") == "The Soča"
    assert section_of(document, "white water") == "Kayaking"
    assert section_of(document, "Isonzo") == "History"
    assert "white water\nbetween May" in document.text
    for hidden in ("not content", "Home", "About", "hidden draft", "color: black"):
        assert hidden not in document.text
    [debris] = load_upload("debris.html", b"<h1>Lake\x00 Bled</h1><p>A soft\x02 hyphen and a NUL\x00.</p>")
    assert debris.text == "Lake Bled\n\nA soft hyphen and a NUL.", "control characters dropped, not the document refused"


def test_markdown_headings_become_sections_without_changing_the_document(tmp_path):
    text = "# Lake Bled\n\nBled is a lake.\n\n## Island\nA church stands on it.\n\n```bash\n# not a heading\nls\n```\n\nMore about the island.\n"
    path = tmp_path / "bled.md"
    path.write_text(text)
    [document] = load_file(path)
    # title, text and metadata are what decides the document's id and version: as before sections existed
    assert (document.title, document.text, document.metadata) == ("Lake Bled", text, {"path": str(path.resolve())})
    assert section_of(document, "Bled is a lake") == "Lake Bled"
    assert section_of(document, "church stands") == "Island"
    assert section_of(document, "More about the island") == "Island", "a # line in fenced code is no heading"


def test_chunks_do_not_cross_section_boundaries():
    chunker = Chunker(lambda texts: [len(t.split()) for t in texts], max_tokens=50, overlap=10)
    text = "First section has one sentence. And a second one.\n\nSecond section starts here. It ends here."
    boundary = text.index("Second section")
    assert len(chunker.split(text)) == 1, "without a boundary, everything fits one chunk"
    chunks = chunker.split(text, [boundary])
    assert [(c.start, c.end) for c in chunks] == [(0, text.index("\n\n")), (boundary, len(text))]


@pytest.mark.parametrize("name, content, reason", [
    ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer garbage", "not a readable PDF"),
    ("broken.docx", b"PK\x03\x04 this is not really a zip archive", "not a valid Word file"),
    ("renamed.docx", bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 100, "old binary .doc"),
    ("broken.pptx", b"just some text with a pptx name", "not a valid PowerPoint file"),
    ("broken.xlsx", b"\x00\x01\x02\x03", "not a valid Excel file"),
    ("empty.pdf", b"", "the file is empty"),
    ("empty.docx", b"  \n", "the file is empty"),
    ("empty.html", b"", "the file is empty"),
    ("blank.html", b"<html><body><script>var x;</script></body></html>", "no text found"),
])
def test_unreadable_files_are_refused_with_their_name_and_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentError) as caught:
        list(load_file(path))
    message = str(caught.value)
    assert name in message and reason in message and "Traceback" not in message
    with pytest.raises(DocumentError, match=reason):
        load_upload(name, content)


def test_valid_zip_that_is_no_office_file_and_empty_office_files(tmp_path):
    archive = io.BytesIO()
    import zipfile
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("hello.txt", "not a document")
    with pytest.raises(DocumentError, match=r"zip\.docx: not a valid Word file \(\w+"):
        load_upload("zip.docx", archive.getvalue())
    docx.Document().save(str(tmp_path / "nothing.docx"))
    with pytest.raises(DocumentError, match="nothing.docx: no text found"):
        list(load_file(tmp_path / "nothing.docx"))
    openpyxl.Workbook().save(str(tmp_path / "nothing.xlsx"))
    with pytest.raises(DocumentError, match="nothing.xlsx: no text found"):
        list(load_file(tmp_path / "nothing.xlsx"))


def test_encrypted_and_scanned_pdfs_say_why(tmp_path):
    with pytest.raises(DocumentError, match="locked.pdf: the PDF is encrypted with a password"):
        list(load_file(make_pdf(tmp_path / "locked.pdf", PDF_PAGES, password="s3cret")))
    with pytest.raises(DocumentError, match=r"scan.pdf: no text layer on any of its 2 page\(s\): a scanned PDF\?"):
        list(load_file(make_scanned_pdf(tmp_path / "scan.pdf")))


def test_converted_documents_are_held_to_the_document_limits(tmp_path, monkeypatch):
    document = docx.Document()
    document.add_heading("Lake " * (MAX_TITLE_CHARS // 3), 0)  # Word keeps a document property title under 256
    document.add_paragraph("Some text.")
    document.save(str(tmp_path / "long-title.docx"))
    [converted] = load_file(tmp_path / "long-title.docx")
    assert len(converted.title) == MAX_TITLE_CHARS, "a title taken from the file is shortened like a Markdown heading"
    monkeypatch.setattr(layout_module, "MAX_CONVERTED_CHARS", 50)
    with pytest.raises(DocumentError, match="lakes.xlsx: the text is longer than 50 characters"):
        list(load_file(make_xlsx(tmp_path / "lakes.xlsx")))
    monkeypatch.setattr(converters, "MAX_PARSED_XML_BYTES", 1000)  # a zip bomb: small file, huge document.xml
    with pytest.raises(DocumentError, match=r"notes.docx: this Word file's XML unpacks to [\d,]+ bytes; at most 1,000"):
        list(load_file(make_docx(tmp_path / "notes.docx")))


def _inflated(path: Path, unpacked: int) -> bytes:
    """The Word file at ``path`` with its body padded by repeated paragraphs until document.xml unpacks to
    ``unpacked`` bytes: small on the wire (deflate), huge once parsed."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "word/document.xml":
                head, tail = data.split(b"<w:body>", 1)
                paragraph = b"<w:p><w:r><w:t>The lake was calm.</w:t></w:r></w:p>"
                data = head + b"<w:body>" + paragraph * (unpacked // len(paragraph)) + tail
            package.writestr(item.filename, data)
    return out.getvalue()


def test_a_word_file_that_unpacks_past_the_parsed_limit_is_refused_unread(tmp_path):
    bomb = _inflated(make_docx(tmp_path / "notes.docx"), converters.MAX_PARSED_XML_BYTES + 1024)
    assert len(bomb) < converters.MAX_PARSED_XML_BYTES // 100, "a small upload"
    with pytest.raises(DocumentError, match=r"bomb.docx: this Word file's XML unpacks to [\d,]+ bytes; at most 33,554,432"):
        load_upload("bomb.docx", bomb)
    fits = _inflated(make_docx(tmp_path / "notes.docx"), 200_000)
    [document] = load_upload("fits.docx", fits)
    assert "Lake Bohinj" in document.text and "The lake was calm." in document.text


def test_folder_scan_reports_what_it_skips(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    make_html(tmp_path / "sub" / "deeper" / "page.html")
    (tmp_path / "notes.md").write_text("# Notes\n\nText.")
    (tmp_path / "table.csv").write_text("a,b")
    (tmp_path / "README").write_text("no suffix")
    (tmp_path / ".env").write_text("SECRET=1")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.txt").write_text("not to be indexed")
    (tmp_path / "~$notes.docx").write_bytes(b"lock")
    scan = scan_paths([tmp_path])
    assert scan.files == [tmp_path / "notes.md", tmp_path / "sub" / "deeper" / "page.html"]
    assert {(p.name, reason) for p, reason in scan.skipped} == {
        ("table.csv", "unsupported file type .csv"), ("README", "unsupported file type (none)"), (".env", "hidden file"),
        (".git", "hidden folder"), ("~$notes.docx", "Office lock file"),
    }


def _json_of(result) -> dict:
    return json.loads(result.stdout[result.stdout.index("{"):])


@pytest.mark.e2e
def test_cli_ingests_every_format_names_bad_files_and_cites_pages_and_sections(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHDEX_CHUNK_TOKENS", "44")  # small chunks: each PDF page (34 to 39 tokens) its own
    monkeypatch.setenv("GRAPHDEX_CHUNK_OVERLAP", "0")
    corpus = tmp_path / "corpus"
    (corpus / "slides").mkdir(parents=True)
    make_pdf(corpus / "bled-guide.pdf", PDF_PAGES, title="Guide to Bled")
    make_docx(corpus / "field-notes.docx")
    make_pptx(corpus / "slides" / "survey.pptx")
    make_xlsx(corpus / "lakes.xlsx")
    make_html(corpus / "rivers.html")
    (corpus / "postojna.md").write_text("# Postojna Cave\n\n## Olm\n\nThe olm is a blind salamander that lives in the cave's underground waters.\n")
    make_pdf(corpus / "locked.pdf", PDF_PAGES, password="s3cret")
    make_scanned_pdf(corpus / "scan.pdf")
    (corpus / "corrupt.xlsx").write_bytes(b"PK\x03\x04 truncated download")
    (corpus / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    data = tmp_path / "index"
    run = CliRunner()

    result = run.invoke(cli, ["--data-dir", str(data), "ingest", str(corpus), "--workers", "0", "--json"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    summary = _json_of(result)
    assert summary["documents_added"] == 6 and summary["failed"] == []
    unreadable = "\n".join(summary["unreadable"])
    assert "locked.pdf: the PDF is encrypted with a password" in unreadable
    assert "scan.pdf: no text layer" in unreadable
    assert "corrupt.xlsx: not a valid Excel file" in unreadable
    assert len(summary["unreadable"]) == 3
    assert summary["skipped_files"] == [{"path": str(corpus / "photo.jpg"), "reason": "unsupported file type .jpg"}]
    assert "3 file(s) or document(s) not indexed" in " ".join(result.output.split())

    table = run.invoke(cli, ["--data-dir", str(data), "ingest", str(corpus), "--workers", "0"])
    said = " ".join(table.output.split())
    assert table.exit_code == 1 and "files not readable" in said and "documents unchanged" in said
    assert "not indexed" in said and "locked.pdf: the PDF is encrypted" in said
    assert "skipped 1 (unsupported file type .jpg)" in said

    def top_hit(question: str) -> dict:
        answer = run.invoke(cli, ["--data-dir", str(data), "query", question, "--mode", "naive", "--top-k", "3", "--json"])
        assert answer.exit_code == 0, answer.output
        return json.loads(answer.stdout)["chunks"][0]

    castle = top_hit("When was Bled Castle first mentioned in a deed?")
    assert castle["source"].endswith("bled-guide.pdf") and castle["title"] == "Guide to Bled"
    assert (castle["page"], castle["page_end"], castle["section"]) == (3, None, None)
    permit = top_hit("Do anglers at Bohinj need a fishing permit?")
    assert permit["source"].endswith("field-notes.docx") and permit["section"] == "Fishing rules" and permit["page"] is None
    swans = top_hit("How many swans did the volunteers count?")
    assert swans["source"].endswith("survey.pptx") and (swans["section"], swans["page"]) == ("Slide 3", 3)
    kayak = top_hit("When do kayakers come to Bovec?")
    assert kayak["source"].endswith("rivers.html") and kayak["section"] == "Kayaking"
    olm = top_hit("Which blind salamander lives in the cave?")
    assert olm["source"].endswith("postojna.md") and olm["section"] == "Olm"

    shown = run.invoke(cli, ["--data-dir", str(data), "query", "When was Bled Castle first mentioned in a deed?", "--mode", "naive", "--top-k", "1"])
    assert "p. 3" in shown.stdout


def test_every_chunk_knows_its_page_and_section(make_workspace, tmp_path):
    workspace = make_workspace("pages", chunk_tokens=100, chunk_overlap=30)
    documents = [*load_file(make_pdf(tmp_path / "guide.pdf", PDF_PAGES * 2)), *load_file(make_docx(tmp_path / "notes.docx"))]
    workspace.indexer.ingest(documents)
    chunks = list(workspace.store.iter_nodes(NodeType.CHUNK))
    pdf, notes = documents
    for chunk in chunks:
        document = pdf if chunk.props["title"] == pdf.title else notes
        assert chunk.props == {**chunk.props, **document.layout.locate(chunk.props["start"], chunk.props["end"])}
    pages = sorted({(c.props["page"], c.props.get("page_end")) for c in chunks if c.props["title"] == pdf.title})
    assert {page for page, _ in pages} <= {1, 2, 3, 4, 5, 6} and max(pages)[0] >= 5, pages
    assert any(end for _, end in pages), "a chunk packs the end of one page with the start of the next"
    assert {c.props["section"] for c in chunks if c.props["title"] == notes.title} == {"Field notes on Slovenian lakes", "Lake Bohinj", "Fishing rules"}


@pytest.fixture
def client(make_workspace):
    workspace = make_workspace("api", extract_workers=0, max_request_bytes=2_000_000)
    with TestClient(create_app(workspace=workspace)) as client:
        yield client


def test_api_upload_of_a_pdf_is_indexed_and_cited_with_its_page(client, tmp_path):
    pdf = make_pdf(tmp_path / "guide.pdf", PDF_PAGES, title="Guide to Bled").read_bytes()
    response = client.post("/documents", files=[("files", ("guide.pdf", pdf, "application/pdf"))])
    assert response.status_code == 202, response.text
    [submitted] = response.json()["documents"]
    assert submitted["title"] == "Guide to Bled" and submitted["source"] == "upload:guide.pdf"
    assert wait_until_settled(client, [submitted["id"]])[submitted["id"]]["status"] == "done"
    body = client.post("/query", json={"query": "Who rings the wishing bell in the island church?", "mode": "naive", "top_k": 5}).json()
    [hit] = body["results"]  # three short pages: one chunk
    assert hit["source"] == "upload:guide.pdf" and (hit["page"], hit["page_end"], hit["section"]) == (1, 3, None)


def test_api_upload_of_a_corrupt_file_is_a_422_naming_it(client, tmp_path):
    good = make_pdf(tmp_path / "guide.pdf", PDF_PAGES).read_bytes()
    response = client.post("/documents", files=[("files", ("guide.pdf", good, "application/pdf")),
                                                ("files", ("minutes.docx", b"PK\x03\x04 cut short", "application/octet-stream"))])
    assert response.status_code == 422, response.text
    assert "minutes.docx: not a valid Word file" in response.json()["detail"]
    locked = client.post("/documents", files=[("files", ("locked.pdf",
                                                         make_pdf(tmp_path / "l.pdf", PDF_PAGES, password="pw").read_bytes(), "application/pdf"))])
    assert locked.status_code == 422 and "locked.pdf: the PDF is encrypted" in locked.json()["detail"]
    assert client.get("/documents").json()["total"] == 0, "a refused request queues nothing"
