"""The one place that decides native or WebAssembly, and builds the default store.

Natively a cache folder is a :class:`FileStore`. Under Pyodide (JupyterLite)
there is no durable disk: entries shipped with the site are read over HTTP,
through an in-memory tier that also keeps this session's own misses.
Nothing downstream checks the platform again.
"""

from __future__ import annotations

import os
import sys

from .stores import FileStore, MemoryStore, Store, TieredStore

IS_WASM = sys.platform == "emscripten"

DEFAULT_DIR = "__lazycache__"

_stores: dict[str, Store] = {}


def scans_folders() -> bool:
    """Whether a run's folder is scanned for files no audit event named
    (:mod:`.file_watch`): natively only. A browser has no child processes or
    native writers, and listing its drive costs a request per entry."""
    return not IS_WASM


def cache_dir(configured: str | None = None) -> str:
    """The cache folder: an explicit choice, else IPY_LAZYCACHE_DIR, else the default."""
    return configured or os.environ.get("IPY_LAZYCACHE_DIR") or DEFAULT_DIR


def store_for(directory: str, remote=None, remote_readonly=None, remote_options=None, timeout=None) -> Store:
    """The store for a cache folder, one per folder per session.

    With a shared remote (``remote`` URL, else ``$IPY_LAZYCACHE_STORE``) it is
    tiered after the folder: hits back-fill the folder; misses write to both,
    or to the folder only when the remote is read-only. See
    :mod:`.stores.fsspec_store`.
    """
    # A folder is keyed by where it resolves: natively against the current
    # directory, which a notebook may change; under Pyodide to its URL. Every
    # folder under Pyodide, and an http(s):// folder natively too, is a
    # read-only HTTP cache behind an in-memory tier for this session's entries.
    over_http = IS_WASM or _is_url(directory)
    where = _remote_place(directory) if over_http else os.path.abspath(directory)
    if where not in _stores:
        _stores[where] = _http_store(where) if over_http else FileStore(where)
    shared = _remote_settings(remote, remote_readonly, remote_options, timeout)
    if shared is None:
        return _stores[where]
    from .stores.fsspec_store import remote_tier

    tiered = (where, *(repr(sorted(v.items())) if isinstance(v, dict) else v for v in shared.values()))
    if tiered not in _stores:
        from .manifest import MANIFEST

        is_manifest = lambda key: key.endswith("/" + MANIFEST)  # noqa: E731 - the entry's commit marker
        remote_store = remote_tier(**shared)
        _stores[tiered] = TieredStore(
            [_stores[where], remote_store], write_through=not shared["readonly"], hold=is_manifest
        )
    return _stores[tiered]


def _remote_settings(remote, readonly, options, timeout) -> dict | None:
    """The shared remote's settings, or None. The fsspec store module (which
    imports asyncio, ~20 ms) is only imported when a remote URL is given or
    set in the environment: a notebook with a local cache never pays for it."""
    url = remote if remote is not None else os.environ.get("IPY_LAZYCACHE_STORE", "")
    if not url.strip():
        return None
    from .stores.fsspec_store import settings

    return settings(remote, readonly, options, timeout)


def _http_store(place: str) -> Store:
    from .stores.http import HttpStore, PyodideTransport

    tiers: list[Store] = [MemoryStore()]
    if _is_url(place):  # Pyodide's transport under Pyodide; urllib natively
        tiers.append(HttpStore(place, transport=PyodideTransport() if IS_WASM else None))
    return TieredStore(tiers)


def _remote_place(directory: str) -> str:
    """The cache's URL; ``memory:DIR`` for Pyodide outside a site (Node)."""
    try:
        return site_cache_url(directory)
    except (ImportError, AttributeError):  # no js.location
        return f"memory:{directory}"


def _is_url(directory: str) -> bool:
    return directory.startswith(("http://", "https://"))


def ensure_imports(source: str) -> None:
    """Load the Pyodide packages that a cell imports; nothing natively.

    The Pyodide kernel loads packages for a cell's imports before running
    it, but a ``%%lazycache`` cell does not parse as Python, so it finds
    none. Only imports that cannot be found are looked up. Where the runtime
    cannot block on a promise (no JSPI), or a package is not on the site,
    nothing is loaded: the import then fails as in a plain cell, and a
    restored def that needs it becomes a tripwire.
    """
    if not IS_WASM:
        return
    import importlib.util

    try:
        from pyodide.code import find_imports

        missing = [n for n in find_imports(source) if n not in sys.modules and importlib.util.find_spec(n) is None]
        if not missing:
            return
        import pyodide_js  # type: ignore[import-not-found]
        from pyodide.ffi import can_run_sync, run_sync

        if can_run_sync():
            run_sync(pyodide_js.loadPackagesFromImports(source))
    except Exception:
        pass  # best effort: never stop the cell


def site_cache_url(directory: str) -> str:
    """Where a JupyterLite site serves this notebook folder's cache.

    The files root is IPY_LAZYCACHE_URL (set by the deployment addon through
    the kernel's ``loadPyodideOptions.env``; absolute, or relative to the site
    base), else ``files/``. The site base is the worker's URL cut before
    ``/extensions/``; the notebook folder is the working directory under
    ``/drive``. An ``http(s)://`` cache folder is used as it is.
    """
    import posixpath
    from urllib.parse import quote, urljoin

    if _is_url(directory):
        return directory.rstrip("/") + "/"
    root = os.environ.get("IPY_LAZYCACHE_URL") or "files/"
    if not _is_url(root):
        root = urljoin(site_base(), root)
    cwd = os.getcwd()
    folder = cwd if cwd == "/drive" or cwd.startswith("/drive/") else "/drive"
    # joined as absolute paths, so that an absolute --dir under /drive works
    path = posixpath.relpath(posixpath.normpath(posixpath.join(folder, directory)), "/drive")
    return urljoin(root.rstrip("/") + "/", quote(path) + "/")


def site_base() -> str:
    import js  # type: ignore[import-not-found]

    return str(js.location.href).split("/extensions/")[0].rstrip("/") + "/"
