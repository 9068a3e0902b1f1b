"""The folder layout is the architecture: imports run api -> ingest, query -> graph -> common, never back."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "common": {"common"},
    "graph": {"graph", "common"},
    "ingest": {"ingest", "graph", "common"},
    "query": {"query", "graph", "common"},
    "api": {"api", "ingest", "query", "graph", "common"},
}


def test_imports_run_one_way():
    offences = []
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in ALLOWED and top not in allowed:
                        offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offences == []
