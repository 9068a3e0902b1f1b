"""The retrieval modes' names and the error of an unusable query: what the command line and the API schemas need to
describe a query, without importing the engine (and scipy with it) where no query runs, as in `graphdex stats`."""

MODES = ("naive", "local", "global", "hybrid", "graph")
#: The mode used when none is asked for: the best measured one (see the README's benchmarks).
DEFAULT_MODE = "graph"


class QueryError(ValueError):
    """The query itself is unusable (empty, unknown mode...); the message says why."""
