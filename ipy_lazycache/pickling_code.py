"""Code objects as a pickle stores them: with the source of the cell that
defined them, or the file they come from, so a function stored by value is
keyed by its source after a restart as in the run (:func:`code_reducer`
wraps cloudpickle's reducer; :mod:`.unpickling` rebuilds them); and the
classes a pickle met, left as found (:func:`_leave_classes`)."""

from __future__ import annotations


def code_reducer(reduce):
    """cloudpickle's code reducer, keeping the file name of code from a file
    (a local module's or a library's function stored by value: a closure
    made by a decorator): cloudpickle names all code ``<dynamic-code>``, so
    a restored function had no source and hashed unlike the run's."""

    def reduce_code(code):
        rv = reduce(code)
        source = _cell_source(code.co_filename)
        if source is not None:  # a cell's code carries the cell: another cell may define what it wraps
            from .unpickling import _code_of_cell

            return _code_of_cell, (rv[0], rv[1], source)
        if code.co_filename.startswith("<"):
            return rv
        from .unpickling import _code_in

        return _code_in, (rv[0], rv[1], code.co_filename)

    return reduce_code


def _leave_classes(p) -> None:
    """Take off the ``__slotnames__`` copyreg cached on classes whose
    instances ``p`` pickled (visible in ``vars(C)``): pickling leaves the
    user's classes as it found them."""
    for t in getattr(p, "unslotted", ()):
        if "__slotnames__" in t.__dict__:
            try:
                delattr(t, "__slotnames__")
            except (AttributeError, TypeError):
                pass


def _cell_source(filename: str):
    """The source text of the cell ``filename`` names (IPython keeps cells
    in ``linecache`` with no modification time), or None. A function stored
    by value was maybe defined in another cell than the one stored (a
    decorator's wrapper): with its own cell's text it has its source after a
    restart, and is keyed by it, as in the run."""
    import linecache

    entry = linecache.cache.get(filename)
    if entry is None or entry[1] is not None or not entry[2]:
        return None
    key = (filename, id(entry[2]))
    if key not in _SOURCES:  # one string per cell, shared by the pickle's memo
        if len(_SOURCES) > 256:
            _SOURCES.clear()
        _SOURCES[key] = (entry[2], "".join(entry[2]))
    return _SOURCES[key][1]


#: (cell file name, id of its lines) -> (the lines, kept alive; their text).
_SOURCES: dict = {}
