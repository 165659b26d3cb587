"""Ambient state of the interpreter and the C library: the time zone, the
locale, the recursion limit and modules put into ``sys.modules`` by hand."""

from __future__ import annotations

import sys
import time
import types

from .ambient_cell import Baselined, Provider, Unreplayable, _digest
from .recursion import set_user_limit, user_limit

#: Names in ``time`` and ``datetime`` whose result depends on the time zone.
_ZONED = frozenset({"localtime", "mktime", "ctime", "asctime", "strftime", "tzname", "timezone", "altzone",
                    "daylight", "now", "today", "fromtimestamp", "astimezone", "timestamp"})


#: What ``from time import localtime`` or ``now = datetime.now`` binds.
_CALLABLES = (types.BuiltinFunctionType, types.FunctionType, types.MethodType)


def _one_of(obj, options) -> bool:
    """``obj in options`` by identity, never calling ``obj.__eq__``."""
    return any(obj is o for o in options)


def _zone():
    return [list(time.tzname), time.timezone, time.altzone, time.daylight]


class _TimeZone(Baselined):
    """The C library's time zone (``TZ`` at start-up, ``time.tzset()``).
    It joins the key of a cell that calls a zone-dependent function of
    ``time``/``datetime`` (``time.localtime``, ``datetime.now`` ...), and
    every key once this process changed it."""

    name = "timezone"

    def snapshot(self):
        return _zone()

    def observes(self, cell):
        time_mod, dt = sys.modules.get("time"), sys.modules.get("datetime")
        zoned_types = (getattr(dt, "datetime", None), getattr(dt, "date", None))
        for chain in cell.chains():
            # by identity: ``in`` would call a ref's __eq__ (xarray's fills a Dataset's attrs)
            if (chain[0] is time_mod or chain[0] is dt or _one_of(chain[0], zoned_types)) and _ZONED.intersection(
                    chain[1:]):
                return True
        for base, *attrs in cell._shape[0]:  # names the cell imports itself: ``import time`` in the cell
            what = cell.imported().get(base) if base not in cell.ns else None
            if what is not None and (what.split(".")[0] in ("time", "datetime")) and (
                    _ZONED.intersection(attrs) or what.rpartition(".")[2] in _ZONED):
                return True
        if any(what.split(".")[0] == "time" and what.rpartition(".")[2] in _ZONED
               for what in cell.imported().values()):
            return True
        for obj in cell.ref_objects():
            if not isinstance(obj, _CALLABLES):  # getattr on any other ref may run its class's __getattr__
                continue
            owner = getattr(obj, "__self__", None)
            if obj.__name__ in _ZONED and (_one_of(owner, zoned_types) or owner is time_mod or getattr(
                    obj, "__module__", None) == "time"):
                return True
        return False

    def key(self, cell, state):
        return _digest(state)

    def effect(self, before, after):
        return {"zone": after} if before != after and after is not None else None

    def apply(self, effect):
        time.tzset()  # after the environment's effect (TZ) was applied
        if _zone() != effect["zone"]:
            raise Unreplayable("the time zone did not come back")


def _locale_state():
    import locale

    return locale.setlocale(locale.LC_ALL, None)


_CATEGORIES = ("LC_CTYPE", "LC_COLLATE", "LC_TIME", "LC_MONETARY", "LC_NUMERIC", "LC_MESSAGES")


class _Locale(Baselined):
    """The C locale (``locale.setlocale``): how numbers, times and sorting
    come out. Compared with the locale when the extension loaded."""

    name = "locale"

    def current(self):
        try:
            return _locale_state()
        except Exception:
            return None

    def snapshot(self):
        import locale

        out = {}
        for name in _CATEGORIES:
            category = getattr(locale, name, None)
            if category is not None:
                out[name] = locale.setlocale(category, None)
        return out

    def effect(self, before, after):
        if after is None or before == after:
            return None
        return {k: v for k, v in after.items() if (before or {}).get(k) != v} or None

    def apply(self, effect):
        import locale

        for name, value in effect.items():
            locale.setlocale(getattr(locale, name), value)


class _RecursionLimit(Baselined):
    """``sys.setrecursionlimit``: whether deep recursion runs or raises."""

    name = "recursionlimit"

    def snapshot(self):
        return user_limit()  # never the tool's own lower bound while it works

    def effect(self, before, after):
        return {"limit": after} if before != after else None

    def apply(self, effect):
        set_user_limit(effect["limit"])


class _Runtime(Provider):
    """Interpreter settings a cell may change and later cells feel:
    ``gc.disable()`` / ``gc.set_threshold``, ``socket.setdefaulttimeout``
    (once socket is imported), ``sys.setswitchinterval``. Each has an
    exact setter, so a hit sets what the run set."""

    name = "runtime"

    def snapshot(self):
        import gc

        socket = sys.modules.get("socket")
        return {"gc": gc.isenabled(), "threshold": list(gc.get_threshold()),
                "timeout": socket.getdefaulttimeout() if socket is not None else None,
                "switch": sys.getswitchinterval()}

    def effect(self, before, after):
        if before is None or after is None:
            return None
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        return changed or None

    def apply(self, effect):
        import gc

        if "gc" in effect:
            gc.enable() if effect["gc"] else gc.disable()
        if "threshold" in effect:
            gc.set_threshold(*effect["threshold"])
        if "timeout" in effect:
            import socket

            socket.setdefaulttimeout(effect["timeout"])
        if "switch" in effect:
            sys.setswitchinterval(effect["switch"])


class _Modules(Provider):
    """Modules a run put into ``sys.modules`` by hand (``sys.modules['m'] =
    module``: no import system can find them again, and a module object is
    stored by its name) have no exact replay; modules a run took out of it
    are taken out again. Modules a library makes as a side effect
    (``_cython_3_2_4``, ``pyexpat.errors``) are left out, as are imports."""

    name = "sys.modules"

    def snapshot(self):
        return dict(sys.modules)

    def effect(self, before, after):
        if before is None or after is None:
            return None
        for name, module in after.items():
            if before.get(name) is module or getattr(module, "__spec__", None) is not None:
                continue
            if not ("." in name or name.startswith("_") or name == "cython_runtime"):
                raise Unreplayable(f"the cell puts module {name!r} into sys.modules")
        removed = sorted(n for n in before if n not in after)
        return {"removed": removed} if removed else None

    def apply(self, effect):
        for name in effect.get("removed", ()):
            sys.modules.pop(name, None)
