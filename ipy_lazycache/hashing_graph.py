"""Sharing between a cell's refs: the refs are one graph (DESIGN §11).

Each ref is hashed by its own walk, whose memo already puts sharing *inside*
the ref into its hash (``[x, x]`` is not ``[x, copy(x)]``). What one walk
cannot see is another ref: whether ``y`` *is* ``x``, holds ``x``'s items, or
is a view of ``x``'s memory decides what ``y.append(2)`` or ``y += 1`` does to
``x``, and two equal lists hash alike either way. A :class:`Graph` is shared
by all the walks of one key: every mutable object visited gets a label (ref
number, order of visit), an object met again under a later ref is a relation,
and every numpy array adds where its memory lies relative to the first array
seen over the same buffer (offset, strides, shape), within a ref too. The
relations join the key as one option, only when there are any: keys of
values that share nothing do not change.
"""

from __future__ import annotations

import sys

import xxhash

from .hashing_base import _tag

#: Labels are ``ref number << _SHIFT | order of visit`` (an int: no tuple per visit).
_SHIFT = 40
#: Immutable containers: which object holds the content is not observable.
_NO_IDENTITY = (tuple, frozenset)


class Graph:
    __slots__ = ("base", "first", "keep", "owners", "reduced", "relations")

    def __init__(self):
        self.base = 0  # the current ref's number, shifted
        self.first: dict[int, int] = {}  # id -> label of its first visit
        self.owners: dict[int, tuple] = {}  # id(memory owner) -> (label, data address) of the first array over it
        self.relations: list = []
        self.keep: list = []  # every object visited, alive until the key is made: no id is reused meanwhile
        # id -> (object, state, items keyed) of each object keyed by its reduce: what of a library
        # instance the key covers by content, the only paths a relation may take through it
        self.reduced: dict[int, tuple] = {}

    def next_ref(self, number: int) -> None:
        self.base = number << _SHIFT

    def see(self, obj, order: int) -> None:
        """``obj`` is visited for the first time in the current ref's walk."""
        t = type(obj)
        if t in _NO_IDENTITY:
            return
        label = self.base | order
        first = self.first.setdefault(id(obj), label)
        if first != label and first < self.base:  # held by an earlier ref too (within one, the walk's hash has it)
            self.relations.append((label, first))
        elif id(obj) in self.owners and first == label:  # a buffer an earlier array views (np.frombuffer)
            self.relations.append((label, "buffer of", self.owners[id(obj)][0]))
        np = sys.modules.get("numpy")
        if np is not None and isinstance(obj, np.ndarray):
            self._memory(obj, label)

    def keyed_state(self, obj, state, items: bool) -> None:
        """``obj`` was keyed by its reduce's ``state`` (and its dict items,
        where ``items``): :mod:`.relations` walks only those parts of a
        library instance, which an equal key proves another kernel has."""
        self.reduced[id(obj)] = (obj, state, items)

    def _memory(self, arr, label: int) -> None:
        owner = arr
        while True:  # to the object that owns the memory (np.frombuffer: through a memoryview to its exporter)
            above = owner.obj if type(owner) is memoryview else getattr(owner, "base", None)
            if above is None:
                break
            owner = above
        address = arr.__array_interface__["data"][0]
        known = self.owners.get(id(owner))
        if known is None:
            self.owners[id(owner)] = (label, address)
            self.keep.append(owner)
            if owner is not arr and id(owner) in self.first:  # a view of a buffer a ref holds
                self.relations.append((label, "views", self.first[id(owner)]))
            return
        self.relations.append((label, "views", known[0], address - known[1], arr.strides, arr.shape))

    def digest(self) -> str:
        """The relations as one digest, '' when nothing is shared."""
        if not self.relations:
            return ""
        return xxhash.xxh3_128(repr(self.relations).encode()).hexdigest()


#: Graph order numbers of closure cells (see :meth:`_Walk.cell`): apart from objects' own.
_CELL_ORDER = 1 << 39


class _Walk:
    """One hash's traversal. Like pickle's memo, an object already fed (a
    container, an instance, an array) is fed again only as a reference to its
    first visit: shared objects cost one walk (an object graph such as a
    figure's is a DAG, exponential as a tree), cycles end, and aliasing is in
    the key (``[x, x]`` is not ``[x, copy(x)]``). Visited objects are kept
    alive so that a temporary's id is never reused within the walk.
    Functions, classes and modules are fed by a digest computed once."""

    __slots__ = ("cells", "done", "graph", "keep", "seen", "stack")

    def __init__(self, graph=None):
        self.stack: set[int] = set()  # functions, classes, modules being fed
        self.done: dict[int, str] = {}
        self.seen: dict[int, int] = {}  # id -> order of first visit
        # the visited objects, alive until the walk ends (the graph's: until the key is made)
        self.keep: list = [] if graph is None else graph.keep
        self.graph = graph  # a hashing_graph.Graph shared by all refs of a cell, or None
        self.cells: dict[int, int] = {}  # id(closure cell) -> order of first visit, numbered apart from ``seen``

    def cell(self, h, cell) -> None:
        """A closure cell: ``inc, get = counter()`` share one, two calls of
        ``counter()`` do not, and ``inc()`` then moves what ``get()`` reads
        or not. A cell met again is a back-reference; cells are numbered
        apart from other objects, so keys where no cell is shared stay."""
        n = len(self.cells)
        first = self.cells.setdefault(id(cell), n)
        if first != n:
            _tag(h, b"^c", first.to_bytes(8, "little"))
            return
        self.keep.append(cell)
        if self.graph is not None:
            self.graph.see(cell, _CELL_ORDER | n)

    def visit(self, h, obj) -> bool:
        """False (and a back-reference fed) when ``obj`` was fed already."""
        n = len(self.seen)
        first = self.seen.setdefault(id(obj), n)
        if first != n:
            _tag(h, b"^", first.to_bytes(8, "little"))
            return False
        self.keep.append(obj)
        if self.graph is not None:
            self.graph.see(obj, n)
        return True
