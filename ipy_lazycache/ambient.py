"""Ambient state: process-wide state that a cell's result can depend on and
that no name in the cell shows (DESIGN §9, §11).

Each provider can take a snapshot, say what this process changed from a
fresh kernel (its *delta*), tell whether a cell observes it, say what a run
changed (an *effect*, JSON-able, re-applied on a hit) and apply such an
effect.

**The delta joins every key.** A fresh kernel's delta is empty, so its keys
are the same on every machine and in a browser (the golden vectors). What
"fresh" means, per registry, never depends on the machine:

- fixed defaults where a library has them: numpy's print and error options,
  ``decimal``'s context, every pandas option against its registered default,
  IPython's formatters against new formatters of the same classes;
- what the library read at its own import: matplotlib's ``rcParamsOrig``
  (its defaults and this machine's matplotlibrc; the backend left out);
- otherwise the state when the extension loaded (the process's start-up
  state as this notebook sees it): working directory, ``sys.path`` (paths
  under the starting folder relative to it), the time zone, the locale, the
  recursion limit, transformers, ``ast_node_interactivity``;
- environment variables: those notebook code set or removed after the
  extension loaded (the kernel's environment is the machine's); warning
  filters: the list, once notebook code set or reset one (libraries add
  their own at import, and those alone are no change).

So a change made *before* ``%load_ext`` is part of the baseline for the
last two groups; load the extension first. The global generators cannot be
compared with a default: they join the key of a cell that draws from them
once this process may have seeded them, which is assumed when cells that
could have (see :func:`.ambient_random.watch_seeding`) ran before the
extension loaded. Some providers also key narrowly: environment variables a
cell reads, the time zone for cells calling zone-dependent functions.

**An effect is replayed exactly or the cell is not stored**:
:meth:`Registry.changes` names a change no hit can make (a printer or
transformer registered, a filter removed, a module put into ``sys.modules``,
an option holding a function).

The providers live by kind in :mod:`.ambient_random`, :mod:`.ambient_process`,
:mod:`.ambient_system`, :mod:`.ambient_libraries` and :mod:`.ambient_ipython`;
what they look at in :mod:`.ambient_cell`. This module is the registry the
glue and the core call.
"""

from __future__ import annotations

import os

from .ambient_cell import Baselined, Cell, Provider, Unreplayable, _digest  # noqa: F401  (Cell: the core builds it; Provider: the interface)
from .ambient_ipython import _Formatters, _InlineBackend, _Interactivity, _Transformers
from .ambient_libraries import _Decimal, _Matplotlib, _NumpyOptions, _Pandas, _Warnings
from .ambient_logging import _Logging
from .ambient_process import EnvironReads, _Cwd, _Environ, _SysPath  # noqa: F401  (EnvironReads: the glue's)
from .ambient_random import _NumpyRandom, _Random, _Seeds, watch_seeding  # noqa: F401  (watch_seeding: the glue's)
from .ambient_system import _Locale, _Modules, _RecursionLimit, _TimeZone

#: Prefix of the requirements on single environment variables.
ENVIRON = "environ:"
#: Prefix of a provider's delta from a fresh kernel in a key.
DELTA = "delta:"


class Registry:
    """The providers, in the order their effects are applied. Made when the
    extension loads: what they find then is the start-up state their delta
    is measured from (see :meth:`delta`)."""

    def __init__(self, providers=None):
        self.providers = providers if providers is not None else [
            _Cwd(), _SysPath(), _Environ(), _TimeZone(), _Locale(), _RecursionLimit(), _Random(), _NumpyRandom(),
            _NumpyOptions(), _Matplotlib(), _Pandas(), _Decimal(), _Warnings(), _Logging(), _Formatters(),
            _Transformers(), _Interactivity(), _InlineBackend(), _Modules(),
        ]

    def start_here(self) -> None:
        """The session starts here, at its first cell: for an extension loaded
        at kernel start (a site's startup file), before the kernel finished
        setting itself up (JupyterLite's moves to the notebook's folder, adds
        its paths, formatters and transformers). Baselines taken at load are
        taken again, so a fresh kernel's delta is empty on every kernel."""
        for p in self.providers:
            if isinstance(p, Baselined):
                p.rebase()

    def delta(self) -> dict:
        """What this process changed from a fresh kernel, by provider: it
        joins the key of every cell. A fresh kernel's is empty, so a key
        made there is the same on any machine and in a browser."""
        out = {}
        for p in self.providers:
            try:
                d = p.delta()
            except Exception:
                continue  # a broken library never breaks a cell
            if d is not None:
                out[DELTA + p.name] = _digest(d)
        return out

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
        out.update(self.delta())
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
        return self.changes(before, after)[0]

    def changes(self, before: dict, after: dict, ns: dict | None = None) -> tuple[dict, list[str]]:
        """What a run changed, as effects a hit applies again, and why any
        change has no exact replay (then the cell must not be stored)."""
        out, refused = {}, []
        for p in self.providers:
            try:
                if getattr(p, "wants_ns", False):
                    e = p.effect(before.get(p.name), after.get(p.name), ns)
                else:
                    e = p.effect(before.get(p.name), after.get(p.name))
            except Unreplayable as exc:
                refused.append(str(exc))
                continue
            except Exception:
                e = None
            if e is not None:
                out[p.name] = e
        return out, refused

    def apply(self, effects: dict, ns: dict | None = None) -> list[str]:
        """Re-apply a run's effects; returns the names that could not be."""
        failed = []
        by_name = {p.name: p for p in self.providers}
        for name, effect in (effects or {}).items():
            p = by_name.get(name)
            try:
                if getattr(p, "wants_ns", False):
                    p.apply(effect, ns)
                else:
                    p.apply(effect)
            except Exception:
                failed.append(name)
        return failed
