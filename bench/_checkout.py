"""Imported first by every benchmark: puts the checkout this file is in at the front of ``sys.path``.

graphdex is installed in editable mode, which resolves ``import graphdex`` to the main checkout whenever nothing on
``sys.path`` provides it first. A benchmark run from another worktree (the "before" side of an A/B against an older
commit) must import that worktree's code, so this runs before anything imports graphdex.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
