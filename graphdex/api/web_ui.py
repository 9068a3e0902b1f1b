"""The web UI at /ui: documents (upload, status, delete), questions with cited passages and streamed answers, and a
graph explorer, on either store.

The pages are static files (``ui/``: HTML, CSS and JavaScript modules, plus Cytoscape.js, which
``scripts/build_ui.sh`` takes from npm and which is committed), so `graphdex serve` and `make run` need no Node.
They call the REST routes like any client, with the key the user types (X-API-Key): the UI can do nothing the key
could not do without it. Every page carries a content security policy that allows this origin only, so the pages
make no request elsewhere and load nothing from the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from graphdex.common.settings import Settings
from graphdex.query.modes import DEFAULT_MODE, MODES

UI_FILES = Path(__file__).parent / "ui"
UI_PATH = "/ui"

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

#: The largest top k the Ask view offers (the API takes up to 200; more passages than this are not read by a person).
MAX_UI_TOP_K = 50


class _UiFiles(StaticFiles):
    """The UI's files with the headers every page needs: the security policy, no MIME sniffing, and revalidation on
    each load (by ETag), so a page never runs an older script than the server's after an upgrade."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-cache"
        return response


def add_web_ui(app: FastAPI, settings: Settings) -> None:
    @app.get(UI_PATH, include_in_schema=False)
    def ui_home() -> RedirectResponse:
        return RedirectResponse(f"{UI_PATH}/")

    @app.get(f"{UI_PATH}/config.json", include_in_schema=False)
    def ui_config() -> dict[str, Any]:
        """What the pages cannot know on their own: the modes, and whether answers can be written (a model is set)."""
        return {"modes": list(MODES), "default_mode": DEFAULT_MODE, "answers": settings.llm_model is not None, "max_top_k": MAX_UI_TOP_K}

    app.mount(UI_PATH, _UiFiles(directory=UI_FILES, html=True), name="ui")
