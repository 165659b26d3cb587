"""What a user could observe of a session, as comparable text (the child side of tests/difftest.py).

:class:`Describer` walks every user name with one identity memo, so sharing is seen as deep as it reaches: the
first path an object is met at is its label, a later meeting prints ``-> label``. What is normalised, and why, is
the allow-list at the top of tests/difftest.py; anything that cannot be described is marked ``<cannot describe``,
which the comparison counts as a difference even when both sides show it.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import types

ADDR = re.compile(r"0x[0-9a-fA-F]{4,}")
ATOMS = (type(None), bool, int, float, complex, str, bytes)
CANNOT = "<cannot describe"
MAX_DEPTH = 40
MAX_NODES = 20000  # per name: a description is bounded, and says so where it stops
_OWN_MODULES = ("ipy_lazycache", "difftest", "_pytest", "pytest")


def digest(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:16]


def code_text(co) -> str:
    """A function's code without line numbers or file names (a restored function has its own file name)."""
    consts = [(code_text(c) if hasattr(c, "co_code") else repr(c)) for c in co.co_consts]
    return f"code({co.co_name},{digest(co.co_code)},{consts},{co.co_names},{co.co_varnames},{co.co_freevars})"


def _atomic(v) -> bool:
    """Immutable values whose identity is an interpreter detail (interning, small ints, folded constants)."""
    if type(v) in ATOMS:
        return True
    return type(v) in (tuple, frozenset) and all(_atomic(x) for x in v)


def _full(cell) -> bool:
    try:
        _ = cell.cell_contents
        return True
    except ValueError:
        return False


class Describer:
    """One walk over a namespace: ``describe(name, value)`` per name, in a fixed order, sharing one memo."""

    def __init__(self, user_ns: dict):
        self.user_ns = user_ns
        self.labels: dict[int, str] = {}
        self.alive: list = []  # ids stay unique while the walk lasts
        self.arrays: list = []  # (label, array) met anywhere: which share memory is compared
        self._owned = None
        self.nodes = 0

    # -- entry points ----------------------------------------------------------------------------------------------
    def describe(self, path: str, v) -> str:
        self.nodes = 0
        try:
            return self._walk(v, path, 0)
        except Exception as exc:  # noqa: BLE001 -- reported as a difference whatever the other side shows
            return f"{CANNOT}: {type(exc).__name__}: {ADDR.sub('0x?', str(exc))[:200]}>"

    def sharing(self) -> list:
        """Pairs of distinct arrays (anywhere in the namespace) that share memory."""
        np = sys.modules.get("numpy")
        out = []
        arrays = self.arrays[:200]
        for i, (k1, a1) in enumerate(arrays):
            for k2, a2 in arrays[i + 1:]:
                if a1 is not a2 and np.shares_memory(a1, a2):
                    out.append(f"{k1} shares memory with {k2}")
        return sorted(out)

    # -- the walk --------------------------------------------------------------------------------------------------
    def _walk(self, v, path: str, depth: int) -> str:
        if _atomic(v):
            return repr(v) if type(v) in ATOMS else f"{type(v).__name__}{[self._walk(x, path, depth) for x in v]}"
        if id(v) in self.labels:
            return f"-> {self.labels[id(v)]}"
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            return "<description stops here: too deep or too large>"
        self.labels[id(v)] = path
        self.alive.append(v)
        text = self._object(v, path, depth + 1)
        return text

    def _sub(self, x, path, depth) -> str:
        return self._walk(x, path, depth)

    def _attrs(self, v, path, depth) -> str:
        t = type(v)
        d = getattr(v, "__dict__", None) if not isinstance(v, type) else None
        slots = [s for k in t.__mro__ for s in getattr(k, "__slots__", ()) if isinstance(s, str)]
        parts = {k: self._sub(x, f"{path}.{k}", depth) for k, x in sorted((d or {}).items())}
        for s in slots:
            if s not in ("__dict__", "__weakref__") and hasattr(v, s):
                parts[s] = self._sub(getattr(v, s), f"{path}.{s}", depth)
        return f" attrs={parts}" if parts else ""

    def _type_ref(self, t, path, depth) -> str:
        if t.__module__ == "__main__":
            return self._sub(t, f"type({path})", depth)
        return f"{t.__module__}.{t.__qualname__}"

    def _object(self, v, path, depth) -> str:  # noqa: C901 -- one dispatch over the kinds of value
        import enum
        import functools

        t = type(v)
        tn = self._type_ref(t, path, depth)
        np = sys.modules.get("numpy")
        pd = sys.modules.get("pandas")
        if isinstance(v, types.ModuleType):
            return f"module {v.__name__}" + ("" if sys.modules.get(v.__name__) is v else " (not sys.modules')")
        owner = self._owned_name(v)
        if owner and not isinstance(v, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)):
            # a library's own object (random's generator, a local module's list): that object, with its content
            return f"module-object {owner}: " + self._content(v, path, depth, tn, np, pd, enum, functools)
        if owner:
            return f"module-object {owner}"
        return self._content(v, path, depth, tn, np, pd, enum, functools)

    def _content(self, v, path, depth, tn, np, pd, enum, functools) -> str:  # noqa: C901
        t = type(v)
        sub = self._sub
        if isinstance(v, types.ModuleType):
            return f"module {v.__name__}" + ("" if sys.modules.get(v.__name__) is v else " (not sys.modules')")
        if isinstance(v, type):
            return self._class(v, path, depth)
        if isinstance(v, enum.Enum):
            return f"{tn}.{v.name}({sub(v.value, path + '.value', depth)}) is-member={t.__members__.get(v.name) is v}"
        if np is not None and isinstance(v, np.ndarray):
            return self._array(v, path, depth, tn, np)
        if pd is not None and isinstance(v, (pd.DataFrame, pd.Series, pd.Index)):
            return self._pandas(v, path, depth, tn, pd)
        if isinstance(v, (str, bytes, int, float, complex)):
            base = next(b for b in t.__mro__ if b in ATOMS)
            return f"{tn}({base.__repr__(v)})" + self._attrs(v, path, depth)
        if isinstance(v, (list, tuple)):
            items = ", ".join(sub(x, f"{path}[{i}]", depth) for i, x in enumerate(v))
            return f"{tn}[{items}]" + self._attrs(v, path, depth)
        if isinstance(v, dict):
            items = ", ".join(f"{sub(k, f'{path}<key {i}>', depth)}: {sub(x, f'{path}[{k!r}]', depth)}"
                              for i, (k, x) in enumerate(v.items()))
            return f"{tn}{{{items}}}" + self._attrs(v, path, depth)
        if isinstance(v, (set, frozenset)):
            items = ", ".join(sub(x, f"{path}{{{i}}}", depth) for i, x in enumerate(v))
            return f"{tn}{{{items}}} (iteration order)" + self._attrs(v, path, depth)
        if isinstance(v, functools.partial):
            return (f"partial({sub(v.func, path + '.func', depth)}, {sub(v.args, path + '.args', depth)}, "
                    f"{sub(v.keywords, path + '.keywords', depth)})" + self._attrs(v, path, depth))
        if isinstance(v, (types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.BuiltinMethodType,
                          types.MethodWrapperType)) or type(v).__name__ == "_lru_cache_wrapper":
            return self._function(v, path, depth, tn)
        if isinstance(v, (classmethod, staticmethod)):
            return f"{tn}({sub(v.__func__, path + '.__func__', depth)})"
        if isinstance(v, property):
            parts = [sub(getattr(v, k), f"{path}.{k}", depth) for k in ("fget", "fset", "fdel")]
            return f"{tn}({parts}, doc={v.__doc__!r})"
        if isinstance(v, types.CellType):
            return f"cell({sub(v.cell_contents, path + '.contents', depth) if _full(v) else '<empty>'})"
        if isinstance(v, (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)):
            return self._generator(v, path, depth, tn)
        if type(v).__module__.startswith("matplotlib"):
            return self._figure(v, path, depth, tn)
        if t.__module__ == "__main__" or t is object:
            return tn + self._attrs(v, path, depth)
        return self._reduced(v, path, depth, tn)

    def _class(self, c, path, depth) -> str:
        if c.__module__ != "__main__":
            mod = sys.modules.get(c.__module__)
            same = mod is not None and getattr(mod, c.__qualname__.split(".")[0], None) is not None
            return f"class {c.__module__}.{c.__qualname__}" + ("" if same else " (not found in its module)")
        body = {}
        for k, x in c.__dict__.items():  # every entry, dunders too: a stale __init__ or __eq__ is seen
            if k in ("__dict__", "__weakref__"):
                continue  # descriptors Python makes for every class with a __dict__
            if k == "__doc__" or isinstance(x, (str, type(None))):
                body[k] = repr(x)
            else:
                body[k] = self._sub(x, f"{path}.{k}", depth)
        bases = [self._type_ref(b, path, depth) for b in c.__bases__]
        meta = self._type_ref(type(c), path, depth)
        return f"class {c.__module__}.{c.__qualname__}({bases}, metaclass={meta}) {body}"

    def _function(self, v, path, depth, tn) -> str:
        sub = self._sub
        if isinstance(v, types.MethodType):
            me, fn = sub(v.__self__, path + ".__self__", depth), sub(v.__func__, path + ".__func__", depth)
            return f"{tn} of {me}: {fn}"
        if type(v).__name__ == "_lru_cache_wrapper":
            info = v.cache_info()
            return (f"lru_cache({sub(v.__wrapped__, path + '.__wrapped__', depth)}) params={v.cache_parameters()} "
                    f"info=(hits={info.hits}, misses={info.misses}, size={info.currsize})"
                    + self._attrs(v, path, depth))
        if not isinstance(v, types.FunctionType) and hasattr(v, "__self__"):
            me = v.__self__
            owner = "" if me is None or isinstance(me, types.ModuleType) else sub(me, path + ".__self__", depth)
            return f"{tn} {getattr(v, '__qualname__', '?')} of {owner or getattr(me, '__name__', me)!s}"
        cells = [sub(c, f"{path}.<cell {i}>", depth) for i, c in enumerate(v.__closure__ or ())]
        g = v.__globals__
        where = ("notebook" if g is self.user_ns else next(
            (f"module {n}" for n, m in list(sys.modules.items()) if getattr(m, "__dict__", None) is g), "other dict"))
        return (f"{tn} {v.__module__}.{v.__qualname__} {code_text(v.__code__)} globals={where} "
                f"defaults={sub(v.__defaults__, path + '.__defaults__', depth)} "
                f"kw={sub(v.__kwdefaults__, path + '.__kwdefaults__', depth)} "
                f"annotations={sub(v.__annotations__, path + '.__annotations__', depth)} closure={cells} "
                f"dict={sub(dict(v.__dict__), path + '.__dict__', depth)}")

    def _array(self, v, path, depth, tn, np) -> str:
        self.arrays.append((path, v))
        f = v.flags
        data = digest(np.ascontiguousarray(v).tobytes()) if v.dtype != object else self._sub(v.tolist(), path, depth)
        return (f"{tn} {v.dtype.str} {v.shape} strides={v.strides} C={f.c_contiguous} F={f.f_contiguous} "
                f"W={f.writeable} {data}" + self._attrs(v, path, depth))

    def _values(self, v, path, depth, np) -> str:
        """Exact values of a pandas column or index: bytes for numeric and datetime dtypes, else each item."""
        arr = v.to_numpy()
        if arr.dtype != object and arr.dtype.kind in "biufcmMS":
            return f"{arr.dtype.str} {digest(np.ascontiguousarray(arr).tobytes())}"
        return self._sub([x for x in v], path + ".values", depth)

    def _pandas(self, v, path, depth, tn, pd) -> str:
        np = sys.modules["numpy"]
        if isinstance(v, pd.Index):
            names = list(v.names)
            parts = (f"{tn} dtype={v.dtype} names={names} {self._values(v, path, depth, np)}")
            return parts
        if isinstance(v, pd.Series):
            body = f"dtype={v.dtype} name={v.name!r} {self._values(v, path, depth, np)}"
        else:
            cols = [f"{c!r}: dtype={v[c].dtype if v.columns.is_unique else '?'} "
                    f"{self._values(v.iloc[:, i], f'{path}[{c!r}]', depth, np)}" for i, c in enumerate(v.columns)]
            body = f"columns={self._pandas(v.columns, path + '.columns', depth, tn, pd)} {{{', '.join(cols)}}}"
        index = self._pandas(v.index, path + ".index", depth, f"{type(v.index).__module__}.{type(v.index).__name__}",
                             pd)
        return (f"{tn} {body} index={index} attrs={self._sub(dict(v.attrs), path + '.attrs', depth)} "
                f"dup-labels={v.flags.allows_duplicate_labels}")

    def _generator(self, v, path, depth, tn) -> str:
        import inspect

        frame = getattr(v, "gi_frame", None) or getattr(v, "cr_frame", None) or getattr(v, "ag_frame", None)
        code = getattr(v, "gi_code", None) or getattr(v, "cr_code", None) or getattr(v, "ag_code", None)
        state = inspect.getgeneratorstate(v) if isinstance(v, types.GeneratorType) else "?"
        where = "" if frame is None else (f" at {frame.f_lasti} locals="
                                          f"{self._sub(dict(frame.f_locals), path + '.<locals>', depth)}")
        return f"{tn} {code_text(code)} {state}{where}"

    def _figure(self, v, path, depth, tn) -> str:
        """Matplotlib objects by what a plot shows (their reduce is the whole artist tree, with ids)."""
        mpl_figure = sys.modules.get("matplotlib.figure")
        helpers = sys.modules.get("matplotlib._pylab_helpers")
        if mpl_figure is not None and isinstance(v, mpl_figure.Figure):
            managers = helpers.Gcf.get_all_fig_managers() if helpers is not None else []
            managed = any(m.canvas.figure is v for m in managers)
            axes = [self._sub(a, f"{path}.axes[{i}]", depth) for i, a in enumerate(v.axes)]
            return f"{tn} size={tuple(v.get_size_inches())} dpi={v.dpi} pyplot-managed={managed} axes={axes}"
        if hasattr(v, "get_lines") and hasattr(v, "get_title"):
            lines = [(repr(list(ln.get_xdata())), repr(list(ln.get_ydata())), ln.get_label(), ln.get_linewidth())
                     for ln in v.get_lines()]
            legend = v.get_legend() is not None
            fig = self._sub(v.figure, path + ".figure", depth)
            return (f"{tn} title={v.get_title()!r} xlim={v.get_xlim()} ylim={v.get_ylim()} lines={lines} "
                    f"legend={legend} figure={fig}")
        if hasattr(v, "get_xdata") and hasattr(v, "get_ydata"):
            fig = self._sub(getattr(v, "axes", None), path + ".axes", depth)
            return f"{tn} x={list(v.get_xdata())!r} y={list(v.get_ydata())!r} label={v.get_label()!r} in={fig}"
        return f"{tn} {ADDR.sub('0x?', repr(v))}"

    def _reduced(self, v, path, depth, tn) -> str:
        """Another library's object by what pickling would keep of it (an iterator's position, a date's fields);
        objects that cannot be reduced by their ``repr``."""
        try:
            r = v.__reduce_ex__(4)
        except Exception:  # noqa: BLE001
            return f"{tn} {ADDR.sub('0x?', repr(v))}"
        if isinstance(r, str):
            return f"{tn} global {r}"
        fn = getattr(r[0], "__qualname__", repr(r[0]))
        rest = [self._sub(x, f"{path}.<reduce {i}>", depth) for i, x in enumerate(r[1:]) if not _is_iter(x)]
        items = [self._sub(list(x), f"{path}.<items {i}>", depth) for i, x in enumerate(r[3:5]) if _is_iter(x)]
        return f"{tn} reduce={fn} {rest} {items}"

    # -- library-owned objects -------------------------------------------------------------------------------------
    def _owned_name(self, v) -> str | None:
        """``module.attr`` for an object a library module holds (its own, not the extension's or the tester's)."""
        if self._owned is None:
            self._owned = {}
            for name, mod in sorted(list(sys.modules.items()), reverse=True):
                if name == "__main__" or name.startswith(_OWN_MODULES) or not isinstance(mod, types.ModuleType):
                    continue
                for k, x in list(vars(mod).items()):
                    if not _atomic(x) and not k.startswith("__"):
                        self._owned[id(x)] = f"{name}.{k}"
            for m in sys.modules.values():  # keep the module objects' ids valid for the lookups below
                self.alive.append(m)
        if isinstance(v, types.FunctionType) and v.__globals__ is self.user_ns:
            return None
        if getattr(type(v), "__module__", None) == "__main__" or getattr(v, "__module__", None) == "__main__":
            return None
        mod = getattr(v, "__module__", None)
        own = sys.modules.get(mod) if isinstance(mod, str) else None
        name = getattr(v, "__name__", None)
        if own is not None and isinstance(name, str) and getattr(own, name, None) is v:
            return f"{mod}.{name}"  # the object's own module first: other modules' aliases are not its home
        home = sys.modules.get(type(v).__module__)  # then its type's module (random._inst is a random.Random)
        for k, x in (vars(home).items() if isinstance(home, types.ModuleType) else ()):
            if x is v:
                return f"{type(v).__module__}.{k}"
        return self._owned.get(id(v))


def _is_iter(x) -> bool:
    return hasattr(x, "__next__")


def _loggers_set() -> dict:
    """Loggers given a level or handlers (libraries make default ones as they import their modules)."""
    import logging

    out = {}
    for n, lg in sorted(logging.root.manager.loggerDict.items()):
        if isinstance(lg, logging.Logger) and (lg.level or lg.handlers) and not n.startswith(_OWN_MODULES):
            out[n] = [lg.level, [type(h).__name__ for h in lg.handlers], lg.propagate, lg.disabled]
    return out


def environment_state() -> dict:
    """Process-wide state a later cell could observe (the registries of DESIGN §11), as comparable text."""
    import decimal
    import locale
    import logging
    import random
    import warnings

    state = {
        "cwd": os.getcwd(),
        "env": {k: v for k, v in sorted(os.environ.items()) if not k.startswith("IPY_LAZYCACHE")},
        "sys.path": list(sys.path),
        "random": digest(repr(random.getstate()).encode()),
        "warnings.filters": [repr(f) for f in warnings.filters],
        "decimal": repr(decimal.getcontext()),
        "recursionlimit": sys.getrecursionlimit(),
        "locale": locale.setlocale(locale.LC_ALL),
        "logging": [logging.root.level, [type(h).__name__ for h in logging.root.handlers], _loggers_set()],
    }
    np = sys.modules.get("numpy")
    if np is not None:
        st = np.random.get_state()
        state["np.random"] = digest(st[1].tobytes() + repr(st[2:]).encode())
        state["np.printoptions"] = repr(sorted(np.get_printoptions().items()))
        state["np.errstate"] = repr(sorted(np.geterr().items()))
    pd = sys.modules.get("pandas")
    if pd is not None:
        opts = pd._config.config._registered_options
        state["pandas options"] = {k: repr(pd.get_option(k)) for k in sorted(opts)}
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        rc, default = mpl.rcParams, mpl.rcParamsDefault
        changed = {k: repr(rc[k]) for k in sorted(rc) if k != "backend" and repr(rc[k]) != repr(default[k])}
        if changed:  # matplotlib merely imported (by the notebook or the extension) is no difference
            state["rcParams changed"] = changed
    plt = sys.modules.get("matplotlib.pyplot")
    state["pyplot figures"] = plt.get_fignums() if plt is not None else []  # not imported: no figures
    if plt is not None:
        state["backend"] = mpl.get_backend()
    return state


def shell_state(shell) -> dict:
    """The shell's own settings a later cell could observe: %precision, pprint, formatters, interactivity."""
    fmt = shell.display_formatter.formatters["text/plain"]
    return {
        "precision": fmt.float_precision,
        "pprint": fmt.pprint,
        "type printers": sorted(f"{t.__module__}.{t.__qualname__}" for t in fmt.type_printers),
        "formatters enabled": sorted(k for k, f in shell.display_formatter.formatters.items() if f.enabled),
        "interactivity": shell.ast_node_interactivity,
        "autoawait": shell.autoawait,
    }
