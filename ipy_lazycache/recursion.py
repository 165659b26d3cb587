"""Nothing the cache does can kill the kernel: its walks recurse only so deep.

Hashing, pickling and relinking values recurse into them. A notebook that
raised ``sys.setrecursionlimit(10**6)`` lets the C pickler recurse until the
C stack overflows: a segfault on a cell's first run. So while the tool works
on a cell, the limit is at most a fixed depth above where the tool starts
(what the user set, if lower); a value nested deeper is not hashed or stored
(RecursionError: the cell runs uncached, or its def is a stand-in), never a
crash.
"""

from __future__ import annotations

import contextlib
import sys

#: How deep the tool may recurse below its entry point: four times Python's
#: default limit, far below what an 8 MiB C stack takes (a 20 000-deep list
#: pickles; the C pickler overflows somewhere between 20 000 and 50 000).
TOOL_DEPTH = 4000


#: The user's limits while the tool works under a lower one (innermost last).
_outer: list[int] = []


def user_limit() -> int:
    """The recursion limit the notebook set, also while the tool runs under its own."""
    return _outer[-1] if _outer else sys.getrecursionlimit()


def set_user_limit(limit: int) -> None:
    """Set the notebook's limit (a hit replaying ``sys.setrecursionlimit``):
    now, or when the tool's own bound ends."""
    if _outer:
        _outer[-1] = limit
    else:
        sys.setrecursionlimit(limit)


@contextlib.contextmanager
def bounded(depth: int = TOOL_DEPTH):
    """Lower the recursion limit to ``depth`` frames above here (as a
    decorator too); the user's limit is restored afterwards."""
    limit = sys.getrecursionlimit()
    frame, here = sys._getframe(), 0
    while frame is not None:
        frame, here = frame.f_back, here + 1
    if here + depth >= limit:
        yield
        return
    _outer.append(limit)
    sys.setrecursionlimit(here + depth)
    try:
        yield
    finally:
        sys.setrecursionlimit(_outer.pop())
