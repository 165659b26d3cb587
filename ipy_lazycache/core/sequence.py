"""The run sequence of one cached cell: plan, then on a hit restore and show,
on a miss let the body run and store what it made.

The shell is reached only through a :class:`Shell` (show outputs, show a
value's display, format a value, run a line magic, record outputs, a
progress bar), and the namespace is a plain dict, so the whole sequence runs
with no kernel: :func:`run` is that, end to end. The IPython glue
(:mod:`ipy_lazycache.magics`) calls the same steps from its events instead,
because there the body must run as IPython's own cell (top-level await,
tracebacks, ``;``): :meth:`Sequence.begin` when the cell's AST is ready,
:meth:`Sequence.end` at ``post_run_cell``.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import sys
import time

from .. import ambient, auto, file_watch, manage, signing, stdin_watch
from ..capture import split_at_result
from ..hashing import code_hash
from ..manifest import CorruptEntry
from ..outcomes import RESTORED, STORED, UNCACHED, Outcome as CellOutcome, Outcomes
from ..platform import scans_folders
from ..recursion import bounded
from ..reports import human_size
from ..stores.base import StoreUnavailable
from ..tripwire import Tripwire
from . import file_effects
from .apply import apply, refused_standins
from .memo import Memo
from .plan import OverBudget, Uncacheable, installed_differ, plan as make_plan
from .restore import restore
from .run import NotStored, Outcome, changed_modules, config_magics, module_snapshot, result_name, take_before
from .save import evict, save
from .shell import Shell

PREFIX = "lazycache:"

MAGICS = "ipython"  # the effect under which they are stored

#: An entry's requirement on the version of an installed module the cell imports.
VERSION = "version:"

#: Seconds between two recency records of one entry by one session: the
#: record only orders entries for ``prune``, and a write per hit costs more than the hit.
USE_INTERVAL = 60.0


def local_tier(store):
    """The cache folder's own tier: where hits are recorded and pruning and
    export lists apply, never a team's shared store behind it."""
    return store.tiers[0]


def names_line(names, most: int = 8) -> str:
    """Names for a one-line message: ``from math import *`` binds sixty."""
    names = sorted(names)
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most])} and {len(names) - most} more"


def secs(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"


class Refused(Exception):
    """Strict signing refused the entry: the cell neither restores nor runs."""


class Running:
    """A miss whose body is running: what :meth:`Sequence.end` needs to store
    it. ``auto`` is the cell's code hash in auto mode (None otherwise);
    ``plan`` is None when auto mode only times the run."""

    def __init__(self, plan, store, signer, capture, states, quiet, result_name, started, auto=None, ns=None):
        self.plan, self.store, self.signer, self.capture = plan, store, signer, capture
        self.states, self.quiet, self.result_name, self.started = states, quiet, result_name, started
        self.auto, self.ns = auto, ns
        self.cell_id = None  # the front end's id of the cell, where it gives one
        self.reason = None  # why it ran though an entry of its key exists (--force, a package version)
        self.magics: list = []  # configuring line magics the body runs (a hit runs them again)
        self.modules: dict = {}  # attributes of modules before the run (run.module_snapshot)
        self.environ: set | None = None  # variables notebook code read during the run (ambient.EnvironReads)
        self.stdin: list | None = None  # stdin_watch's token: whether the run read standard input
        self.files = None  # file_watch's Watch: the paths the run writes in its folder


class Hit:
    """A restored entry, applied: how the cell's value is shown. ``name``: the
    last line's name, to evaluate again; else ``value`` if ``has_value``."""

    def __init__(self, name=None, value=None, has_value=False, shown=None):
        self.name, self.value, self.has_value = name, value, has_value
        #: the run's display of the value (``{"data", "metadata"}``): shown
        #: as recorded, not formatted again from the restored object
        self.shown = shown


class Sequence:
    """One session's cache sequence: its memo, process state registry,
    statistics and auto-mode record, and the steps of a cell."""

    def __init__(self, shell: Shell | None = None):
        self.shell = shell or Shell()
        self.memo = Memo()
        self.ambient = ambient.Registry()
        self.stats = {"hits": 0, "misses": 0, "bytes_restored": 0, "time_saved": 0.0, "auto_hits": 0,
                      "auto_saved": 0.0}
        self.codes = auto.Codes()
        self.outcomes = Outcomes()  # what happened to each cell (``%lazycache why``, a front end's badge)
        self._cell = None  # (cell id, code digest, auto) of the cell begin() is keying
        self.unmet = None  # why the entry lookup found did not count (another package version)
        self.after: list = []  # a hit's outputs that the run showed after its value
        self._marked: dict = {}  # (tier, key) -> when this session last recorded a use
        self._failed_folders: set = set()  # (folder, error type) already said once
        self._bar = None  # the progress of the store just made (a display it left in the cell, if shown)

    def _say(self, text, quiet=False, force=False):
        bar, self._bar = self._bar, None  # a store's bar shown in the cell: its display takes the first line,
        if not (bar is not None and bar.say(text)) and (force or not quiet):  # even one auto mode keeps quiet
            self.shell.say(text)

    def uncached(self, reason: str, cell_id=None, code=None, is_auto=False, seconds=0.0):
        """Record a cell that ran (or runs) without the cache, and why."""
        return self.outcomes.record(CellOutcome(UNCACHED, cell_id=cell_id, code=code, reason=reason,
                                                seconds=seconds, auto=is_auto))

    def _uncached_run(self, running, reason, duration=0.0):
        plan = running.plan
        return self.uncached(reason, running.cell_id, plan.code if plan is not None else running.auto,
                             running.auto is not None, duration)

    # -- the step before the body ---------------------------------------------------
    @bounded()
    def begin(self, tree, ns: dict, store, signer=None, *, deps=(), files=(), source=None, quiet=False,
              force=False, is_auto=False, exact_source=False, cell_id=None):
        """Key the cell and look it up. Returns a :class:`Hit` (applied to
        ``ns``), a :class:`Running` (the body must run now, then :meth:`end`)
        or None (run it uncached). Raises :class:`Refused` (strict signing).
        ``cell_id``: the front end's id of the cell, for :attr:`outcomes`."""
        code = budget = None
        if is_auto:
            code = code_hash(tree)
            budget = self.codes.budget(store, code)  # a cell never seen slow: hashed only if that is cheap
        self._cell = (cell_id, code, is_auto)
        try:
            plan = make_plan(tree, ns, self.memo, deps=deps, files=files, source=source, ambient=self.ambient,
                             budget=budget, code=code, exact_source=exact_source)
        except OverBudget:  # timed only: if it is slow, its next run is keyed and stored
            running = Running(None, store, None, None, None, True, None, time.perf_counter(), auto=code, ns=ns)
            running.cell_id = cell_id
            return running
        except Uncacheable as exc:
            if not is_auto:
                self._say(f"{PREFIX} not cached: {exc}; running the cell normally.", force=True)
            self.uncached(str(exc), cell_id, code, is_auto)
            return None
        self._cell = (cell_id, plan.code, is_auto)
        self.unmet = None  # why a found entry of this key did not count (lookup)
        if not force:
            started = time.perf_counter()
            restored = self.lookup(store, plan, ns, signer)
            hit = self.hit(restored, started, quiet, store, plan, ns) if restored is not None else None
            if hit is not None:
                if is_auto:
                    self.stats["auto_hits"] += 1
                    ran = restored.manifest.get("duration") or 0.0
                    self.stats["auto_saved"] += max(ran - (time.perf_counter() - started), 0.0)
                return hit
        if not is_auto:
            self.stats["misses"] += 1  # auto mode counts only the runs it stores
        running = self.start(tree, plan, ns, store, signer, quiet, is_auto)
        running.cell_id, running.reason = cell_id, "run with --force" if force else self.unmet
        return running

    def lookup(self, store, plan, ns, signer=None):
        """The entry for ``plan``, restored but not yet applied, or None: a
        miss, or an entry that is damaged, unverified or made under other
        process state or module versions."""
        try:
            restored = restore(store, plan.key, ns, signer=signer)
        except signing.UntrustedEntry as exc:
            raise Refused(f"lazycache: {exc}; refusing to load it (signing is strict). "
                          "Run with --force to recompute, or `ipy-lazycache verify --fix`.") from None
        except signing.Unverified as exc:
            self._say(f"{PREFIX} {exc}; running the cell.", force=True)
            return None
        except CorruptEntry as exc:
            self._say(f"{PREFIX} entry {plan.key[:10]} is damaged ({exc}); evicting it and re-running the cell.",
                      force=True)
            with contextlib.suppress(Exception):
                evict(store, plan.key)
            return None
        except StoreUnavailable:
            return None  # the shared store went away mid-read and has said so once
        except Exception as exc:
            self._say(f"{PREFIX} could not read the cache ({type(exc).__name__}: {exc}); running the cell.", force=True)
            return None
        if restored is None:
            return None
        if not self.still_valid(restored.manifest):
            self.unmet = self.unmet_requirement(restored.manifest)
            return None
        self._mark_used(local_tier(store), plan.key)  # local: a hit writes nothing remote
        return restored

    def unmet_requirement(self, m) -> str:
        """Why an entry of the same key is not valid here, in words (only
        asked when :meth:`still_valid` said no)."""
        from ..explain import PROVIDERS

        for name, want in (m.get("requires") or {}).items():
            if name.startswith(VERSION):
                if installed_differ({name[len(VERSION):]: want}):
                    pkg, version = name[len(VERSION):], want.rpartition(":")[2]
                    return f"its entry was made with {pkg} {version}; another version is installed here"
            elif not self.ambient.satisfied({name: want}):
                what = f"environment variable {name.partition(':')[2]}" if name.startswith("environ:") else \
                    PROVIDERS.get(name, name)
                return f"{what} differs from when its entry was made (the run read it)"
        return "its entry was made under other process state"

    def still_valid(self, m) -> bool:
        requires = m.get("requires") or {}
        versions = {k[len(VERSION):]: v for k, v in requires.items() if k.startswith(VERSION)}
        if not self.ambient.satisfied({k: v for k, v in requires.items() if not k.startswith(VERSION)}):
            return False  # the run drew from a generator now in another state
        return not installed_differ(versions)  # else it ran with another version of a module it imports

    def _mark_used(self, local, key):
        now = time.monotonic()
        if now - self._marked.get((id(local), key), -USE_INTERVAL) >= USE_INTERVAL:
            self._marked[(id(local), key)] = now
            manage.mark_used(local, key)

    # -- a hit ------------------------------------------------------------------
    def hit(self, restored, started, quiet, store, plan, ns) -> Hit | None:
        """Apply a restored entry: effects again, values into ``ns``, the
        outputs shown before the value; those after it wait in :attr:`after`.
        None (one line said why) where the hit would differ from a run: a
        stand-in would replace a value the namespace holds, or come from an
        entry this platform wrote and cannot read back, or an effect of the
        run cannot be applied again (``os.chdir`` into a folder since removed)."""
        m = restored.manifest
        refused = refused_standins(restored, ns)
        if refused:
            self._say(f"{PREFIX} {names_line(refused)} could not be restored "
                      f"({restored.values[refused[0]]._lc_reason}); running the cell.", quiet=quiet)
            return None
        if m.get("files") and not self._put_files(restored, store):
            return None
        failed = self._redo_effects(dict(m.get("effects") or {}), ns)
        if failed:
            self._say(f"{PREFIX} could not re-apply the cell's change to {', '.join(failed)}; running the cell.",
                      quiet=quiet)
            return None
        apply(restored, ns, self.memo)
        before, self.after = split_at_result(m.get("outputs") or [])
        self.shell.show(before)
        elapsed = time.perf_counter() - started
        saved = max((m.get("duration") or 0.0) - elapsed, 0.0)
        self.stats["hits"] += 1
        self.stats["bytes_restored"] += restored.nbytes
        self.stats["time_saved"] += saved
        names = names_line(restored.values) or "its outputs"
        self._say(f"{PREFIX} restored {names} from {m['key'][:10]} ({human_size(restored.nbytes)}) in "
                  f"{secs(elapsed)}, saving {secs(saved)}.", quiet=quiet)
        cell_id, _code, is_auto = self._cell or (None, None, False)
        self.outcomes.record(CellOutcome(RESTORED, cell_id=cell_id, code=plan.code, key=plan.key, store=store,
                                         names=restored.values, seconds=elapsed, saved=saved, auto=is_auto))
        # Notes on what the hit could not give back: quiet means quiet; a closed file is not worth a line.
        for name in restored.tripwires:
            if not m["defs"].get(name, {}).get("closed"):
                self._say(f"{PREFIX} {restored.values[name]!r}", quiet=quiet)
        sys.stdout.flush()
        self.shell.used(store, plan.key)
        name = m.get("result_name")
        if name and name in ns and not isinstance(ns[name], Tripwire):
            return Hit(name=name, shown=m.get("result"))
        if restored.result is not None:  # Out[n] and _ hold the value itself, as after a run
            return Hit(value=restored.result, has_value=True, shown=m.get("result"))
        if m.get("result"):
            self.shell.show_result(m["result"])  # its display, with nothing of ours put in Out or _
        return Hit()

    def _put_files(self, restored, store) -> bool:
        """Put back the files the run left in the hit's working folder (before
        a ``%cd`` of the run is redone); False (said why) if the cell must run."""
        try:
            file_effects.replay(store, restored.manifest, os.getcwd(), restored.signer)
            return True
        except file_effects.NotReplayed as exc:
            self._say(f"{PREFIX} {exc}; running the cell.", force=True)
            return False

    def _redo_effects(self, effects, ns=None) -> list:
        """Apply the run's changes to process state again; the names that failed."""
        failed = self.ambient.apply({k: v for k, v in effects.items() if k != MAGICS}, ns)
        for name, line in effects.get(MAGICS, ()):
            try:  # configuration the cell ran (%matplotlib inline, %config ...): run it again
                with contextlib.redirect_stdout(io.StringIO()):
                    self.shell.run_magic(name, line)
            except Exception:
                failed.append(f"%{name} {line}")
        return failed

    def show_after(self):
        """Show the hit's outputs that the run showed after its value."""
        after, self.after = self.after, []
        if after:
            self.shell.show(after)

    # -- a miss: the body runs between start and end ---------------------------------
    def start(self, tree, plan, ns, store, signer, quiet, is_auto) -> Running:
        take_before(plan, ns)
        states = self.ambient.snapshot()
        capture = self.shell.record()
        running = Running(plan, store, signer, capture, states, quiet, result_name(tree), time.perf_counter(),
                          auto=plan.code if is_auto else None, ns=ns)
        running.magics = config_magics(tree)
        running.modules = module_snapshot(plan, ns)
        running.environ = ambient.EnvironReads.start()  # after our own reads
        running.stdin = stdin_watch.start(self.shell.input_server())
        running.files = file_watch.start(os.getcwd(), [getattr(local_tier(store), "root", None)], scans_folders())
        return running

    @staticmethod
    def _unwatch(running) -> bool:
        """Stop the run's watches (environment reads, stdin, files); whether it read stdin."""
        if running.environ is not None:
            ambient.EnvironReads.stop(running.environ)
        if running.files is not None:
            file_watch.stop(running.files)
        return running.stdin is not None and stdin_watch.stop(running.stdin)

    def stop(self, running):
        """Stop recording a run (also when the extension unloads mid-cell)."""
        self._unwatch(running)
        if running.capture is not None:
            running.capture.__exit__(None, None, None)

    def end(self, running, value, failed: bool, min_time: float = auto.DEFAULT_MIN_TIME, max_size: str = ""):
        """The body ran (``failed``: it raised): store what it made."""
        self._bar = None
        typed = self._unwatch(running)
        duration = time.perf_counter() - running.started
        if running.capture is not None:
            running.capture.__exit__(None, None, None)
        if failed:  # a failed run is not a result; the traceback was shown as usual
            self._uncached_run(running, "it raised an error", duration)
            return
        if typed:  # slow because someone typed; a hit would skip the prompt and restore what they typed
            reason = "it read standard input (input(), getpass()), which a hit would skip"
            self._say(f"{PREFIX} not stored: {reason}.", force=running.auto is None, quiet=True)
            self._uncached_run(running, reason, duration)
            return
        if running.auto is not None and not auto.keeps(duration, min_time):  # auto mode: a cheap cell always runs
            self._uncached_run(running, f"too quick: it ran {secs(duration)}, and auto mode caches cells of "
                               f"{secs(min_time)} or more", duration)
            return
        if running.plan is None:  # auto mode, inputs too large to hash before a run that might be cheap
            self.codes.mark(local_tier(running.store), running.auto)
            self._uncached_run(running, "its first run was only timed (its inputs are large to hash); "
                               "it is cached from its next run", duration)
            return
        try:
            self.store(running, value, duration, max_size)
        except Exception as exc:  # never a traceback of ours after the user's cell
            self._say(f"{PREFIX} not stored ({type(exc).__name__}: {exc}); the results are in the namespace.",
                      force=True)
            self._uncached_run(running, f"it could not be stored ({type(exc).__name__}: {exc})", duration)

    @bounded()
    def store(self, running, value, duration, max_size=""):
        self.shell.settle()
        changed = changed_modules(running.modules, running.plan, running.ns)
        outcome, refused = (None, [f"it changes {names_line(changed, 3)}"]) if changed else \
            self._outcome(running, value, duration)
        if outcome is not None:
            outcome.cell_id = running.cell_id  # recorded with the key's parts (why)
        if refused:  # a change to modules or process state no hit could make exactly
            reason = f"{refused[0]}, which a hit cannot redo"
            self._say(f"{PREFIX} not stored: {reason}.", force=running.auto is None, quiet=True)
            self._uncached_run(running, f"an effect it cannot replay: {reason}", duration)
            return
        t0 = time.perf_counter()
        saved = self._save(running, outcome)
        if saved is not None:
            self._stored(running, *saved, time.perf_counter() - t0, duration, max_size)

    def _outcome(self, running, value, duration):
        plan, states = running.plan, self.ambient.snapshot()
        effects, refused = self.ambient.changes(running.states, states, running.ns)
        result = getattr(running.capture, "shown", None)  # as the run showed it, where the shell noted that
        if value is not None and result is None:
            data, metadata = self.shell.format(value)
            result = {"data": data, "metadata": metadata}
        return Outcome(
            running.capture.events, result, running.result_name if value is not None else None, duration,
            value=value, effects={**effects, **({MAGICS: running.magics} if running.magics else {})},
            files=running.files,
            requires={**self.ambient.requires(running.states, states, plan.ambient),
                      **self.ambient.environ_requires(running.environ or set(), running.states),
                      **{f"{VERSION}{name}": f"{sys.platform}:{v}" for name, v in plan.versions.items()}},
        ), refused

    def _save(self, running, outcome):
        """``(manifest, bytes)`` of the stored entry, or None (said why, and recorded)."""
        try:
            with (contextlib.nullcontext() if running.quiet else self.shell.progress(f"{PREFIX} storing")) as bar:
                self._bar = bar
                return save(running.store, running.plan, running.ns, outcome, self.memo, signer=running.signer,
                                  progress=bar)
        except NotStored as exc:
            self._say(f"{PREFIX} not stored: {exc}.", force=running.auto is None, quiet=True)
            reason = str(exc)
        except OSError as exc:  # a folder that cannot be written: said once per folder and error
            where = self.shell.describe_folder(local_tier(running.store))
            if (where, type(exc)) not in self._failed_folders:
                self._failed_folders.add((where, type(exc)))
                self._say(f"{PREFIX} cannot store into {where} ({type(exc).__name__}: {exc.strerror or exc}); "
                          "cells run as usual, and are not stored there until it can be written.", force=True)
            reason = f"the cache folder {where} cannot be written ({exc.strerror or exc})"
        except Exception as exc:  # a full disk or read-only folder loses the cache, not the results
            self._say(f"{PREFIX} not stored ({type(exc).__name__}: {exc}); the results are in the namespace.",
                      force=True)
            reason = f"it could not be stored ({type(exc).__name__}: {exc})"
        self._uncached_run(running, reason, outcome.duration)
        return None

    def _stored(self, running, m, nbytes, took, duration, max_size):
        plan = running.plan
        unstored = sorted(n for n, e in m["defs"].items() if e.get("unstored") and not e.get("closed"))
        if running.auto is not None and unstored:
            with contextlib.suppress(Exception):  # auto mode stores a cell only if a hit gives back all it defined
                evict(running.store, plan.key)
            name = unstored[0]
            self._say(f"{PREFIX} not stored: it defines {name}, which cannot be stored.", quiet=True)
            self._uncached_run(running, f"a def it cannot store: {name} ({m['defs'][name]['unstored']})", duration)
            return
        self.codes.mark(local_tier(running.store), plan.code)
        if running.auto is not None:
            self.stats["misses"] += 1
        stored = [n for n, e in m["defs"].items() if not e.get("unstored")]
        names = names_line(stored) or "nothing to restore but the outputs"
        self._say(f"{PREFIX} stored {names} as {plan.key[:10]} ({human_size(nbytes)}) in {secs(took)}; "
                  f"the cell ran {secs(duration)}.", quiet=running.quiet)
        for name in unstored:
            self._say(f"{PREFIX} {name} could not be stored ({m['defs'][name]['unstored']}); a hit will not "
                      "restore it.", quiet=running.quiet)
        self.outcomes.record(CellOutcome(STORED, cell_id=running.cell_id, code=plan.code, key=plan.key, names=stored,
                                         seconds=duration, reason=running.reason or "", auto=running.auto is not None,
                                         store=running.store))
        self.shell.used(running.store, plan.key)
        if max_size:
            try:
                manage.prune(local_tier(running.store), max_size=manage.parse_size(max_size), keep={plan.key})
            except Exception as exc:
                self._say(f"{PREFIX} could not prune the cache ({type(exc).__name__}: {exc}).", force=True)


def run(sequence: Sequence, tree, ns: dict, run_body, store, signer=None, *, deps=(), files=(), source=None,
        force=False, quiet=False, is_auto=False, min_time=auto.DEFAULT_MIN_TIME, max_size=""):
    """The whole sequence for one cell on a plain namespace, as one call: key
    and look up; on a hit restore into ``ns``, show the outputs and return the
    cell's value; on a miss call ``run_body()`` (it runs the cell in ``ns``
    and returns its last value), store what it made and return the value.
    ``tree`` is the cell's AST (or its source)."""
    if isinstance(tree, str):
        source, tree = source or tree, ast.parse(tree)
    step = sequence.begin(tree, ns, store, signer, deps=deps, files=files, source=source, quiet=quiet,
                          force=force, is_auto=is_auto)
    if isinstance(step, Hit):
        value = ns[step.name] if step.name else step.value
        sequence.show_after()
        return value
    if step is None:
        return run_body()
    try:
        value = run_body()
    except BaseException:
        sequence.end(step, None, failed=True)
        raise
    sequence.end(step, value, failed=False, min_time=min_time, max_size=max_size)
    return value
