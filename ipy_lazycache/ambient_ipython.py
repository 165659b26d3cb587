"""Ambient state IPython keeps: display formatters (sympy's
``init_printing``, ``for_type``, ``%precision``), input and AST
transformers, ``ast_node_interactivity`` and the inline backend's figure
formats. What changes how every later cell runs or shows its value."""

from __future__ import annotations

import operator
import sys

from .ambient_cell import Baselined, Provider, Unreplayable, _shell, named

#: Formatter attributes that decide what a value shows.
_KEYS = ("enabled", "type_printers", "deferred_printers", "float_format", "float_precision", "pprint",
         "max_seq_length", "max_width", "verbose", "newline")
#: Those a hit can set again exactly (plain values, not printers).
_SETTABLE = ("enabled", "float_precision", "float_format", "pprint", "max_seq_length", "max_width", "verbose",
             "newline")


def _formatters(shell) -> dict:
    display = getattr(shell, "display_formatter", None)
    if display is None:
        return {}
    out = dict(getattr(display, "formatters", None) or {})
    for name in ("ipython_display_formatter", "mimebundle_formatter"):
        f = getattr(display, name, None)
        if f is not None:
            out[name] = f
    return out


def _figure(key) -> bool:
    """matplotlib's figure printers: the inline backend's, not the notebook's
    (see :class:`_InlineBackend`)."""
    if isinstance(key, tuple):
        return key[:1] == ("matplotlib.figure",)
    return getattr(key, "__module__", "") == "matplotlib.figure"


def _type_name(key) -> str:
    if isinstance(key, tuple):
        return ".".join(key)
    return f"{getattr(key, '__module__', '?')}:{getattr(key, '__qualname__', '?')}"


class _Formatters(Provider):
    """IPython's display formatters, compared with new ones of the same
    classes (a fresh kernel's). A printer a run registers has no exact
    replay (sympy's are closures over its settings): such a cell is not
    stored. ``%precision`` and a formatter switched on or off are replayed."""

    name = "formatters"

    def __init__(self):
        self._fresh: dict = {}  # formatter class -> a new instance of it
        self._seen: list = []  # (formatter, itemgetter of its attributes, their values as last compared)
        self._last = None  # the delta computed for _seen
        self._shell = _shell()

    def delta(self):
        if self._last is not None and self._unchanged():
            return self._last[0]
        shell = self._shell or _shell()
        fs = _formatters(shell) if shell is not None else {}
        described = self.snapshot(fs)  # reads every attribute: traitlets' lazy defaults are in place after it
        self._seen = []
        for f in fs.values():
            keys = [k for k in _KEYS if k in f._trait_values] * 2  # twice: itemgetter of one key gives no tuple
            if keys:
                getter = operator.itemgetter(*keys)
                self._seen.append((f, getter, _copy(getter(f._trait_values))))
        self._last = (described or None, getattr(getattr(shell, "display_formatter", None), "formatters", None))
        return self._last[0]

    def _unchanged(self) -> bool:
        """Every formatter's attributes equal those last compared (a cheap
        check of what :meth:`snapshot` describes)."""
        display = getattr(self._shell, "display_formatter", None)
        if display is None or display._trait_values.get("formatters") is not self._last[1]:
            return False
        try:
            return all(getter(f._trait_values) == seen for f, getter, seen in self._seen)
        except KeyError:
            return False

    def snapshot(self, fs=None):
        """``{mime: {attribute: description}}`` of what differs from a new formatter."""
        if fs is None:
            shell = _shell()
            fs = _formatters(shell) if shell is not None else {}
        out = {}
        for mime, f in fs.items():
            fresh = self._fresh.get(type(f))
            if fresh is None:
                fresh = self._fresh[type(f)] = type(f)()
            diff = {}
            for k in _KEYS:
                now, then = getattr(f, k, None), getattr(fresh, k, None)
                if isinstance(now, dict) and isinstance(then, dict):
                    changed = {_type_name(t): (named(now[t]) if t in now else None)
                               for t in set(now) | set(then) if not _figure(t) and _differs(now.get(t), then.get(t))}
                    if changed:
                        diff[k] = sorted(changed.items())
                elif now != then:
                    diff[k] = now if isinstance(now, (str, int, float, bool)) or now is None else repr(now)
            if diff:
                out[mime] = diff
        return out

    def effect(self, before, after):
        if after is None or before == after:
            return None
        out = {}
        for mime in set(before or {}) | set(after):
            b, a = (before or {}).get(mime, {}), after.get(mime, {})
            for k in set(b) | set(a):
                if b.get(k) == a.get(k):
                    continue
                if k not in _SETTABLE:
                    raise Unreplayable(f"a {mime} printer was registered or removed ({k})")
                out.setdefault(mime, {})[k] = a.get(k)
        return out or None

    def apply(self, effect):
        fs = _formatters(_shell())
        for mime, values in effect.items():
            for k, v in sorted(values.items(), key=lambda kv: _SETTABLE.index(kv[0])):  # precision, then format
                if k == "float_precision" and v is None:
                    v = ""
                setattr(fs[mime], k, v if v is not None else getattr(type(fs[mime])(), k))


def _differs(a, b) -> bool:
    """Two printers differ unless they are one object or the same closure
    made again (a new formatter makes its own lambdas)."""
    return a is not b and (a is None or b is None or named(a) != named(b))


def _copy(values: tuple) -> tuple:
    return tuple(dict(v) if isinstance(v, dict) else v for v in values)


def _ours(obj) -> bool:
    target = obj if hasattr(obj, "__qualname__") else type(obj)
    return (getattr(target, "__module__", "") or "").startswith("ipy_lazycache")


class _Transformers(Baselined):
    """Input and AST transformers a notebook added (ours left out): they
    change how every later cell's text becomes code. A run that adds or
    removes one is not stored (a transformer is live code)."""

    name = "transformers"
    LISTS = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")

    def rebase(self):
        self._shell = _shell()
        self._seen = None  # (the lists as last seen, their delta)
        super().rebase()

    def _raw(self):
        shell = self._shell or _shell()
        values = getattr(shell, "_trait_values", None)
        if values is None:
            return None
        return tuple(tuple(values.get(n) or ()) for n in self.LISTS)

    def snapshot_objects(self):
        raw = self._raw()
        return None if raw is None else tuple(tuple(t for t in part if not _ours(t)) for part in raw)

    def delta(self):
        raw = self._raw()
        if self._seen is not None and raw == self._seen[0]:
            return self._seen[1]
        now = None if raw is None else tuple(tuple(t for t in part if not _ours(t)) for part in raw)
        out = None if now is None or now == self.start else [[named(t) for t in part] for part in now]
        self._seen = (raw, out)
        return out

    def snapshot(self):
        return self.snapshot_objects()

    def effect(self, before, after):
        if before != after:
            raise Unreplayable("an input or AST transformer was added or removed")
        return None


class _Magics(Provider):
    """Magics the notebook defines (``@register_line_magic`` on a notebook
    function): a hit cannot register a function again, so a run that adds,
    replaces or removes one is not stored. An extension's magics are left
    out: ``%load_ext`` in the cell is done again by a hit."""

    name = "magics"

    def snapshot(self):
        shell = _shell()
        manager = getattr(shell, "magics_manager", None)
        if manager is None:
            return None
        return {(kind, name): id(fn) for kind, table in manager.magics.items() for name, fn in table.items()
                if getattr(fn, "__module__", None) == "__main__"}

    def effect(self, before, after):
        if before is not None and after is not None and before != after:
            names = sorted({f"%{name}" for (_, name), _ in set(before.items()) ^ set(after.items())})
            raise Unreplayable(f"it defines the magic {', '.join(names[:3])}")
        return None


class _Interactivity(Baselined):
    """``ast_node_interactivity`` (which expressions of a cell show a value)."""

    name = "interactivity"

    def rebase(self):
        self._shell = _shell()
        super().rebase()

    def snapshot(self):
        shell = self._shell or _shell()
        # the trait itself, default included: its stored value appears only once IPython first reads it
        return getattr(shell, "ast_node_interactivity", None)

    def effect(self, before, after):
        return {"value": after} if before != after and after is not None else None

    def apply(self, effect):
        _shell().ast_node_interactivity = effect["value"]


class _InlineBackend(Provider):
    """The inline backend's settings (``InlineBackend.figure_formats``, its
    rc, ``print_figure_kwargs``), compared with a new ``InlineBackend``."""

    name = "inline"
    KEYS = ("figure_formats", "rc", "print_figure_kwargs", "close_figures")

    def __init__(self):
        self._fresh = None

    def _instance(self):
        config = sys.modules.get("matplotlib_inline.config")
        backend = getattr(config, "InlineBackend", None)
        if backend is None or not backend.initialized():
            return None, None
        if self._fresh is None:
            self._fresh = self._state(backend())
        return backend.instance(), backend

    def _state(self, inst):
        out = {}
        for k in self.KEYS:
            v = getattr(inst, k, None)
            out[k] = sorted(v) if isinstance(v, (set, frozenset)) else v
        return out

    def snapshot(self):
        inst, _ = self._instance()
        return self._state(inst) if inst is not None else None

    def delta(self):
        now = self.snapshot()
        if now is None or now == self._fresh:
            return None
        return sorted((k, repr(v)) for k, v in now.items() if self._fresh.get(k) != v)

    def effect(self, before, after):
        if after is None or before == after:
            return None
        changed = {k: v for k, v in after.items() if (before or self._fresh or {}).get(k) != v}
        if any(not _plain_json(v) for v in changed.values()):
            raise Unreplayable("an inline backend setting holds an object")
        return changed or None

    def apply(self, effect):
        inst, _ = self._instance()
        if inst is None:
            from matplotlib_inline.config import InlineBackend

            inst = InlineBackend.instance()
        for k, v in effect.items():
            setattr(inst, k, set(v) if k == "figure_formats" else v)


def _plain_json(value) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    return False
