"""Platform-independent content hashes of code and values.

Everything is fed into one xxh3-128 stream as a type-tagged, length-prefixed,
little-endian encoding, so the same cell with the same refs gives the same key
under any CPython from 3.10 and under Pyodide. Never bytecode, never
``ast.dump`` (both change between Python versions).
"""

from __future__ import annotations

import ast
import inspect
import struct
import sys
import textwrap
import types

import xxhash

FORMAT = "ipy_lazycache/1"


class Unhashable(Exception):
    """A value whose content cannot be hashed; the cell must run uncached."""


def digest_chunks(parts, new=xxhash.xxh3_128) -> str:
    """Digest of bytes given as chunks: xxh3-128 for integrity, or any
    hashlib-style constructor (``hashlib.sha256`` under signing)."""
    h = new()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def digest_file(path, new=xxhash.xxh3_128) -> str:
    """:func:`digest_chunks` of a file, read in blocks."""
    h = new()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


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
        _feed_value(h, node, None, {})


def code_hash(source_or_tree) -> str:
    """Hash of code from a canonical walk of its AST: formatting and comments
    do not matter, and the encoding is the same on every Python version."""
    tree = ast.parse(source_or_tree) if isinstance(source_or_tree, str) else source_or_tree
    h = xxhash.xxh3_128()
    _feed_ast(h, tree)
    return h.hexdigest()


# ----------------------------------------------------------------------------
# Values


def _tag(h, tag: bytes, payload: bytes = b""):
    h.update(tag)
    h.update(len(payload).to_bytes(8, "little"))
    h.update(payload)


def _int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 8) // 8 or 1, "little", signed=True)


_module_versions: dict[str, str] = {}


def module_version(name: str) -> str:
    """Distribution version of a module's top-level package, or ''."""
    top = name.split(".")[0]
    if top not in _module_versions:
        version = getattr(sys.modules.get(top), "__version__", None)
        if not isinstance(version, str):
            try:
                from importlib.metadata import version as dist_version

                version = dist_version(top)
            except Exception:
                version = ""
        _module_versions[top] = version
    return _module_versions[top]


def _is_notebook(obj) -> bool:
    return getattr(obj, "__module__", None) == "__main__"


def function_source(fn) -> str | None:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None


def _feed_function(h, fn, hasher):
    fn = inspect.unwrap(fn) if hasattr(fn, "__wrapped__") else fn
    if not _is_notebook(fn) or not isinstance(fn, types.FunctionType):
        _tag(h, b"f", f"{getattr(fn, '__module__', '')}:{getattr(fn, '__qualname__', repr(fn))}".encode())
        _tag(h, b"v", module_version(getattr(fn, "__module__", "") or "").encode())
        owner = getattr(fn, "__self__", None)  # ``lst.append`` depends on lst
        if owner is not None and not isinstance(owner, types.ModuleType):
            hasher(h, owner)
        return
    source = function_source(fn)
    if source is None:
        raise Unhashable(f"the source of function {fn.__qualname__} is not available")
    _tag(h, b"F", fn.__qualname__.encode())
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a lambda cut out of a larger expression
        tree = None
    if tree is not None:
        _feed_ast(h, tree)
    else:
        _tag(h, b"s", source.encode("utf-8", "surrogatepass"))
    # The function's own refs: globals it reads, and closure cells.
    from .analysis import free_names

    reads = free_names(tree) if tree is not None else set(fn.__code__.co_names)
    g = fn.__globals__
    for name in sorted(reads):
        if name in g and name != fn.__name__:
            _tag(h, b"g", name.encode())
            hasher(h, g[name])
    # Defaults were evaluated when the function was defined; their names in
    # the source may since point elsewhere.
    hasher(h, (fn.__defaults__, fn.__kwdefaults__))
    if fn.__closure__:
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
            _tag(h, b"c", name.encode())
            try:
                hasher(h, cell.cell_contents)
            except ValueError:  # empty cell
                h.update(b"e")


_CLASS_SKIP = frozenset(
    {"__dict__", "__weakref__", "__module__", "__qualname__", "__firstlineno__", "__static_attributes__"}
)


def _feed_class(h, cls, hasher):
    if not _is_notebook(cls):
        _tag(h, b"t", f"{cls.__module__}:{cls.__qualname__}".encode())
        _tag(h, b"v", module_version(cls.__module__ or "").encode())
        return
    _tag(h, b"C", cls.__qualname__.encode())
    for base in cls.__bases__:
        hasher(h, base)
    for name in sorted(cls.__dict__):
        if name in _CLASS_SKIP:
            continue
        value = cls.__dict__[name]
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        elif isinstance(value, property):
            value = (value.fget, value.fset, value.fdel)
        _tag(h, b"a", name.encode())
        hasher(h, value)


def _feed_numpy(h, arr):
    import numpy as np

    if arr.dtype.hasobject:
        raise TypeError("object array")  # falls back to pickling
    dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    _tag(h, b"A", dtype.str.replace("=", "<").replace("|", "<").encode())
    if dtype.fields is not None or dtype.subdtype is not None:
        # '|V8' alone would not tell [('a','<i4'),('b','<i4')] from ('<f8').
        _tag(h, b"V", repr(dtype.newbyteorder("<").descr).encode())
        if dtype.fields is not None and arr.dtype.byteorder != ">":
            dtype = dtype.newbyteorder("<")
    _tag(h, b"S", b"".join(_int_bytes(n) + b"," for n in arr.shape))
    if dtype != arr.dtype:
        arr = arr.astype(dtype)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)  # a copy, only for strided views
    # A uint8 view hashes the buffer in place, whatever the dtype (datetimes
    # and structured dtypes do not export a plain buffer).
    h.update(arr.reshape(-1).view(np.uint8))


def _feed_pandas(h, obj, hasher):
    from .hashing_frames import feed_pandas

    feed_pandas(h, obj, hasher, _tag, _feed_numpy)


def value_hash(obj) -> str:
    """Content hash of any value; raises :class:`Unhashable`."""
    stack: set[int] = set()

    def feed(h, x):
        _feed_value(h, x, feed, stack)

    h = xxhash.xxh3_128()
    feed(h, obj)
    return h.hexdigest()


def _feed_value(h, obj, hasher, stack):
    t = type(obj)
    if obj is None:
        _tag(h, b"0")
    elif t is bool:
        _tag(h, b"b", b"\x01" if obj else b"\x00")
    elif t is int:
        _tag(h, b"i", _int_bytes(obj))
    elif t is float:
        _tag(h, b"d", struct.pack("<d", obj))
    elif t is complex:
        _tag(h, b"j", struct.pack("<dd", obj.real, obj.imag))
    elif t is str:
        _tag(h, b"u", obj.encode("utf-8", "surrogatepass"))
    elif t in (bytes, bytearray):
        _tag(h, b"y" if t is bytes else b"Y", bytes(obj))
    elif obj is Ellipsis:
        _tag(h, b".")
    elif t in (tuple, list, dict, set, frozenset):
        if hasher is None:
            raise Unhashable(f"unexpected container in code: {t.__name__}")
        if id(obj) in stack:  # a cycle
            _tag(h, b"@")
            return
        stack.add(id(obj))
        try:
            if t is dict:
                _tag(h, b"D", len(obj).to_bytes(8, "little"))
                for k, v in obj.items():
                    hasher(h, k)
                    hasher(h, v)
            elif t in (set, frozenset):
                items = sorted(_sub_hash(x, hasher) for x in obj)
                _tag(h, b"E" if t is set else b"R", "".join(items).encode())
            else:
                _tag(h, b"T" if t is tuple else b"L", len(obj).to_bytes(8, "little"))
                for x in obj:
                    hasher(h, x)
        finally:
            stack.discard(id(obj))
    elif hasher is None:
        raise Unhashable(f"unexpected constant in code: {t.__name__}")
    else:
        _feed_object(h, obj, hasher, stack)


def _sub_hash(obj, hasher) -> str:
    h = xxhash.xxh3_128()
    hasher(h, obj)
    return h.hexdigest()


def _feed_object(h, obj, hasher, stack):
    t = type(obj)
    mod = t.__module__
    if mod == "ipy_lazycache.tripwire":
        raise Unhashable(repr(obj))
    if isinstance(obj, types.ModuleType):
        _tag(h, b"M", obj.__name__.encode())
        _tag(h, b"v", module_version(obj.__name__).encode())
    elif isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        if isinstance(obj, types.MethodType):
            hasher(h, obj.__self__)
            obj = obj.__func__
        _once_on_stack(h, obj, stack, _feed_function, hasher)
    elif isinstance(obj, type):
        _once_on_stack(h, obj, stack, _feed_class, hasher)
    elif mod == "numpy" and hasattr(obj, "dtype") and hasattr(obj, "shape"):
        import numpy as np

        _tag(h, b"n", t.__name__.encode())
        try:
            _feed_numpy(h, np.asarray(obj))
        except TypeError:  # object arrays
            _feed_pickled(h, obj)
    elif mod.startswith("pandas") and t.__name__ in ("DataFrame", "Series"):
        _feed_pandas(h, obj, hasher)
    elif mod == "pyarrow.lib" and t.__name__ == "Table":
        from .hashing_frames import feed_arrow_table

        feed_arrow_table(h, obj, hasher, _tag, _feed_numpy)
    elif mod == "polars.dataframe.frame" and t.__name__ == "DataFrame":
        from .hashing_frames import feed_polars

        feed_polars(h, obj, hasher, _tag, _feed_numpy)
    elif _is_notebook(t) and hasattr(obj, "__dict__") and not hasattr(t, "__slots__"):
        # Instances of notebook classes: the class by its code, then the state.
        # cloudpickle bytes would embed bytecode, which differs per Python.
        _tag(h, b"O")
        hasher(h, t)
        hasher(h, dict(sorted(vars(obj).items())))
    else:
        _feed_pickled(h, obj)


def _once_on_stack(h, obj, stack, feed, hasher):
    """Feed a function or class, or only its name if it is already being fed
    (recursion, or classes and functions that refer to each other)."""
    if id(obj) in stack:
        _tag(h, b"@", obj.__qualname__.encode())
        return
    stack.add(id(obj))
    try:
        feed(h, obj, hasher)
    finally:
        stack.discard(id(obj))


def _feed_pickled(h, obj):
    import cloudpickle

    try:
        data = cloudpickle.dumps(obj, protocol=5)
    except Exception as exc:
        raise Unhashable(f"{type(obj).__name__} cannot be hashed or pickled ({exc})") from None
    _tag(h, b"P", f"{type(obj).__module__}:{type(obj).__qualname__}".encode())
    _tag(h, b"p", data)


# ----------------------------------------------------------------------------
# The key


def cell_key(code_digest: str, ref_hashes: dict, options: dict | None = None) -> str:
    """The cache key: format version, code, sorted ref hashes, key options."""
    h = xxhash.xxh3_128()
    _feed_value(h, FORMAT, None, set())
    _feed_value(h, code_digest, None, set())
    for name in sorted(ref_hashes):
        _feed_value(h, name, None, set())
        _feed_value(h, ref_hashes[name], None, set())
    for name in sorted(options or {}):
        _feed_value(h, name, None, set())
        _feed_value(h, str(options[name]), None, set())
    return h.hexdigest()
