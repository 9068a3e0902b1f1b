"""The Neo4j Browser experience: the README's browse queries run on a real server, and the real Browser, driven in
headless Chromium, shows an entity's neighbourhood in the graphdex style (the screenshot goes to docs/)."""

from __future__ import annotations

import re

import neo4j
import pytest

from tests.conftest import FILM_DOCS, REPO, as_documents
from tests.helpers import CHROMIUM_FLAGS, browse_queries, chromium_path

README = REPO / "README.md"
SCREENSHOT = REPO / "docs" / "neo4j-browser.png"
PERSON_COLOUR = "#E4572E"  # node.Person in docs/graphdex.grass


@pytest.fixture(scope="module")
def browsable(request, tmp_path_factory, embedder, nlp, sample_records, neo4j_server):
    """A workspace on the real server holding the film corpus plus a slice of the sample corpus."""
    import uuid

    from graphdex.api.workspace import Workspace
    from graphdex.common.settings import Settings
    from tests.conftest import drop_neo4j_workspace

    name = f"test-browse-{uuid.uuid4().hex[:8]}"
    settings = Settings(data_dir=tmp_path_factory.mktemp("browse"), store="neo4j", extract_workers=1, neo4j_uri=neo4j_server["uri"],
                        neo4j_user=neo4j_server["user"], neo4j_password=neo4j_server["password"], neo4j_workspace=name)
    workspace = Workspace(settings)
    workspace.__dict__["embedder"] = embedder
    workspace.__dict__["nlp"] = nlp
    workspace.indexer.ingest(FILM_DOCS + as_documents(sample_records[:30]))
    yield {"workspace": name, "name": "Maria Kessler", "other": "Leipzig", "title": "The Harbor Lights"}
    workspace.close()
    drop_neo4j_workspace(neo4j_server, name)


def test_readme_lists_between_five_and_eight_queries():
    assert 5 <= len(browse_queries()) <= 8


def test_every_readme_query_returns_rows(browsable, neo4j_server):
    with neo4j.GraphDatabase.driver(neo4j_server["uri"], auth=(neo4j_server["user"], neo4j_server["password"])) as driver:
        for query in browse_queries():
            records, _, _ = driver.execute_query(query, browsable)
            assert records, f"no rows for:\n{query}"


def one_line_grass() -> str:
    """docs/graphdex.grass as the one line the Browser's `:style` command takes (what the README tells users to do)."""
    text = re.sub(r"/\*.*?\*/", "", (REPO / "docs" / "graphdex.grass").read_text(), flags=re.S)
    return " ".join(text.split())


def _run(page, command: str) -> None:
    editor = page.locator("[data-testid=activeEditor]")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(command)
    page.locator("[data-testid=editor-Run]").click()


def test_browser_shows_the_neighbourhood_in_graphdex_style(browsable, neo4j_server):
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    http_port = 7474
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"http://127.0.0.1:{http_port}/browser/")
        page.locator("[data-testid=boltaddress]").fill(neo4j_server["uri"].split("://", 1)[1])
        page.locator("[data-testid=username]").fill(neo4j_server["user"])
        page.locator("[data-testid=password]").fill(neo4j_server["password"])
        page.locator("[data-testid=connect]").click()
        page.wait_for_selector("text=You are connected as user", timeout=30_000)
        _run(page, f":style {one_line_grass()}")
        page.wait_for_timeout(1500)
        _run(page, ":params {" + ", ".join(f'{k}: "{v}"' for k, v in browsable.items()) + "}")
        page.wait_for_timeout(1000)
        _run(page, browse_queries()[0])
        page.wait_for_selector("svg .node", timeout=30_000)
        page.wait_for_timeout(3000)  # let the force layout settle before the picture
        circles = page.locator("svg .node circle.b-outline")
        drawn = circles.count()
        fills = {(circles.nth(i).get_attribute("fill") or "").upper() for i in range(drawn)}
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
        browser.close()
    assert drawn >= 3, "the neighbourhood has at least the entity and two neighbours"
    assert PERSON_COLOUR in fills, f"the graphdex style colours people; the Browser drew {sorted(fills)}"
