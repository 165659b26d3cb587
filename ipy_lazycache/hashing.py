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

from . import sources

#: Part of every key. Raised when entries written before would restore
#: differently now (3: in-place updates, views and generators of this round),
#: so no old entry can hit.
FORMAT = "ipy_lazycache/3"


def _watch_imports():
    from . import import_watch

    import_watch.install()


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


def _tag(h, tag: bytes, payload: bytes = b""):
    n = len(payload)
    if n > 4096:  # no copy of large payloads
        h.update(tag)
        h.update(n.to_bytes(8, "little"))
        h.update(payload)
    else:  # one call: the same bytes, fewer Python calls on the hot path
        h.update(tag + n.to_bytes(8, "little") + payload)


def _int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 8) // 8 or 1, "little", signed=True)


_module_versions: dict[str, str] = {}


def module_version(name: str) -> str:
    """Distribution version of a module's top-level package, or ''."""
    top = name.split(".")[0]
    if top not in _module_versions:
        version = getattr(sys.modules.get(top), "__version__", None)
        if not isinstance(version, str):
            version = _dist_version(top)
        _module_versions[top] = version
    return _module_versions[top]


def _dist_version(top: str) -> str:
    """Version of the distribution that installs module ``top`` (its name may
    differ: ``yaml`` comes from PyYAML), or '' for the standard library."""
    if top in sys.builtin_module_names or top in getattr(sys, "stdlib_module_names", ()):
        return ""
    try:
        from importlib import metadata

        try:
            return metadata.version(top)
        except metadata.PackageNotFoundError:
            names = metadata.packages_distributions().get(top) or []
            return ",".join(sorted(f"{n}=={metadata.version(n)}" for n in set(names)))
    except Exception:  # noqa: BLE001 - broken metadata: no version, as before
        return ""


def _feed_named(h, obj, module: str | None = None):
    """Installed code (a function, class or module): by where it lives and the
    version of the distribution that provides it."""
    module = module if module is not None else getattr(obj, "__module__", None) or ""
    _tag(h, b"f", f"{module}:{getattr(obj, '__qualname__', None) or getattr(obj, '__name__', repr(obj))}".encode())
    _tag(h, b"v", module_version(module).encode())


# ----------------------------------------------------------------------------
# Modules


#: Local modules seen: name -> (spec, (mtime_ns, size), digest of the file).
_module_files: dict[str, tuple] = {}

_DUNDER_SKIP = frozenset({"__builtins__", "__file__", "__cached__", "__loader__", "__spec__", "__path__"})


def local_module_digest(module) -> str:
    """Digest of a local module's file as imported. Raises :class:`Unhashable`
    when the file changed on disk after the import: the module in memory runs
    the old code, and keying it by the new file would be a wrong hit later."""
    import os

    name, path = module.__name__, module.__file__
    try:
        st = os.stat(path)
    except OSError:
        raise Unhashable(f"module {name}'s file {path} is gone; reload it or restart the kernel") from None
    stamp = (st.st_mtime_ns, st.st_size)
    seen = _module_files.get(name)
    if seen is not None and seen[0] is module.__spec__:  # importlib.reload makes a new spec
        if seen[1] != stamp:
            raise Unhashable(f"module {name} changed on disk after it was imported; importlib.reload it or restart")
        return seen[2]
    if _pyc_disagrees(module, st):
        raise Unhashable(f"module {name} changed on disk after it was imported; importlib.reload it or restart")
    digest = digest_file(path)
    _module_files[name] = (module.__spec__, stamp, digest)
    return digest


def _process_start() -> float:
    """When this process started (Linux), else when this module was imported."""
    global _STARTED
    if _STARTED is None:
        try:
            with open("/proc/self/stat") as f:
                ticks = int(f.read().rsplit(")", 1)[1].split()[19])
            with open("/proc/stat") as f:
                boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
            import os

            _STARTED = boot + ticks / os.sysconf("SC_CLK_TCK")
        except Exception:  # noqa: BLE001 - not Linux
            _STARTED = _IMPORTED
    return _STARTED


_STARTED = None
_IMPORTED = __import__("time").time()


def _pyc_disagrees(module, st) -> bool:
    """The import wrote (or checked) a pyc for the source it read: a pyc
    recording another mtime or size than the file's now means the file changed
    since, if it changed after this process started (before, the import read
    the current file, and the pyc is only one it could not rewrite)."""
    if st.st_mtime < _process_start() - 1:
        return False
    cached = getattr(module, "__cached__", None)
    try:
        with open(cached, "rb") as f:
            header = f.read(16)
    except (OSError, TypeError):
        return False
    if len(header) < 16 or int.from_bytes(header[4:8], "little") != 0:  # hash-based pycs: no stamp
        return False
    mtime, size = int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little")
    return (mtime, size) != (int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF)


def module_values_digest(module) -> str:
    """Digest of what a local module holds (all but its import bookkeeping)."""
    return value_hash({k: v for k, v in vars(module).items() if k not in _DUNDER_SKIP})


def import_state(module) -> str:
    """What ``import`` of a loaded local module gives: its file (raises
    :class:`Unhashable` when edited since the import), plus its values when
    code changed them after the import (:mod:`.import_watch`). Unchanged, the
    key is the same as before the module is loaded (its file), so a cell that
    imports hits on its second run; changed, the key says so."""
    from . import import_watch

    digest = local_module_digest(module)
    now = module_values_digest(module)
    snap = import_watch.snapshots.get(module.__name__)
    if snap is not None and snap[0] is module.__spec__ and snap[1] == now:
        return digest
    return f"{digest}+{now}"


def _feed_module(h, module, hasher):
    """Installed modules by name and version; the notebook's own modules by
    their source and every value they hold now (``cfg.THRESHOLD = 2`` at
    runtime changes what the module gives)."""
    name = module.__name__
    if name == "__main__" or not sources.is_local_module(module):
        _tag(h, b"M", name.encode())
        _tag(h, b"v", module_version(name).encode())
        return
    _tag(h, b"ML", name.encode())
    _tag(h, b"s", local_module_digest(module).encode())
    for attr, value in list(vars(module).items()):
        if attr in _DUNDER_SKIP:
            continue
        _tag(h, b"g", attr.encode())
        hasher(h, value)


# ----------------------------------------------------------------------------
# Functions


def _feed_function(h, fn, hasher):
    """Everything that decides what a notebook function does: its own code
    (its node, not its line, not what it wraps), the globals it reads,
    defaults, closure cells and attributes (``__wrapped__`` among them)."""
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
        from .analysis import free_names, imports_in, module_input, reads_globals_unseen

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
            try:
                hasher(h, cell.cell_contents)
            except ValueError:  # empty cell
                h.update(b"e")
    if fn.__dict__:
        _tag(h, b"a")
        hasher(h, dict(fn.__dict__))


def injected_builtin(name: str):
    """``(value,)`` for a name the notebook put into builtins (``builtins.LIMIT
    = 3``, then read by a bare name): data, or a notebook function. None for
    Python's and IPython's own builtins (functions, classes, ``copyright``...),
    which are the platform's: keying them would tie keys to its IPython."""
    value = _BUILTINS.get(name, _NO_BUILTIN)
    if type(value) in _PLATFORM_BUILTINS or name.startswith("__"):  # the common case first: len, print, int
        return None
    if value is _NO_BUILTIN or value is Ellipsis or value is NotImplemented or isinstance(value, types.ModuleType):
        return None
    if callable(value):
        code = getattr(value, "__code__", None)
        if not (isinstance(code, types.CodeType) and sources.is_notebook_code(code)):
            return None
    return (value,)


_NO_BUILTIN = object()
_BUILTINS = vars(__import__("builtins"))
_PLATFORM_BUILTINS = frozenset({types.BuiltinFunctionType, type})


def _feed_library_function(h, fn, hasher):
    """A function of an installed package, by where its code lives and the
    package's version (``functools.wraps`` copies the wrapped function's
    names onto a wrapper: the code's own module is used). What such a function
    was made around is keyed too: the functions and classes in its closure
    (a decorator without ``wraps``) and in its attributes (``__wrapped__``,
    ``singledispatch``'s registry); its other state is the library's own."""
    module = fn.__globals__.get("__name__") or getattr(fn, "__module__", None) or ""
    _tag(h, b"f", f"{module}:{fn.__qualname__}".encode())
    _tag(h, b"v", module_version(module).encode())
    made_around = list(vars(fn).items())
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            made_around.append((name, cell.cell_contents))
        except ValueError:  # empty cell
            pass
    for name, value in made_around:
        owner = getattr(value, "__self__", None)
        if isinstance(value, (types.MethodType, types.BuiltinMethodType)) and not (
                owner is None or isinstance(owner, (types.ModuleType, type)) or _is_notebook(type(owner))):
            continue  # the library's own object's method (singledispatch's cache.clear): its state, not the notebook's
        if callable(value) or isinstance(value, (dict, types.MappingProxyType)):
            _tag(h, b"a", name.encode())
            hasher(h, value)


def _feed_bytecode(h, code, hasher):
    _tag(h, b"B", f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}".encode())
    _tag(h, b"c", bytes(code.co_code))
    counts = (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)
    _tag(h, b"n", b"".join(_int_bytes(n) + b"," for n in counts))
    hasher(h, (code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_bytecode(h, const, hasher)
        else:
            hasher(h, const)


def _code_names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _module_owned(method) -> bool:
    """A bound method of an object that an installed module holds as a global
    (``random.uniform``, ``np.random.normal``, also when wrapped): the
    object's state is ambient process state (DESIGN §9), not the method's."""
    owner = method.__self__
    func = getattr(method, "__func__", None)
    for module in {getattr(func, "__module__", None), getattr(method, "__module__", None), type(owner).__module__}:
        mod = sys.modules.get(module or "")
        if mod is None or sources.is_local_module(mod):
            continue
        if any(value is owner for value in list(vars(mod).values())):  # random._inst, numpy.random.mtrand._rand
            return True
    return False


def _feed_method(h, method, hasher):
    owner = method.__self__
    if owner is None or isinstance(owner, types.ModuleType) or _module_owned(method):
        module = getattr(getattr(method, "__func__", method), "__module__", None) or type(owner).__module__
        _feed_named(h, method, module)
        return
    _tag(h, b"m", method.__name__.encode())
    hasher(h, owner)  # ``lst.append`` depends on lst
    func = getattr(method, "__func__", None)
    if func is not None:
        hasher(h, func)
    else:
        _feed_named(h, method, type(owner).__module__)


def _feed_partial(h, p, hasher):
    _tag(h, b"Q")
    hasher(h, type(p))
    hasher(h, (p.func, p.args, dict(p.keywords)))
    hasher(h, dict(getattr(p, "__dict__", None) or {}))


def _feed_lru(h, fn, hasher):
    _tag(h, b"K")
    params = fn.cache_parameters() if hasattr(fn, "cache_parameters") else {}
    hasher(h, dict(sorted(params.items())))
    hasher(h, fn.__wrapped__)
    hasher(h, {k: v for k, v in vars(fn).items() if k not in _COPIED_BY_WRAPS})


#: What ``functools.update_wrapper`` copies from the wrapped function (keyed
#: with it), and lru_cache's own ``cache_parameters``.
_COPIED_BY_WRAPS = frozenset(functools.WRAPPER_ASSIGNMENTS) | {"__type_params__", "__wrapped__", "cache_parameters"}


# ----------------------------------------------------------------------------
# Classes


_CLASS_SKIP = frozenset(
    {"__dict__", "__weakref__", "__module__", "__qualname__", "__firstlineno__", "__static_attributes__"}
    # copyreg caches __slotnames__ on a class when an instance is pickled
    | {"__slotnames__"}
)


def _is_notebook(obj) -> bool:
    return sources.is_notebook_module_name(getattr(obj, "__module__", None))


def _generated(cls, value) -> bool:
    """Methods a dataclass or namedtuple made from its fields (exec'd code,
    or library wrappers of it), which are keyed themselves: their code and
    wrappers differ per Python version."""
    if "__dataclass_fields__" not in cls.__dict__ and "_fields" not in cls.__dict__:
        return False
    while hasattr(value, "__wrapped__"):
        value = value.__wrapped__
    code = getattr(value, "__code__", None)
    if code is None:
        return False
    name = code.co_filename
    return not sources.is_notebook_code(code) or name.startswith("<") and not name.startswith("<ipython-input")


#: Annotations: a dict in the class up to 3.13, a function from 3.14 (PEP 649).
_ANNOTATIONS = frozenset({"__annotations__", "__annotate__", "__annotate_func__", "__annotations_cache__"})


def _class_annotations(cls):
    d = cls.__dict__
    if "__annotations__" in d:
        return d["__annotations__"]
    if not any(k in d for k in _ANNOTATIONS):
        return None
    try:
        return cls.__annotations__
    except Exception:  # noqa: BLE001 - a name the annotations use is missing: key their code
        return d.get("__annotate__") or d.get("__annotate_func__")


def _feed_class(h, cls, hasher):
    if not _is_notebook(cls):
        _feed_named(h, cls)
        return
    _tag(h, b"C", cls.__qualname__.encode())
    kind = _class_kind(cls)
    if type(cls) is not type:
        hasher(h, type(cls))
    for base in cls.__bases__:
        hasher(h, base)
    for name in sorted(cls.__dict__):
        if name in _CLASS_SKIP:
            continue
        value = cls.__dict__[name]
        if isinstance(value, (types.MemberDescriptorType, types.GetSetDescriptorType)):
            continue  # made by __slots__, which is keyed
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        elif isinstance(value, property):
            value = (value.fget, value.fset, value.fdel)
        if name in _ANNOTATIONS or name in _VERSIONED.get(kind, ()) or kind == "namedtuple" and name in cls._fields:
            continue  # keyed below, or by the fields, which Python's versions lay out differently
        if _generated(cls, value):
            continue
        _tag(h, b"a", name.encode())
        hasher(h, value)
    annotations = _class_annotations(cls)
    if annotations:
        _tag(h, b"an")
        hasher(h, annotations)
    if "__dataclass_fields__" in cls.__dict__:
        _feed_dataclass_spec(h, cls, hasher)


def _class_kind(cls) -> str:
    if "__dataclass_fields__" in cls.__dict__:
        return "dataclass"
    return "namedtuple" if "_fields" in cls.__dict__ and issubclass(cls, tuple) else ""


#: What dataclasses and namedtuples put in a class that differs between Python
#: versions for the same code (new parameters, ``__replace__`` from 3.13, a
#: docstring made from the signature). A dataclass is keyed by its fields and
#: non-default parameters instead (:func:`_feed_dataclass_spec`).
_VERSIONED = {
    "dataclass": frozenset({"__dataclass_fields__", "__dataclass_params__", "__replace__", "__doc__"}),
    "namedtuple": frozenset({"__replace__"}),
}

_PARAM_DEFAULTS = {
    "init": True, "repr": True, "eq": True, "order": False, "unsafe_hash": False, "frozen": False,
    "match_args": True, "kw_only": False, "slots": False, "weakref_slot": False,
}


def _feed_dataclass_spec(h, cls, hasher):
    import dataclasses

    params = cls.__dict__.get("__dataclass_params__")
    _tag(h, b"DC")
    hasher(h, {k: getattr(params, k) for k, v in _PARAM_DEFAULTS.items() if getattr(params, k, v) != v})
    for f in cls.__dict__["__dataclass_fields__"].values():
        kw_only = getattr(f, "kw_only", False)
        spec = (
            f.name, getattr(getattr(f, "_field_type", None), "name", None), f.type, f.default, f.default_factory,
            f.init, f.repr, f.hash, f.compare, dict(f.metadata), kw_only is True,
        )
        hasher(h, tuple(None if v is dataclasses.MISSING else v for v in spec))


# ----------------------------------------------------------------------------
# Arrays and frames


def _feed_numpy(h, arr, order: bool = False):
    """dtype, shape, (``order``: C or Fortran layout) and the bytes in C order."""
    import numpy as np

    if arr.dtype.hasobject:
        raise TypeError("object array")
    dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    _tag(h, b"A", dtype.str.replace("=", "<").replace("|", "<").encode())
    if dtype.fields is not None or dtype.subdtype is not None:
        # '|V8' alone would not tell [('a','<i4'),('b','<i4')] from ('<f8').
        _tag(h, b"V", repr(dtype.newbyteorder("<").descr).encode())
        if dtype.fields is not None and arr.dtype.byteorder != ">":
            dtype = dtype.newbyteorder("<")
    _tag(h, b"S", b"".join(_int_bytes(n) + b"," for n in arr.shape))
    if order:  # np.ascontiguousarray, .flags and .strides tell them apart
        _tag(h, b"o", b"F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else b"C")
    if dtype != arr.dtype:
        arr = arr.astype(dtype)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)  # a copy, only for strided views
    # A uint8 view hashes the buffer in place, whatever the dtype (datetimes
    # and structured dtypes do not export a plain buffer).
    h.update(arr.reshape(-1).view(np.uint8))


def _feed_array(h, obj, hasher, np):
    """numpy arrays and scalars; subclasses by their class and attributes too."""
    t = type(obj)
    _tag(h, b"n", t.__name__.encode())
    if t.__module__ != "numpy":
        hasher(h, t)
    arr = np.asarray(obj)
    if arr.dtype.hasobject:
        _tag(h, b"S", b"".join(_int_bytes(n) + b"," for n in arr.shape))
        hasher(h, arr.reshape(-1).tolist())
    else:
        _feed_numpy(h, arr, order=True)
    state = getattr(obj, "__dict__", None)
    if state and t.__module__ != "numpy":
        hasher(h, dict(state))


def _feed_pandas(h, obj, hasher):
    from .hashing_frames import feed_pandas

    feed_pandas(h, obj, hasher, _tag, _feed_numpy)


# ----------------------------------------------------------------------------
# Values


class _Walk:
    """One hash's traversal. Like pickle's memo, an object already fed (a
    container, an instance, an array) is fed again only as a reference to its
    first visit: shared objects cost one walk (an object graph such as a
    figure's is a DAG, exponential as a tree), cycles end, and aliasing is in
    the key (``[x, x]`` is not ``[x, copy(x)]``). Visited objects are kept
    alive so that a temporary's id is never reused within the walk.
    Functions, classes and modules are fed by a digest computed once."""

    __slots__ = ("done", "keep", "seen", "stack")

    def __init__(self):
        self.stack: set[int] = set()  # functions, classes, modules being fed
        self.done: dict[int, str] = {}
        self.seen: dict[int, int] = {}  # id -> order of first visit
        self.keep: list = []  # the visited objects, alive until the walk ends

    def visit(self, h, obj) -> bool:
        """False (and a back-reference fed) when ``obj`` was fed already."""
        n = len(self.seen)
        first = self.seen.setdefault(id(obj), n)
        if first != n:
            _tag(h, b"^", first.to_bytes(8, "little"))
            return False
        self.keep.append(obj)
        return True


def value_hash(obj) -> str:
    """Content hash of any value; raises :class:`Unhashable`."""
    walk = _Walk()

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
    elif t in (bytes, bytearray):
        _tag(h, b"y" if t is bytes else b"Y", bytes(obj))
    elif obj is Ellipsis:
        _tag(h, b".")
    elif t in (tuple, list, dict, set, frozenset):
        if hasher is None:
            raise Unhashable(f"unexpected container in code: {t.__name__}")
        if not walk.visit(h, obj):
            return
        if t is dict and obj and all(type(k) is int and k == id(v) for k, v in obj.items()):
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
        else:  # sets too in iteration order: list(s) shows it
            _tag(h, {tuple: b"T", list: b"L", set: b"E", frozenset: b"R"}[t], len(obj).to_bytes(8, "little"))
            for x in obj:
                _feed_value(h, x, hasher, walk)
    elif hasher is None:
        raise Unhashable(f"unexpected constant in code: {t.__name__}")
    else:
        _feed_object(h, obj, hasher, walk)


def _feed_object(h, obj, hasher, walk):
    t = type(obj)
    mod = t.__module__ or ""
    np = sys.modules.get("numpy")
    if mod == "ipy_lazycache.tripwire":
        raise Unhashable(repr(obj))
    if isinstance(obj, types.ModuleType):
        _once(h, obj, hasher, walk, _feed_module)
    elif isinstance(obj, types.FunctionType):
        _once(h, obj, hasher, walk, _feed_function)
    elif isinstance(obj, type):
        _once(h, obj, hasher, walk, _feed_class)
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
        try:
            reduced = obj.__reduce_ex__(4)
        except Exception:  # noqa: BLE001 - any failure to reduce
            _feed_pickled(h, obj)  # cloudpickle can do more, or raises Unhashable
            return
        if isinstance(reduced, str):  # a module-level singleton
            _tag(h, b"G", f"{getattr(obj, '__module__', None) or type(obj).__module__}:{reduced}".encode())
            return
        _tag(h, b"X", len(reduced).to_bytes(8, "little"))
        hasher(h, type(obj))
        parts = list(reduced) + [None] * (5 - len(reduced))
        func, args, state, items, pairs = parts[:5]
        hasher(h, func)
        hasher(h, args)
        hasher(h, state)
        hasher(h, None if items is None else list(items))
        hasher(h, None if pairs is None else [tuple(p) for p in pairs])
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


class ModuleAttr:
    """A value a cell reads through a module (``cfg.THRESHOLD``, ``np.pi``).
    Through the notebook's own modules, hashed like any value. Through an
    installed module, a value that cannot be hashed (``sys.stdout``) is the
    library's own object: keyed by the module's version instead of making
    every cell that prints through it uncacheable."""

    ABSENT = object()
    __slots__ = ("local", "module", "name", "value")

    def __init__(self, module, value, name=""):
        self.module, self.value, self.name = module.__name__, value, name
        self.local = sources.is_local_module(module)


def _feed_module_attr(h, attr, hasher):
    if attr.value is ModuleAttr.ABSENT:
        _tag(h, b"MA0")
        return
    _tag(h, b"MA")
    if attr.local:
        hasher(h, attr.value)
        return
    value = attr.value
    code = getattr(value, "__code__", None)
    if attr.name and (callable(value) or isinstance(value, type)) and not (
            code is not None and sources.is_notebook_code(code)):
        # An installed module's function or class, by where it is reached and
        # the module's version: platforms patch some (Pyodide's time.sleep is
        # a wrapper), and the key must not depend on the platform.
        _tag(h, b"f", f"{attr.module}:{attr.name}".encode())
        _tag(h, b"v", module_version(attr.module).encode())
        return
    sub = xxhash.xxh3_128()
    try:
        hasher(sub, attr.value)
    except Unhashable:
        _feed_named(h, type(attr.value))
        _tag(h, b"v", module_version(attr.module).encode())
        return
    _tag(h, b"h", sub.hexdigest().encode())


_watch_imports()  # record local modules' values as they are imported (import_state)
