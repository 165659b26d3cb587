"""Objects the tool's pickler reduces itself because their usual
reduction does not bring back what the run had: numpy arrays (numpy's
makes a view of the pickle's bytes, which does not own its memory) and
functions' closure cells (cloudpickle's gives every function new cells)."""

from __future__ import annotations

import pickle
import types

from .unpickling import _array

#: Arrays up to this size come back owning their memory, as the run's did
#: (``a.resize`` works, ``a.base`` is None), for the cost of one copy. A
#: larger one comes back as a view (of the cache file's mapping, or of the
#: pickle's bytes): copying it would cost more than the hit (DESIGN §7).
OWNED_UP_TO = 1 << 20


def owned(obj) -> bool:
    """Whether a plain array is pickled to come back owning its memory."""
    return not obj.dtype.hasobject and obj.nbytes <= OWNED_UP_TO


def reduce_array(obj):
    """A plain array by its bytes, rebuilt by :func:`.unpickling._array` as
    the run had it (owning its memory, its order, read-only where it was);
    the bytes are written from the array's buffer, not copied first."""
    if obj.flags.c_contiguous:
        order, flat = "C", obj
    elif obj.flags.f_contiguous:
        order, flat = "F", obj.T
    else:
        order, flat = "C", obj.copy()
    data = pickle.PickleBuffer(flat) if obj.size and obj.dtype.itemsize else b""
    return _array, (data, obj.dtype, obj.shape, order, bool(obj.flags.writeable))


def shared_cells(fn, rv, cells: dict):
    """cloudpickle's reduction ``rv`` of ``fn`` with one empty cell per cell
    of the run, shared by every function of the pickle closing over it
    (``cells``: the pickler's, id(cell) -> (empty cell, cell)). cloudpickle
    makes each function new cells and copies the contents in, so ``inc, get
    = counter()`` came back as two counters; the contents are still set
    from the function's state, after it exists (a recursive closure holds
    itself)."""
    closure = fn.__closure__
    if not closure or not isinstance(rv, tuple) or getattr(rv[0], "__name__", "") != "_make_function":
        return rv
    args = rv[1]
    if len(args) != 5 or not isinstance(args[4], tuple) or len(args[4]) != len(closure):
        return rv
    mine = tuple(cells.setdefault(id(c), (types.CellType(), c))[0] for c in closure)
    return (rv[0], (*args[:4], mine), *rv[2:])
