"""IPython glue: the ``%%lazycache`` cell magic, output capture and messages.

Only this module touches IPython; the cache itself is in :mod:`.core`.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import os
import sys
import time

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Dict, Enum, Float, Int, TraitError, Unicode, validate

from . import ambient, core, manage, platform, signing
from .capture import Capture, flush_inline_figures, jsonable, replay, show_result, split_at_result
from .hashing import code_hash
from .manage import human_size, plural
from .manifest import CorruptEntry
from .progress import Progress
from .stores.base import BadSetting, StoreUnavailable
from .tripwire import Tripwire

PREFIX = "lazycache:"


def _refuse(message: str):
    """Reject a ``%config`` value visibly: ``%config`` only logs a TraitError,
    which a notebook does not show."""
    print(f"UsageError: {message}", file=sys.stderr)
    raise TraitError(message)


def _local(store):
    """The cache folder's own tier: where hits are recorded and pruning and
    export lists apply, never a team's shared store behind it."""
    return getattr(store, "tiers", [store])[0]


def _names(names, most: int = 8) -> str:
    """Names for a one-line message: ``from math import *`` binds sixty."""
    names = sorted(names)
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most])} and {len(names) - most} more"


def _secs(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"


MAGIC = "%%lazycache"

#: Auto mode: cells whose inputs would take longer than this (µs, estimated)
#: to hash are only timed on their first run, so a cheap cell reading a
#: large array pays nothing; a slow one is keyed from its next run on.
AUTO_BUDGET = 300

#: Line magics that configure the session: a hit runs them again, as the
#: run did (``%matplotlib inline`` also hooks figure drawing into IPython).
CONFIG_MAGICS = frozenset({"matplotlib", "config", "load_ext", "reload_ext", "precision", "autoreload", "aimport",
                           "xmode", "colors", "autocall", "pdb"})
MAGICS = "ipython"  # the effect under which they are stored


def _config_magics(tree) -> list:
    """``[name, line]`` of the configuring line magics at the cell's top level,
    in order (only constant lines: no ``{expr}`` expansion to redo)."""
    out = []
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "run_line_magic"
                and len(call.args) >= 2 and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                                for a in call.args[:2])
                and call.args[0].value in CONFIG_MAGICS and "ipy_lazycache" not in call.args[1].value):
            out.append([call.args[0].value, call.args[1].value])
    return out


#: An entry's requirement on the version of an installed module the cell imports.
VERSION = "version:"

#: Auto mode's record of code that has entries or ran slowly: ``codes/<hash>``.
CODES = "codes"


def _auto_eligible(raw: str) -> bool:
    """Auto mode leaves alone other cell magics and cells that opt out."""
    if raw.startswith("%%"):
        return False
    first = raw.split("\n", 1)[0].strip().lower().replace(" ", "")
    return first != "#lazycache:off"


def _only_setup(tree) -> bool:
    """Cells that only import or run magics (``%matplotlib``, ``%config``)
    always run: caching them would gain nothing and hide their effects."""
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            func = stmt.value.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) and \
                    isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython":
                continue
        return False
    return True


def _is_lazycache_cell(text: str) -> bool:
    return text.startswith(MAGIC) and (len(text) == len(MAGIC) or text[len(MAGIC)].isspace())


def strip_magic_line(lines: list[str]) -> list[str]:
    """IPython cleanup transform: blank a leading ``%%lazycache`` line, so
    the body runs as a plain cell with its line numbers unchanged."""
    if lines and _is_lazycache_cell(lines[0]):
        return ["\n", *lines[1:]]
    return lines


class _Pending:
    def __init__(self, args, help=False, auto=False):
        self.args, self.help, self.auto = args, help, auto


class _Running:
    """A miss whose body is running: what post_run_cell needs to store it.
    ``auto`` is the cell's code hash in auto mode (None for %%lazycache);
    ``plan`` is None when auto mode only times the run."""

    def __init__(self, plan, store, signer, capture, states, quiet, result_name, started, auto=None):
        self.plan, self.store, self.signer, self.capture = plan, store, signer, capture
        self.states, self.quiet, self.result_name, self.started = states, quiet, result_name, started
        self.auto = auto
        self.magics: list = []  # configuring line magics the body runs (a hit runs them again)
        self.modules: dict = {}  # attributes of modules before the run (core.run.module_snapshot)
        self.environ: set | None = None  # variables notebook code read during the run (ambient.EnvironReads)


class _KeyAndLookup(ast.NodeTransformer):
    """The AST transformer through which a %%lazycache cell is keyed."""

    def __init__(self, magics):
        self.magics = magics

    def visit(self, node):
        try:
            return self.magics._on_ast(node)
        except Exception as exc:  # never raise: IPython would unregister the transformer
            print(f"{PREFIX} internal error ({type(exc).__name__}: {exc}); running the cell without the cache.")
            return node


#: What the hit tree evaluates: ("value", v) to show, or ("raise", exc).
_HIT: list = []


def _take():
    kind, value = _HIT.pop() if _HIT else ("value", None)
    if kind == "raise":
        raise value
    return value


def _call_take():
    module = ast.Call(
        func=ast.Name(id="__import__", ctx=ast.Load()),
        args=[ast.Constant(__name__)], keywords=[ast.keyword(arg="fromlist", value=ast.Constant(("_take",)))],
    )
    return ast.Call(func=ast.Attribute(value=module, attr="_take", ctx=ast.Load()), args=[], keywords=[])


def _tree_of(body):
    return ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))


def _is_magic_call(tree) -> bool:
    """The cell is ``get_ipython().run_cell_magic('lazycache', ...)``."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return False
    call = tree.body[0].value
    return (
        isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "run_cell_magic"
        and bool(call.args) and isinstance(call.args[0], ast.Constant) and call.args[0].value == "lazycache"
    )


def _result_name(tree):
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr) and isinstance(last.value, ast.Name):
        return last.value.id
    return None


def _stat_of(path):
    """What tells a file changed: inode, size and modification time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _source_of(info, tree) -> str:
    """The text the cell's functions are compiled from, line numbers included
    (the blanked magic line stays): restored functions' source comes from it."""
    text = getattr(info, "transformed_cell", None)
    if isinstance(text, str) and text.strip():
        return text
    return ast.unparse(tree)



# ----------------------------------------------------------------------------
# %%lazycache options (called by the cell's pre_run_cell; see parse_line)


class HelpRequested(Exception):
    """``--help`` (or ``-h``) was among the options: ``str(exc)`` is the help
    text to show instead of running the cell."""


#: Seconds between two recency records of one entry by one session: the
#: record only orders entries for ``prune``, and a write per hit costs more than the hit.
USE_INTERVAL = 60.0

#: --files paths already reported as missing this session (one line each).
_missing_files: set = set()


def parse_line(line: str):
    """Parse and validate the options of a ``%%lazycache`` line.

    Words are split the way a shell splits them (quotes group, backslashes
    escape), so ``--files "my data.csv"`` names one file. Returns the
    argparse namespace; raises :class:`UsageError` (one line) for bad input
    and :class:`HelpRequested` (carrying the help text) for ``--help``.
    ``--files`` paths are expanded (``~``) and checked: a folder or a device
    is refused, a missing path is reported once and keyed as missing.
    """
    parsed = _parsed_lines.get(line)
    if parsed is None:
        parsed = _parse_words(line)
        if len(_parsed_lines) >= 64:
            _parsed_lines.clear()
        _parsed_lines[line] = parsed
    args = argparse.Namespace(**vars(parsed))  # callers may change theirs; the memo's stays as parsed
    args.deps = list(parsed.deps)
    args.files = [_check_file(p) for p in parsed.files]  # every time: files come and go
    return args


#: Options by line: a cell run again (every hit) skips shlex and argparse.
_parsed_lines: dict = {}


def _parse_words(line: str):
    """The pure part of :func:`parse_line`: the words, parsed and validated."""
    import shlex

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%%lazycache {line.strip()[:80]}: {exc}") from None
    parser = LazyCache.lazycache.parser
    if "-h" in words or "--help" in words:
        raise HelpRequested(LazyCache.lazycache.__doc__ or parser.format_help())  # the doc holds the usage
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            args = parser.parse_args(words)
    except (UsageError, SystemExit) as exc:
        raise UsageError(f"%%lazycache {line.strip()[:80]}: {exc}") from None
    for name in args.deps:
        if not name.isidentifier():
            raise UsageError(f"lazycache: --deps takes variable names; {name!r} is not one")
    return args


def _check_file(path: str) -> str:
    """A ``--files`` path, checked where it enters (see :func:`parse_line`)."""
    import stat

    path = os.path.expanduser(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if path not in _missing_files:
            _missing_files.add(path)
            print(f"{PREFIX} --files {path} does not exist; it is part of the key as missing.")
        return path
    except OSError as exc:  # the cell runs uncached when hashing it fails too
        raise UsageError(f"lazycache: --files {path} cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"lazycache: --files takes files; {path} is a folder")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"lazycache: --files takes regular files; {path} is a device, pipe or socket")
    return path


@magics_class
class LazyCache(Magics):
    """Configurable as ``%config LazyCache.dir = "..."``."""

    dir = Unicode("", help="Cache folder (default: $IPY_LAZYCACHE_DIR or __lazycache__)").tag(config=True)
    verbose = Int(1, help="0: only warnings; 1: one line per hit or store").tag(config=True)
    signing_key = Unicode("", help="HMAC key for signed manifests (default: $IPY_LAZYCACHE_KEY)").tag(config=True)
    signing = Enum(["", "off", "on", "strict"], "", help="off | on (unverified entry = miss) | strict (error); "
                   "default: $IPY_LAZYCACHE_SIGNING, else on with a key, off without").tag(config=True)
    max_size = Unicode("", help="prune the cache to this size after each store, e.g. 2G "
                       "(default: no limit)").tag(config=True)
    store = Unicode("", help="shared cache URL tiered after the folder, e.g. s3://bucket/prefix "
                    "(default: $IPY_LAZYCACHE_STORE)").tag(config=True)
    store_readonly = Bool(False, help="read the shared store but never write it "
                          "(default: $IPY_LAZYCACHE_STORE_READONLY)").tag(config=True)
    store_options = Dict(help="fsspec storage options for the shared store "
                         "(default: $IPY_LAZYCACHE_STORE_OPTIONS, JSON)").tag(config=True)
    store_timeout = Float(0.0, help="seconds before the shared store counts as down "
                          "(default: $IPY_LAZYCACHE_STORE_TIMEOUT or 10)").tag(config=True)

    auto = Bool(False, help="cache every slow cell, no %%lazycache needed "
                "(default: $IPY_LAZYCACHE_AUTO)").tag(config=True)
    auto_min_time = Float(1.0, help="auto mode stores cells whose run took at least this many seconds "
                          "(default: $IPY_LAZYCACHE_AUTO_MIN_TIME or 1)").tag(config=True)

    @validate("auto_min_time")
    def _check_auto_min_time(self, proposal):
        if not (0 <= proposal["value"] < 1e9):
            _refuse(f"LazyCache.auto_min_time: {proposal['value']!r} is not a number of seconds")
        return proposal["value"]

    @validate("max_size")
    def _check_max_size(self, proposal):
        if proposal["value"]:
            try:
                manage.parse_size(proposal["value"])
            except manage.BadInput as exc:
                _refuse(f"LazyCache.max_size: {exc}")
        return proposal["value"]

    @validate("store_timeout")
    def _check_store_timeout(self, proposal):
        if not (0 <= proposal["value"] < 1e6):
            _refuse(f"LazyCache.store_timeout: {proposal['value']!r} is not a number of seconds")
        return proposal["value"]

    def _signer(self):
        try:
            return signing.from_config(self.signing_key or None, self.signing or None)
        except signing.SigningError as exc:
            raise UsageError(f"lazycache: {exc}") from None

    def _open(self, directory, remote=None, remote_readonly=False):
        """The store for a folder; a file is bad input. Leftover temp files of
        killed writers are cleaned once per folder per session."""
        where = platform.cache_dir(directory)
        if os.path.exists(where) and not os.path.isdir(where) and "://" not in where:
            raise UsageError(f"lazycache: --dir {where} is a file, not a folder")
        try:
            store = platform.store_for(
                where, remote or self.store or None, remote_readonly or self.store_readonly or None,
                self.store_options or None, self.store_timeout or None,
            )
        except BadSetting as exc:  # bad environment: the local folder still caches
            if str(exc) not in self._warned:
                self._warned.add(str(exc))
                print(f"{PREFIX} {exc}; using the local cache only.")
            store = platform.store_for(where, "none")
        opened = self.__dict__.setdefault("_opened", set())
        if id(store) not in opened:
            opened.add(id(store))
            try:
                _local(store).remove_stale_temps()
            except Exception:
                pass  # not a FileStore, or unreadable: nothing to clean
        return store

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self.memo = core.memo.Memo()
        self.ambient = ambient.Registry()
        self.stats = {"hits": 0, "misses": 0, "bytes_restored": 0, "time_saved": 0.0, "auto_hits": 0, "auto_saved": 0.0}
        self._warned: set[str] = set()
        self._pending = None  # options of the %%lazycache cell about to run
        self._running = {}  # depth -> a miss whose body is running (cells run cells: %%capture, run_cell)
        self._depth = 0  # how many cells are running, this one included
        self._after_hit = []  # a hit's outputs that the run showed after its value
        self._transformer = _KeyAndLookup(self)
        self._codes: set[str] = set()  # code hashes known to have entries or slow runs (auto mode)
        ambient.watch_seeding()
        self._auto_from_environment()

    def _auto_from_environment(self):
        """IPY_LAZYCACHE_AUTO / _AUTO_MIN_TIME turn auto mode on for a team, a
        docs build or a JupyterLite site without touching notebooks."""
        on = os.environ.get("IPY_LAZYCACHE_AUTO", "").strip().lower()
        if on in ("1", "true", "on", "yes"):
            self.auto = True
        elif on not in ("", "0", "false", "off", "no"):
            print(f"{PREFIX} IPY_LAZYCACHE_AUTO={on!r} is not on/off; auto mode stays off.")
        min_time = os.environ.get("IPY_LAZYCACHE_AUTO_MIN_TIME", "").strip()
        if min_time:
            try:
                value = float(min_time)
                if not 0 <= value < 1e9:
                    raise ValueError
                self.auto_min_time = value
            except ValueError:
                print(f"{PREFIX} IPY_LAZYCACHE_AUTO_MIN_TIME={min_time!r} is not a number of seconds; using "
                      f"{self.auto_min_time:g}.")

    # -- wiring ------------------------------------------------------------------
    # %%lazycache is not run by the cell magic: a cleanup transform blanks its
    # first line, so IPython runs the body as the plain cell it is (top-level
    # await, tracebacks, warnings and `;` exactly as without the magic). The
    # options are read at pre_run_cell, the cell is keyed and looked up when
    # its AST is ready (a hit swaps the tree for the restored value), and a
    # miss is stored at post_run_cell.
    def register(self):
        shell = self.shell
        shell.register_magics(self)
        shell.events.register("pre_run_cell", self.pre_run_cell)
        shell.events.register("post_run_cell", self.post_run_cell)
        if strip_magic_line not in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.append(strip_magic_line)
        shell.ast_transformers.append(self._transformer)

    def unregister(self):
        shell = self.shell
        for event, fn in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                shell.events.unregister(event, fn)
            except ValueError:
                pass
        if strip_magic_line in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.remove(strip_magic_line)
        if self._transformer in shell.ast_transformers:
            shell.ast_transformers.remove(self._transformer)
        for running in self._running.values():
            if running.capture is not None:
                running.capture.__exit__(None, None, None)
            if running.environ is not None:
                ambient.EnvironReads.stop(running.environ)
        self._running.clear()

    # -- events ------------------------------------------------------------------
    def pre_run_cell(self, info):
        self._depth += 1
        nested = self._depth > 1  # a cell run by a running cell (%%capture, run_cell)
        if not nested:
            self._cell_info = info  # the cell's id (or source), for the export list
        self._pending = None
        raw = (getattr(info, "raw_cell", "") or "").lstrip()
        if not _is_lazycache_cell(raw):
            if self.auto and not nested and _auto_eligible(raw):
                self._pending = _Pending(parse_line(""), auto=True)
            return
        line = raw.split("\n", 1)[0][len(MAGIC):]
        if "--off" in line.split():
            return  # opted out: the body runs as a plain cell
        try:
            args = parse_line(line)
        except HelpRequested as help_text:
            print(help_text)
            self._pending = _Pending(None, help=True)
            return
        except UsageError as exc:
            print(f"UsageError: {exc}; running the cell without the cache.")
            return
        self._pending = _Pending(args)

    def _on_ast(self, tree):
        """Key the cell about to run and look it up: a hit returns the tree
        that gives the restored value; a miss starts recording and returns the
        cell's own tree."""
        pending, self._pending = self._pending, None
        if pending is None:
            return tree
        if pending.help:
            return ast.Module(body=[], type_ignores=[])
        if _is_magic_call(tree):
            return tree  # the first line was not blanked: the cell magic runs it
        if pending.auto and _only_setup(tree):
            return tree  # imports and configuration always run
        args = pending.args
        quiet = args.quiet or self.verbose == 0
        shell = self.shell
        ns = shell.user_ns
        source = _source_of(self._cell_info, tree)
        platform.ensure_imports(source)  # Pyodide: load the packages the body imports
        try:
            store = self._open(args.dir or self.dir or None, args.store, args.store_readonly)
            signer = self._signer()
        except UsageError as exc:
            print(f"UsageError: {exc}; running the cell without the cache.")
            return tree
        budget = code = None
        if pending.auto:
            quiet = quiet or False
            code = code_hash(tree)
            if not self._code_known(store, code):
                budget = AUTO_BUDGET  # a cell never seen slow: its inputs are hashed only if that is cheap
        try:
            plan = core.plan.plan(tree, ns, self.memo, deps=args.deps, files=args.files, source=source,
                              ambient=self.ambient, budget=budget, code=code,
                              exact_source=self._parsed_as_is(source))
        except core.plan.OverBudget:
            self._running[self._depth] = _Running(None, store, None, None, None, True, None, time.perf_counter(),
                                                  auto=code)
            return tree  # timed only: if it is slow, its next run is keyed and stored
        except core.plan.Uncacheable as exc:
            if not pending.auto:
                self._say(f"{PREFIX} not cached: {exc}; running the cell normally.", force=True)
            return tree

        if not args.force:
            started = time.perf_counter()
            try:
                restored = self._lookup(store, plan, ns, signer)
            except UsageError as exc:  # strict signing: the cell neither restores nor runs
                _HIT[:] = [("raise", exc)]
                return _tree_of([ast.Expr(_call_take())])
            if restored is not None:
                if pending.auto:
                    self.stats["auto_hits"] += 1
                    ran = restored.manifest.get("duration") or 0.0
                    self.stats["auto_saved"] += max(ran - (time.perf_counter() - started), 0.0)
                return self._hit(restored, started, quiet, store, plan)

        if not pending.auto:
            self.stats["misses"] += 1  # auto mode counts only the runs it stores
        core.run.take_before(plan, ns)
        states = self.ambient.snapshot()
        capture = Capture(shell)
        capture.__enter__()
        hook = sys.displayhook
        sys.displayhook = capture.pause(hook)  # IPython's display trap puts it back
        self._running[self._depth] = _Running(plan, store, signer, capture, states, quiet, _result_name(tree),
                                              time.perf_counter(), auto=plan.code if pending.auto else None)
        self._running[self._depth].magics = _config_magics(tree)
        self._running[self._depth].modules = core.run.module_snapshot(plan, ns)
        self._running[self._depth].environ = ambient.EnvironReads.start()  # after our own reads
        return tree

    def _parsed_as_is(self, source) -> bool:
        """The tree came straight from parsing ``source``: it is the cell's
        transformed text and no other AST transformer ran before ours."""
        transformers = self.shell.ast_transformers
        return (
            source == getattr(self._cell_info, "transformed_cell", None)
            and bool(transformers) and transformers[0] is self._transformer
        )

    def post_run_cell(self, result):
        raw = getattr(getattr(result, "info", None), "raw_cell", None)
        if raw is not None and not raw.strip():
            return  # IPython skips pre_run_cell for empty cells, but not this
        after, self._after_hit = self._after_hit, []
        if after:
            replay(self.shell, after)
        running = self._running.pop(self._depth, None)
        self._depth = max(self._depth - 1, 0)
        if running is None:
            return
        if running.environ is not None:
            ambient.EnvironReads.stop(running.environ)
        duration = time.perf_counter() - running.started
        if running.capture is not None:
            running.capture.__exit__(None, None, None)
        if result.error_before_exec is not None or result.error_in_exec is not None:
            return  # a failed run is not a result; the traceback was shown as usual
        if running.auto is not None and duration < self.auto_min_time:
            return  # auto mode: a cheap cell always runs
        if running.plan is None:  # auto mode, inputs too large to hash before a run that might be cheap
            self._mark_code(running.store, running.auto)
            return
        try:
            self._store(running, result.result, duration)
        except Exception as exc:  # never a traceback of ours after the user's cell
            self._say(f"{PREFIX} not stored ({type(exc).__name__}: {exc}); the results are in the namespace.",
                      force=True)

    def _store(self, running, value, duration):
        shell, plan, quiet = self.shell, running.plan, running.quiet
        ns = shell.user_ns
        flush_inline_figures()
        changed = core.run.changed_modules(running.modules, plan)
        if changed:  # a hit could not set them again: this cell always runs
            self._say(f"{PREFIX} not stored: it changes {_names(changed, 3)}, which a hit cannot redo.",
                      force=running.auto is None, quiet=True)
            return
        states = self.ambient.snapshot()
        result = None
        if value is not None:
            data, metadata = shell.display_formatter.format(value)
            result = {"data": jsonable(data), "metadata": jsonable(metadata)}
        outcome = core.run.Outcome(
            running.capture.events, result, running.result_name if value is not None else None, duration,
            value=value, effects={**self.ambient.effects(running.states, states),
                                  **({MAGICS: running.magics} if running.magics else {})},
            requires={**self.ambient.requires(running.states, states, plan.ambient),
                      **self.ambient.environ_requires(running.environ or set(), running.states),
                      **{f"{VERSION}{name}": f"{sys.platform}:{v}" for name, v in plan.versions.items()}},
        )
        try:
            t0 = time.perf_counter()
            bar = contextlib.nullcontext() if quiet else Progress(f"{PREFIX} storing")  # a bar only after 2 s
            with bar as progress:
                m, nbytes = core.save.save(running.store, plan, ns, outcome, self.memo, signer=running.signer,
                                       progress=progress)
        except core.run.NotStored as exc:
            self._say(f"{PREFIX} not stored: {exc}.", force=running.auto is None, quiet=True)
            return
        except Exception as exc:  # a full disk or read-only folder loses the cache, not the results
            self._say(f"{PREFIX} not stored ({type(exc).__name__}: {exc}); the results are in the namespace.",
                      force=True)
            return
        unstored = sorted(n for n, e in m["defs"].items() if e.get("unstored"))
        if running.auto is not None and unstored:
            try:  # auto mode stores a cell only if a hit can give back all it defined
                core.save.evict(running.store, plan.key)
            except Exception:
                pass
            return
        self._mark_code(running.store, plan.code)
        if running.auto is not None:
            self.stats["misses"] += 1
        names = _names(n for n in m["defs"] if n not in unstored) or "nothing to restore but the outputs"
        self._say(
            f"{PREFIX} stored {names} as {plan.key[:10]} ({human_size(nbytes)}) in {_secs(time.perf_counter() - t0)}; "
            f"the cell ran {_secs(duration)}.",
            quiet=quiet,
        )
        for name, entry in sorted(m["defs"].items()):
            if entry.get("unstored"):
                self._say(f"{PREFIX} {name} could not be stored ({entry['unstored']}); a hit will not restore it.",
                          force=True)
        self._record_export(running.store, plan.key)
        if self.max_size:
            try:
                manage.prune(_local(running.store), max_size=manage.parse_size(self.max_size), keep={plan.key})
            except Exception as exc:
                self._say(f"{PREFIX} could not prune the cache ({type(exc).__name__}: {exc}).", force=True)

    def _code_known(self, store, code) -> bool:
        """Whether this code ever had an entry or a slow run here (auto mode:
        only then are its inputs hashed however large)."""
        if code in self._codes:
            return True
        try:
            known = store.has(f"{CODES}/{code}")
        except Exception:
            known = False
        if known:
            self._codes.add(code)
        return known

    def _mark_code(self, store, code):
        if not code or code in self._codes:
            return
        self._codes.add(code)
        try:
            _local(store).put(f"{CODES}/{code}", b"")
        except Exception:
            pass  # a read-only folder: the next session times the cell again

    def _hit(self, restored, started, quiet, store, plan):
        """Apply a restored entry and return the tree that shows its value."""
        m = restored.manifest
        core.apply.apply(restored, self.shell.user_ns, self.memo)
        effects = dict(m.get("effects") or {})
        failed = self.ambient.apply({k: v for k, v in effects.items() if k != MAGICS})
        for name, line in effects.get(MAGICS, ()):
            try:  # configuration the cell ran (%matplotlib inline, %config ...): run it again
                with contextlib.redirect_stdout(io.StringIO()):
                    self.shell.run_line_magic(name, line)
            except Exception:
                failed.append(f"%{name} {line}")
        before, self._after_hit = split_at_result(m.get("outputs") or [])
        replay(self.shell, before)  # the rest after the value, at post_run_cell
        elapsed = time.perf_counter() - started
        saved = max((m.get("duration") or 0.0) - elapsed, 0.0)
        self.stats["hits"] += 1
        self.stats["bytes_restored"] += restored.nbytes
        self.stats["time_saved"] += saved
        names = _names(restored.values) or "its outputs"
        self._say(
            f"{PREFIX} restored {names} from {m['key'][:10]} ({human_size(restored.nbytes)}) in {_secs(elapsed)}, "
            f"saving {_secs(saved)}.",
            quiet=quiet,
        )
        for name in restored.tripwires:
            self._say(f"{PREFIX} {restored.values[name]!r}", force=True)
        for name in failed:
            self._say(f"{PREFIX} could not re-apply the cell's change to {name}.", force=True)
        sys.stdout.flush()
        self._record_export(store, plan.key)
        name = m.get("result_name")
        if name and name in self.shell.user_ns and not isinstance(self.shell.user_ns[name], Tripwire):
            return _tree_of([ast.Expr(ast.Name(id=name, ctx=ast.Load()))])
        if restored.result is not None:
            _HIT[:] = [("value", restored.result)]  # Out[n] and _ hold the value itself, as after a run
        elif m.get("result"):
            show_result(self.shell, m["result"])  # its display, with nothing of ours put in Out or _
            return _tree_of([])
        else:
            return _tree_of([])
        return _tree_of([ast.Expr(_call_take())])

    # -- the magic ---------------------------------------------------------------
    @magic_arguments()
    @argument("--force", action="store_true", help="run the cell and overwrite its entry")
    @argument("--dir", default=None, help="cache folder for this cell")
    @argument("--deps", nargs="+", default=[], metavar="NAME", help="extra variable names to hash")
    @argument("--files", nargs="+", default=[], metavar="PATH", help="files whose content is part of the key")
    @argument("--quiet", action="store_true", help="print nothing on a hit or store")
    @argument("--store", default=None, metavar="URL", help="shared cache (s3://..., gs://...) tiered after the folder")
    @argument("--store-readonly", action="store_true", help="read the shared cache, never write it")
    @cell_magic
    def lazycache(self, line, cell):
        """Cache this cell: restore its variables and outputs when its code and
        the content of everything it reads are unchanged; otherwise run it.

        Must be the first line of the cell. Nested in another cell magic (or
        called through ``run_cell_magic``), the body runs uncached.
        """
        __tracebackhide__ = True
        self._say(f"{PREFIX} %%lazycache must be the cell's first line; running the body uncached.", force=True)
        shell = self.shell
        source = shell.transform_cell(cell)
        tree = shell.compile.ast_parse(source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(shell.compile(tree, "<lazycache>", "exec"), shell.user_global_ns, shell.user_ns)
        if last is not None:
            return eval(shell.compile(ast.Expression(body=last.value), "<lazycache>", "eval"),
                        shell.user_global_ns, shell.user_ns)

    def _record_export(self, store, key):
        """Note in the cache folder's export list that this cell uses ``key``."""
        try:
            from . import export

            local = _local(store)
            cell = export.cell_identity(getattr(self, "_cell_info", None))
            notebook = export.notebook_path(self.shell)
            # A hit of a cell this session recorded reads the list only if
            # someone changed it since (its stat differs): every hit would
            # otherwise read and parse it to find the record already there.
            recorded = self.__dict__.setdefault("_exported", {})
            where = (id(local), notebook, cell)
            last = recorded.get(where)
            if last is not None and last[0] == key and _stat_of(last[1]) == last[2]:
                return
            path = export.record(local, key, cell, notebook)
            stat = _stat_of(path) if path is not None else None
            if stat is not None:
                recorded[where] = (key, path, stat)
        except Exception as exc:
            if "export" not in self._warned:
                self._warned.add("export")
                self._say(f"{PREFIX} could not update the export list ({type(exc).__name__}: {exc}).", force=True)

    def _lookup(self, store, plan, ns, signer=None):
        try:
            restored = core.restore.restore(store, plan.key, ns, signer=signer)
        except signing.UntrustedEntry as exc:
            raise UsageError(
                f"lazycache: {exc}; refusing to load it (signing is strict). "
                "Run with --force to recompute, or `ipy-lazycache verify --fix`."
            ) from None
        except signing.Unverified as exc:
            self._say(f"{PREFIX} {exc}; running the cell.", force=True)
            return None
        except CorruptEntry as exc:
            self._say(f"{PREFIX} entry {plan.key[:10]} is damaged ({exc}); evicting it and re-running the cell.",
                      force=True)
            try:
                core.save.evict(store, plan.key)
            except Exception:
                pass
            return None
        except StoreUnavailable:
            return None  # the shared store went away mid-read and has said so once
        except Exception as exc:
            self._say(f"{PREFIX} could not read the cache ({type(exc).__name__}: {exc}); running the cell.", force=True)
            return None
        if restored is None:
            return None
        requires = restored.manifest.get("requires") or {}
        versions = {k[len(VERSION):]: v for k, v in requires.items() if k.startswith(VERSION)}
        if not self.ambient.satisfied({k: v for k, v in requires.items() if not k.startswith(VERSION)}):
            return None  # the run drew from a generator now in another state
        if core.plan.installed_differ(versions):
            return None  # it ran with another version of a module it imports

        local = _local(store)  # local: a hit writes nothing remote
        marked = self.__dict__.setdefault("_marked", {})
        now = time.monotonic()
        if now - marked.get((id(local), plan.key), -USE_INTERVAL) >= USE_INTERVAL:
            marked[(id(local), plan.key)] = now
            manage.mark_used(local, plan.key)
        return restored

    def _auto_command(self, words):
        """``%lazycache auto [on|off] [--min-time S]``."""
        import argparse

        parser = argparse.ArgumentParser(prog="%lazycache auto", description="Cache every cell that runs at least "
                                         "--min-time seconds, with no %%lazycache line.", exit_on_error=False)
        parser.add_argument("state", nargs="?", choices=["on", "off"], help="turn auto mode on or off")
        parser.add_argument("--min-time", type=float, default=None, metavar="S",
                            help="store only cells whose run took at least S seconds (default 1)")
        if "-h" in words or "--help" in words:
            print(parser.format_help())
            return
        try:
            args = parser.parse_args(words)
        except (argparse.ArgumentError, SystemExit) as exc:
            raise manage.BadInput(f"%lazycache auto: {exc}") from None
        if args.min_time is not None:
            if not 0 <= args.min_time < 1e9:
                raise manage.BadInput(f"%lazycache auto: --min-time {args.min_time:g} is not a number of seconds")
            self.auto_min_time = args.min_time
        if args.state:
            self.auto = args.state == "on"
        print(f"{PREFIX} auto mode is {'on' if self.auto else 'off'}"
              + (f": cells that run {self.auto_min_time:g} s or more are cached." if self.auto else "."))

    def _say(self, text, quiet=False, force=False):
        if force or not quiet:
            print(text)


    # -- management ----------------------------------------------------------------
    @line_magic("lazycache")
    def lazycache_line(self, line):
        """``%lazycache stats|info|ls|du|prune|clear|verify [--dir D] ...``:
        this session's statistics, and the ``ipy-lazycache`` commands on the
        cache folder (see ``ipy-lazycache --help``)."""
        import shlex

        from IPython.display import display

        from . import cli

        try:
            try:
                words = shlex.split(line)
            except ValueError as exc:
                raise manage.BadInput(f"%lazycache: {exc}") from None
            if words[:1] == ["auto"]:
                return self._auto_command(words[1:])
            try:
                args = cli.parse(words or ["stats"], prog="%lazycache",
                                 extra=[("stats", "this session's hits and misses")])
            except SystemExit as exc:  # --help: argparse printed it; nothing to run
                if exc.code in (0, None):
                    return
                raise manage.BadInput(f"%lazycache {line.strip()}: bad arguments") from None
            if args.command == "stats":
                s = self.stats
                text = (
                    f"{PREFIX} {plural(s['hits'], 'hit')}, {plural(s['misses'], 'miss', 'misses')}, "
                    f"{human_size(s['bytes_restored'])} restored, {_secs(s['time_saved'])} saved this session"
                )
                if self.auto or s["auto_hits"]:
                    text += (f"; auto mode {'on' if self.auto else 'off'} (cells of {self.auto_min_time:g} s or more): "
                             f"{plural(s['auto_hits'], 'hit')}, {_secs(s['auto_saved'])} saved")
                text += "."
                display({"text/plain": text, "text/html": manage.stats_report(s).html()}, raw=True)
                return
            if getattr(args, "dir", None):
                self._open(args.dir)  # a file is a UsageError
            args.default_dir = self.dir or None
            if args.command == "verify":
                args.signer = self._signer()
            report, _code = cli.run(args)
        except manage.BadInput as exc:
            raise UsageError(str(exc)) from None
        display(report.bundle(), raw=True)
