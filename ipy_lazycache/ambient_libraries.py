"""Ambient state libraries keep: matplotlib's style, pandas' and numpy's
print options, ``decimal``'s context, warning filters."""

from __future__ import annotations

import sys

from .ambient_cell import Provider, _available, _changed, _class_named, _digest, _shell


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
        before = self.DEFAULTS if before is None else before  # imported by the run: only options it set count
        out = {part: _changed(before.get(part), values) for part, values in after.items()}
        return {part: {k: _json_option(v) for k, v in out[part].items()} for part in out if out[part]} or None

    def apply(self, effect):
        if not _available("numpy"):
            return  # no numpy here (a browser's Pyodide without it): no array shows, nothing is lost
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

        rows = []
        for a, m, c, mod, n in effect.get("add") or effect["set"]:
            try:
                rows.append((a, m or "", _class_named(c), mod or "", n))
            except (ImportError, AttributeError):
                # A warning class this Python lacks (numpy's RankWarning in a browser without numpy):
                # nothing here can raise it, so its filter would change nothing.
                continue
        if "set" in effect:  # every class found before anything changes
            warnings.resetwarnings()
        for row in reversed(rows):
            warnings.filterwarnings(*row)


def _filter_json(f) -> list:
    action, message, category, module, lineno = f
    return [action, getattr(message, "pattern", message), f"{category.__module__}:{category.__qualname__}",
            getattr(module, "pattern", module), lineno]
