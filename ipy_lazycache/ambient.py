"""Ambient state: process-wide state that a cell's result can depend on and
that no name in the cell shows (DESIGN §9).

Each provider can take a snapshot, tell whether a cell observes it, say what
a run changed (an *effect*, JSON-able, re-applied on a hit) and apply such an
effect. A provider joins a key narrowly: only for cells that can observe it,
and never with values that differ between kernels for no reason (absolute
paths, session ids, the whole environment), or nothing would hit twice.

The global random generators join a key only once this process has seeded
or set them: an unseeded generator gives *a* run, and a hit is one.
"""

from __future__ import annotations

import ast
import functools
import os
import sys

import xxhash


class Provider:
    """A piece of ambient state. Every method is optional and inert."""

    name = ""

    def snapshot(self):
        """The state now, in any form :meth:`effect` and :meth:`key` accept."""
        return None

    def observes(self, cell: Cell) -> bool:
        """Whether the cell can read this state, seen statically."""
        return False

    def key(self, cell: Cell, state) -> str | None:
        """What joins the key of a cell that observes this state (None: nothing)."""
        return None

    def effect(self, before, after):
        """What a run changed, JSON-able, or None if nothing."""
        return None

    def apply(self, effect) -> None:
        """Make a hit change the state as the run did."""


class Cell:
    """What providers look at: the cell's tree and the objects its names
    resolve to. Built once per keyed cell. ``source``, when given, is the
    exact text ``tree`` was parsed from: the tree's walks are then reused
    from an earlier cell with that text (every hit)."""

    def __init__(self, tree, ns: dict, refs, source: str | None = None):
        self.tree, self.ns, self.refs = tree, ns, list(refs)
        self._shape = _shape_of(tree, source)
        self._env = None

    def chains(self) -> list[tuple]:
        """Attribute chains read by the cell, as (object of the base name, attrs...)."""
        return [(self.ns[base], *attrs) for base, *attrs in self._shape[0] if base in self.ns]

    def ref_objects(self):
        return [self.ns[n] for n in self.refs if n in self.ns]

    def environ_names(self) -> set[str]:
        """Environment variables the cell reads by a constant name."""
        if self._env is None:
            ns, names = self.ns, set()
            for kind, base, name in self._shape[1]:
                if kind == "magic" or (kind == "getenv" and _is_module(base, ns, "os")) or (
                        kind == "environ" and _is_environ(base, ns)):
                    names.add(name)
            self._env = names
        return self._env


#: ``source -> (chains by name, environment reads)``: what :class:`Cell`
#: finds by walking a tree, which depends on the text alone.
_SHAPES: dict = {}


def _shape_of(tree, source):
    known = _SHAPES.get(source) if source is not None else None
    if known is None:
        known = _walk(tree)
        if source is not None:
            if len(_SHAPES) >= 256:
                _SHAPES.clear()
            _SHAPES[source] = known
    return known


def _walk(tree):
    """Attribute chains ``(base name, attrs...)`` and environment reads
    ``(kind, base node, constant name)``: ``environ[...]`` and its
    get/setdefault/pop, ``os.getenv``, and ``%env``/``%set_env``."""
    chains, env = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            attrs, base = [], node
            while isinstance(base, ast.Attribute):
                attrs.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name):
                chains.append((base.id, *reversed(attrs)))
        key = kind = base = None
        if isinstance(node, ast.Subscript):
            kind, base, key = "environ", node.value, node.slice
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault", "pop"):
                kind, base, key = "environ", func.value, node.args[0]
            elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                kind, base, key = "getenv", func.value, node.args[0]
            elif _is_env_magic(node):
                words = node.args[1].value.replace("=", " ").split()
                env.extend(("magic", None, w) for w in words[:1])
        if kind and isinstance(key, ast.Constant) and isinstance(key.value, str):
            env.append((kind, base, key.value))
    return chains, env


def _digest(data) -> str:
    return xxhash.xxh3_128_hexdigest(repr(data).encode("utf-8", "surrogatepass"))


# ----------------------------------------------------------------------------
# Global random generators


class _Seeds:
    """Which global generators this process seeded or set.

    ``random.seed``/``setstate`` and numpy's legacy ``seed``/``set_state`` are
    wrapped (once) to note it; a hit that re-applies a seeded state notes it
    too. Unseeded generators never join a key.
    """

    seeded: set[str] = set()
    wrapped: set[str] = set()

    @classmethod
    def watch(cls, provider, module, names):
        if provider in cls.wrapped or module is None:
            return
        for name in names:
            original = getattr(module, name, None)
            if original is None or getattr(original, "_lc_watch", False):
                continue

            def wrapper(*args, _original=original, **kwargs):
                cls.seeded.add(provider)
                return _original(*args, **kwargs)

            functools.update_wrapper(wrapper, original)
            # Found as the module's own attribute, so pickling (``from random
            # import seed`` in a cell) stores a reference to it, not a copy.
            wrapper.__module__, wrapper.__qualname__ = module.__name__, name
            wrapper._lc_watch = True
            setattr(module, name, wrapper)
        cls.wrapped.add(provider)


#: Generator modules whose seeding functions are watched: provider, names.
_SEEDERS = {"random": ("random", ("seed", "setstate")), "numpy.random": ("numpy.random", ("seed", "set_state"))}


class _WatchImports:
    """A meta path finder that wraps a generator module's seeding functions
    as soon as it is imported, so ``import numpy as np; np.random.seed(0)``
    in one cell is seen (numpy loads ``numpy.random`` lazily)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _SEEDERS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            original = loader.exec_module
            provider, names = _SEEDERS[fullname]

            def exec_module(module):
                original(module)
                _Seeds.watch(provider, module, names)

            loader.exec_module = exec_module
        return spec


def watch_seeding():
    """Note from now on whether the global generators get seeded (idempotent)."""
    for fullname, (provider, names) in _SEEDERS.items():
        if fullname in sys.modules:
            _Seeds.watch(provider, sys.modules[fullname], names)
    if not any(isinstance(f, _WatchImports) for f in sys.meta_path):
        sys.meta_path.insert(0, _WatchImports())


class _Random(Provider):
    """The stdlib's global generator (``random.random`` and friends)."""

    name = "random"

    def _module(self):
        module = sys.modules.get("random")
        _Seeds.watch(self.name, module, ("seed", "setstate"))
        return module

    def snapshot(self):
        module = self._module()
        return module.getstate() if module is not None else None

    def observes(self, cell):
        module = self._module()
        if module is None:
            return False
        inst = getattr(module, "_inst", None)
        if any(chain[0] is module for chain in cell.chains()):
            return True
        return any(obj is module or getattr(obj, "__self__", None) is inst for obj in cell.ref_objects())

    def key(self, cell, state):
        return _digest(state) if state is not None and self.name in _Seeds.seeded else None

    def effect(self, before, after):
        if after is None or before == after or self.name not in _Seeds.seeded:
            return None
        version, internal, gauss = after
        return {"version": version, "state": list(internal), "gauss": gauss}

    def apply(self, effect):
        import random

        _Seeds.watch(self.name, random, ("seed", "setstate"))
        random.setstate((effect["version"], tuple(effect["state"]), effect["gauss"]))
        _Seeds.seeded.add(self.name)


class _NumpyRandom(Provider):
    """numpy's legacy global generator (``np.random.seed``, ``np.random.normal``)."""

    name = "numpy.random"

    def _module(self):
        if "numpy" not in sys.modules:
            return None  # never import numpy for a cell that does not
        module = sys.modules.get("numpy.random")
        _Seeds.watch(self.name, module, ("seed", "set_state"))
        return module

    def snapshot(self):
        module = self._module()
        if module is None:
            return None
        kind, keys, pos, has_gauss, gauss = module.get_state(legacy=True)
        return (kind, keys.tobytes(), int(pos), int(has_gauss), float(gauss))

    def observes(self, cell):
        module = self._module()
        if module is None:
            return False
        numpy = sys.modules["numpy"]
        rand = getattr(getattr(module, "mtrand", None), "_rand", None)
        for chain in cell.chains():
            if chain[0] is module or (chain[0] is numpy and len(chain) > 1 and chain[1] == "random"):
                return True
        if rand is None:
            return False
        return any(obj is module or getattr(obj, "__self__", None) is rand for obj in cell.ref_objects())

    def key(self, cell, state):
        return _digest(state) if state is not None and self.name in _Seeds.seeded else None

    def effect(self, before, after):
        if after is None or before == after or self.name not in _Seeds.seeded:
            return None
        kind, keys, pos, has_gauss, gauss = after
        import base64

        return {"kind": kind, "keys": base64.b64encode(keys).decode(), "pos": pos, "has_gauss": has_gauss,
                "gauss": gauss}

    def apply(self, effect):
        import base64

        import numpy as np

        _Seeds.watch(self.name, np.random, ("seed", "set_state"))
        keys = np.frombuffer(base64.b64decode(effect["keys"]), dtype=np.uint32).copy()
        np.random.set_state((effect["kind"], keys, effect["pos"], effect["has_gauss"], effect["gauss"]))
        _Seeds.seeded.add(self.name)


# ----------------------------------------------------------------------------
# Environment, working directory, sys.path


class _Environ(Provider):
    """Environment variables: keyed by the names the cell reads, never the
    whole environment; changes (``os.environ[...] =``, ``%env``) are effects."""

    name = "environ"

    def snapshot(self):
        return dict(os.environ)

    def observes(self, cell):
        return bool(cell.environ_names())

    def key(self, cell, state):
        return _digest(sorted((name, state.get(name)) for name in cell.environ_names()))

    def effect(self, before, after):
        if before == after:
            return None
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        removed = sorted(k for k in before if k not in after)
        return {"set": changed, "unset": removed}

    def apply(self, effect):
        os.environ.update(effect.get("set", {}))
        for name in effect.get("unset", ()):
            os.environ.pop(name, None)


class EnvironReads:
    """Environment variables notebook code reads while a cell runs, however
    indirectly (a function the cell calls reads ``os.environ["MODE"]`` or
    ``os.getenv``), which the walk of the cell's own text cannot see. The
    entry then requires their values (:meth:`Registry.satisfied`). Reads by
    installed code (a library's import reading ``HOME``) are left out: they
    are not the notebook's, and would make a shipped entry miss wherever
    the environment differs (a browser). ``os._Environ.__getitem__`` is
    wrapped only while a run is recorded; ``get``, ``in`` and ``getenv`` go
    through it."""

    active: list = []  # one set of names per recorded run (nested cells)
    original = None

    @classmethod
    def start(cls) -> set:
        names: set = set()
        if cls.original is None:
            environ = type(os.environ)
            cls.original = original = environ.__getitem__

            def __getitem__(self, key):
                if cls.active and _read_by_notebook():
                    for reads in cls.active:
                        reads.add(key)
                return original(self, key)

            environ.__getitem__ = __getitem__
        cls.active.append(names)
        return names

    @classmethod
    def stop(cls, names: set) -> set:
        if any(r is names for r in cls.active):
            cls.active[:] = [r for r in cls.active if r is not names]
        if not cls.active and cls.original is not None:
            type(os.environ).__getitem__, cls.original = cls.original, None
        return names


def _read_by_notebook() -> bool:
    """Whether the code reading the environment is the notebook's: past the
    mapping's own methods and the stdlib helpers that read it for a caller
    (``getenv``, ``Mapping.get``, ``expanduser``), the frame's module is
    ``__main__`` or a local module (not a library's import, not importlib)."""
    from .sources import is_notebook_module_name

    f = sys._getframe(1)
    while f is not None and f.f_globals.get("__name__") in _ENVIRON_PLUMBING:
        f = f.f_back
    return f is not None and is_notebook_module_name(f.f_globals.get("__name__"))


#: Modules whose frames read the environment on their caller's behalf.
_ENVIRON_PLUMBING = frozenset({"os", "_collections_abc", "collections.abc", "posixpath", "ntpath", "genericpath",
                               __name__})


def _is_module(node, ns, name) -> bool:
    obj = ns.get(node.id) if isinstance(node, ast.Name) else None
    return type(obj).__name__ == "module" and getattr(obj, "__name__", None) == name


def _is_environ(node, ns) -> bool:
    if isinstance(node, ast.Attribute) and node.attr == "environ":
        return _is_module(node.value, ns, "os")
    return isinstance(node, ast.Name) and ns.get(node.id) is os.environ


def _is_env_magic(node) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "run_line_magic"
        and len(node.args) >= 2
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args[:2])
        and node.args[0].value in ("env", "set_env")
    )


class _Cwd(Provider):
    """The working directory, relative to where the session started: it joins
    every key once a cell has moved it (files are read relative to it), never
    as an absolute path."""

    name = "cwd"

    def __init__(self):
        self.start = os.getcwd()

    def snapshot(self):
        try:
            return os.getcwd()
        except OSError:
            return None

    def observes(self, cell):
        return True

    def key(self, cell, state):
        if state is None or state == self.start:
            return None
        return os.path.relpath(state, self.start).replace(os.sep, "/")

    def effect(self, before, after):
        if after is None or before == after:
            return None
        return {"to": os.path.relpath(after, before).replace(os.sep, "/")}

    def apply(self, effect):
        os.chdir(effect["to"])


class _SysPath(Provider):
    """``sys.path`` edits a cell makes (so later imports find the same
    modules), as a difference: a cache from another machine must never
    replace this interpreter's own path."""

    name = "sys.path"

    def snapshot(self):
        return list(sys.path)

    def effect(self, before, after):
        if before == after:
            return None
        added = [p for p in after if p not in before]
        first_kept = next((i for i, p in enumerate(after) if p in before), len(after))
        return {
            "prepend": [p for p in after[:first_kept] if p in added],
            "append": [p for p in after[first_kept:] if p in added],
            "remove": [p for p in before if p not in after],
        }

    def apply(self, effect):
        for p in effect.get("remove", ()):
            while p in sys.path:
                sys.path.remove(p)
        for p in reversed(effect.get("prepend", ())):
            if p not in sys.path:
                sys.path.insert(0, p)
        for p in effect.get("append", ()):
            if p not in sys.path:
                sys.path.append(p)


# ----------------------------------------------------------------------------
# Libraries: matplotlib and pandas


def _from_library(obj, prefixes) -> bool:
    name = getattr(obj, "__name__", "") if type(obj).__name__ == "module" else getattr(obj, "__module__", "") or ""
    if not isinstance(name, str):
        return False
    return any(name == p or name.startswith(p + ".") for p in prefixes)


class _Matplotlib(Provider):
    """rcParams (styles, ``plt.rc``) and the backend (``%matplotlib inline``)."""

    name = "matplotlib"
    LIBS = ("matplotlib", "seaborn", "mpl_toolkits", "pandas.plotting")

    def snapshot(self):
        mpl = sys.modules.get("matplotlib")
        if mpl is None:
            return None
        params = dict.copy(mpl.rcParams)  # raw values: no validation, no deprecation warnings
        backend = params.pop("backend", None)
        params.pop("backend_fallback", None)
        return params, backend if isinstance(backend, str) else None

    def observes(self, cell):
        if "matplotlib" not in sys.modules:
            return False
        return any(_from_library(obj, self.LIBS) for obj in cell.ref_objects())

    def key(self, cell, state):
        if state is None:
            return None
        return _digest(sorted((k, _plain(v)) for k, v in state[0].items()))

    def effect(self, before, after):
        if after is None:
            return None
        params, backend = after
        if before is None:
            # matplotlib was first imported by the cell: its changes are
            # those from the defaults, and the backend is the environment's
            # (a hit elsewhere keeps its own: inline in a notebook).
            import matplotlib

            old_params, old_backend = dict.copy(matplotlib.rcParamsDefault), backend
        else:
            old_params, old_backend = before
        skip = ("backend", "backend_fallback")
        changed = {k: _plain(v) for k, v in params.items()
                   if k not in skip and (k not in old_params or _plain(old_params[k]) != _plain(v))}
        out = {}
        if changed:
            out["rc"] = changed
        if backend != old_backend and backend:
            out["backend"] = backend
        return out or None

    def apply(self, effect):
        if not _available("matplotlib"):
            return  # nothing here can plot (a browser without it): no state to set
        if "backend" in effect:
            backend = effect["backend"]
            shell = _shell()
            if "inline" in backend and shell is not None:
                shell.enable_matplotlib("inline")
            else:
                import matplotlib

                matplotlib.use(backend)
        if "rc" in effect:
            import matplotlib

            matplotlib.rcParams.update(effect["rc"])


def _plain(value):
    """rcParams values as JSON: cyclers by their repr, which rcParams accepts back."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return repr(value)


class _Pandas(Provider):
    """pandas display options, for cells that show frames."""

    name = "pandas"

    def snapshot(self):
        pd = sys.modules.get("pandas")
        if pd is None or not hasattr(pd, "get_option"):
            return None
        try:
            from pandas._config.config import _registered_options
        except ImportError:
            return None
        out = {}
        for name in _registered_options:
            if name.startswith("display."):
                try:
                    out[name] = _plain(pd.get_option(name))
                except Exception:
                    pass
        return out

    def observes(self, cell):
        if "pandas" not in sys.modules:
            return False
        return any(_from_library(obj, ("pandas",)) or _from_library(type(obj), ("pandas",))
                   for obj in cell.ref_objects())

    def key(self, cell, state):
        return _digest(sorted(state.items())) if state is not None else None

    def effect(self, before, after):
        return _changed(before, after)

    def apply(self, effect):
        if not _available("pandas"):
            return
        import pandas as pd

        for name, value in effect.items():
            try:
                pd.set_option(name, value)
            except Exception:
                pass  # an option this pandas does not have


#: Marks a value stored by its repr alone (it cannot be set back).
_OBJECT = "<object>"


class _NumpyOptions(Provider):
    """numpy's print options (``np.set_printoptions``: how arrays show) and
    floating-point error handling (``np.seterr``: warn, raise or ignore),
    for cells that use numpy. Options holding functions (a ``formatter``)
    cannot be stored: a hit says it could not set them."""

    name = "numpy"

    def snapshot(self):
        np = sys.modules.get("numpy")
        if np is None or not hasattr(np, "get_printoptions"):
            return None
        return {"print": np.get_printoptions(), "err": np.geterr()}  # JSON-able only where changed (effect)

    def observes(self, cell):
        return "numpy" in sys.modules and any(_from_library(obj, ("numpy",)) for obj in cell.ref_objects())

    #: numpy's defaults, the same for years: only options set away from them
    #: join a key, so entries shipped to another numpy (a browser's) still hit.
    DEFAULTS = {
        "print": {"edgeitems": 3, "threshold": 1000, "floatmode": "maxprec", "precision": 8, "suppress": False,
                  "linewidth": 75, "nanstr": "nan", "infstr": "inf", "sign": "-", "formatter": None, "legacy": False},
        "err": {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"},
    }

    def key(self, cell, state):
        changed = self.effect(self.DEFAULTS, state)
        return _digest(sorted((part, sorted(v.items())) for part, v in changed.items())) if changed else None

    def effect(self, before, after):
        if after is None or before == after:
            return None
        before = before or {}
        out = {part: _changed(before.get(part), values) for part, values in after.items()}
        return {part: {k: _json_option(v) for k, v in out[part].items()} for part in out if out[part]} or None

    def apply(self, effect):
        import numpy as np

        printing = effect.get("print") or {}
        if any(isinstance(v, list) and v[:1] == [_OBJECT] for v in printing.values()):
            raise ValueError("a print option holds an object (a formatter), stored by its repr only")
        if printing:
            np.set_printoptions(**printing)
        if effect.get("err"):
            np.seterr(**effect["err"])


def _json_option(value):
    return value if isinstance(value, (str, int, float, bool)) or value is None else [_OBJECT, repr(value)]


class _Decimal(Provider):
    """The ``decimal`` context (``getcontext().prec = 5``: how every later
    Decimal computes), for cells that use decimal; its flags are left out
    (they record what computations signalled, not how they compute)."""

    name = "decimal"
    DEFAULTS = {"prec": 28, "rounding": "ROUND_HALF_EVEN", "Emin": -999999, "Emax": 999999, "capitals": 1,
                "clamp": 0, "traps": ["DivisionByZero", "InvalidOperation", "Overflow"]}

    def snapshot(self):
        decimal = sys.modules.get("decimal")
        if decimal is None:
            return None
        c = decimal.getcontext()
        return {"prec": c.prec, "rounding": c.rounding, "Emin": c.Emin, "Emax": c.Emax, "capitals": c.capitals,
                "clamp": c.clamp, "traps": sorted(t.__name__ for t, on in c.traps.items() if on)}

    def observes(self, cell):
        return "decimal" in sys.modules and any(
            _from_library(obj, ("decimal", "_decimal", "_pydecimal")) for obj in cell.ref_objects())

    def key(self, cell, state):
        changed = self.effect(self.DEFAULTS, state)
        return _digest(sorted(changed.items())) if changed else None

    def effect(self, before, after):
        return _changed(before, after)

    def apply(self, effect):
        import decimal

        c = decimal.getcontext()
        for k, v in effect.items():
            if k == "traps":
                c.traps = {getattr(decimal, name): name in v for name in _DECIMAL_SIGNALS}
            else:
                setattr(c, k, v)


_DECIMAL_SIGNALS = ("Clamped", "DivisionByZero", "Inexact", "InvalidOperation", "Overflow", "Rounded", "Subnormal",
                    "Underflow", "FloatOperation")


class _Warnings(Provider):
    """Warning filters (``warnings.filterwarnings("ignore")`` in a cached
    cell): what a run added, a hit adds again, so later cells show the
    same warnings. Not keyed: a filter changes what a cell shows on
    stderr, and that is replayed as it was shown."""

    name = "warnings"

    def snapshot(self):
        import warnings

        return list(warnings.filters)

    def effect(self, before, after):
        if before is None or after is None or before == after:
            return None
        new = len(after) - len(before)
        if new > 0 and after[new:] == before:  # the usual change: filters put in front
            return {"add": [_filter_json(f) for f in after[:new]]}
        return {"set": [_filter_json(f) for f in after]}  # reset, appended or removed: the run's whole list

    def apply(self, effect):
        import warnings

        rows = [(a, m or "", _class_named(c), mod or "", n) for a, m, c, mod, n in effect.get("add") or effect["set"]]
        if "set" in effect:  # every class found before anything changes
            warnings.resetwarnings()
        for row in reversed(rows):
            warnings.filterwarnings(*row)


def _filter_json(f) -> list:
    action, message, category, module, lineno = f
    return [action, getattr(message, "pattern", message), f"{category.__module__}:{category.__qualname__}",
            getattr(module, "pattern", module), lineno]


def _class_named(path: str):
    import importlib

    module, _, qualname = path.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _changed(before: dict | None, after: dict | None) -> dict | None:
    """The items of ``after`` that differ from ``before`` (options a run set), or None."""
    if after is None or before == after:
        return None
    before = before or {}
    return {k: v for k, v in after.items() if before.get(k) != v} or None


def _available(module: str) -> bool:
    import importlib.util

    return module in sys.modules or importlib.util.find_spec(module) is not None


def _shell():
    try:
        from IPython import get_ipython

        return get_ipython()
    except Exception:
        return None


# ----------------------------------------------------------------------------
# The registry


#: Prefix of the requirements on single environment variables.
ENVIRON = "environ:"


class Registry:
    """The providers, in the order their effects are applied."""

    def __init__(self, providers=None):
        self.providers = providers if providers is not None else [
            _Cwd(), _SysPath(), _Environ(), _Random(), _NumpyRandom(), _NumpyOptions(), _Matplotlib(), _Pandas(),
            _Decimal(), _Warnings(),
        ]

    def snapshot(self) -> dict:
        out = {}
        for p in self.providers:
            try:
                out[p.name] = p.snapshot()
            except Exception:
                out[p.name] = None  # a broken library never breaks a cell
        out["seeded"] = frozenset(_Seeds.seeded)
        return out

    def key(self, cell: Cell) -> dict:
        """What joins the cell's key: {provider: digest} for observed state.
        Only providers the cell observes take a snapshot."""
        out = {}
        for p in self.providers:
            try:
                k = p.key(cell, p.snapshot()) if p.observes(cell) else None
            except Exception:
                continue  # a broken library never breaks a cell
            if k is not None:
                out[p.name] = k
        return out

    def requires(self, before: dict, after: dict, keyed: dict) -> dict:
        """State a run used without it being in the key: seeded generators
        the run drew from (their state changed) though the cell does not show
        it. A lookup whose state differs is a miss."""
        out = {}
        for p in self.providers:
            if p.name in keyed or not isinstance(p, (_Random, _NumpyRandom)):
                continue
            b, a = before.get(p.name), after.get(p.name)
            if b is not None and b != a and p.name in before.get("seeded", ()):
                out[p.name] = _digest(b)
        return out

    def satisfied(self, requires: dict) -> bool:
        """Whether the state an entry needs (see :meth:`requires` and
        :meth:`environ_requires`) is the state now."""
        by_name = {p.name: p for p in self.providers}
        for name, want in (requires or {}).items():
            if name.startswith(ENVIRON):
                if _digest(os.environ.get(name[len(ENVIRON):])) != want:
                    return False
                continue
            p = by_name.get(name)
            state = p.snapshot() if p is not None else None
            if state is None or _digest(state) != want:
                return False
        return True

    @staticmethod
    def environ_requires(reads: set, before: dict) -> dict:
        """``{"environ:NAME": digest}`` of the variables a run read
        (:class:`EnvironReads`), as they were when it started."""
        env = before.get("environ") or {}
        return {f"{ENVIRON}{name}": _digest(env.get(name)) for name in sorted(reads) if isinstance(name, str)}

    def effects(self, before: dict, after: dict) -> dict:
        out = {}
        for p in self.providers:
            try:
                e = p.effect(before.get(p.name), after.get(p.name))
            except Exception:
                e = None
            if e is not None:
                out[p.name] = e
        return out

    def apply(self, effects: dict) -> list[str]:
        """Re-apply a run's effects; returns the names that could not be."""
        failed = []
        by_name = {p.name: p for p in self.providers}
        for name, effect in (effects or {}).items():
            p = by_name.get(name)
            try:
                p.apply(effect)
            except Exception:
                failed.append(name)
        return failed
