"""IPython glue: the ``%%lazycache`` cell magic, output capture and messages.

Only this module touches IPython; the cache itself is in :mod:`.cache`.
"""

from __future__ import annotations

import ast
import contextlib
import os
import sys
import time

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Dict, Enum, Float, Int, TraitError, Unicode, validate

from . import cache, manage, platform, signing
from .capture import Capture, Replay, flush_inline_figures, jsonable
from .manage import human_size
from .manifest import CorruptEntry
from .progress import Progress
from .stores.base import StoreUnavailable
from .tripwire import Tripwire

PREFIX = "lazycache:"


def _local(store):
    """The cache folder's own tier: where hits are recorded and pruning and
    export lists apply, never a team's shared store behind it."""
    return getattr(store, "tiers", [store])[0]


def _secs(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"


@magics_class
class LazyCache(Magics):
    """Configurable as ``%config LazyCache.dir = "..."``."""

    dir = Unicode("", help="Cache folder (default: $IPY_LAZYCACHE_DIR or __lazycache__)").tag(config=True)
    verbose = Int(1, help="0: only warnings; 1: one line per hit or store").tag(config=True)
    signing_key = Unicode("", help="HMAC key for signed manifests (default: $IPY_LAZYCACHE_KEY)").tag(config=True)
    signing = Enum(["", "off", "on", "strict"], "", help="off | on (unverified entry = miss) | strict (error); "
                   "default: $IPY_LAZYCACHE_SIGNING, else on with a key, off without").tag(config=True)
    max_size = Unicode("", help="prune the cache to this size after each store, e.g. 2G (default: no limit)").tag(config=True)
    store = Unicode("", help="shared cache URL tiered after the folder, e.g. s3://bucket/prefix (default: $IPY_LAZYCACHE_STORE)").tag(config=True)
    store_readonly = Bool(False, help="read the shared store but never write it (default: $IPY_LAZYCACHE_STORE_READONLY)").tag(config=True)
    store_options = Dict(help="fsspec storage options for the shared store (default: $IPY_LAZYCACHE_STORE_OPTIONS, JSON)").tag(config=True)
    store_timeout = Float(0.0, help="seconds before the shared store counts as down (default: $IPY_LAZYCACHE_STORE_TIMEOUT or 10)").tag(config=True)

    @validate("max_size")
    def _check_max_size(self, proposal):
        if proposal["value"]:
            try:
                manage.parse_size(proposal["value"])
            except manage.BadInput as exc:
                raise TraitError(f"LazyCache.max_size: {exc}") from None
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
        store = platform.store_for(
            where, remote or self.store or None, remote_readonly or self.store_readonly or None,
            self.store_options or None, self.store_timeout or None,
        )
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
        self.memo = cache.Memo()
        self.stats = {"hits": 0, "misses": 0, "bytes_restored": 0, "time_saved": 0.0}
        self._warned: set[str] = set()

    # -- events ------------------------------------------------------------------
    def pre_run_cell(self, info):
        """Any code that runs may mutate a value; forget known hashes."""
        self._cell_info = info  # the cell's id (or source), for the export list
        raw = (getattr(info, "raw_cell", "") or "").lstrip()
        if not raw.startswith("%%lazycache"):
            self.memo.clear()

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
        the content of everything it reads are unchanged; otherwise run it."""
        __tracebackhide__ = True
        args = parse_argstring(self.lazycache, line)
        for name in args.deps:
            if not name.isidentifier():
                raise UsageError(f"--deps takes variable names; {name!r} is not one")
        quiet = args.quiet or self.verbose == 0
        shell = self.shell
        ns = shell.user_ns
        source = shell.transform_cell(cell)
        platform.ensure_imports(source)  # Pyodide: load the packages the body imports
        store = self._open(args.dir or self.dir or None, args.store, args.store_readonly)
        for path in args.files:
            if os.path.isdir(path):
                raise UsageError(f"lazycache: --files takes files; {path} is a folder")
        signer = self._signer()

        try:
            plan = cache.plan(source, ns, self.memo, deps=args.deps, files=args.files)
        except cache.Uncacheable as exc:
            self._say(f"{PREFIX} not cached: {exc}; running the cell normally.", force=True)
            return self._execute(source, cell)
        except SyntaxError:
            return self._execute(source, cell)  # shows the error as usual

        if not args.force:
            started = time.perf_counter()
            restored = self._lookup(store, plan, ns, signer)
            if restored is not None:
                value = self._replay(restored, started, quiet)
                self._record_export(store, plan.key)
                return value

        self.memo.clear()
        self.stats["misses"] += 1
        cache.hide_defs(plan, ns)
        capture = Capture(shell)
        started = time.perf_counter()
        try:
            with capture:
                value, result_name = self._execute(source, cell, capture=True)
        finally:
            cache.unhide_defs(plan, ns)
        duration = time.perf_counter() - started
        result = None
        if value is not None:
            data, metadata = shell.display_formatter.format(value)
            result = {"data": jsonable(data), "metadata": jsonable(metadata)}
        outcome = cache.Outcome(capture.events, result, result_name, duration, value=value)
        try:
            t0 = time.perf_counter()
            bar = contextlib.nullcontext() if quiet else Progress(f"{PREFIX} storing")  # a bar only after 2 s
            with bar as progress:
                m, nbytes = cache.save(store, plan, ns, outcome, self.memo, signer=signer, progress=progress)
        except Exception as exc:  # a full disk or read-only folder loses the cache, not the results
            self._say(f"{PREFIX} not stored ({type(exc).__name__}: {exc}); the results are in the namespace.", force=True)
            return value
        names = ", ".join(sorted(m["defs"])) or "no variables"
        self._say(
            f"{PREFIX} stored {names} as {plan.key[:10]} ({human_size(nbytes)}) in {_secs(time.perf_counter() - t0)}; "
            f"the cell ran {_secs(duration)}.",
            quiet=quiet,
        )
        self._record_export(store, plan.key)
        if self.max_size:
            try:
                manage.prune(_local(store), max_size=manage.parse_size(self.max_size), keep={plan.key})
            except Exception as exc:
                self._say(f"{PREFIX} could not prune the cache ({type(exc).__name__}: {exc}).", force=True)
        return value

    def _record_export(self, store, key):
        """Note in the cache folder's export list that this cell uses ``key``."""
        try:
            from . import export

            cell = export.cell_identity(getattr(self, "_cell_info", None))
            export.record(_local(store), key, cell, export.notebook_path(self.shell))
        except Exception as exc:
            if "export" not in self._warned:
                self._warned.add("export")
                self._say(f"{PREFIX} could not update the export list ({type(exc).__name__}: {exc}).", force=True)

    def _lookup(self, store, plan, ns, signer=None):
        try:
            restored = cache.restore(store, plan.key, ns, signer=signer)
        except signing.UntrustedEntry as exc:
            raise UsageError(
                f"lazycache: {exc}; refusing to load it (signing is strict). "
                "Run with --force to recompute, or `ipy-lazycache verify --fix`."
            ) from None
        except signing.Unverified as exc:
            self._say(f"{PREFIX} {exc}; running the cell.", force=True)
            return None
        except CorruptEntry as exc:
            self._say(f"{PREFIX} entry {plan.key[:10]} is damaged ({exc}); evicting it and re-running the cell.", force=True)
            try:
                cache.evict(store, plan.key)
            except Exception:
                pass
            return None
        except StoreUnavailable:
            return None  # the shared store went away mid-read and has said so once
        except Exception as exc:
            self._say(f"{PREFIX} could not read the cache ({type(exc).__name__}: {exc}); running the cell.", force=True)
            return None
        if restored is not None:
            manage.mark_used(_local(store), plan.key)  # local: a hit writes nothing remote
        return restored

    def _replay(self, restored, started, quiet):
        __tracebackhide__ = True
        m = restored.manifest
        cache.apply(restored, self.shell.user_ns, self.memo)
        for out in m["outputs"]:
            kind = out.get("output_type")
            if kind == "stream":
                (sys.stderr if out.get("name") == "stderr" else sys.stdout).write(out.get("text", ""))
            elif kind == "display_data":
                self.shell.display_pub.publish(data=out.get("data", {}), metadata=out.get("metadata", {}))
            elif kind == "clear_output":
                self.shell.display_pub.clear_output(out.get("wait", False))
        elapsed = time.perf_counter() - started
        saved = max((m.get("duration") or 0.0) - elapsed, 0.0)
        self.stats["hits"] += 1
        self.stats["bytes_restored"] += restored.nbytes
        self.stats["time_saved"] += saved
        names = ", ".join(sorted(restored.values)) or "no variables"
        self._say(
            f"{PREFIX} restored {names} from {m['key'][:10]} ({human_size(restored.nbytes)}) in {_secs(elapsed)}, "
            f"saving {_secs(saved)}.",
            quiet=quiet,
        )
        for name in restored.tripwires:
            self._say(f"{PREFIX} {restored.values[name]!r}", force=True)
        sys.stdout.flush()
        name = m.get("result_name")
        if name and name in self.shell.user_ns and not isinstance(self.shell.user_ns[name], Tripwire):
            return self.shell.user_ns[name]
        if restored.result is not None:
            return restored.result  # Out[n] and _ hold the value itself, as after a run
        return Replay(m["result"]) if m.get("result") else None

    def _execute(self, source, raw, capture=False):
        """Run transformed code in the user namespace; return the last
        expression's value like a cell would. Errors propagate unchanged."""
        __tracebackhide__ = True
        shell = self.shell
        filename = shell.compile.cache(source, shell.execution_count, raw_code=raw)
        tree = shell.compile.ast_parse(source, filename=filename)
        tree = shell.transform_ast(tree)
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        body = tree.body[:-1] if last is not None else tree.body
        ns = shell.user_ns
        exec(shell.compile(ast.Module(body=body, type_ignores=[]), filename, "exec"), shell.user_global_ns, ns)
        value = None
        if last is not None:
            value = eval(shell.compile(ast.Expression(body=last.value), filename, "eval"), shell.user_global_ns, ns)
        if capture:
            flush_inline_figures()
            name = last.value.id if last is not None and isinstance(last.value, ast.Name) else None
            return value, name
        return value

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
            args = cli.parse(words or ["stats"], prog="%lazycache", extra=[("stats", "this session's hits and misses")])
            if args.command == "stats":
                s = self.stats
                text = (
                    f"{PREFIX} {s['hits']} hits, {s['misses']} misses, {human_size(s['bytes_restored'])} restored, "
                    f"{_secs(s['time_saved'])} saved this session."
                )
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
