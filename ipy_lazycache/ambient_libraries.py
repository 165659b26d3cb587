"""Ambient state libraries keep: matplotlib's style, pandas' and numpy's
print options, ``decimal``'s context, warning filters."""

from __future__ import annotations

import functools
import sys

from .ambient_cell import (
    Provider,
    Unreplayable,
    _available,
    _changed,
    _class_named,
    _shell,
    by_notebook,
    list_change,
    named,
)


class _Matplotlib(Provider):
    """rcParams (styles, ``plt.rc``) and the backend (``%matplotlib inline``).
    The delta: rcParams that differ from what matplotlib read at its import
    (its defaults and this machine's matplotlibrc), the backend left out
    (how figures are shown is the front end's: inline in a notebook)."""

    name = "matplotlib"
    SKIP = ("backend", "backend_fallback", "interactive")

    def __init__(self):
        self._fresh = None  # rcParamsOrig without SKIP, made when matplotlib is first seen
        self._seen = None  # (rcParams as last compared, lists copied; their delta)

    def delta(self):
        mpl = sys.modules.get("matplotlib")
        orig = getattr(mpl, "rcParamsOrig", None)
        if orig is None:
            return None
        # Equal to the copy made last time: dict comparison meets the same
        # objects (cyclers and all) and stops at identity, which is cheap.
        if self._seen is not None and dict.__eq__(mpl.rcParams, self._seen[0]):
            return self._seen[1]
        if self._fresh is None:
            self._fresh = {k: v for k, v in dict.items(orig) if k not in self.SKIP}
        seen = {k: list(v) if isinstance(v, list) else v for k, v in dict.items(mpl.rcParams)}
        now = {k: v for k, v in seen.items() if k not in self.SKIP}
        inline = _inline_rc()  # what the inline backend sets when it starts (its own provider keys changes)
        out = None if now == self._fresh else sorted(
            (k, _plain(v)) for k, v in now.items()
            if (k not in self._fresh or self._fresh[k] != v) and not (k in inline and inline[k] == v)) or None
        self._seen = (seen, out)
        return out

    def snapshot(self):
        mpl = sys.modules.get("matplotlib")
        if mpl is None:
            return None
        params = dict.copy(mpl.rcParams)  # raw values: no validation, no deprecation warnings
        backend = params.pop("backend", None)
        params.pop("backend_fallback", None)
        return params, backend if isinstance(backend, str) else None

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


def _inline_rc() -> dict:
    config = sys.modules.get("matplotlib_inline.config")
    backend = getattr(config, "InlineBackend", None)
    try:
        return dict(backend.instance().rc) if backend is not None and backend.initialized() else {}
    except Exception:
        return {}


def _plain(value):
    """rcParams values as JSON: cyclers by their repr, which rcParams accepts back."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if callable(value):
        return [_OBJECT, named(value)]
    return repr(value)


class _Pandas(Provider):
    """Every pandas option (``display.*``, ``mode.*``, ``future.*`` ...). The
    delta: options set away from their registered defaults."""

    name = "pandas"

    def __init__(self):
        self._fresh = None  # (number of options registered, the defaults nested as pandas keeps them)

    def delta(self):
        config = _pandas_config()
        if config is None:
            return None
        registered, values = config
        if self._fresh is None or self._fresh[0] != len(registered):
            self._fresh = (len(registered), _nested({k: o.defval for k, o in registered.items()}))
        if values == self._fresh[1]:
            return None
        now = _flat(values)
        return sorted((k, _option(v)) for k, v in now.items() if k in registered and registered[k].defval != v) or None

    def snapshot(self):
        config = _pandas_config()
        return {k: _option(v) for k, v in _flat(config[1]).items()} if config is not None else None

    def effect(self, before, after):
        changed = _changed(before, after)
        for name, value in (changed or {}).items():
            if isinstance(value, list) and value[:1] == [_OBJECT]:
                raise Unreplayable(f"pandas option {name} holds an object ({value[1]})")
        return changed

    def apply(self, effect):
        if not _available("pandas"):
            return
        import pandas as pd

        for name, value in effect.items():
            try:
                pd.set_option(name, value)
            except Exception:
                pass  # an option this pandas does not have


def _pandas_config():
    """pandas' registered options and their values (nested by dots), read
    in place: no option is looked up one by one on a lookup."""
    if "pandas" not in sys.modules:
        return None
    config = sys.modules.get("pandas._config.config")
    registered, values = getattr(config, "_registered_options", None), getattr(config, "_global_config", None)
    return (registered, values) if isinstance(registered, dict) and isinstance(values, dict) else None


def _nested(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def _flat(nested: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _option(value):
    """An option value as JSON; an object (a function) by what it is, marked."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) or v is None for v in value):
        return list(value)
    return [_OBJECT, named(value) if callable(value) else repr(value)]


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

    #: numpy's defaults, the same for years: only options set away from them
    #: join a key, so entries shipped to another numpy (a browser's) still hit.
    DEFAULTS = {
        "print": {"edgeitems": 3, "threshold": 1000, "floatmode": "maxprec", "precision": 8, "suppress": False,
                  "linewidth": 75, "nanstr": "nan", "infstr": "inf", "sign": "-", "formatter": None, "legacy": False},
        "err": {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"},
    }

    def delta(self):
        changed = self._changed(self.DEFAULTS, self.snapshot())
        return sorted((part, sorted(v.items())) for part, v in changed.items()) if changed else None

    def effect(self, before, after):
        changed = self._changed(before, after)
        for values in (changed or {}).values():
            for name, value in values.items():
                if isinstance(value, list) and value[:1] == [_OBJECT]:
                    raise Unreplayable(f"numpy's print option {name} holds an object ({value[1]})")
        return changed

    @staticmethod
    def _changed(before, after):
        if after is None or before == after:
            return None
        before = _NumpyOptions.DEFAULTS if before is None else before  # imported by the run: only options it set count
        out = {part: _changed(before.get(part), values) for part, values in after.items()}
        return {part: {k: _option(v) for k, v in out[part].items()} for part in out if out[part]} or None

    def apply(self, effect):
        if not _available("numpy"):
            return  # no numpy here (a browser's Pyodide without it): no array shows, nothing is lost
        import numpy as np

        printing = effect.get("print") or {}
        if printing:
            np.set_printoptions(**printing)
        if effect.get("err"):
            np.seterr(**effect["err"])


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

    def delta(self):
        changed = self.effect(self.DEFAULTS, self.snapshot())
        return sorted(changed.items()) if changed else None

    def effect(self, before, after):
        return _changed(self.DEFAULTS if before is None else before, after)  # imported by the run: see numpy

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
    same warnings. The delta: the filter list, once notebook code set or
    reset a filter (libraries add their own at import, the same wherever
    they are imported: those alone are no change)."""

    name = "warnings"

    def __init__(self):
        WarningEdits.install()

    def delta(self):
        if not WarningEdits.touched:
            return None
        import warnings

        try:
            return [_filter_json(f) for f in warnings.filters]
        except Exception:
            return [repr(f) for f in warnings.filters]

    def snapshot(self):
        import warnings

        return list(warnings.filters)

    def effect(self, before, after):
        if before is None or after is None or before == after:
            return None
        change = list_change(before, after)
        if change is not None:  # filters put in front (filterwarnings) or at the back (append=True)
            out = {"add": [_filter_json(f) for f in change[0]], "append": [_filter_json(f) for f in change[1]]}
        elif not any(f in after for f in before):  # reset, then set: the list does not depend on before
            out = {"reset": [_filter_json(f) for f in after]}
        else:
            raise Unreplayable("warning filters were removed or reordered")
        for row in (*out.get("add", ()), *out.get("append", ()), *out.get("reset", ())):
            try:
                _class_named(row[2])
            except Exception:
                raise Unreplayable(f"a warning filter names a class that cannot be found again ({row[2]})") from None
        out["touched"] = WarningEdits.touched
        return out

    def apply(self, effect):
        import warnings

        def rows(name):
            out = []
            for a, m, c, mod, n in effect.get(name) or ():
                try:
                    out.append((a, m or "", _class_named(c), mod or "", n))
                except (ImportError, AttributeError):
                    # A warning class this Python lacks (numpy's RankWarning in a browser without numpy):
                    # nothing here can raise it, so its filter would change nothing.
                    continue
            return out

        if "set" in effect:  # written before round 3: a whole list, maybe another kernel's
            raise Unreplayable("a filter list recorded whole")
        front, back, reset = rows("add"), rows("append"), rows("reset")  # every class found before anything changes
        if "reset" in effect:
            warnings.resetwarnings()
        for row in reversed(front or reset):
            warnings.filterwarnings(*row)
        for row in back:
            warnings.filterwarnings(*row, append=True)
        WarningEdits.touched = WarningEdits.touched or effect.get("touched", True)


class WarningEdits:
    """Whether notebook code (not a library at its import) called
    ``filterwarnings``, ``simplefilter`` or ``resetwarnings``: the
    ``warnings`` module's functions are wrapped once, for the process."""

    touched = False
    _PLUMBING = frozenset({"warnings", "_py_warnings", __name__})

    @classmethod
    def install(cls):
        import warnings

        for name in ("filterwarnings", "simplefilter", "resetwarnings"):
            original = getattr(warnings, name, None)
            if original is None or getattr(original, "_lc_watch", False):
                continue

            def wrapper(*args, _original=original, **kwargs):
                result = _original(*args, **kwargs)
                if not cls.touched and by_notebook(cls._PLUMBING):
                    cls.touched = True
                return result

            functools.update_wrapper(wrapper, original)
            wrapper._lc_watch = True
            setattr(warnings, name, wrapper)


def _filter_json(f) -> list:
    action, message, category, module, lineno = f
    return [action, getattr(message, "pattern", message), f"{category.__module__}:{category.__qualname__}",
            getattr(module, "pattern", module), lineno]
