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


def cache_dir(configured: str | None = None) -> str:
    """The cache folder: an explicit choice, else IPY_LAZYCACHE_DIR, else the default."""
    return configured or os.environ.get("IPY_LAZYCACHE_DIR") or DEFAULT_DIR


def store_for(directory: str) -> Store:
    """The store for a cache folder, one per folder per session."""
    # Natively the folder is resolved against the current directory, which a
    # notebook may change; under Pyodide the in-memory tier must persist.
    where = directory if IS_WASM else os.path.abspath(directory)
    if where not in _stores:
        _stores[where] = _wasm_store(directory) if IS_WASM else FileStore(where)
    return _stores[where]


def _wasm_store(directory: str) -> Store:
    from .stores.http import HttpStore

    return TieredStore([MemoryStore(), HttpStore(site_cache_url(directory))])


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

    if directory.startswith(("http://", "https://")):
        return directory.rstrip("/") + "/"
    root = os.environ.get("IPY_LAZYCACHE_URL") or "files/"
    if not root.startswith(("http://", "https://")):
        root = urljoin(site_base(), root)
    cwd = os.getcwd()
    folder = posixpath.relpath(cwd, "/drive") if cwd == "/drive" or cwd.startswith("/drive/") else "."
    path = posixpath.normpath(posixpath.join(folder, directory))
    return urljoin(root.rstrip("/") + "/", quote(path) + "/")


def site_base() -> str:
    import js  # type: ignore[import-not-found]

    return str(js.location.href).split("/extensions/")[0].rstrip("/") + "/"
