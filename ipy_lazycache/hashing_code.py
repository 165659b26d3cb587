"""Hashing code other than a notebook function's own source (that is
:func:`.hashing._feed_function`): classes, methods, partials, lru caches,
library functions, bytecode, and names the notebook put into builtins."""

from __future__ import annotations

import enum
import functools
import sys
import types

from . import sources
from .hashing_base import _int_bytes, _tag
from .hashing_modules import _feed_named, module_version


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


def _installed_attribute(fn, module) -> bool:
    """``fn`` is what an installed (not the notebook's, not a local) module
    holds under its qualified name (a wrapper names the wrapped function's)."""
    if not isinstance(module, str) or "<locals>" in fn.__qualname__ or sources.is_notebook_module_name(module):
        return False
    owner = sys.modules.get(module)
    for part in fn.__qualname__.split("."):
        owner = getattr(owner, part, None) if owner is not None else None
    return owner is fn


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
    if _installed_attribute(fn, module) or _installed_attribute(fn, getattr(fn, "__module__", None)):
        # The package's own function (scikit-learn's cross_val_score, under
        # a validate_params wrapper whose closure holds sets of strings in a
        # per-process order): what it is, its name and version, is all.
        return
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


#: An enum's lookup caches, which grow as values are looked up (``Perm.R |
#: Perm.W`` adds a pseudo-member): the class is its members, keyed already.
_ENUM_CACHES = frozenset({"_value2member_map_", "_unhashable_values_"})


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
    enum_cache = _ENUM_CACHES if isinstance(cls, enum.EnumMeta) else ()
    for name in sorted(cls.__dict__):
        if name in _CLASS_SKIP or name in enum_cache:
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


#: Per module of an installed library: (its dict, its size, {id: name} of the
#: instances of its own classes it holds as globals).
_SINGLETONS: dict = {}


def library_global(obj) -> str | None:
    """``module:name`` when ``obj`` is an instance that an installed library
    holds as a global of the module defining its class (scipy's
    ``scipy.stats.beta``, numpy's global ``RandomState``), else None.

    Such an object is keyed by what it is (name and distribution version):
    its content can hold per-process state (scipy's distributions hold
    numpy's unseeded global generator), which would make every process key
    it differently. numpy's and ``random``'s global generators so keyed are
    ambient state (DESIGN §9), keyed where a cell draws from them. Mutable
    containers (``rcParams``) are left to their content."""
    t = type(obj)
    modname = t.__module__
    if modname == "random" and t.__name__ == "Random":
        module = sys.modules.get("random")
        return "random:_inst" if getattr(module, "_inst", None) is obj else None
    if not modname or modname in ("builtins", "__main__") or isinstance(obj, (dict, list, set, bytearray)):
        return None
    module = sys.modules.get(modname)
    if module is None:
        return None
    space = vars(module)
    index = _SINGLETONS.get(modname)
    if index is None or index[0] is not space or index[1] != len(space):
        index = None
        if not sources.is_local_module(module) and module_version(modname):
            index = {id(v): k for k, v in list(space.items()) if type(v).__module__ == modname}
        _SINGLETONS[modname] = index = (space, len(space), index or {})
    name = index[2].get(id(obj))
    return f"{modname}:{name}" if name is not None and space.get(name) is obj else None
