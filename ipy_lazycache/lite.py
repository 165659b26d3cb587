"""A ``jupyter lite build`` addon that ships each notebook's cache with the site.

Registered on the ``jupyterlite.addon.v0`` entry point as ``ipy-lazycache``,
so it runs in every ``jupyter lite build`` once ipy_lazycache is installed.
For every notebook in the site's contents it:

* (``pre_build``, only with ``execute``) runs the notebook natively with
  nbclient, so the cache folder and its export list are filled; a failing
  cell fails the build with that cell's error;
* (``build``, only with ``execute``) ships the notebook *with the outputs of
  that run*, so a visitor sees results at once, before any kernel starts
  (``ship_outputs``, on by default; off ships the notebook as written);
* keeps the contents step from copying cache folders (``__lazycache__``) at
  all, then (``build``) copies into ``_output/files/<notebook dir>/__lazycache__/``
  exactly the entries the notebook's export list names (see :mod:`.export`),
  checking every digest on the way, so the contents index lists them;
* (``build``) puts an ``ipy_lazycache`` wheel into the site's piplite index
  (``pypi/``), so ``%pip install ipy_lazycache`` works in the browser; its
  requirements (ipython, cloudpickle, xxhash, pyodide-http) are in Pyodide's
  own package lock, so they come from wherever that Pyodide comes from;
* (``post_build``) writes ``IPY_LAZYCACHE_URL`` into the Pyodide kernel's
  ``loadPyodideOptions.env``, which becomes ``os.environ`` in the kernel, and
  has the kernel load that wheel while it boots (:mod:`.site_kernel`), so
  ``%load_ext ipy_lazycache`` works with no install cell; with ``auto`` the
  extension is loaded and auto mode on when the kernel starts, so a notebook
  with no ``%load_ext`` and no ``%%lazycache`` line restores its slow cells.

``check`` re-verifies every shipped entry's digests; ``status`` lists what
would ship. Where Pyodide itself comes from (the CDN, by default) is not
this addon's business: :mod:`.offline_pyodide` makes a lite dir self-contained
when that is wanted.

Configuration (``jupyter_lite_config.json`` or the command line)::

    {"LazyCacheAddon": {"execute": true, "ship_outputs": true, "ship_all": false, "auto": false}}
    jupyter lite build --LazyCacheAddon.execute=True   (or --lazycache-execute)
    jupyter lite build --lazycache-execute --lazycache-as-written   (ship_outputs=False)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from jupyterlite_core.addons.base import BaseAddon
from jupyterlite_core.constants import JUPYTERLITE_JSON
from traitlets import Bool, Int, Unicode

from . import auto, export, manifest as mf, shipped, site_kernel
from .platform import DEFAULT_DIR
from .reports import plural
from .stores.file import FileStore
from .wheel import make_wheel

KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"
URL_ENV = "IPY_LAZYCACHE_URL"
#: Settings a build passes on to the site's kernels when they are set.
PASSED_ENV = ("IPY_LAZYCACHE_AUTO", "IPY_LAZYCACHE_AUTO_MIN_TIME")
PREFIX = "[lite] [ipy-lazycache]"


def _fail(message):
    from doit.exceptions import TaskFailed

    return TaskFailed(message)


class LazyCacheAddon(BaseAddon):
    """Ship the ``%%lazycache`` entries each notebook uses, and ipy_lazycache itself."""

    __all__ = ["status", "pre_build", "build", "post_build", "check"]

    cache_dir = Unicode(DEFAULT_DIR, help="Name of the cache folder beside each notebook").tag(config=True)
    ship_all = Bool(False, help="Ship every entry of each cache folder, not only the listed ones").tag(config=True)
    execute = Bool(False, help="Run the notebooks natively (nbclient) before shipping their caches").tag(config=True)
    execute_timeout = Int(3600, help="Seconds a cell may run when executing notebooks").tag(config=True)
    kernel_name = Unicode("python3", help="Native kernel used to execute notebooks").tag(config=True)
    cache_url = Unicode(
        "files/", help=f"{URL_ENV} for the kernel: the files root, absolute or relative to the site"
    ).tag(config=True)
    ship_wheel = Bool(True, help="Put an ipy_lazycache wheel into the site's piplite index").tag(config=True)
    wheel_dir = Unicode("", help="Folder holding a prebuilt ipy_lazycache-*.whl to ship instead").tag(config=True)
    ship_outputs = Bool(
        True, help="With execute, ship each notebook with the outputs of its native run (False: as written)"
    ).tag(config=True)

    auto = Bool(
        False, help="Auto mode: notebooks need no %load_ext or %%lazycache (native run and the site's kernel)"
    ).tag(config=True)
    preload = Bool(True, help="Have the site's kernel load the shipped wheel at start (no install cell)").tag(
        config=True)

    flags = {
        "lazycache-execute": (
            {"LazyCacheAddon": {"execute": True}},
            "run notebooks natively before shipping their %%lazycache entries",
        ),
        "lazycache-all": (
            {"LazyCacheAddon": {"ship_all": True}},
            "ship every %%lazycache entry, not only those the notebooks use",
        ),
        "lazycache-as-written": (
            {"LazyCacheAddon": {"ship_outputs": False}},
            "ship executed notebooks as written, without the outputs of their native run",
        ),
    }

    def __init__(self, manager, *args, **kwargs):
        super().__init__(manager, *args, **kwargs)
        self._executed = {}  # notebook path -> the nbformat document of its native run
        self.bad_setting = cache_dir_problem(self.cache_dir)
        # The contents step copies folders whole; cache folders are ours.
        pattern = rf"/{re.escape(self.cache_dir)}(/|$)"
        if pattern not in manager.extra_ignore_contents:
            manager.extra_ignore_contents = (*manager.extra_ignore_contents, pattern)
        self._hide_in_file_browser(manager)

    def _hide_in_file_browser(self, manager):
        """The shipped cache folders are served (the kernel fetches them over
        HTTP) but left out of the contents index, so the file browser does not
        show them: the contents step lists ``files/`` with jupyter_server's
        contents manager, whose ``hide_globs`` we extend in the shared config."""
        globs = manager.config.ContentsManager.hide_globs
        globs.append(self.cache_dir)

    # -------------------------------------------------------------- finding --
    @property
    def output_files_dir(self) -> Path:
        return self.manager.output_dir / "files"

    def _ignored(self, rel_posix: str) -> bool:
        patterns = [*self.manager.ignore_contents, *self.manager.extra_ignore_contents]
        return any(re.findall(p, rel_posix) for p in patterns)

    def notebooks(self):
        """``(notebook path, folder relative to files/)`` for every notebook shipped."""
        seen = set()
        for content in self.manager.contents:
            root = Path(content)
            if root.is_file():
                found = [(root, Path("."))] if root.suffix == ".ipynb" else []
            elif root.is_dir():
                found = []
                for nb in sorted(root.rglob("*.ipynb")):
                    rel = nb.relative_to(root)
                    if not self._ignored("/" + rel.as_posix()):
                        found.append((nb, rel.parent))
            else:
                found = []
            for nb, rel in found:
                if nb.resolve() not in seen:
                    seen.add(nb.resolve())
                    yield nb.resolve(), rel

    def plan(self):
        """``{destination folder: (source folder, keys, [notebooks])}``."""
        out = {}
        for nb, rel in self.notebooks():
            src = nb.parent / self.cache_dir
            dest = self.output_files_dir / rel / self.cache_dir
            keys = export.all_keys(src) if self.ship_all else export.listed_keys(src, nb)
            _, old, nbs = out.get(dest, (src, set(), []))
            out[dest] = (src, old | keys, [*nbs, nb])
        return out

    # --------------------------------------------------------------- hooks --
    def status(self, manager):
        if self.bad_setting:
            yield from self.refuse()
            return

        def report():
            plan = self.plan()
            n = sum(len(k) for _, k, _ in plan.values())
            notebooks = sum(len(v[2]) for v in plan.values())
            print(f"    ipy-lazycache: {plural(n, 'entry', 'entries')} for {plural(notebooks, 'notebook')}"
                  f" ({'all entries' if self.ship_all else 'export lists'}), execute={self.execute}")

        yield self.task(name="lazycache", actions=[report])

    def refuse(self):
        """One failing task naming the bad setting; nothing else runs."""
        yield self.task(name="settings", doc="check LazyCacheAddon's settings",
                        actions=[lambda: _fail(f"{PREFIX} {self.bad_setting}")])

    def pre_build(self, manager):
        if self.bad_setting:
            yield from self.refuse()
            return
        if not self.execute:
            return
        for nb, _rel in self.notebooks():
            yield self.task(
                name=f"execute:{nb.name}",
                doc=f"run {nb} natively to fill its cache",
                actions=[(self.execute_one, [nb])],
            )

    def execute_one(self, nb: Path):
        """Run one notebook natively; a failing cell fails the build."""
        t0 = time.perf_counter()
        print(f"{PREFIX} executing {nb.name} natively (cells not cached yet run in full) ...", flush=True)
        try:
            self._executed[nb] = execute_notebook(nb, self.cache_dir, kernel_name=self.kernel_name,
                                                  timeout=self.execute_timeout, auto=self.auto)
        except Exception as exc:
            return _fail(f"{PREFIX} {nb} failed while executing:\n{exc}")
        for n, line in shipped.own_lines(self._executed[nb]):  # left out of the shipped page
            print(f"{PREFIX} {nb.name} code cell {n}: {line}")
        print(f"{PREFIX} executed {nb.name} in {time.perf_counter() - t0:.1f} s", flush=True)
        return True

    def build(self, manager):
        if self.bad_setting:
            yield from self.refuse()
            return
        for dest, (src, keys, nbs) in sorted(self.plan().items()):
            rel = dest.relative_to(self.output_files_dir)
            yield self.task(
                name=f"copy:{rel}",
                doc=f"copy the entries {', '.join(n.name for n in nbs)} use into {rel}",
                actions=[(self.copy_entries, [src, dest, sorted(keys), nbs])],
            )
        if self.execute and self.ship_outputs:
            prefix = self.manager.task_prefix
            for nb, rel in self.notebooks():
                dest = self.output_files_dir / rel / nb.name
                # After the contents step's own copy of this notebook, which it replaces.
                copied = f"{prefix}build:contents:copy:{dest.relative_to(self.output_files_dir).as_posix()}"
                yield self.task(
                    name=f"outputs:{dest.relative_to(self.output_files_dir).as_posix()}",
                    doc=f"ship {nb.name} with the outputs of its native run",
                    task_dep=[copied],
                    actions=[(self.write_executed, [nb, dest])],
                )
        if self.ship_wheel:
            yield self.task(name="wheel", doc="put ipy_lazycache into the piplite index", actions=[self.put_wheel])

    def write_executed(self, nb: Path, dest: Path):
        """Replace the shipped copy of ``nb`` by its executed document."""
        import nbformat

        doc = self._executed.get(nb)
        if doc is None:  # not executed in this build (doit skipped it): ship it as written
            return True
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Streams as one string each: JupyterLite shows a list of lines joined by commas.
        nbformat.write(shipped.for_visitors(doc), str(dest), split_lines=False)
        self.maybe_timestamp(dest)
        return True

    def copy_entries(self, src: Path, dest: Path, keys, nbs):
        why = self.outside_output(dest)
        if why:
            return _fail(f"{PREFIX} {why}")
        if dest.is_symlink():
            dest.unlink()  # the link, never what it points to
        elif dest.exists():
            shutil.rmtree(dest)  # a clean set: nothing left from an earlier build
        if not keys:
            if export.all_keys(src):
                self.log.warning(f"{PREFIX} {src} has entries but no export list for "
                                 f"{', '.join(n.name for n in nbs)}: nothing shipped (run the notebook "
                                 "natively first, or set LazyCacheAddon.execute or ship_all)")
            return True
        result = export.export(src, dest, keys, progress=False)
        for line in result.lines():
            print(f"{PREFIX} {dest.relative_to(self.manager.output_dir)}: {line}")
        if not result.ok:
            return _fail(f"{PREFIX} could not ship the cache of {', '.join(n.name for n in nbs)}:\n"
                         + "\n".join(result.lines()[:-1]))
        self.ship_codes(src, dest)
        self.maybe_timestamp(dest)
        return True

    @staticmethod
    def ship_codes(src: Path, dest: Path):
        """Auto mode's record of which code ran slowly (``codes/<hash>``,
        empty files): without it the site's kernel keys a cell it has not
        seen slow only if that is cheap, so a slow cell reading a module or a
        large value ran again in the browser. Names only, never links."""
        codes = src / auto.CODES
        if codes.is_symlink() or not codes.is_dir():
            return
        names = [p.name for p in codes.iterdir() if mf.KEY_RE.match(p.name) and p.is_file() and not p.is_symlink()]
        if names:
            (dest / auto.CODES).mkdir(exist_ok=True)
            for name in names:
                (dest / auto.CODES / name).write_bytes(b"")

    def outside_output(self, dest: Path) -> str | None:
        """Why clearing ``dest`` could touch anything outside the site's
        files (the settings are checked first; this guards the delete itself)."""
        files = self.output_files_dir.resolve()
        here = dest.parent.resolve() / dest.name
        if here == files or files not in here.parents:
            return f"not clearing {dest}: it is outside {files} (check LazyCacheAddon.cache_dir)"
        return None

    def put_wheel(self):
        pypi = self.manager.output_dir / "pypi"
        pypi.mkdir(parents=True, exist_ok=True)
        if any(pypi.glob("ipy_lazycache-*.whl")):
            return True  # the lite dir's own pypi/ brought one
        if self.wheel_dir:
            found = sorted(Path(self.wheel_dir).glob("ipy_lazycache-*.whl"), key=lambda p: p.stat().st_mtime)
            if not found:
                return _fail(f"{PREFIX} no ipy_lazycache-*.whl in {self.wheel_dir}")
            shutil.copy2(found[-1], pypi / found[-1].name)
        else:
            whl = make_wheel(pypi)
            self.log.info(f"{PREFIX} wrote {whl.name}")
        return True

    def post_build(self, manager):
        if self.bad_setting:
            return
        yield self.task(
            name="settings",
            doc=f"write {URL_ENV} into the Pyodide kernel settings",
            actions=[self.write_settings],
        )

    def write_settings(self):
        root = self.manager.output_dir / JUPYTERLITE_JSON
        paths = [root] + [p for p in self.get_output_config_paths()
                          if p != root and p.exists() and self.get_lite_plugin_settings(p, KERNEL_PLUGIN)]
        for path in paths:
            if not path.exists():
                path.write_text(json.dumps({"jupyter-lite-schema-version": 0, "jupyter-config-data": {}}))
            settings = self.get_lite_plugin_settings(path, KERNEL_PLUGIN)
            env = settings.setdefault("loadPyodideOptions", {}).setdefault("env", {})
            env[URL_ENV] = self.cache_url
            for name in PASSED_ENV:  # auto mode at build time: the site's kernels restore the same cells
                if os.environ.get(name):
                    env[name] = os.environ[name]
            self.kernel_start(settings["loadPyodideOptions"])
            self.set_lite_plugin_settings(path, KERNEL_PLUGIN, settings)
        return True

    def kernel_start(self, options: dict):
        """The shipped wheel loaded while Pyodide boots; with auto mode, the
        extension loaded (and auto on) when the kernel's shell starts."""
        wheels = sorted((self.manager.output_dir / "pypi").glob("ipy_lazycache-*.whl"), key=lambda p: p.stat().st_mtime)
        if not (self.preload and wheels):
            return
        python = site_kernel.python_version(self.manager.output_dir)
        site_kernel.preload(options, wheels[-1], python)
        env = options["env"]
        if self.auto:
            env["IPY_LAZYCACHE_AUTO"] = "1"
        if _on(env.get("IPY_LAZYCACHE_AUTO")):
            env["PYTHONSTARTUP"] = site_kernel.startup_file(python)

    def check(self, manager):
        if self.bad_setting:
            yield from self.refuse()
            return
        for folder in self.shipped_folders():
            yield self.task(
                name=f"verify:{folder.relative_to(self.output_files_dir)}",
                doc=f"verify every entry in {folder}",
                actions=[(self.verify_folder, [folder])],
            )

    def shipped_folders(self):
        files = self.output_files_dir
        return sorted(p for p in files.rglob(self.cache_dir) if p.is_dir()) if files.is_dir() else []

    def verify_folder(self, folder: Path):
        store = FileStore(folder)
        problems = []
        for child in sorted(folder.iterdir()):
            key = child.name
            if key == auto.CODES and child.is_dir() and not child.is_symlink():
                continue  # auto mode's record of slow code (ship_codes): empty files, nothing to verify
            if not (child.is_dir() and mf.KEY_RE.match(key)):
                problems.append(f"{key}: not an entry")
                continue
            try:
                _, names = export.entry_files(store, key)
                export.verify_entry(store, key)
            except Exception as exc:
                problems.append(f"{key[:10]}: {exc}")
                continue
            extra = sorted(p.name for p in child.iterdir() if p.name not in names)
            if extra:
                problems.append(f"{key[:10]}: files not in its manifest: {', '.join(extra)}")
        if problems:
            rel = folder.relative_to(self.manager.output_dir)
            return _fail(f"{PREFIX} {rel} has bad entries:\n" + "\n".join(problems))
        return True


def cache_dir_problem(cache_dir: str) -> str | None:
    """Why ``cache_dir`` cannot be the cache folder beside every notebook, or
    None. The build clears ``files/<notebook dir>/<cache_dir>`` in its
    output, so only a relative path that stays below the notebook's folder
    is safe (``..`` or an absolute path would point the clearing elsewhere)."""
    parts = re.split(r"[/\\]", cache_dir)
    # An empty part also catches a leading "/" or "\\" and a trailing one.
    if "\0" in cache_dir or re.match(r"^[A-Za-z]:", cache_dir) or any(p.strip() in ("", ".", "..") for p in parts):
        return (f"LazyCacheAddon.cache_dir must name a folder beside each notebook (like {DEFAULT_DIR!r}), "
                f"with no '..', '.' or leading '/': not {cache_dir!r}")
    return None


# ---------------------------------------------------------------- execute --
def execute_notebook(nb, cache_dir=DEFAULT_DIR, kernel_name="python3", timeout=3600, auto=False):
    """Run a notebook natively in its own folder, as a whole, to fill its cache.

    With ``auto`` (or ``$IPY_LAZYCACHE_AUTO`` on) the kernel starts with the
    extension loaded and auto mode on, as the site's kernel will.

    Its export list is rebuilt from this run (the old one is removed first),
    so it names exactly the entries the notebook uses now. The notebook file
    is not changed; the executed document (with outputs) is returned.
    Raises nbclient's ``CellExecutionError`` on a failing cell.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = Path(nb).resolve()
    export.reset_list(nb.parent / cache_dir, nb)
    doc = nbformat.read(nb, as_version=4)
    client = NotebookClient(doc, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(nb.parent)}})
    # ipykernel puts JPY_SESSION_NAME into __session__: the list is named after it.
    auto_env = {}
    if auto or _on(os.environ.get("IPY_LAZYCACHE_AUTO")):
        auto_env = {"IPY_LAZYCACHE_AUTO": "1", "PYTHONSTARTUP": str(Path(__file__).with_name("site_startup.py"))}
    with _environ(JPY_SESSION_NAME=str(nb), IPY_LAZYCACHE_DIR=cache_dir, **auto_env):
        client.execute()
    return doc


def _on(value) -> bool:
    """An environment switch that is on, as the extension reads it."""
    return (value or "").strip().lower() in ("1", "true", "on", "yes")


@contextlib.contextmanager
def _environ(**values):
    """Set environment variables (None unsets) for the block, then restore them."""
    old = {k: os.environ.get(k) for k in values}
    try:
        _set_environ(values)
        yield
    finally:
        _set_environ(old)


def _set_environ(values):
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
