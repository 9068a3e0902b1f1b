"""The folder layout is the architecture: imports run api -> ingest, query -> graph -> common, never back, and
always through the one installed package, graphdex."""

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
        for path in (ROOT / "graphdex" / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    parts = name.split(".")
                    if parts[0] in ALLOWED:
                        offences.append(f"{path.relative_to(ROOT)} imports {name} outside the graphdex package")
                    elif parts[0] == "graphdex" and len(parts) > 1 and parts[1] in ALLOWED and parts[1] not in allowed:
                        offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offences == []
