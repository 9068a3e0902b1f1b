"""graphdex: a self-hosted, graph-based knowledge index.

The distribution installs this one package. Its subpackages live in the repository-root folders that show the
architecture (pyproject.toml maps them with ``package-dir``):

- ``graphdex.common``: settings, ids, embedders, LLM access and name resolution, used by every layer;
- ``graphdex.graph``: the graph model, the two stores (SQLite, Neo4j), vector indexes and the PageRank
  projection; it knows neither ingest nor query;
- ``graphdex.ingest``: documents in, graph out (chunking, extraction, merging, exact delete);
- ``graphdex.query``: graph out, ranked context in (retrieval modes, answers);
- ``graphdex.api``: the CLI and the REST service wiring the layers together.
"""

from pathlib import Path

__version__ = "0.1.0"

# In a source checkout this folder holds only this file, and the subpackages are its sibling folders; setuptools maps
# them when installing. When Python finds this folder first (the current directory is the checkout), say so here too,
# or `import graphdex.ingest` would fail under a non-editable install.
_here = Path(__file__).resolve().parent
if not (_here / "ingest").is_dir() and (_here.parent / "ingest" / "__init__.py").is_file():
    __path__.append(str(_here.parent))
