"""The folder layout is the architecture: imports run api -> ingest, query -> graph -> common, never back, and
always through the one installed package, graphdex."""

import ast
import builtins
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


BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)}


def test_graphdex_raises_its_own_exceptions_under_one_root():
    """Every public exception class derives from graphdex.common.errors' categories, not straight from a builtin one,
    so each transport maps it by category (REST status, MCP tool error, CLI message) and none escapes as a bare 500."""
    offences = []
    for path in (ROOT / "graphdex").rglob("*.py"):
        if path.name == "errors.py" and path.parent.name == "common":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                builtin = [b.id for b in node.bases if isinstance(b, ast.Name) and b.id in BUILTIN_EXCEPTIONS]
                if builtin:
                    offences.append(f"{path.relative_to(ROOT)}: {node.name}({', '.join(builtin)})")
    assert offences == []


def test_pkgutil_walks_the_package_once():
    import pkgutil

    import graphdex

    names = [m.name for m in pkgutil.walk_packages(graphdex.__path__, "graphdex.")]
    files = [p for p in (ROOT / "graphdex").rglob("*.py") if p.name != "__init__.py" or p.parent != ROOT / "graphdex"]
    files += list((ROOT / "graphdex").rglob("*.c"))  # each C source is one compiled module (setup.py)
    assert len(names) == len(set(names)) == len(files)
    assert all(name.count("graphdex") == 1 for name in names)


def test_no_module_outgrows_one_job():
    """A module over 420 lines has usually become two things; split it where the seam is."""
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "graphdex").rglob("*.py") if (n := len(p.read_text().splitlines())) > 420}
    assert long == {}


def test_the_transports_leave_locking_to_the_index():
    """REST routes, MCP tools, the CLI and the ingestion worker ask api/index.py, which holds the workspace's lock
    while it reads; none of them takes the lock itself."""
    allowed = {ROOT / "graphdex" / "api" / "index.py", ROOT / "graphdex" / "api" / "workspace.py"}
    offences = [str(p.relative_to(ROOT)) for p in (ROOT / "graphdex" / "api").rglob("*.py") if p not in allowed and ".guard." in p.read_text()]
    assert offences == []
