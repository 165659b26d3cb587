"""IPython glue: the options, transformers, events and messages of
``%%lazycache`` and ``%lazycache``.

The steps of a cached cell are :mod:`.core.sequence`'s, called from here;
auto mode's policy is :mod:`.auto`; what the steps ask of the shell (show,
record, format) is :mod:`.ipython_shell`.
"""

from __future__ import annotations

import ast
import os
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Dict, Enum, Float, Int, TraitError, Unicode, validate

from . import ambient, auto, magic_help, manage, platform, reports, signing, why
from .core.sequence import Hit, Refused, Running, Sequence, local_tier, secs
from .ipython_shell import IPythonShell, cell_magic_of, show_as_recorded
from .magic_body import run_body, strip_magic_line
from .options import MAGIC, HelpRequested, is_lazycache_cell as _is_lazycache_cell, parse_line
from .reports import human_size, plural
from .stores.base import BadSetting

PREFIX = "lazycache:"


def _refuse(message: str):
    """Reject a ``%config`` value visibly: ``%config`` only logs a TraitError,
    which a notebook does not show."""
    print(f"UsageError: {message}", file=sys.stderr)
    raise TraitError(message)


class _Pending:
    def __init__(self, args, help=False, auto=False):
        self.args, self.help, self.auto = args, help, auto


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


def _hit_tree(hit):
    """The tree a hit runs instead of the body: it shows the restored value
    as the run did (``Out[n]`` and ``_`` hold the value itself)."""
    if hit.name:
        return _tree_of([ast.Expr(ast.Name(id=hit.name, ctx=ast.Load()))])
    if not hit.has_value:
        return _tree_of([])
    _HIT[:] = [("value", hit.value)]
    return _tree_of([ast.Expr(_call_take())])


def _source_of(info, tree) -> str:
    """The text the cell's functions are compiled from, line numbers included
    (the blanked magic line stays): restored functions' source comes from it."""
    text = getattr(info, "transformed_cell", None)
    if isinstance(text, str) and text.strip():
        return text
    return ast.unparse(tree)


@magics_class
class LazyCache(Magics):
    """Configurable as ``%config LazyCache.dir = "..."``."""

    dir = Unicode("", help="Cache folder (default: $IPY_LAZYCACHE_DIR or __lazycache__)").tag(config=True)
    verbose = Int(1, help="0: nothing but failures of the cache itself (it could not be read: the cell runs); "
                  "1: one line per hit or store, and what a hit will not restore").tag(config=True)
    signing_key = Unicode("", help="HMAC key for signed manifests (default: $IPY_LAZYCACHE_KEY)").tag(config=True)
    signing = Enum(["", "off", "on", "verify", "strict"], "", help="off | on or verify (unverified entry = miss) | "
                   "strict (error); default: $IPY_LAZYCACHE_SIGNING, else on with a key, off without").tag(config=True)
    private_key = Unicode("", help="Ed25519 private key (file or PEM text) that signs entries "
                          "(default: $IPY_LAZYCACHE_PRIVATE_KEY)").tag(config=True)
    trusted_keys = Unicode("", help="fingerprints (SHA256:...) of the Ed25519 keys whose entries are trusted, "
                           "comma-separated (default: $IPY_LAZYCACHE_TRUSTED_KEYS)").tag(config=True)
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
            return signing.from_config(self.signing_key or None, self.signing or None,
                                       private_key=self.private_key or None, trusted_keys=self.trusted_keys or None)
        except signing.SigningError as exc:
            raise UsageError(f"lazycache: {exc}") from None

    def _open(self, directory, remote=None, remote_readonly=False, option=False):
        """The store for a folder; a file is bad input, named by the setting
        that chose it (``option``: the cell's ``--dir``). Leftover temp files
        of killed writers are cleaned once per folder per session."""
        where = platform.cache_dir(directory)
        self.dir_setting = "--dir" if option else "LazyCache.dir" if directory else (
            "$IPY_LAZYCACHE_DIR" if os.environ.get("IPY_LAZYCACHE_DIR") else "the default cache folder")
        if os.path.exists(where) and not os.path.isdir(where) and "://" not in where:
            raise UsageError(f"lazycache: {self.dir_setting} {where} is a file, not a folder")
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
                local_tier(store).remove_stale_temps()
            except Exception:
                pass  # not a FileStore, or unreadable: nothing to clean
        return store

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self.sequence = Sequence(IPythonShell(self))  # the cache's steps; this class only calls them from events
        self.memo, self.stats = self.sequence.memo, self.sequence.stats
        self.outcomes = self.sequence.outcomes  # what happened to each cell (outcomes.Outcomes): why, badges
        self._warned: set[str] = set()
        self._pending = None  # options of the %%lazycache cell about to run
        self._running = {}  # depth -> a miss whose body is running (cells run cells: %%capture, run_cell)
        self._last_call = None  # the lazycache magic's last call: (the running cell's info, line, body)
        self._depth = 0  # how many cells are running, this one included
        self._transformer = _KeyAndLookup(self)
        ambient.watch_seeding(self.shell.user_ns.get("_ih") if self.shell is not None else None)
        auto.from_environment(self)

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
            self.sequence.stop(running)
        self._running.clear()

    # -- events ------------------------------------------------------------------
    def pre_run_cell(self, info):
        if self._depth and getattr(info, "store_history", False):
            # A cell from the front end: none is running. JupyterLite's kernel runs a cell with
            # top-level await (its %pip) through run_cell_async, which never sends post_run_cell.
            for running in self._running.values():
                self.sequence.stop(running)
            self._running.clear()
            self._depth = 0
        self._depth += 1
        nested = self._depth > 1  # a cell run by a running cell (%%capture, run_cell)
        if not nested:
            self._cell_info = info  # the cell's id (or source), for the export list
        self._pending = None
        raw = (getattr(info, "raw_cell", "") or "").lstrip()
        if not _is_lazycache_cell(raw):
            if self.auto and not nested and auto.eligible(raw):
                self._pending = _Pending(parse_line("", self.lazycache.parser), auto=True)
            return
        self._pending = self._options(raw.split("\n", 1)[0][len(MAGIC):])

    def _options(self, line: str):
        """The ``%%lazycache`` line's options as a :class:`_Pending`, or None:
        the body runs uncached (``--off``, or bad options: one line says so)."""
        if "--off" in line.split():
            self.sequence.uncached("--off: it opted out", self._cell_id())
            return None  # opted out: the body runs as a plain cell
        try:
            return _Pending(parse_line(line, self.lazycache.parser))
        except HelpRequested as help_text:
            print(help_text)
            return _Pending(None, help=True)
        except UsageError as exc:
            print(f"UsageError: {exc}; running the cell without the cache.")
            self.sequence.uncached(f"bad options ({exc})", self._cell_id())
            return None

    def _on_ast(self, tree):
        """Key the cell about to run and look it up: a hit returns the tree
        that gives the restored value; a miss starts recording and returns the
        cell's own tree."""
        pending, self._pending = self._pending, None
        if pending is None:
            return tree
        if pending.help:
            return ast.Module(body=[], type_ignores=[])
        inner = cell_magic_of(tree)
        if inner == "lazycache":
            return tree  # the first line was not blanked: the cell magic runs it
        if self._run_by(inner, pending):
            return tree
        if pending.auto and auto.only_setup(tree):
            return tree  # imports and configuration always run
        source = _source_of(self._cell_info, tree)
        try:
            step = self._begin(tree, pending, source, self._parsed_as_is(source))
        except Refused as exc:  # strict signing: the cell neither restores nor runs
            _HIT[:] = [("raise", UsageError(str(exc)))]
            return _tree_of([ast.Expr(_call_take())])
        if isinstance(step, Running):
            self._running[self._depth] = step
        elif isinstance(step, Hit):
            if step.shown:
                value = self.shell.user_ns.get(step.name) if step.name else step.value
                show_as_recorded(self.shell.display_formatter, value, step.shown)
            return _hit_tree(step)
        return tree

    def _run_by(self, inner, pending) -> bool:
        """Whether another cell magic (``inner``) runs the cell: ``%%lazycache``
        above ``%%time`` / ``%%capture`` / ``%%writefile`` runs it exactly as
        without ``%%lazycache``, uncached (one line; auto mode: silently)."""
        if inner is None:
            return False
        if not pending.auto:
            print(f"{PREFIX} %%{inner} runs this cell; running it uncached.")
        self.sequence.uncached(f"%%{inner} runs it", self._cell_id(), is_auto=pending.auto)
        return True

    def _begin(self, tree, pending, source: str, exact_source: bool):
        """Key the cell and look it up (:meth:`.Sequence.begin`): a Hit, a
        Running, or None (it runs uncached; a setting that stops the cache
        says so). Raises :class:`Refused` (strict signing)."""
        args = pending.args
        platform.ensure_imports(source)  # Pyodide: load the packages the body imports
        try:
            store = self._open(args.dir or self.dir or None, args.store, args.store_readonly, option=bool(args.dir))
            signer = self._signer()
        except UsageError as exc:  # a setting: one line per kernel; the cell's own --dir: each time
            if args.dir or str(exc) not in self._warned:
                self._warned.add(str(exc))
                print(f"UsageError: {exc}; running {'the cell' if args.dir else 'cells'} without the cache.")
            self.sequence.uncached(str(exc), self._cell_id(), is_auto=pending.auto)
            return None
        try:
            return self.sequence.begin(
                tree, self.shell.user_ns, store, signer, deps=args.deps, files=args.files, source=source,
                quiet=args.quiet or self.verbose == 0, force=args.force, is_auto=pending.auto,
                exact_source=exact_source, cell_id=self._cell_id())
        except Refused:
            self.sequence.uncached("strict signing refused its entry; it did not run", self._cell_id())
            raise

    def _cell_id(self):
        """The front end's id of the running cell (ipykernel passes the
        execute request's ``cellId``), None where it gives none or for a cell
        run by a cell."""
        if self._depth > 1:
            return None
        cell_id = getattr(getattr(self, "_cell_info", None), "cell_id", None)
        if not cell_id:  # JupyterLite's kernel runs cells without one: the request being served has it
            try:
                parent = self.shell.kernel.get_parent()
                cell_id = (parent.get("metadata") or {}).get("cellId")
            except Exception:
                return None
        return cell_id if isinstance(cell_id, str) and cell_id else None

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
        vars(self.shell.display_formatter).pop("format", None)  # a hit's display not asked for (``;``)
        self.sequence.show_after()
        running = self._running.pop(self._depth, None)
        self._depth = max(self._depth - 1, 0)
        if running is not None:
            failed = result.error_before_exec is not None or result.error_in_exec is not None
            self.sequence.end(running, result.result, failed, self.auto_min_time, self.max_size)

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

        On a cell's first line, IPython runs the body as a plain cell (see
        :meth:`register`). Below another cell magic (``%%time`` above
        ``%%lazycache``) IPython calls this with the body, as it would without
        the extension's transform: the body is cached here, its value returned
        to the caller (``%%time`` returns it, the cell shows it).
        """
        __tracebackhide__ = True
        shell = self.shell
        source = shell.transform_cell(cell)
        tree = shell.compile.ast_parse(source)
        pending = self._options(line)
        if pending is not None and pending.help:
            return None
        if pending is not None and self._run_by(cell_magic_of(tree), pending):
            pending = None
        call, self._last_call = self._last_call, (getattr(self, "_cell_info", None), line, cell)
        if pending is not None and call == self._last_call:
            pending.args.quiet = True  # called again by the same cell (%%timeit, a loop): one line is enough
        step = self._begin(tree, pending, source, exact_source=True) if pending is not None else None
        if isinstance(step, Hit):
            value = shell.user_ns.get(step.name) if step.name else step.value
            vars(shell.display_formatter).pop("format", None)  # an earlier call's, not shown (%%timeit)
            if step.shown:
                show_as_recorded(shell.display_formatter, value, step.shown)
            self.sequence.show_after()
            return value
        if step is None:
            return run_body(shell, source, tree)
        try:
            value = run_body(shell, source, tree)
        except BaseException:
            self.sequence.end(step, None, True)
            raise
        # Stored now: what the caller shows next (%%time's timing) is not the body's;
        # the store shows the inline backend's figures first, as a first-line cell's does.
        self.sequence.end(step, value, False, self.auto_min_time, self.max_size)
        return value

    # -- management ----------------------------------------------------------------
    @line_magic("lazycache")
    def lazycache_line(self, line):
        """``%lazycache stats|why|info|ls|du|prune|clear|verify [--dir D] ...``:
        this session's statistics, why a cell hit, missed or ran uncached
        (``why [CELL_ID]``), and the ``ipy-lazycache`` commands on the cache
        folder (see ``ipy-lazycache --help``)."""
        import shlex

        from IPython.display import display

        from . import cli

        try:
            try:
                words = shlex.split(line)
            except ValueError as exc:
                raise manage.BadInput(f"%lazycache: {exc}") from None
            if words[:1] == ["auto"]:
                return auto.command(self, words[1:])
            if words[:1] == ["why"] and not (len(words) > 1 and words[1].endswith(".ipynb")):
                report = why.command(self, words[1:])
                if report is None:  # --help
                    print(magic_help.WHY_HELP)
                    return
                display(report.bundle(), raw=True)
                return
            try:
                args = cli.parse(words or ["stats"], prog="%lazycache", extra=magic_help.LINE_EXTRA)
            except SystemExit as exc:  # --help: argparse printed it; nothing to run
                if exc.code in (0, None):
                    return
                raise manage.BadInput(f"%lazycache {line.strip()}: bad arguments") from None
            if args.command == "stats":
                s = self.stats
                text = (
                    f"{PREFIX} {plural(s['hits'], 'hit')}, {plural(s['misses'], 'miss', 'misses')}, "
                    f"{human_size(s['bytes_restored'])} restored, {secs(s['time_saved'])} saved this session"
                )
                if self.auto or s["auto_hits"]:
                    text += (f"; auto mode {'on' if self.auto else 'off'} (cells of {self.auto_min_time:g} s or more): "
                             f"{plural(s['auto_hits'], 'hit')}, {secs(s['auto_saved'])} saved")
                text += "."
                display({"text/plain": text, "text/html": reports.stats_report(s).html()}, raw=True)
                return
            if getattr(args, "dir", None):
                self._open(args.dir, option=True)  # a file is a UsageError
            args.default_dir = self.dir or None
            if args.command == "verify":
                args.signer = self._signer()
            report, _code = cli.run(args)
        except manage.BadInput as exc:
            raise UsageError(str(exc)) from None
        display(report.bundle(), raw=True)
