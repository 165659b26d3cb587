"""Source registration for restored notebook functions.

A function unpickled from a hit has no source lines in this kernel; these
helpers register its source text and align restored functions with the
namespace so ``inspect`` and tracebacks show the cell's code.
"""

from __future__ import annotations

import ast
import functools
import itertools
import types

from .. import codecs
from .rebind import _WALK_BUDGET, _inside
from .run import _cell_full

_source_names = itertools.count(1)


def _register_source(values, source: str):
    """Make the cell's source findable for functions it defined.

    Hashing a notebook function reads its source (``inspect.getsource``),
    which for a function restored in a new session would be gone: its code
    names a cell "file" that only the original kernel had in ``linecache``,
    and that a new kernel may give to a different cell (the wrong source,
    so wrong keys). Each restored notebook function therefore gets a file
    name of its own, registered with the cell's source.
    """
    _set_old_items(values)
    return _give_source(values, source)


def _give_source(values, source: str) -> list:
    """Register ``source`` under a new file name for each notebook function
    among ``values`` that has none; returns the names registered."""
    import linecache

    functions = [fn for fn in _notebook_functions(values) if not _source_found(fn.__code__)]
    if not functions:
        return []
    lines = _aligned(source, functions)
    names = []
    for fn in functions:
        code = fn.__code__
        name = f"<lazycache-restored-{next(_source_names)}>"
        fn.__code__ = _renamed(code, name)
        linecache.cache[name] = (len(source), None, lines, name)
        names.append(name)
    return names


def _set_old_items(values):
    """Give the old items of refs the run changed in place the run's state,
    now that the entry has loaded whole (``values`` is its values dict's view,
    as the restore passes it; the loads of this restore are the ones whose
    ``resolve`` closes over that dict). Updates left by a failed restore are
    dropped; ones that cannot be told apart fail the restore (a miss)."""
    pending, codecs._pending[:] = list(codecs._pending), []
    if not pending:
        return
    import gc

    mapping = getattr(values, "mapping", None)
    target = gc.get_referents(mapping)[0] if mapping is not None else None
    mine = [(item, state) for resolve, item, state in pending if target is not None and _closes_over(resolve, target)]
    if not mine and target is None:
        raise RuntimeError("in-place updates of this entry cannot be matched to it")
    for item, state in mine:
        codecs.set_state(item, state)


def _closes_over(fn, obj) -> bool:
    return any(_cell_full(c) and c.cell_contents is obj for c in getattr(fn, "__closure__", None) or ())


def _source_found(code) -> bool:
    """The function's file, as ``linecache`` has it, defines it on its line:
    a function of this session (maybe taken from the namespace as a ref),
    never to be touched. A file name a new session gave to another cell does
    not pass (the line there is something else)."""
    import linecache

    entry = linecache.cache.get(code.co_filename)
    lines = entry[2] if entry else None
    if not lines and not code.co_filename.startswith("<"):  # a script's (``%run -i``): its file, if still there
        lines = linecache.getlines(code.co_filename)
    if not lines or not 0 < code.co_firstlineno <= len(lines):
        return False
    line = lines[code.co_firstlineno - 1].strip()
    if code.co_name == "<lambda>":
        return "lambda" in line
    return line.startswith(("@", f"def {code.co_name}", f"async def {code.co_name}"))


def _aligned(source: str, functions) -> list:
    """The source's lines, shifted so each function's ``def`` is on the line
    its code says (the stored source may lack a blanked first line)."""
    lines = source.splitlines(True)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return lines
    firsts = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            firsts.setdefault(node.name, set()).add(first)
    for fn in functions:
        lines_of = firsts.get(fn.__code__.co_name, set())
        if fn.__code__.co_firstlineno in lines_of or len(lines_of) != 1:
            continue
        shift = fn.__code__.co_firstlineno - next(iter(lines_of))
        if shift > 0:
            return ["\n"] * shift + lines
        if all(not line.strip() for line in lines[:-shift]):
            return lines[-shift:]
    return lines


def _renamed(code, filename):
    consts = tuple(_renamed(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _is_notebook_function(fn) -> bool:
    return isinstance(fn, types.FunctionType) and fn.__globals__.get("__name__") == "__main__"


def _notebook_functions(values):
    """Notebook functions among ``values``: top-level, methods of notebook
    classes, and what decorators and ``lru_cache`` wrap (closures, ``__wrapped__``)."""
    seen, todo, out = set(), list(values), []
    budget = _WALK_BUDGET
    while todo and budget > 0:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        budget -= 1
        inside = _inside(obj)
        if inside is not None:
            for _, v in inside:
                budget -= 1
                if budget <= 0:
                    break
                if type(v) not in codecs._ATOMIC:
                    todo.append(v)
        elif isinstance(obj, (staticmethod, classmethod)):
            todo.append(obj.__func__)
        elif isinstance(obj, property):
            todo.extend(f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
        elif isinstance(obj, functools.cached_property):
            todo.append(obj.func)
        elif isinstance(obj, type) and obj.__module__ == "__main__":
            todo.extend(vars(obj).values())
        elif isinstance(obj, types.FunctionType):
            if _is_notebook_function(obj):
                out.append(obj)
            todo.extend(c.cell_contents for c in obj.__closure__ or () if _cell_full(c))
            if "__wrapped__" in vars(obj):
                todo.append(obj.__wrapped__)
        elif codecs._is_notebook_lru(obj):
            todo.append(obj.__wrapped__)
    return out
