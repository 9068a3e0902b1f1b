"""graphdex: a self-hosted, graph-based knowledge index.

One importable package, laid out as Python tools expect (a plain folder per subpackage, nothing added to
``__path__``): type checkers, IDEs and ``pkgutil`` resolve it as they find it. The repository root links each
subpackage (``ingest -> graphdex/ingest``...), so the architecture is what a newcomer sees first:

- ``graphdex.common``: settings, ids, embedders, LLM access and name resolution, used by every layer;
- ``graphdex.graph``: the graph model, the two stores (SQLite, Neo4j), vector indexes and the PageRank
  projection; it knows neither ingest nor query;
- ``graphdex.ingest``: documents in, graph out (chunking, extraction, merging, exact delete);
- ``graphdex.query``: graph out, ranked context in (retrieval modes, answers);
- ``graphdex.api``: the CLI and the REST service wiring the layers together.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("graphdex")
except PackageNotFoundError:  # a checkout imported without being installed
    __version__ = "0+unknown"
