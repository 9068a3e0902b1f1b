"""The retrieval modes' names and the error of an unusable query: what the command line and the API schemas need to
describe a query, without importing the engine (and scipy with it) where no query runs, as in `graphdex stats`."""

from typing import Literal, get_args

from graphdex.common.errors import InvalidInput
from graphdex.graph.model import NodeType

Mode = Literal["naive", "local", "global", "hybrid", "graph"]
MODES: tuple[str, ...] = get_args(Mode)
#: The mode used when none is asked for: the best measured one (see the README's benchmarks).
DEFAULT_MODE: Mode = "graph"
#: The vector indexes each mode searches for every question (the Entity index only when a name is not found as
#: written): what a fresh process loads ahead, beside spaCy (``Workspace.prepare_query``).
MODE_INDEXES: dict[str, tuple[NodeType, ...]] = {
    "naive": (NodeType.CHUNK,),
    "local": (NodeType.RELATION, NodeType.CHUNK),
    "global": (NodeType.RELATION, NodeType.COMMUNITY, NodeType.CHUNK),
    "hybrid": (NodeType.RELATION, NodeType.COMMUNITY, NodeType.CHUNK),
    "graph": (NodeType.RELATION, NodeType.CHUNK),
}
#: The modes that walk the PageRank projection.
PROJECTION_MODES = ("graph",)


class QueryError(InvalidInput):
    """The query itself is unusable (empty, unknown mode...); the message says why."""
