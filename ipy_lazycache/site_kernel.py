"""What a JupyterLite site's Pyodide kernel is given at start, so a notebook
deploys as it was written: no ``piplite`` cell, no platform check.

jupyterlite-pyodide-kernel 0.8.6 passes ``loadPyodideOptions`` from the
site's settings to ``loadPyodide`` unchanged. Two of its fields do the work:

* ``packages``: what Pyodide loads while it boots, before the kernel's own
  packages. ``loadPackage`` takes lock names (our requirements are in
  Pyodide's lock) and wheel URLs; a relative URL is fetched from the kernel's
  worker script, which lives four folders below the site's root
  (``extensions/@jupyterlite/pyodide-kernel-extension/static/``);
* ``env``: becomes ``os.environ``. The kernel is an IPython application, so
  ``PYTHONSTARTUP`` names a file it executes once its shell exists: with auto
  mode that is :mod:`.site_startup`, which loads the extension.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

#: From the kernel's worker script to the site's root.
WORKER_TO_ROOT = "../../../../"
#: What the kernel loads itself (through piplite, from the same lock).
KERNEL_LOADS = frozenset({"ipython"})
#: Where Pyodide installs a wheel loaded by URL, for a Python ``X.Y``.
SITE_PACKAGES = "/lib/python{}/site-packages"
STARTUP = "ipy_lazycache/site_startup.py"


def requirements(wheel: Path, python: str) -> list[str]:
    """The wheel's requirements that apply under Pyodide (Python ``python``),
    as lock names, less what the kernel loads anyway."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    env = {"sys_platform": "emscripten", "platform_system": "Emscripten", "python_version": python,
           "implementation_name": "cpython", "platform_machine": "wasm32", "extra": ""}
    out = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is None or req.marker.evaluate(env):
            name = req.name.lower().replace("_", "-")
            if name not in KERNEL_LOADS and name not in out:
                out.append(name)
    return out


def preload(options: dict, wheel: Path, python: str) -> None:
    """Add the wheel (by its URL from the worker) and its requirements to
    ``options["packages"]``; an older ipy_lazycache URL there is replaced."""
    packages = [p for p in options.get("packages") or [] if not _is_our_wheel(p)]
    for name in [*requirements(wheel, python), f"{WORKER_TO_ROOT}pypi/{wheel.name}"]:
        if name not in packages:
            packages.append(name)
    options["packages"] = packages


def startup_file(python: str) -> str:
    """Where :mod:`.site_startup` is in the site's kernel."""
    return f"{SITE_PACKAGES.format(python)}/{STARTUP}"


def _is_our_wheel(entry: str) -> bool:
    return entry.rsplit("/", 1)[-1].startswith("ipy_lazycache-") and entry.endswith(".whl")


def python_version(site: Path) -> str:
    """``X.Y`` of the site's Pyodide: from its own lock when the site serves
    Pyodide itself, else the one jupyterlite-pyodide-kernel 0.8.6 loads."""
    import json

    from .offline_pyodide import PYTHON_VERSION

    lock = Path(site) / "static" / "pyodide" / "pyodide-lock.json"
    try:
        full = json.loads(lock.read_text())["info"]["python"]
        return ".".join(full.split(".")[:2])
    except (OSError, ValueError, KeyError):
        return PYTHON_VERSION


def kernel_started(shell) -> None:
    """What :mod:`.site_startup` does in the kernel: load the extension (auto
    mode follows ``$IPY_LAZYCACHE_AUTO``), then, before the first cell runs,
    count the session as started in the folder the kernel is in by then. The
    Pyodide kernel runs startup files before it moves into the notebook's
    folder, and a cell's key holds the folder relative to the session's start:
    without this, every notebook below the site's root missed."""
    import ipy_lazycache

    ipy_lazycache.load_ipython_extension(shell)

    def start_here():
        shell.events.unregister("pre_execute", start_here)
        magics = ipy_lazycache._magics
        if magics is not None:
            magics.sequence.ambient.start_here()

    shell.events.register("pre_execute", start_here)
