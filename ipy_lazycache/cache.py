"""Lookup, run bookkeeping, store and restore: the cache without IPython.

Everything here takes a plain dict as the namespace, so it can be driven and
tested without a kernel. :mod:`.magics` adds parsing, output capture and
printing on top.
"""

from __future__ import annotations

import ast
import itertools
import mmap
import os
import stat
import types

from . import codecs, manifest as mf, relations
from .analysis import Analysis, Dynamic, analyze, is_ipython_name
from .hashing import Unhashable, cell_key, code_hash, digest_chunks, module_values_digest, module_version, value_hash
from .manifest import CorruptEntry
from .stores.base import StoreUnavailable, UnsafePath, chunks
from .tripwire import Tripwire

#: The blob name under which a cell's last expression value is stored.
RESULT = "__lazycache_result__"


class Uncacheable(Exception):
    """The cell cannot be keyed; it runs uncached and one line says why."""


class OverBudget(Exception):
    """Hashing the cell's inputs would cost more than the caller allowed."""


def hash_cost(obj) -> float:
    """A cheap estimate of the microseconds :func:`value_hash` takes: buffers
    at ~10 GB/s, containers at ~1 µs an element. Only a bound for auto mode."""
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes / 10_000
    if isinstance(obj, (bytes, bytearray, str)):
        return len(obj) / 10_000
    if type(obj).__module__.startswith("pandas") and hasattr(obj, "size"):
        try:
            return int(obj.size) * 8 / 10_000
        except Exception:
            return float("inf")
    if isinstance(obj, (list, tuple, dict, set, frozenset)):
        return len(obj)
    if isinstance(obj, (types.FunctionType, type)) and getattr(obj, "__module__", None) == "__main__":
        return 150  # its source is parsed and its own globals hashed
    return 1


class NotStored(Exception):
    """The run cannot be stored as a hit that does what it did (its outputs
    hold live widgets); nothing was written, and the message says why."""


class Plan:
    """A keyed cell, ready to restore or to run and store.

    Plain classes here and for :class:`Outcome`, :class:`Restored`: making
    a dataclass costs a third of a millisecond at import, which every first
    hit after a restart pays."""

    def __init__(self, key: str, source: str, analysis: Analysis, refs: dict, ambient: dict | None = None,
                 code: str = "", versions: dict | None = None):
        self.key, self.source, self.analysis = key, source, analysis
        self.refs = refs  # name -> content hash before the run
        # {name: object} of the user namespace just before the body ran (IPython
        # names excluded): what the run bound, rebound or deleted is found by identity.
        self.before: dict = {}
        # id(item) -> (ref name, step, item) for the direct items of container refs
        # before the run (take_before): where a mutated ref's old items were.
        self.items: dict = {}
        self.ambient = ambient or {}  # provider -> digest of observed process state (in the key)
        self.code = code  # the code's own hash (auto mode remembers which code has entries)
        self.versions = versions or {}  # installed module -> version, for modules the cell imports
        # local module -> (module, digest of its values) before the run, for the
        # notebook's own modules the cell reaches (take_before): a run that
        # changes what one holds (``cfg.REG.append(1)``) is not stored.
        self.modules: dict = {}


class Memo:
    """Content hashes of values that provably have not changed since hashed.

    Code can change a value through an alias without naming it (a plain cell,
    a silent execution, a widget callback, a thread), so a recorded hash is
    reused only where that is impossible (DESIGN §9): an immutable value, or
    a numpy array that is a copy-on-write mapping of a cache file none of
    whose pages this process has written (Linux says so per mapping). A chain
    of cached cells over a restored array then never re-hashes it.
    """

    def __init__(self):
        self._known: dict[str, tuple[object, str, object]] = {}

    def get(self, name, obj):
        hit = self._known.get(name)
        if hit is None or hit[0] is not obj:
            return None
        if hit[2] is not None and not _unwritten_mapping(obj, hit[2]):
            del self._known[name]
            return None
        return hit[1]

    def record(self, name, obj, content_hash):
        self._known.pop(name, None)
        if not content_hash:
            return
        if type(obj) in _IMMUTABLE:
            self._known[name] = (obj, content_hash, None)
            return
        shape = _mapped_array_shape(obj)
        if shape is not None:
            self._known[name] = (obj, content_hash, shape)

    def clear(self):
        self._known.clear()


_IMMUTABLE = frozenset({str, bytes, int, float, complex, bool, type(None)})


def _mapped_array_shape(obj):
    """For a numpy array whose data is a private file mapping: what must not
    change besides its pages (shape, strides, dtype, data address)."""
    if type(obj).__module__ != "numpy" or not hasattr(obj, "__array_interface__"):
        return None
    import mmap

    base = obj
    while getattr(base, "base", None) is not None and not isinstance(base, mmap.mmap):
        base = base.base
    if not isinstance(base, mmap.mmap):
        return None
    return (obj.__array_interface__["data"][0], obj.shape, obj.strides, obj.dtype.str, obj.nbytes)


def _unwritten_mapping(obj, shape) -> bool:
    """True when the array is as recorded and none of its mapping's pages was
    written by this process (a written copy-on-write page becomes anonymous)."""
    if _mapped_array_shape(obj) != shape:
        return False
    written = _pages_written(obj)
    if written is not None:
        return not written
    start = shape[0]
    try:  # the whole mapping's count, from smaps (slow: the kernel walks every mapping)
        with open("/proc/self/smaps", "rb") as f:
            inside = False
            for line in f:
                if b"-" in line[:20] and line[:1] not in (b"", b" ") and not line[:1].isupper():
                    lo, _, rest = line.partition(b"-")
                    hi = rest.split(b" ", 1)[0]
                    inside = int(lo, 16) <= start < int(hi, 16)
                elif inside and line.startswith(b"Anonymous:"):
                    return int(line.split()[1]) == 0
    except OSError:
        pass
    return False  # not Linux, or the mapping is gone: hash again


def _pages_written(arr) -> bool | None:
    """Whether a page holding ``arr``'s bytes was written by this process: a
    written page of a copy-on-write file mapping is an anonymous page
    (present, not a file page), or swapped out. The kernel is asked about the
    array's own pages only (PAGEMAP_SCAN, Linux 6.7+, stops at the first such
    page; else 8 bytes per page read from /proc/self/pagemap), where smaps
    would walk every mapping of the process (tens of ms with pandas loaded).
    None where neither can tell (not Linux)."""
    import mmap

    if arr.size == 0:
        return False
    addr = arr.__array_interface__["data"][0]
    lo = addr + sum((n - 1) * st for n, st in zip(arr.shape, arr.strides) if st < 0)
    hi = addr + sum((n - 1) * st for n, st in zip(arr.shape, arr.strides) if st > 0) + arr.itemsize
    page = mmap.PAGESIZE
    lo, hi = lo // page * page, -(-hi // page) * page
    try:
        fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            # one walk: not a file page, and present or swapped
            return _scan(fd, lo, hi, _PAGE_IS_FILE, inverted=_PAGE_IS_FILE, anyof=_PAGE_IS_PRESENT | _PAGE_IS_SWAPPED)
        except OSError:  # a kernel without PAGEMAP_SCAN: read the page entries
            import numpy as np

            data = os.pread(fd, (hi - lo) // page * 8, lo // page * 8)
            if len(data) != (hi - lo) // page * 8:
                return None
            entries = np.frombuffer(data, dtype="<u8")
            present, swapped, file_page = np.uint64(1 << 63), np.uint64(1 << 62), np.uint64(1 << 61)
            return bool(((entries & (present | file_page)) == present).any() or (entries & swapped).any())
    except OSError:
        return None
    finally:
        os.close(fd)


#: PAGEMAP_SCAN (linux/fs.h): _IOWR('f', 16, struct pm_scan_arg), and its page categories.
_PAGEMAP_SCAN = 0xC0606610
_PAGE_IS_FILE, _PAGE_IS_PRESENT, _PAGE_IS_SWAPPED = 1 << 2, 1 << 3, 1 << 4


def _scan(fd, lo, hi, mask, inverted=0, anyof=0) -> bool:
    """Whether a page in [lo, hi) has all categories of ``mask`` (those in
    ``inverted`` must be absent) and one of ``anyof``; the kernel stops at the first."""
    import ctypes
    import fcntl
    import struct

    found = (ctypes.c_uint64 * 3)()  # one struct page_region
    # struct pm_scan_arg: size, flags, start, end, walk_end, vec, vec_len,
    # max_pages, category_inverted, category_mask, category_anyof_mask, return_mask
    arg = bytearray(struct.pack("12Q", 96, 0, lo, hi, 0, ctypes.addressof(found), 1, 1, inverted, mask, anyof,
                                mask | anyof))
    return fcntl.ioctl(fd, _PAGEMAP_SCAN, arg) > 0


def file_hash(path) -> str:
    """The content hash of a ``--files`` path ("missing" when absent).

    Opened without blocking (a FIFO must not hang the cell) and refused
    unless a regular file (``/dev/zero`` never ends). Large files are hashed
    from a read-only mapping: no copy, about 3x the speed of reading blocks
    from a warm page cache. A path that cannot be read makes the cell
    uncacheable (it runs, with one line), never a traceback."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        raise Uncacheable(f"--files {path} cannot be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Uncacheable(f"--files {path} is not a regular file")
        if st.st_size >= 1 << 20:
            with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
                return digest_chunks([mapped])
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as f:
            return digest_chunks([f.read()])
    except OSError as exc:
        raise Uncacheable(f"--files {path} cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------
# Keying


def plan(tree, ns: dict, memo: Memo | None = None, deps=(), files=(), source: str | None = None,
         ambient=None, budget: float | None = None, code: str | None = None, exact_source: bool = False) -> Plan:
    """Analyze and key a (transformed) cell against ``ns``.

    ``tree`` is the cell's module AST (or its source). ``ambient`` (an
    :class:`.ambient.Registry`) adds the process state the cell observes.
    ``exact_source``: ``tree`` is exactly ``ast.parse(source)`` (no AST
    transformer changed it), so its analysis and code hash may be reused
    from an earlier cell with the same text.
    Raises :class:`Uncacheable` naming the ref that cannot be hashed, and
    ``SyntaxError`` for code that does not parse.
    """
    if isinstance(tree, str):
        source, tree, exact_source = tree, ast.parse(tree), True
    elif source is None:
        source = ast.unparse(tree)
    analysis, tree_code = _analyzed(tree, source if exact_source else None)
    for name in deps:
        if name not in ns:
            raise Uncacheable(f"--deps names {name!r}, which is not defined")
    try:  # refs, deps, history names read, values read through modules, imports (analysis.Analysis.inputs)
        inputs = analysis.inputs(ns, deps)
    except (Dynamic, Unhashable) as exc:  # Unhashable: a local module edited since its import
        raise Uncacheable(str(exc)) from None
    names = {n for n in inputs if n in ns}
    versions = {}  # installed modules the cell imports: checked at lookup, not keyed (see installed_differ)
    for label, value in inputs.items():
        if label.startswith("import ") and isinstance(value, tuple) and value[:1] == ("installed",):
            version = module_version(value[1])
            if version:
                versions[value[1].split(".")[0]] = version
    if budget is not None:
        cost = sum(hash_cost(obj) for name, obj in inputs.items() if not (memo and memo.get(name, obj)))
        if cost > budget:
            raise OverBudget(f"hashing the inputs would take about {cost:.0f} µs")
    refs = {}
    for name in sorted(inputs):
        obj = inputs[name]
        known = memo.get(name, obj) if memo else None
        if known is None:
            try:
                known = value_hash(obj)
            except Unhashable as exc:
                raise Uncacheable(f"variable {name!r} cannot be hashed: {exc}") from None
            except RecursionError:
                raise Uncacheable(f"variable {name!r} is nested too deeply to hash") from None
            if memo is not None:
                memo.record(name, obj, known)
        refs[name] = known
    observed = {}
    if ambient is not None:
        from .ambient import Cell

        observed = ambient.key(Cell(tree, ns, names, source if exact_source else None))
    options = {}
    if files:
        options["files"] = "\n".join(f"{p}\t{file_hash(p)}" for p in sorted(files))
    for name, digest in observed.items():
        options[f"ambient:{name}"] = digest
    code = code or tree_code or code_hash(tree)
    key = cell_key(code, refs, options)
    return Plan(key=key, source=source, analysis=analysis, refs=refs, ambient=observed, code=code,
                versions=versions)


def installed_differ(versions: dict) -> list[str]:
    """Modules an entry's run imported that are installed here at another
    version, on the platform that wrote it (``{name: "platform:version"}``).
    Across platforms versions differ by nature (a site's Pyodide builds), and
    shipping results there is the point; a module absent here is no reason to
    run either: the cell could not."""
    import importlib.util
    import sys

    out = []
    for name, tagged in versions.items():
        where, _, version = tagged.rpartition(":")
        if where != sys.platform:
            continue
        try:
            here = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            here = False
        if here and module_version(name) != version:
            out.append(name)
    return out


#: Analysis and code hash of recent cell texts: a cell run again unchanged
#: (every hit) skips the AST walks. Both depend on the text alone.
_ANALYZED: dict[str, tuple[Analysis, str]] = {}
_ANALYZED_MAX = 256


def _analyzed(tree, source: str | None) -> tuple[Analysis, str | None]:
    """``analyze(tree)``, and the code hash when known: from the memo when
    ``source`` (the exact text ``tree`` was parsed from) was seen before.
    The Analysis is shared between plans: nothing may modify it."""
    if source is None:
        return analyze(tree), None
    known = _ANALYZED.get(source)
    if known is None:
        if len(_ANALYZED) >= _ANALYZED_MAX:
            _ANALYZED.pop(next(iter(_ANALYZED)))  # the oldest text
        known = _ANALYZED[source] = (analyze(tree), code_hash(tree))
    return known


# ----------------------------------------------------------------------------
# Storing


class Outcome:
    """What a cell run produced, in the namespace and on screen."""

    def __init__(self, outputs: list, result: dict | None, result_name: str | None = None, duration: float = 0.0,
                 value=None, effects: dict | None = None, requires: dict | None = None):
        self.outputs = outputs  # nbformat-like output dicts
        self.result = result  # the last expression's mime bundle, or None
        self.result_name = result_name  # when the last expression was a def
        self.duration = duration
        self.value = value  # the last expression's value, kept for Out[n] and _
        self.effects = effects or {}  # JSON-able process state the run changed (ambient.py)
        self.requires = requires or {}  # provider -> digest a hit needs (state used but not keyed)


def module_snapshot(plan: Plan, ns: dict) -> dict:
    """The attributes of the notebook's own modules, which a run could change
    and a hit could not redo (``cfg.CONST = 2``, ``import m; m.X = 1``, or a
    helper doing it). Installed modules are left out: their state is
    configuration the ambient providers cover, or a trace no cache restores
    (``builtins.x = 1``, which the tests use to count runs)."""
    import sys

    from . import sources

    modules = [m for m in list(sys.modules.values())
               if isinstance(m, types.ModuleType) and m.__name__ != "__main__" and sources.is_local_module(m)]
    return {id(m): (m, dict(vars(m))) for m in modules}


def changed_modules(snapshot: dict, plan: Plan | None = None) -> list[str]:
    """``module.attribute`` names a run rebound, added or removed (see
    :func:`module_snapshot`), and local modules the cell imported for the
    first time whose values differ from what their import left."""
    import sys

    from . import import_watch, sources
    from .hashing import Unhashable, module_values_digest

    out = []
    for name in sorted(plan.analysis.imports if plan is not None else ()):
        module = sys.modules.get(name)
        if module is None or id(module) in snapshot or not sources.is_local_module(module):
            continue
        recorded = import_watch.snapshots.get(name)
        try:
            now = module_values_digest(module)
        except (Unhashable, RecursionError):
            now = None
        if recorded is None or recorded[0] is not module.__spec__ or now is None or recorded[1] != now:
            out.append(f"{name}'s values")
    for module, before in snapshot.values():
        now = vars(module)
        for name in sorted(set(before) | set(now)):
            if name.startswith("__") or before.get(name, _GONE) is now.get(name, _GONE):
                continue
            out.append(f"{module.__name__}.{name}")
    return out


_GONE = object()


def take_before(plan: Plan, ns: dict):
    """Snapshot ``ns`` into ``plan.before`` just before the body runs, and
    note where the direct items of container refs are, so that a ref the
    run changes in place (``rows.insert(0, x)``) keeps its old items as the
    same objects on a hit (``first = rows[0]`` elsewhere stays one of them)."""
    plan.before = {n: v for n, v in ns.items() if _user_name(n)}
    plan.items = relations.direct_items({n: ns[n] for n in plan.refs if n in ns})
    plan.modules = {}
    for module in _local_modules_reached(plan, ns):
        try:
            plan.modules[module.__name__] = (module, module_values_digest(module))
        except (Unhashable, RecursionError):
            plan.modules[module.__name__] = (module, None)


def _local_modules_reached(plan: Plan, ns: dict) -> list:
    """The notebook's own modules (not installed ones) whose values the cell
    can change: read through (``cfg.REG``, ``import cfg``), or the globals of
    their functions the cell calls, directly or through notebook functions."""
    import sys

    from . import sources
    from .analysis import _through_modules

    names = set()
    for label, value in _through_modules(plan.analysis, ns).items():
        if label.startswith("import "):
            names.add(value[1] if isinstance(value, tuple) and value[:1] == ("file",) else "")
        elif getattr(value, "local", False):
            names.add(value.module)
    todo, seen = [ns[n] for n in plan.refs if n in ns], set()
    while todo and len(seen) < 2000:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        obj = getattr(obj, "__func__", obj)
        if isinstance(obj, type) and obj.__module__ == "__main__":
            todo.extend(getattr(v, "__func__", v) for v in vars(obj).values())
        elif isinstance(obj, types.FunctionType):
            g = obj.__globals__
            if g is not ns:
                names.add(g.get("__name__") or "")
            codes = [obj.__code__]
            while codes:
                code = codes.pop()
                read = [g[n] for n in code.co_names if n in g]
                for module in [v for v in read if isinstance(v, types.ModuleType)]:  # regmod.register(1)
                    names.add(module.__name__)
                    read += [getattr(module, n, None) for n in code.co_names]
                todo.extend(v for v in read if isinstance(v, (types.FunctionType, type)))
                codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    modules = (sys.modules.get(n) for n in sorted(names - {"", "__main__"}))
    return [m for m in modules if m is not None and sources.is_local_module(m)]


def _changed_module_values(plan: Plan) -> list[str]:
    """Modules of :attr:`Plan.modules` whose values the run changed."""
    out = []
    for name, (module, digest) in sorted(plan.modules.items()):
        try:
            now = module_values_digest(module)
        except (Unhashable, RecursionError):
            now = None
        if now is None or now != digest:
            out.append(name)
    return out


def _user_name(name: str) -> bool:
    """A name the user's code owns: not IPython's bookkeeping, not a dunder."""
    return not is_ipython_name(name) and not (name.startswith("__") and name.endswith("__"))


def changed_names(plan: Plan, ns: dict):
    """What the run changed in ``ns``: ``(values, deleted, mutated, after)``.

    Found by comparing the namespace with ``plan.before`` (identity), so
    bindings analysis cannot see count too (``exec``, ``from m import *``, a
    called function's ``global`` statement). A name bound to a new object is
    a def; a def the analysis says is surely bound is stored even when it is
    the same object again (``x = 5`` twice), unless it is a ref (``a += 1``
    on an array); a conditional def left alone is not. Refs are re-hashed:
    one whose content changed is stored as mutated (updated in place on a
    hit). A ref whose hash changed may have changed other names' objects
    that its hash covered (a global list its code appends to, a bound
    method's object, a nested item): those are stored as mutated too.
    ``after`` holds the refs' content hashes after the run, so nothing is
    hashed twice.
    """
    a = plan.analysis
    changed = _changed_module_values(plan)
    if changed:
        raise NotStored(f"it changed what {', '.join(changed)} holds, which a hit could not do again")
    before = plan.before
    surely = getattr(a, "surely", set())
    values, mutated = {}, []
    for name in sorted(ns):
        if not _user_name(name):
            continue
        value = ns[name]
        if name in before:
            # A ref surely bound to the same object again (``a += 1`` on an
            # array, ``a = np.asarray(a)``) is checked by hash below like any
            # ref: stored as a def it would be rebound to a copy on a hit,
            # and views of it made by earlier cells would stop seeing it.
            if before[name] is not value or (name in surely and name not in plan.refs):
                values[name] = value
        elif name not in plan.refs:
            values[name] = value  # new (a ref without a snapshot is checked by hash below)
    gone = {n for n in before if n not in ns} | {n for n in a.deletes if n not in ns}
    deleted = sorted(n for n in gone if _user_name(n))  # replayed on a hit, whether or not it exists then
    after, reaches = {}, []
    for name, old_hash in plan.refs.items():
        if name in values or name not in ns:
            continue
        try:
            after[name] = value_hash(ns[name])
        except (Unhashable, RecursionError):
            after[name] = None
        if after[name] == old_hash:
            continue
        obj = ns[name]
        if not isinstance(obj, (types.MethodType, types.ModuleType)):
            values[name] = obj  # updated in place on a hit (a function's or class's attributes too)
            mutated.append(name)
        reaches.append(obj)
    # What changed may be another name's object, reached through the ref:
    # a function's code cannot change in place, so what it reaches did
    # (``log.append`` inside it); a bound method's object (``push =
    # lst.append``), a partial's arguments, a container's nested items
    # (``outer["a"]["b"].append(1)`` changes ``inner`` too).
    for name in sorted(_reached_names(reaches, ns)):
        if name in values or (name in plan.refs and after.get(name, plan.refs[name]) == plan.refs[name]):
            continue  # stored already, or a ref the run provably left alone
        try:
            after[name] = value_hash(ns[name])
        except (Unhashable, RecursionError):
            continue  # it could not be stored either: left as the hit finds it
        values[name] = ns[name]
        mutated.append(name)
    return values, deleted, sorted(mutated), after


def _is_code(value) -> bool:
    return isinstance(value, (types.FunctionType, types.MethodType, type, types.ModuleType))


def _reached_names(roots, ns, budget: int = relations.INDEX_BUDGET) -> set:
    """Names of ``ns`` whose objects a run could have changed through
    ``roots`` (refs whose content changed): what the refs' hashes covered,
    walked the same way (up to ``budget`` objects). Names bound to atoms and
    modules are left out, and functions and classes with no state of their
    own (attributes, closure cells, defaults): those cannot change in place."""
    if not roots:
        return set()
    by_id: dict[int, list] = {}
    for name, value in ns.items():
        if _user_name(name) and type(value) not in codecs._ATOMIC and (not _is_code(value) or _holds_state(value)):
            by_id.setdefault(id(value), []).append(name)
    seen, names, todo = set(), set(), list(roots)
    while todo and budget > 0:
        obj = todo.pop()
        if id(obj) in seen or type(obj) in codecs._ATOMIC:
            continue
        seen.add(id(obj))
        budget -= 1
        names.update(by_id.get(id(obj), ()))
        todo.extend(_referents(obj, ns))
    return names


def _holds_state(code) -> bool:
    """A notebook function or class with state a run could change in place
    (``f.calls += 1``, ``Registry.items.append(x)``, a mutable default)."""
    if isinstance(code, types.FunctionType):
        defaults = [*(code.__defaults__ or ()), *(code.__kwdefaults__ or {}).values()]
        return bool(vars(code) or code.__closure__ or any(type(d) not in codecs._ATOMIC for d in defaults))
    if isinstance(code, type) and code.__module__ == "__main__":  # a class attribute (``type(self).count += 1``)
        code_like = (staticmethod, classmethod, property, types.MemberDescriptorType, types.GetSetDescriptorType)
        return any(not k.startswith("__") and not callable(v) and not isinstance(v, code_like)
                   for k, v in vars(code).items())
    return False


def _referents(obj, ns) -> list:
    """What :func:`value_hash` reads of ``obj`` that may be other names' objects."""
    import functools

    t = type(obj)
    if isinstance(obj, types.ModuleType) or t.__module__.split(".")[0] in ("numpy", "pandas"):
        return []
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, (dict, types.MappingProxyType)):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, types.MethodType):
        return [obj.__func__, obj.__self__]
    if isinstance(obj, types.BuiltinMethodType):  # ``lst.append``; a module's functions have it as __self__
        return [obj.__self__]
    if isinstance(obj, functools.partial):
        return [obj.func, *obj.args, *obj.keywords.values()]
    if isinstance(obj, types.FunctionType):
        out = [*(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values(), *vars(obj).values()]
        out += [cell.cell_contents for cell in obj.__closure__ or () if _cell_full(cell)]
        if obj.__globals__ is ns:  # the notebook's globals its code names
            codes = [obj.__code__]
            while codes:
                code = codes.pop()
                out += [ns[n] for n in code.co_names if n in ns]
                codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        return out
    if isinstance(obj, type):
        if obj.__module__ != "__main__":
            return []
        out = []
        for v in vars(obj).values():
            out += [v.fget, v.fset, v.fdel] if isinstance(v, property) else [getattr(v, "__func__", v)]
        return out
    out = [t] if t.__module__ == "__main__" else []  # an instance's methods may change what they reach
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        out += d.values()
    out += [getattr(obj, slot, None) for slot in codecs._slot_names(t)]
    return out


def _cell_full(cell) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # an empty cell (a name not yet bound)
        return False
    return True


def save(
    store, plan: Plan, ns: dict, outcome: Outcome, memo: Memo | None = None, signer=None, progress=None
):
    """Write one entry: blobs first, the manifest last as the commit marker.

    Returns ``(manifest, total_bytes)``. Store errors propagate: the caller
    reports them, and the values stay in the namespace either way. Blobs this
    call wrote are removed again when it fails, so no orphan set is left.
    With a signing key (``signer``), blobs get SHA-256 digests and the
    manifest an HMAC. ``progress`` (a :class:`.progress.Progress`) counts
    the bytes written.
    """
    written = []
    try:
        return _save(store, plan, ns, outcome, memo, signer, written, progress)
    except BaseException:
        _discard(store, plan.key, written)
        raise


def _discard(store, key, written):
    """Delete blobs a failed save wrote, unless a (concurrent) manifest uses them."""
    try:
        current = load_manifest(store, key)
    except Exception:
        current = None
    keep = set(current["blobs"]) if current else set()
    for name in written:
        if name.split("/", 1)[1] not in keep:
            try:
                store.delete(name)
            except Exception:
                pass


def _save(store, plan, ns, outcome, memo, signer, written, progress=None):
    if signer is None:
        from . import signing

        signer = signing.from_config()
    if _shows_widgets(outcome):
        raise NotStored("its output holds a widget, which needs a live kernel; re-run it to use the widget")
    values, deleted, mutated, after = changed_names(plan, ns)
    m = mf.new(plan.key, plan.source)
    m["duration"] = outcome.duration
    m["outputs"] = outcome.outputs
    m["result"] = outcome.result
    m["result_name"] = outcome.result_name
    m["deleted"] = deleted
    m["mutated"] = mutated
    m["effects"] = outcome.effects
    if outcome.requires:
        m["requires"] = outcome.requires

    if outcome.value is not None and outcome.result_name is None:
        values[RESULT] = outcome.value  # stored like a def, never bound to a name

    # Which objects may be written as references instead of copies: other
    # defs, the refs the run left unchanged (a ref wins: ``b = a`` restores
    # as the ref's object), and notebook classes by their names (instances
    # stay instances of the notebook's class after a restart).
    kept = {n: ns[n] for n in plan.refs if n not in values and n in ns}
    pids = {}
    for name, value in values.items():
        if name != RESULT:  # defs never depend on the result's blob
            pids[id(value)] = (("def", name), value)
    for name, value in kept.items():
        pids[id(value)] = (("ref", name), value)
    for name, value in ns.items():
        if isinstance(value, type) and value.__module__ == "__main__" and _user_name(name) and id(value) not in pids:
            pids[id(value)] = (("ref", name), value)
    locate = relations.Locator(kept, values, relations.imported_modules(plan.source))
    locate.was = {i: item for i, item in plan.items.items() if item[0] in mutated}
    blobs = _encode(values, pids, locate)
    _refuse_lost_changes(blobs, mutated)
    if progress is not None:
        progress.total(sum(memoryview(p).nbytes for b in blobs.values() for p in b["parts"]))
    total, unstored = 0, {}
    for blob_name, blob in blobs.items():
        parts = blob.pop("parts")
        if blob["codec"] == "tripwire":
            unstored.update((d, blob.pop("why")) for d in blob["defs"])
        blob["size"] = sum(memoryview(p).nbytes for p in parts)
        blob["digest"] = digest_chunks(parts)
        if signer.key:
            import hashlib  # signing only: OpenSSL takes milliseconds to load

            blob["sha256"] = digest_chunks(parts, new=hashlib.sha256)
        total += blob["size"]
        # The digest in the name keeps concurrent writers of one key from
        # replacing each other's blobs: whichever manifest lands last is whole.
        stem, ext = blob_name.split(".", 1)
        blob_name = f"{stem}.{blob['digest'][:12]}.{ext}"
        written.append(f"{plan.key}/{blob_name}")
        store.put(f"{plan.key}/{blob_name}", parts if progress is None else progress.wrap(parts))
        m["blobs"][blob_name] = blob
    values.pop(RESULT, None)  # encoded above; not a def (no hash, no name)
    codec_of = {d: blob["codec"] for blob in m["blobs"].values() for d in blob["defs"]}
    for name, value in values.items():
        entry = m["defs"].setdefault(name, {})
        entry["hash"] = after.get(name)  # mutated refs: hashed already
        # Only a hash the memo can reuse is worth computing (an immutable, or
        # an array mapped from its .npy); any other value is hashed again when
        # a later cell reads it, so hashing a figure or model here is waste.
        if entry["hash"] is None and (type(value) in _IMMUTABLE or codec_of.get(name) == "npy"):
            try:
                entry["hash"] = value_hash(value)
            except (Unhashable, RecursionError):
                entry["hash"] = None
        entry["type"] = f"{type(value).__module__}.{type(value).__qualname__}"
        if name in unstored:  # said when storing, not first at a restore
            entry["unstored"] = unstored[name]
    signer.sign(m)
    data = mf.dumps(m)
    try:  # the entry this one replaces (--force), whose blobs become garbage
        previous = load_manifest(store, plan.key)
    except Exception:
        previous = None
    store.put(mf.manifest_key(plan.key), data)
    del written[:]  # committed: nothing to discard from here on
    for name in set(previous["blobs"]) - set(m["blobs"]) if previous else ():
        try:  # a reader still on the old manifest retries (BlobGone)
            store.delete(f"{plan.key}/{name}")
        except Exception:
            pass
    if memo is not None:
        memo.clear()
        for name, h in after.items():
            if name not in values:  # unchanged refs; defs and mutated refs below
                memo.record(name, ns[name], h)
        for name, value in values.items():
            memo.record(name, value, m["defs"][name]["hash"])
    return m, total + len(data)


def _blob_stem(name: str, index: int) -> str:
    return name if name.isascii() and name.isidentifier() else f"def{index}"


def _encode(values: dict, pids: dict, locate=None) -> dict:
    """Encode defs into blobs: one per def, except that defs which reference
    each other in a cycle, or hold one object between them (``fig, ax =
    plt.subplots()``: ax's Axes are inside fig), share one pickle, so their
    identities survive."""
    blobs = {}
    # Names bound to one object share one blob, so they stay one object.
    aliases: dict[int, list] = {}
    for name, value in values.items():
        aliases.setdefault(id(value), []).append(name)
    same = {names[0]: names for names in aliases.values()}
    todo = {}  # first name -> root ids, for the defs that are pickled
    for index, names in enumerate(aliases.values()):
        name, value = names[0], values[names[0]]
        stem = _blob_stem(name, index)
        pid = pids.get(id(value))
        is_ref = pid is not None and pid[0][0] == "ref" and pid[1] is value
        if is_ref or (locate is not None and type(value) not in codecs._ATOMIC and locate.locate(value) is not None):
            # a ref's object, or a view, element or module attribute: a
            # pickle of the relation (a few bytes), never a copy
            todo[name] = () if is_ref else (id(value),)
            continue
        if isinstance(value, types.ModuleType) and _importable(value):
            # its top-level package as "modules": where that is missing (pandas
            # in a browser) the def is a tripwire and the blob is not fetched
            blobs[f"{stem}.module"] = _blob("module", names, value.__name__.encode(),
                                            modules=[value.__name__.split(".")[0]])
            continue
        codec = codecs.codec_for(value)
        if codec is not None:
            try:
                parts = codec.encode(value)
            except Exception:
                codec = None
            else:
                # The value's own library too (pandas for a frame in Arrow), so
                # a browser without it makes a tripwire instead of a failed decode.
                needs = {*codec.modules, type(value).__module__.split(".")[0]} - {"builtins"}
                blobs[f"{stem}.{codec.ext}"] = _blob(codec.name, names, parts, modules=sorted(needs))
                continue
        todo[name] = (id(value),)
    groups = _Pickles(values, pids, locate, todo, blobs, same).encode()
    for members, (data, used, modules) in groups.items():
        members = sorted(members)
        if len(members) == 1:
            name = members[0]
            blobs[f"{_blob_stem(name, len(blobs))}.pkl"] = _blob("pickle", same[name], data, used=used, modules=modules)
            continue
        stem = "group-" + "-".join(_blob_stem(n, i) for i, n in enumerate(members))[:80]
        blobs[f"{stem}.pkl"] = _blob("pickle-group", [a for n in members for a in same[n]], data, used=used,
                                     modules=modules)
        blobs[f"{stem}.pkl"]["aliases"] = {n: same[n] for n in members if len(same[n]) > 1}
    return blobs


#: Objects each def's cheap pre-pass visits looking for objects shared with another def.
_GUESS_BUDGET = 5000


def _reachable(obj):
    """What pickling ``obj`` is likely to write: items, values, attributes and
    the items of object arrays (not classes, functions or modules)."""
    t = type(obj)
    if t in (list, tuple, set, frozenset):
        return obj
    if t is dict:
        return obj.values()
    if t.__module__ == "numpy" and t.__name__ == "ndarray":
        return obj.ravel().tolist() if obj.dtype.hasobject and obj.size <= _GUESS_BUDGET else ()
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict) and not isinstance(obj, (type, types.FunctionType, types.ModuleType)):
        return state.values()
    return ()


#: Pickles smaller than this (bytes) are bundled per module set (see _Pickles._bundle_small).
_SMALL_PICKLE = 64 * 1024
_BUNDLE_FROM = 8


class _Pickles:
    """The pickled defs of one entry, grouped: each def alone, unless it and
    others refer to each other (pids) or hold a common object (found while
    pickling, which then stops at once), in which case they are pickled as
    one dict. A def that cannot be pickled gets a tripwire blob."""

    def __init__(self, values, pids, locate, todo, blobs, same):
        self.values, self.pids, self.locate, self.todo, self.blobs, self.same = values, pids, locate, todo, blobs, same
        self.first = {n: first for first, names in same.items() for n in names}  # alias -> its blob's name
        self.shared = {}  # id(obj) -> (first name, obj), across all pickles
        self.links = {n: set() for n in todo}  # names that hold common objects
        self.dead = set()  # names that became tripwires
        self._guess_links()

    def _guess_links(self):
        """Link defs that reach one object within a few thousand steps, before
        any pickling (``fig, ax``: ax's Axes are in ``fig.axes``), so the group
        they end up as is pickled once. A missed sharing still surfaces as
        :class:`.codecs.Shared` while pickling; a wrong guess only groups."""
        if len(self.todo) < 2:
            return
        import collections

        reached: dict[int, str] = {}
        for name in self.todo:
            todo, seen, budget = collections.deque([self.values[name]]), set(), _GUESS_BUDGET
            while todo and budget > 0:
                obj = todo.popleft()  # breadth first: shared parts sit near the top (fig._localaxes)
                if id(obj) in seen:
                    continue
                seen.add(id(obj))
                budget -= 1
                other = reached.setdefault(id(obj), name)
                if other != name:
                    self.links[name].add(other)
                    self.links[other].add(name)
                    continue
                todo.extend(c for c in _reachable(obj) if id(c) not in self.pids and type(c) not in codecs._ATOMIC)

    def _dumps(self, members, also=frozenset()):
        me = frozenset(members) | self.dead | also
        shared = self.shared
        if not also and not shared and me >= set(self.todo):
            # The first pickle and it holds every def (``fig, ax``, one model):
            # no other pickle follows it (see encode), so there is nothing to
            # share with, and watching each mutable object would cost a third
            # of the pickling.
            shared = None
        if len(members) == 1:
            (name,) = members
            return codecs.dumps(self.values[name], self.pids, self.todo[name], self.locate, shared, me)
        group = {n: self.values[n] for n in sorted(members)}
        roots = [r for n in members for r in self.todo[n]]  # a ref's own object stays a reference
        return codecs.dumps(group, self.pids, roots, self.locate, shared, me)

    def encode(self) -> dict:
        done = {}  # frozenset of names -> (bytes, used, modules)
        for name in self.todo:
            if self.links[name]:
                continue  # pickled with the defs it shares objects with, below
            try:
                done[frozenset([name])] = self._dumps([name])
            except codecs.Shared as exc:
                self._link(name, exc.owner)
            except Exception as exc:
                self._kill([name], exc)
        for _round in range(len(self.todo) + 1):
            live = [n for n in self.todo if n not in self.dead]
            deps = {n: set(self.links[n]) - self.dead for n in live}
            for members, (_, used, _) in done.items():
                for n in members:
                    deps[n] |= {self.first.get(p[1], p[1]) for p in used if p[0] == "def"} & set(live)
            grouped = {frozenset(g) for g in _cycles(deps)}
            wanted = grouped | {frozenset([n]) for n in live if not any(n in g for g in grouped)}
            retry = False
            for members in wanted - set(done):
                try:
                    done[members] = self._dumps(sorted(members))
                except codecs.Shared as exc:
                    self._link(min(members), exc.owner)
                    retry = True
                    break
                except Exception as exc:
                    self._split(members, exc, done)
                    retry = True
                    break
            if not retry:
                return self._bundle_small({m: done[m] for m in wanted})
        raise RuntimeError("grouping the pickled defs did not settle")  # not reached: links only grow

    def _bundle_small(self, result: dict) -> dict:
        """Small pickles needing the same modules go into one blob: ``from
        numpy import *`` stores hundreds of references, and each blob is a
        file to write (and fsync), so one per def took seconds."""
        buckets: dict[frozenset, list] = {}
        for members, (data, _, modules) in result.items():
            if len(members) == 1 and len(data) < _SMALL_PICKLE:
                buckets.setdefault(frozenset(modules), []).append(members)
        for singles in buckets.values():
            if len(singles) < _BUNDLE_FROM:
                continue  # a few blobs cost little, and one per def keeps damage and tripwires to that def
            members = frozenset().union(*singles)
            try:
                bundled = self._dumps(sorted(members))
            except Exception:
                continue  # kept one blob each
            for single in singles:
                del result[single]
            result[members] = bundled
        return result

    def _split(self, members, exc, done):
        """A def or group that cannot be pickled: each member alone where it
        can be (a guessed link may have tied a good def to a bad one), the
        rest tripwires. Members no longer count as sharing with each other."""
        if len(members) == 1:
            self._kill(sorted(members), exc)
            return
        for n in members:
            self.links[n] -= members
        for n in sorted(members):
            try:
                done[frozenset([n])] = self._dumps([n], also=members)
            except codecs.Shared as shared:
                self._link(n, shared.owner)
            except Exception as own:
                self._kill([n], own)

    def _link(self, a, b):
        if b in self.links and b not in self.dead:
            self.links[a].add(b)
            self.links[b].add(a)
        else:
            self.dead.add(b)  # a failed def's objects: not a reason to group

    def _kill(self, members, exc):
        for n in members:
            self.dead.add(n)
            self.blobs[f"{_blob_stem(n, len(self.blobs))}.tripwire"] = _tripwire_blob(self.same[n], self.values[n], exc)


def _blob(codec, names, parts, used=(), modules=()):
    return {
        "codec": codec,
        "defs": list(names),
        "parts": chunks(parts) if isinstance(parts, (list, tuple)) else [parts],
        "needs": sorted([list(p) for p in used]),
        "modules": sorted(modules),
    }


def _shows_widgets(outcome) -> bool:
    bundles = [o.get("data") or {} for o in outcome.outputs] + [(outcome.result or {}).get("data") or {}]
    return any("application/vnd.jupyter.widget-view+json" in b for b in bundles)


def _refuse_lost_changes(blobs: dict, mutated) -> None:
    """No entry where a ref the run changed in place cannot be stored: a
    tripwire would stand in for its name alone, and every other name bound
    to the object (``t = s`` in an earlier cell) would keep the old content."""
    for blob in blobs.values():
        lost = sorted(set(blob["defs"]) & set(mutated)) if blob["codec"] == "tripwire" else ()
        if lost:
            raise NotStored(f"it changes {', '.join(lost)} in place, which cannot be stored ({blob['why']})")


def _tripwire_blob(names, value, exc) -> dict:
    """The blob of a def that cannot be stored: its reason, shown by the
    tripwire a hit restores; ``why`` (the error alone) is said when storing."""
    why = f"{type(exc).__name__}: {exc}"[:200]
    blob = _blob("tripwire", names, f"{type(value).__name__} could not be stored ({why})"[:300].encode())
    blob["why"] = why
    return blob


def _importable(module) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module.__name__) is not None
    except (ImportError, ValueError):
        return False


def _cycles(deps: dict) -> list[set]:
    """Groups of two or more names that reach each other (Tarjan's SCCs)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or v in deps.get(v, ()):
                out.append(group)

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return out


# ----------------------------------------------------------------------------
# Restoring


class Restored:
    """A loaded entry, not yet applied to the namespace."""

    def __init__(self, manifest: dict, values: dict, tripwires: list, nbytes: int, result=None):
        self.manifest = manifest
        self.values = values  # name -> value (tripwires included)
        self.tripwires = tripwires
        self.nbytes = nbytes
        self.result = result  # the last expression's value, if it was stored


def load_manifest(store, key: str) -> dict | None:
    """The entry's manifest, validated (:func:`.manifest.loads`); None when
    there is none. Raises :class:`CorruptEntry`."""
    try:
        f = store.open(mf.manifest_key(key))  # local: its size is known before reading it
        if f is None:
            data = store.get(mf.manifest_key(key))
        else:
            with f:
                if os.fstat(f.fileno()).st_size > mf.MAX_MANIFEST_BYTES:
                    raise CorruptEntry(f"manifest is larger than {mf.MAX_MANIFEST_BYTES >> 20} MiB")
                data = f.read()
    except UnsafePath as exc:  # a link or a folder where the manifest should be
        raise CorruptEntry(f"manifest cannot be read ({exc})") from None
    if data is None:
        return None
    return mf.loads(data, key)


def _open_blob(store, key: str, name: str):
    """A blob as an open local file, or None where the store has no local copy."""
    try:
        return store.open(f"{key}/{name}")
    except UnsafePath as exc:
        raise CorruptEntry(f"blob {name} cannot be read ({exc})") from None


def _private(st) -> bool:
    """Whether only this user can change the file (so a mapping of it shows
    no one else's writes after the check)."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _check(signer, name: str, blob: dict, data) -> None:
    """:func:`.manifest.check_blob`; under ``strict`` signing a mismatch in a
    signed entry is an error, not damage to evict."""
    try:
        mf.check_blob(name, blob, data, sha256=signer.checks)
    except CorruptEntry as exc:
        if signer.mode != "strict":
            raise
        from .signing import UntrustedEntry

        raise UntrustedEntry(f"a signed entry is not trusted: {exc}") from None


class BlobGone(CorruptEntry):
    """A listed blob is missing: damage, or a newer manifest replaced it."""

    def __init__(self, message, manifest):
        super().__init__(message)
        self.manifest = manifest


def restore(store, key: str, ns: dict, m: dict | None = None, signer=None) -> Restored | None:
    """Load an entry (see :func:`_restore`). A blob that vanished because a
    concurrent writer replaced the entry is retried with the new manifest."""
    for _attempt in range(3):
        try:
            return _restore(store, key, ns, m, signer)
        except BlobGone as exc:
            if m is not None:
                raise
            try:
                now = load_manifest(store, key)
            except CorruptEntry:
                now = None
            if now is None or now == exc.manifest:
                raise  # not replaced: really damaged
    return None  # replaced three times while reading: a miss


def _restore(store, key: str, ns: dict, m: dict | None = None, signer=None) -> Restored | None:
    """Load an entry's values without touching ``ns`` (refs are read from it).

    Returns None for a miss; raises :class:`CorruptEntry` for an entry that
    must be evicted. Blobs are checked against their digests before any
    unpickling; memory-mapped ``.npy`` files are not read at all (they are
    never unpickled, and reading them would make the restore O(size)).
    """
    if m is None:
        m = load_manifest(store, key)
        if m is None:
            return None
    if signer is None:
        from . import signing

        signer = signing.from_config()
    # Before anything is fetched or unpickled (raises signing.Unverified).
    signer.check(m)
    blobs = m["blobs"]
    # A blob that needs a module missing here (pandas in a browser) is not
    # fetched: its defs, and those that reference them, become tripwires.
    skipped = {}
    for name, blob in blobs.items():
        missing = codecs.missing_modules(blob.get("modules", ()))
        if missing:
            skipped[name] = f"module {', '.join(missing)} is not available here"
    owner = {d: b for b, blob in blobs.items() for d in blob["defs"]}
    changed = True
    while changed:  # propagate to blobs that reference skipped ones
        changed = False
        for name, blob in blobs.items():
            if name in skipped:
                continue
            for kind, ref in blob.get("needs", ()):
                if kind == "def" and owner.get(ref) in skipped:
                    skipped[name] = f"it references {ref!r}, which could not be restored"
                    changed = True
                    break

    wanted, opened, streamed = [], {}, set()
    sizes = {f"{key}/{name}": blob["size"] for name, blob in blobs.items()}
    try:
        for name, blob in blobs.items():
            if name in skipped:
                continue
            if getattr(codecs.codec_named(blob["codec"]), "mmap", False):
                f = _open_blob(store, key, name)
                if f is not None:
                    opened[name] = f
                    continue
            wanted.append(f"{key}/{name}")
        # Mappable blobs held only by a slower tier (a shared remote) are
        # streamed into the local folder, never whole in memory, then
        # mapped and checked.
        fetch_paths = getattr(store, "fetch_paths", None)
        mappable = [k for k in wanted if getattr(codecs.codec_named(blobs[k.split("/", 1)[1]]["codec"]), "mmap", False)]
        for full in (fetch_paths(mappable, sizes) if fetch_paths is not None and mappable else {}):
            name = full.split("/", 1)[1]
            f = _open_blob(store, key, name)
            if f is not None:
                wanted.remove(full)
                opened[name] = f
                streamed.add(name)
        fetched = store.get_many(wanted, sizes) if wanted else {}
        datas, maps = {}, {}
        nbytes = 0
        for full, data in fetched.items():
            name = full.split("/", 1)[1]
            if data is None:
                why = store.failed(full)
                if why:  # a network error, already reported once: a plain miss
                    raise StoreUnavailable(f"blob {name} could not be fetched ({why})")
                raise BlobGone(f"blob {name} is missing", m)
            _check(signer, name, blobs[name], data)
            datas[name] = data
            nbytes += len(data)
        for name, f in opened.items():
            # Checked and decoded from this one open file: a rename in the
            # folder after the check cannot swap in other bytes.
            st = os.fstat(f.fileno())
            if st.st_size != blobs[name]["size"]:
                raise CorruptEntry(f"blob {name} has the wrong size")
            nbytes += st.st_size
            if signer.checks and not _private(st):
                # Others can write this file: a mapping would show their later
                # writes. Decode from our own copy of the checked bytes.
                datas[name] = f.read()
                _check(signer, name, blobs[name], datas[name])
                continue
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if st.st_size else None
            # Mapped Arrow files carry a pickle (labels, dtypes): checked like
            # fetched blobs. Only .npy (never unpickled) skips the read, unless
            # signed: signed entries give up O(1) restore, data is checked too.
            if blobs[name]["codec"] != "npy" or name in streamed or signer.checks:
                _check(signer, name, blobs[name], mapped if mapped is not None else b"")
            if mapped is None:
                datas[name] = b""
            else:
                maps[name] = mapped
    finally:
        for f in opened.values():
            f.close()

    values, tripwires = {}, []
    hashes = {n: d.get("hash") for n, d in m["defs"].items()}

    def resolve(pid):
        kind, name = pid
        if kind == "ref":
            if name not in ns:
                raise CorruptEntry(f"entry refers to {name!r}, which is not defined")
            return ns[name]
        if name not in values:
            load_blob(owner[name])
        return _live(m, ns, name, values[name])

    loading = set()

    def load_blob(bname):
        if bname in loading:
            raise CorruptEntry(f"blob {bname} references itself")
        loading.add(bname)
        blob = blobs[bname]
        kind = blob["codec"]
        if bname in skipped:
            for d in blob["defs"]:
                values[d] = Tripwire(d, skipped[bname], hashes.get(d))
                tripwires.append(d)
            return
        if kind == "tripwire":
            reason = datas[bname].decode("utf-8", "replace")
            for d in blob["defs"]:
                values[d] = Tripwire(d, reason, hashes.get(d))
                tripwires.append(d)
            return
        if kind == "module":
            import importlib

            try:
                module = importlib.import_module(datas[bname].decode())
            except ImportError as exc:  # entries written before "modules" was set
                for d in blob["defs"]:
                    missing = exc.name or datas[bname].decode()
                    values[d] = Tripwire(d, f"module {missing} is not available here", hashes.get(d))
                    tripwires.append(d)
                return
            values.update((d, module) for d in blob["defs"])
            return
        if kind in ("pickle", "pickle-group"):
            try:
                obj = codecs.loads(datas[bname], resolve)
            except CorruptEntry:
                raise
            except Exception as exc:
                # Verified bytes that do not load here (another Python's code
                # objects, a missing class): a tripwire, not a crash.
                reason = f"it could not be loaded here ({type(exc).__name__}: {exc})"[:300]
                for d in blob["defs"]:
                    values[d] = Tripwire(d, reason, hashes.get(d))
                    tripwires.append(d)
                return
            if kind == "pickle-group":
                for d, v in obj.items():
                    v = _rebind(v, ns)
                    for alias in blob.get("aliases", {}).get(d, [d]):
                        values[alias] = v
            else:
                obj = _rebind(obj, ns)
                for d in blob["defs"]:
                    values[d] = obj
            return
        codec = codecs.codec_named(kind)
        if codec is None:
            raise CorruptEntry(f"unknown codec {kind!r}")
        value = codec.decode(datas.get(bname), maps.get(bname))
        values.update((d, value) for d in blob["defs"])

    for bname in blobs:
        if not all(d in values for d in blobs[bname]["defs"]):
            load_blob(bname)
    _register_source(values.values(), m.get("source", ""))
    settle = getattr(store, "settle", None)
    if settle is not None:  # the entry is whole here: commit its manifest to faster tiers
        settle(mf.manifest_key(key))
    result = values.pop(RESULT, None)
    if RESULT in tripwires:  # the replayed display stands in for it
        tripwires.remove(RESULT)
        result = None
    return Restored(manifest=m, values=values, tripwires=tripwires, nbytes=nbytes, result=result)


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
    import linecache

    _set_old_items(values)
    functions = [fn for fn in _notebook_functions(values) if not _source_found(fn.__code__)]
    if not functions:
        return
    lines = _aligned(source, functions)
    for fn in functions:
        code = fn.__code__
        name = f"<lazycache-restored-{next(_source_names)}>"
        fn.__code__ = _renamed(code, name)
        linecache.cache[name] = (len(source), None, lines, name)


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


#: How many objects the walks through restored containers visit at most.
_WALK_BUDGET = 10_000


def _inside(obj):
    """``(key, value)`` pairs of a list, dict or notebook instance (whose
    functions a restore must fix up), else None."""
    t = type(obj)
    if t is list:
        return itertools.islice(enumerate(obj), _WALK_BUDGET)  # lazily: a long list costs the budget, no more
    if t is dict:
        return itertools.islice(obj.items(), _WALK_BUDGET)
    if t.__module__ == "__main__" and not isinstance(obj, type) and isinstance(getattr(obj, "__dict__", None), dict):
        return itertools.islice(vars(obj).items(), _WALK_BUDGET)
    return None


def _rebind_inside(value, ns, done):
    """Rebind functions held in restored lists, dicts and notebook instances
    (``handlers = {"a": lambda x: x + k}``), in place, within a budget."""
    todo, seen, budget = [value], set(), _WALK_BUDGET
    while todo and budget > 0:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        for key, child in list(_inside(obj) or ()):  # a list: entries may be replaced below
            budget -= 1
            if budget <= 0:
                break
            if type(child) in codecs._ATOMIC:
                continue
            if _rebindable(child):
                new = _rebind(child, ns, done)
                if new is not child:
                    if type(obj) in (list, dict):
                        obj[key] = new
                    else:
                        setattr(obj, key, new)
            elif _inside(child) is not None:
                todo.append(child)


def _rebind(value, ns, _done=None):
    """Give functions restored by value the globals of their own module.

    cloudpickle gives an unpickled function a private globals dict. A
    function the notebook defined must see later changes to notebook globals,
    as after a real run, so it gets ``ns``; one defined in a module (the
    wrapper a local decorator returns) gets that module's globals, never the
    notebook's. Closures, ``__wrapped__`` and ``lru_cache`` wrappers are
    followed, so a decorated function's inner function is rebound too.
    """
    done = {} if _done is None else _done
    if id(value) in done:
        return done[id(value)]
    if _done is None and _inside(value) is not None:
        _rebind_inside(value, ns, done)
        return value
    if isinstance(value, types.FunctionType):
        done[id(value)] = value  # cycles (a closure holding its own function) end here
        target = _globals_for(value, ns)
        fn = value
        if target is not None and target is not value.__globals__:
            fn = types.FunctionType(value.__code__, target, value.__name__, value.__defaults__, value.__closure__)
            fn.__dict__.update(value.__dict__)
            fn.__qualname__ = value.__qualname__
            fn.__kwdefaults__ = value.__kwdefaults__
            fn.__annotations__ = value.__annotations__
            fn.__doc__ = value.__doc__
            fn.__module__ = value.__module__
            done[id(value)] = fn
        for cell in value.__closure__ or ():
            if _cell_full(cell) and _rebindable(cell.cell_contents):
                cell.cell_contents = _rebind(cell.cell_contents, ns, done)
        if "__wrapped__" in vars(fn) and _rebindable(fn.__wrapped__):
            fn.__wrapped__ = _rebind(fn.__wrapped__, ns, done)
        return fn
    if codecs._is_notebook_lru(value):
        import functools

        inner = _rebind(value.__wrapped__, ns, done)
        if inner is value.__wrapped__:
            return value
        info = value.cache_parameters()
        wrapper = functools.lru_cache(maxsize=info["maxsize"], typed=info["typed"])(inner)
        vars(wrapper).update({k: v for k, v in vars(value).items() if k != "__wrapped__"})
        done[id(value)] = wrapper
        return wrapper
    if isinstance(value, type) and value.__module__ == "__main__":
        done[id(value)] = value
        for attr, member in list(vars(value).items()):
            wrapper = type(member) if isinstance(member, (staticmethod, classmethod)) else None
            inner = member.__func__ if wrapper else member
            if _rebindable(inner):
                rebound = _rebind(inner, ns, done)
                if rebound is not inner:
                    setattr(value, attr, wrapper(rebound) if wrapper else rebound)
    return value


def _rebindable(obj) -> bool:
    return isinstance(obj, types.FunctionType) or codecs._is_notebook_lru(obj)


def _globals_for(fn, ns):
    """The globals ``fn`` had in the run: the notebook's for ``__main__``
    functions, else its module's (None: leave it as unpickled)."""
    name = fn.__globals__.get("__name__")
    if name == "__main__":
        return ns
    if not isinstance(name, str) or name.startswith("ipy_lazycache"):
        return None
    import importlib
    import sys

    try:
        module = sys.modules.get(name) or importlib.import_module(name)
    except Exception:
        return None
    return vars(module)


def _live(m: dict, ns: dict, name: str, value):
    """A def as other defs of the entry hold it. A ref the run changed in
    place is the namespace's own object, which :func:`apply` gives the run's
    content: ``d = {"k": a}; a += 1`` keeps ``d["k"] is a``, and ``b = a[::2]``
    stays a view of ``a``. The restored value where that update cannot be made."""
    if name in m.get("mutated", ()) and name in ns and codecs.can_update_in_place(ns[name], value):
        return ns[name]
    return value


def apply(restored: Restored, ns: dict, memo: Memo | None = None):
    """Bind restored values into ``ns`` and replay deletions.

    A mutated ref is updated in place where its type allows it, so other
    names bound to the same object see the change, as after a real run;
    restored names that were one object with it become that object too.
    """
    m = restored.manifest
    mutated = set(m.get("mutated", ()))
    placed = {}  # id(restored object) -> the object it was put into
    for name, value in sorted(restored.values.items(), key=lambda item: item[0] not in mutated):
        if id(value) in placed:
            value = placed[id(value)]
        elif name in mutated and name in ns and codecs.update_in_place(ns[name], value):
            placed[id(value)] = ns[name]
            value = ns[name]
        ns[name] = value
        if memo is not None and not isinstance(value, Tripwire):
            memo.record(name, value, m["defs"].get(name, {}).get("hash"))
    for name in m["deleted"]:
        ns.pop(name, None)


def evict(store, key: str):
    """Remove an entry: the manifest first, so it stops being a hit at once."""
    store.delete(mf.manifest_key(key))
    for name in list(store.keys(f"{key}/")):
        store.delete(name)
