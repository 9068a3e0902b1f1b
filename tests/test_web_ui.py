"""The web UI in a real browser against a real `graphdex serve`, on the embedded store and on Neo4j: a PDF uploaded
through the Documents view is indexed, the Ask view cites the page its answer is on, and the explorer opens an entity
and expands it; with the local model, the answer streams in. Screenshots of each view (embedded store) go to docs/,
which the README shows. Headless Chromium, offline: the tests also check the pages ask nothing of any other origin."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.conftest import REPO, drop_neo4j_workspace
from tests.helpers import CHROMIUM_FLAGS, chromium_path, make_pdf, running_server, wait_settled

DOCS = REPO / "docs"
# Three pages, each its own chunk (GRAPHDEX_CHUNK_TOKENS below): what the island church's bell does is on page 2 only.
PAGES = [
    "Lake Bled lies in the Julian Alps of north-western Slovenia. The lake is fed by warm springs and by the stream that comes down "
    "from the Pokljuka plateau above the village. Rowing crews from Ljubljana train on the lake through the winter.",
    "The island in the middle of Lake Bled holds the pilgrimage church of the Assumption of Mary. Visitors who ring its wishing bell "
    "are said to have their wish granted by the Virgin Mary. The ninety-nine stone steps up to the church are a wedding custom.",
    "Bled Castle stands on a cliff one hundred metres above the northern shore of Lake Bled. It was first mentioned in a deed of "
    "the German king Henry the Second in the year 1004, who gave the estate to the Bishop of Brixen.",
]


@pytest.fixture(scope="module", params=["embedded", "neo4j"])
def server(request, tmp_path_factory):
    env = {"GRAPHDEX_CHUNK_TOKENS": "64", "GRAPHDEX_CHUNK_OVERLAP": "0"}
    neo4j_server = request.getfixturevalue("neo4j_server") if request.param == "neo4j" else None
    if neo4j_server is not None:
        workspace = f"test-ui-{uuid.uuid4().hex[:8]}"
        env |= {"GRAPHDEX_STORE": "neo4j", "GRAPHDEX_NEO4J_URI": neo4j_server["uri"], "GRAPHDEX_NEO4J_USER": neo4j_server["user"],
                "GRAPHDEX_NEO4J_PASSWORD": neo4j_server["password"], "GRAPHDEX_NEO4J_WORKSPACE": workspace}
    with running_server(tmp_path_factory.mktemp(f"web-ui-{request.param}") / "data", **env) as served:
        yield served
    if neo4j_server is not None:
        drop_neo4j_workspace(neo4j_server, workspace)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def _watched_page(browser, origin: str, elsewhere: list[str]):
    """A page that notes every request to another origin, and every script error, in ``elsewhere``."""
    page = browser.new_page(viewport={"width": 1366, "height": 860})
    page.on("request", lambda request: None if request.url.startswith((origin, "data:")) else elsewhere.append(request.url))
    page.on("pageerror", lambda error: elsewhere.append(f"script error: {error}"))
    return page


def _enter_in_view(page, shortcut: str, field: str, text: str) -> None:
    """Switch views from the keyboard, check the view's main field took the focus, and submit ``text`` in it."""
    from playwright.sync_api import expect

    page.keyboard.press(shortcut)
    expect(page.locator(field)).to_be_focused()
    page.locator(field).fill(text)
    page.locator(field).press("Enter")


@pytest.mark.e2e
def test_the_ui_indexes_an_uploaded_pdf_cites_its_page_and_explores_the_graph(server, browser, tmp_path, request):
    from playwright.sync_api import expect

    pictures = request.node.callspec.params["server"] == "embedded"  # docs/ shows the default store
    pdf = make_pdf(tmp_path / "bled.pdf", PAGES, title="Guide to Bled")
    elsewhere: list[str] = []
    page = _watched_page(browser, server.url, elsewhere)

    # Documents: the upload is queued, then followed until it is indexed
    page.goto(f"{server.url}/ui/")
    expect(page.locator("#tab-documents")).to_have_attribute("aria-selected", "true")
    page.set_input_files("#files", str(pdf))
    row = page.locator("#documents tbody tr", has_text="Guide to Bled")
    expect(row.locator(".status")).to_have_text("done", timeout=120_000)
    expect(page.locator("#doc-counts")).to_contain_text("done: 1")
    # a file dropped on the drop zone is queued too; deleting it (after the confirmation) takes it out again
    dropped = page.evaluate_handle("""() => {
        const files = new DataTransfer();
        files.items.add(new File(["# Vintgar Gorge\\n\\nThe Vintgar Gorge lies four kilometres from Bled."], "vintgar.md", {type: "text/markdown"}));
        return files;
    }""")
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    other = page.locator("#documents tbody tr", has_text="vintgar")
    expect(other.locator(".status")).to_have_text("done", timeout=120_000)
    page.locator("#doc-filter").fill("vintgar")
    expect(page.locator("#documents tbody tr")).to_have_count(1)
    page.locator("#doc-filter").fill("")
    page.once("dialog", lambda dialog: dialog.accept())
    other.get_by_role("button", name=re.compile("^Delete")).click()
    expect(other).to_have_count(0, timeout=60_000)
    expect(row.locator(".status")).to_have_text("done")
    if pictures:
        page.screenshot(path=str(DOCS / "ui-documents.png"))

    # Ask: the best passage is page 2's, and says so
    _enter_in_view(page, "Alt+2", "#question", "Who grants the wish of visitors who ring the wishing bell of the island church?")
    best = page.locator("#passages li").first
    expect(best.locator(".cite")).to_contain_text("Guide to Bled", timeout=30_000)
    expect(best.locator(".cite")).to_contain_text("p. 2")
    expect(best.locator(".text")).to_contain_text("wishing bell")
    expect(best.locator(".chips button").first).to_be_visible()  # the graph nodes that led to it
    if pictures:
        page.screenshot(path=str(DOCS / "ui-ask.png"))

    # Explore: search an entity, open it (its neighbours join the view), then expand a neighbour from the keyboard
    _enter_in_view(page, "Alt+3", "#entity-search", "Bled")
    first = page.locator("#entity-results button").first
    expect(first).to_be_focused()
    first.press("Enter")
    graph = page.locator("#graph")
    expect(graph).to_have_attribute("data-nodes", re.compile(r"^([2-9]|\d\d+)$"), timeout=15_000)
    expect(page.locator("#node-panel h2")).not_to_be_empty()
    expect(page.locator("#node-panel .chunk").first).to_contain_text("Guide to Bled")
    shown = int(graph.get_attribute("data-nodes") or 0)
    link = page.locator("#node-panel .links button").first
    neighbour = link.get_attribute("data-id")
    link.focus()
    link.press("Enter")
    expect(page.locator("#node-panel")).to_have_attribute("data-node", neighbour)
    page.keyboard.press("e")
    expect(page.locator("#node-panel")).to_have_attribute("data-expanded", neighbour)
    assert int(graph.get_attribute("data-nodes") or 0) >= shown
    page.wait_for_timeout(500)
    if pictures:
        page.screenshot(path=str(DOCS / "ui-explore.png"))
    page.close()
    assert not elsewhere, f"the UI asked another origin, or a script failed: {elsewhere}"


@pytest.mark.e2e
def test_the_ui_is_served_with_a_policy_that_keeps_it_on_its_origin(server):
    page = httpx.get(f"{server.url}/ui/")
    assert page.status_code == 200 and "<title>graphdex</title>" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert httpx.get(f"{server.url}/ui", follow_redirects=False).headers["location"] == "/ui/"
    config = httpx.get(f"{server.url}/ui/config.json").json()
    assert config["default_mode"] in config["modes"] and config["answers"] is False
    assert httpx.get(f"{server.url}/ui/vendor/cytoscape.min.js").status_code == 200
    assert httpx.get(f"{server.url}/ui/../pyproject.toml").status_code == 404


@pytest.mark.e2e
def test_the_ask_view_streams_the_local_models_answer(browser, tmp_path_factory, local_llm_server):
    from playwright.sync_api import expect

    key = "ui-test-key-0123456789"
    env = {"GRAPHDEX_LLM_MODEL": "openai/gemma-3-270m", "GRAPHDEX_LLM_API_BASE": local_llm_server, "GRAPHDEX_LLM_API_KEY": "local",
           "GRAPHDEX_LLM_KEYWORDS": "false", "GRAPHDEX_LLM_MAX_TOKENS": "96", "GRAPHDEX_LLM_TIMEOUT": "240", "GRAPHDEX_API_KEY": key,
           "GRAPHDEX_API_KEY_FOR_READS": "true"}
    with running_server(tmp_path_factory.mktemp("web-ui-llm") / "data", **env) as served:
        submitted = httpx.post(f"{served.url}/documents", json={"documents": [{"text": " ".join(PAGES), "title": "Guide to Bled"}]},
                               headers={"X-API-Key": key}).json()
        wait_settled(served.url, [d["id"] for d in submitted["documents"]], headers={"X-API-Key": key})
        elsewhere: list[str] = []
        page = _watched_page(browser, served.url, elsewhere)
        page.goto(f"{served.url}/ui/#ask")
        # this server wants its key for reads too: the UI says so, and works once it is typed
        expect(page.locator("#toast")).to_contain_text("API key")
        expect(page.locator("#api-key")).to_be_focused()
        page.locator("#api-key").fill(key)
        page.locator("#api-key").press("Enter")
        expect(page.locator("#workspace option")).to_have_count(1)
        page.locator("#question").fill("What is on the island in Lake Bled?")
        page.locator("#question").press("Enter")
        expect(page.locator("#passages li").first).to_contain_text("island", timeout=60_000)
        expect(page.locator("#answer")).to_be_visible()
        expect(page.locator("#ask-status")).to_contain_text("answer cites", timeout=240_000)
        assert page.locator("#answer-text").inner_text().strip(), "the model wrote nothing"
        page.close()
    assert not elsewhere, f"the UI asked another origin, or a script failed: {elsewhere}"


def test_the_ui_colours_nodes_as_the_neo4j_browser_style_does():
    """One look in both tools: the explorer's colours are docs/graphdex.grass's, for every node type and entity kind."""
    from graphdex.graph.model import ENTITY_LABELS

    grass = dict(re.findall(r"node\.(\w+)\s*\{[^}]*?color:\s*(#[0-9A-Fa-f]{6})", (DOCS / "graphdex.grass").read_text()))
    script = (REPO / "graphdex" / "api" / "ui" / "colours.js").read_text()
    ours = dict(re.findall(r"^\s+(\w+): \"(#[0-9A-Fa-f]{6})\",$", script, flags=re.M))
    assert ours and all(grass.get(name, "").upper() == colour.upper() for name, colour in ours.items()), (ours, grass)
    assert set(ENTITY_LABELS.values()) <= ours.keys(), "every entity kind has its colour"
