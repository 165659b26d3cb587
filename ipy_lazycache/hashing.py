"""Platform-independent content hashes of code and values.

Everything is fed into one xxh3-128 stream as a type-tagged, length-prefixed,
little-endian encoding, so the same cell with the same refs gives the same key
under any CPython from 3.10 and under Pyodide. Never bytecode, never
``ast.dump`` (both change between Python versions).
"""

from __future__ import annotations

import ast
import functools
import struct
import sys
import types

import xxhash

from . import import_watch, sources
from .hashing_arrays import _feed_array, _feed_numpy
from .hashing_base import Unhashable, _int_bytes, _tag, digest_file
from .hashing_code import (
    _code_names,
    _feed_bytecode,
    _feed_class,
    _feed_library_function,
    _feed_lru,
    _feed_method,
    _feed_partial,
    injected_builtin,
    library_global,
)
from .hashing_graph import _Walk
from .hashing_guard import State, unslot
from .hashing_modules import (
    _DUNDER_SKIP,
    ModuleAttr,
    _feed_module,
    _feed_module_attr,
    closure_digest,
    local_module_digest,
    module_version,
)
from .hashing_state import feed_unpickled_state, without_cache_flags
from .hashing_values import is_value_type
from .module_closure import module_file
from .names import free_names, imports_in, reads_globals_unseen
from .seeded_sets import seed_free

#: Part of every key. Raised when entries written before would restore
#: differently now (3: in-place updates, views and generators of this round;
#: 4: byte order, read-only arrays, MultiIndex levels keyed: an old entry
#: stored for a '>' array would hit its '<' twin; 5: closures' shared cells,
#: sets by sorted content, library values by content, read-only arrays
#: pickled), so no old entry can hit.
FORMAT = "ipy_lazycache/5"




# ----------------------------------------------------------------------------
# Code


_SKIP_FIELDS = frozenset({"ctx", "type_comment", "lineno", "col_offset", "end_lineno", "end_col_offset"})


def _feed_ast(h, node):
    if isinstance(node, ast.AST):
        _tag(h, b"N", type(node).__name__.encode())
        for name in sorted(node._fields):
            if name in _SKIP_FIELDS:
                continue
            value = getattr(node, name, None)
            if value is None or value == []:
                continue
            _tag(h, b"F", name.encode())
            _feed_ast(h, value)
        h.update(b")")
    elif isinstance(node, list):
        _tag(h, b"L", len(node).to_bytes(8, "little"))
        for item in node:
            _feed_ast(h, item)
    else:  # a constant's value or an identifier
        _feed_value(h, node, None, None)


def code_hash(source_or_tree) -> str:
    """Hash of code from a canonical walk of its AST: formatting and comments
    do not matter, and the encoding is the same on every Python version."""
    tree = ast.parse(source_or_tree) if isinstance(source_or_tree, str) else source_or_tree
    h = xxhash.xxh3_128()
    _feed_ast(h, tree)
    return h.hexdigest()


# ----------------------------------------------------------------------------
# Values


# ----------------------------------------------------------------------------
# Modules


def module_values_digest(module) -> str:
    """Digest of what a local module holds (all but its import bookkeeping)."""
    return value_hash({k: v for k, v in vars(module).items() if k not in _DUNDER_SKIP})


def import_state(module) -> str:
    """What ``import`` of a loaded local module gives: its file (raises
    :class:`Unhashable` when edited since the import), plus its values when
    code changed them after the import (:mod:`.import_watch`). Unchanged, the
    key is the same as before the module is loaded (its file), so a cell that
    imports hits on its second run; changed, the key says so."""
    digest = local_module_digest(module)
    now = module_values_digest(module)
    snap = import_watch.snapshots.get(module.__name__)
    if snap is not None and snap[0] is module.__spec__ and snap[1] == now:
        return digest
    return f"{digest}+{now}"


# ----------------------------------------------------------------------------
# Functions


def _feed_function(h, fn, hasher, walk=None):
    """Everything that decides what a notebook function does: its own code (its node, not its line, not what
    it wraps), the globals it reads, defaults, closure cells (and which, in ``walk``) and attributes."""
    code = fn.__code__
    if not sources.is_notebook_code(code):
        _feed_library_function(h, fn, hasher)
        return
    _tag(h, b"F", fn.__qualname__.encode())
    module = sys.modules.get(fn.__globals__.get("__name__") or "")
    if getattr(module, "__file__", None) == code.co_filename and sources.is_local_module(module):
        local_module_digest(module)  # the file now must be the code that runs (raises if edited since the import)
    try:
        node = sources.code_node(code, fn.__globals__)
    except sources.SourceUnknown as exc:
        raise Unhashable(str(exc)) from None
    if node is not None:
        _feed_ast(h, node)
        reads = free_names(node)
        unseen = reads_globals_unseen(node)
        imported = imports_in(node)
        for module in sorted(imported):  # def f(): import cfg; ...
            _tag(h, b"im", module.encode())
            hasher(h, module_input(module))
    else:  # exec'd or generated code: its bytecode, which is exact on this Python
        _feed_bytecode(h, code, hasher)
        reads = _code_names(code)
        unseen = bool(reads & {"globals", "eval", "exec", "__main__"})
        imported = {"__main__"} & reads
    g = fn.__globals__
    if unseen:
        # globals()['x'], eval('x'): which globals it reads is unknown. A
        # module's are all keyed; the notebook's change with every cell.
        if g.get("__name__") == "__main__" or module is None or g is not vars(module) or "__main__" in imported:
            raise Unhashable(
                f"function {fn.__qualname__} reads notebook variables through globals(), eval or exec, "
                "which analysis cannot see")
        reads = {n for n in g if not (n.startswith("__") and n.endswith("__"))}
    for name in sorted(reads):
        if name in g:
            _tag(h, b"g", name.encode())
            hasher(h, g[name])
        elif (injected := injected_builtin(name)) is not None:  # builtins.LIMIT = 3, read by the function
            _tag(h, b"gb", name.encode())
            hasher(h, injected[0])
    # Defaults were evaluated when the function was defined; their names in
    # the source may since point elsewhere.
    hasher(h, (fn.__defaults__, fn.__kwdefaults__))
    if fn.__closure__:
        for name, cell in zip(code.co_freevars, fn.__closure__):
            _tag(h, b"c", name.encode())
            if walk is not None:
                walk.cell(h, cell)
            try:
                hasher(h, cell.cell_contents)
            except ValueError:  # empty cell
                h.update(b"e")
    if fn.__dict__:
        _tag(h, b"a")
        hasher(h, dict(fn.__dict__))


# ----------------------------------------------------------------------------
# Classes


# ----------------------------------------------------------------------------
# Arrays and frames


def _feed_pandas(h, obj, hasher):
    from .hashing_frames import feed_pandas

    feed_pandas(h, obj, hasher, _tag, _feed_numpy)


# ----------------------------------------------------------------------------
# Values


def value_hash(obj, graph=None) -> str:
    """Content hash of any value; raises :class:`Unhashable`. ``graph`` (a
    :class:`.hashing_graph.Graph`) collects what this value shares with the
    other values hashed into it; the hash itself does not depend on it."""
    walk = _Walk(graph)

    def feed(h, x):
        _feed_value(h, x, feed, walk)

    h = xxhash.xxh3_128()
    try:
        feed(h, obj)
    except (Unhashable, RecursionError):
        raise
    except Exception as exc:  # noqa: BLE001 - a hash never crashes the cell; it runs uncached
        raise Unhashable(f"{type(obj).__name__} cannot be hashed ({type(exc).__name__}: {exc})") from None
    return h.hexdigest()


_FLOAT_TAG = b"d" + (8).to_bytes(8, "little")
_NONE_TAG = b"0" + (0).to_bytes(8, "little")
_pack_double = struct.Struct("<d").pack


def _feed_value(h, obj, hasher, walk):
    t = type(obj)
    if t is float:
        h.update(_FLOAT_TAG + _pack_double(obj))
    elif t is str and len(obj) < 1024:
        data = obj.encode("utf-8", "surrogatepass")
        h.update(b"u" + len(data).to_bytes(8, "little") + data)
    elif t is int:
        _tag(h, b"i", _int_bytes(obj))
    elif obj is None:
        h.update(_NONE_TAG)
    elif t is bool:
        _tag(h, b"b", b"\x01" if obj else b"\x00")
    elif t is complex:
        _tag(h, b"j", struct.pack("<dd", obj.real, obj.imag))
    elif t is str:
        _tag(h, b"u", obj.encode("utf-8", "surrogatepass"))
    elif t is bytes:
        _tag(h, b"y", obj)
    elif t is bytearray:  # mutable: a second visit is a back-reference, as for a list
        if walk is None or walk.visit(h, obj):
            _tag(h, b"Y", bytes(obj))
    elif obj is Ellipsis:
        _tag(h, b".")
    elif t in (tuple, list, dict, set, frozenset):
        if hasher is None:
            raise Unhashable(f"unexpected container in code: {t.__name__}")
        if not walk.visit(h, obj):
            return
        if t is dict and obj and all(type(k) is int and _is_id_of(k, v) for k, v in obj.items()):
            # {id(x): x}, as in matplotlib's transform state: ids differ per
            # process, the objects are what counts.
            _tag(h, b"DI", len(obj).to_bytes(8, "little"))
            for v in obj.values():
                hasher(h, v)
        elif t is dict:
            _tag(h, b"D", len(obj).to_bytes(8, "little"))
            for k, v in obj.items():
                _feed_value(h, k, hasher, walk)  # what hasher does, one call less per item
                _feed_value(h, v, hasher, walk)
        else:  # sets too in iteration order (list(s) shows it), unless the hash seed sets it
            _tag(h, {tuple: b"T", list: b"L", set: b"E", frozenset: b"R"}[t], len(obj).to_bytes(8, "little"))
            for x in obj if t in (tuple, list) else (seed_free(obj) or obj):
                _feed_value(h, x, hasher, walk)
    elif hasher is None:
        raise Unhashable(f"unexpected constant in code: {t.__name__}")
    else:
        _feed_object(h, obj, hasher, walk)


def _is_id_of(k: int, v) -> bool:
    """``k`` is ``id(v)``, or was in the process that pickled ``v`` (an
    unpickled matplotlib transform keeps its parents under the old process's
    ids): an address-like key (16-byte aligned, past the first megabyte)
    over an object that is not a number or string."""
    return k == id(v) or (k > 1 << 20 and not k % 16 and type(v) not in (int, float, str, bytes, bool, complex))


def _feed_object(h, obj, hasher, walk):
    t = type(obj)
    mod = t.__module__ or ""
    np = sys.modules.get("numpy")
    if mod == "ipy_lazycache.tripwire":
        raise Unhashable(repr(obj))
    if isinstance(obj, types.ModuleType):
        _once(h, obj, hasher, walk, _feed_module)
    elif isinstance(obj, types.FunctionType):
        _once(h, obj, hasher, walk, lambda sub, fn, hasher: _feed_function(sub, fn, hasher, walk))
    elif isinstance(obj, type):
        _once(h, obj, hasher, walk, _feed_class)
    elif (name := library_global(obj)) is not None:
        _tag(h, b"lg", name.encode())
        _tag(h, b"v", module_version(name.partition(":")[0]).encode())
    elif is_value_type(t):  # by content: whether a copy or the same object is held is the library's business
        _once(h, obj, hasher, walk, lambda sub, o, feed: _feed_reduced(sub, o, feed, walk))
    elif not walk.visit(h, obj):
        return
    elif isinstance(obj, (types.MethodType, types.BuiltinFunctionType)):
        _feed_method(h, obj, hasher)
    elif np is not None and isinstance(obj, (np.ndarray, np.generic)):
        _feed_array(h, obj, hasher, np)
    elif mod.startswith("pandas") and t.__name__ in ("DataFrame", "Series"):
        _feed_pandas(h, obj, hasher)
    elif mod == "pyarrow.lib" and t.__name__ == "Table":
        from .hashing_frames import feed_arrow_table

        feed_arrow_table(h, obj, hasher, _tag, _feed_numpy)
    elif mod == "polars.dataframe.frame" and t.__name__ == "DataFrame":
        from .hashing_frames import feed_polars

        feed_polars(h, obj, hasher, _tag, _feed_numpy)
    elif t is types.MappingProxyType:
        _tag(h, b"x")
        hasher(h, dict(obj))
    elif isinstance(obj, functools.partial):
        _feed_partial(h, obj, hasher)
    elif t is functools.cached_property:  # by function and name: Python 3.11's holds a lock
        _tag(h, b"cp")
        hasher(h, obj.func)
        hasher(h, {k: v for k, v in vars(obj).items() if k not in ("func", "lock")})
    elif t.__name__ == "_lru_cache_wrapper" and hasattr(obj, "__wrapped__"):
        _feed_lru(h, obj, hasher)
    elif t is ModuleAttr:
        _feed_module_attr(h, obj, hasher)
    elif mod == "matplotlib.cbook" and t.__name__ == "CallbackRegistry" and hasattr(obj, "_pickled_cids"):
        _feed_callback_registry(h, obj, hasher)
    else:
        _feed_reduced(h, obj, hasher, walk)


def _once(h, obj, hasher, walk, feed):
    """Feed a function, class or module by the digest of its own encoding,
    computed once per hash; only its name if it is already being fed
    (recursion, or classes and functions that refer to each other)."""
    key = id(obj)
    if key in walk.stack:
        _tag(h, b"@", getattr(obj, "__qualname__", getattr(obj, "__name__", "")).encode())
        return
    digest = walk.done.get(key)
    if digest is None:
        walk.stack.add(key)
        try:
            sub = xxhash.xxh3_128()
            feed(sub, obj, hasher)
            digest = walk.done[key] = sub.hexdigest()
        finally:
            walk.stack.discard(key)
    _tag(h, b"h", digest.encode())


def _feed_reduced(h, obj, hasher, walk):
    """Any other object by what pickling it would record, hashed structurally:
    instances of notebook classes (dataclasses, namedtuples, ``__slots__``,
    subclasses of ``str``/``list``/``dict``...) by their class's code and their
    state; library objects by their reduce output. Pickle bytes would carry
    bytecode and per-process ids, and never hit after a restart."""
    try:
        slotted = "__slotnames__" in type(obj).__dict__
        found = State(obj) if hasattr(type(obj), "__getattr__") else None
        try:
            reduced = obj.__reduce_ex__(4)
        except Exception:  # noqa: BLE001 - any failure to reduce
            _feed_pickled(h, obj)  # cloudpickle can do more, or raises Unhashable
            return
        finally:
            if not slotted and "__slotnames__" in type(obj).__dict__:
                unslot(type(obj))  # copyreg cached it while reducing: the user's class stays as found
            if found is not None:
                found.put_back()
        if isinstance(reduced, str):  # a module-level singleton
            _tag(h, b"G", f"{getattr(obj, '__module__', None) or type(obj).__module__}:{reduced}".encode())
            return
        _tag(h, b"X", len(reduced).to_bytes(8, "little"))
        hasher(h, type(obj))
        parts = list(reduced) + [None] * (5 - len(reduced))
        func, args, state, items, pairs = parts[:5]
        hasher(h, func)
        hasher(h, args)
        hasher(h, without_cache_flags(obj, state))
        hasher(h, None if items is None else list(items))
        hasher(h, None if pairs is None else [tuple(p) for p in pairs])
        feed_unpickled_state(h, obj, state, hasher)  # what the pickle leaves out but code sees
        if walk is not None and walk.graph is not None:
            walk.graph.keyed_state(obj, state, pairs is not None)
    except Unhashable:
        raise
    except RecursionError:
        raise
    except Exception as exc:  # noqa: BLE001 - a reduce that returns something odd
        raise Unhashable(f"{type(obj).__name__} cannot be hashed ({type(exc).__name__}: {exc})") from None


def _feed_callback_registry(h, reg, hasher):
    """What matplotlib's ``CallbackRegistry.__getstate__`` returns, without
    calling it: it advances the registry's id counter, so every figure would
    hash differently each time (and hashing would change the user's object)."""
    _tag(h, b"CR")
    hasher(h, type(reg))
    state = {k: v for k, v in vars(reg).items() if k not in ("_cid_gen", "_func_cid_map", "callbacks")}
    hasher(h, state)
    kept = {s: {cid: proxy() for cid, proxy in d.items() if cid in reg._pickled_cids} for s, d in reg.callbacks.items()}
    hasher(h, kept)


def _feed_pickled(h, obj):
    import cloudpickle

    try:
        data = cloudpickle.dumps(obj, protocol=5)
    except Exception as exc:  # noqa: BLE001 - any pickling error
        raise Unhashable(f"{type(obj).__name__} cannot be hashed or pickled ({exc})") from None
    _tag(h, b"P", f"{type(obj).__module__}:{type(obj).__qualname__}".encode())
    _tag(h, b"p", data)


# ----------------------------------------------------------------------------
# The key


def cell_key(code_digest: str, ref_hashes: dict, options: dict | None = None) -> str:
    """The cache key: format version, code, sorted ref hashes, key options."""
    h = xxhash.xxh3_128()
    _feed_value(h, FORMAT, None, None)
    _feed_value(h, code_digest, None, None)
    for name in sorted(ref_hashes):
        _feed_value(h, name, None, None)
        _feed_value(h, ref_hashes[name], None, None)
    for name in sorted(options or {}):
        _feed_value(h, name, None, None)
        _feed_value(h, str(options[name]), None, None)
    return h.hexdigest()


def module_input(name: str):
    """A module an ``import`` reads, the same whether it is loaded yet or not:
    its file when the notebook's folder provides it (the import reads it),
    with the files of the local modules it imports (its closure), else its
    name."""
    loaded = sys.modules.get(name)
    path = getattr(loaded, "__file__", None) if loaded is not None else module_file(name)
    if path is not None and sources.is_local_file(path):
        if loaded is not None:  # the code as imported (stale: Unhashable), plus values changed since
            state = ("file", name, import_state(loaded))
        else:
            try:
                state = ("file", name, digest_file(path))
            except OSError:
                return ("unreadable", name)
        imported = closure_digest(name, path)
        return state + (imported,) if imported else state
    # Installed: by name only, so a site whose Pyodide has another version
    # (or none) can still hit; the version is checked at lookup instead
    # (cache.plan records it, the magic compares).
    return ("installed", name)


import_watch.install(module_values_digest)  # record local modules' values as they are imported (import_state)
