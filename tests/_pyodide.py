"""Run Python code under real Pyodide (the one JupyterLite uses) in Node.

Cheaper than a browser: no site build, no Chromium.  Pyodide comes from an
``npm install pyodide@VERSION`` in the download cache (never in git), and its
packages from a lock that :mod:`ipy_lazycache.offline_pyodide` writes next to
PyPI wheels, so nothing is fetched from a CDN.  Node has no ``js.location``,
no XHR and no JSPI: HTTP paths need the browser tests.

Use in ``tests/conftest.py``::

    from tests._pyodide import run_in_pyodide, project_wheel  # noqa: F401

then in a test marked ``@pytest.mark.pyodide``::

    out = run_in_pyodide("import sys; print(sys.platform)", [project_wheel])
    assert out.stdout.strip() == "emscripten"
    out = run_in_pyodide("RESULT = {'a': 1}")
    assert out.result == {"a": 1}
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipy_lazycache import offline_pyodide as op
from tests._ci import unavailable

HERE = Path(__file__).parent
RUNNER = HERE / "pyodide_node" / "run.mjs"
ROOT = HERE.parent
#: Loaded from the lock before the code runs (micropip always is).
DEFAULT_PACKAGES = ("ipython", "xxhash", "cloudpickle", "pyodide-http")


class PyodideError(AssertionError):
    """The code (or Pyodide's start-up) failed; carries Python's traceback."""


@dataclass
class PyodideRun:
    stdout: str
    stderr: str
    #: ``json.loads`` of ``json.dumps(RESULT)`` if the code set ``RESULT``.
    result: object

    def __str__(self) -> str:
        return self.stdout


def node_pyodide(cache: Path | None = None) -> Path:
    """The npm-installed ``pyodide`` folder (installed once into the cache)."""
    prefix = Path(cache or op.cache_dir()) / "node"
    pkg = prefix / "node_modules" / "pyodide"
    try:
        ok = json.loads((pkg / "package.json").read_text())["version"] == op.PYODIDE_VERSION
    except (OSError, ValueError, KeyError):
        ok = False
    if not ok:
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
             "--silent", f"pyodide@{op.PYODIDE_VERSION}"],
            check=True, capture_output=True, text=True)
    return pkg


def pyodide_lock(packages=DEFAULT_PACKAGES, cache: Path | None = None) -> Path:
    """A self-contained lock (plus wheels) for ``packages``; reused if present."""
    cache = Path(cache or op.cache_dir())
    key = "-".join([op.PYODIDE_VERSION, *sorted(op.normalize(p) for p in packages)])
    dest = cache / "node-packages" / key
    lock = dest / "pyodide-lock.json"
    if not lock.exists():
        op.install_pyodide(dest, packages, core=False, cache=cache)
    return lock


def run_pyodide(code: str, wheels=(), packages=DEFAULT_PACKAGES,
                timeout: float = 180) -> PyodideRun:
    """Run ``code`` in a fresh Pyodide in Node and return what it printed.

    ``wheels`` (local paths) are installed with micropip after ``packages``
    are loaded from the lock; their dependencies must be in the lock (PyPI is
    not consulted).  Raises :class:`PyodideError` when anything fails.
    """
    if not shutil.which("node"):
        unavailable("node is not installed")  # fails under CI=true
    index = node_pyodide()
    lock = pyodide_lock(tuple(packages))
    with tempfile.TemporaryDirectory(prefix="pyodide-run-") as tmp:
        spec_path, out = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps({
            "indexURL": f"{index}/", "lockFileURL": str(lock),
            "packages": list(packages),
            "wheels": [str(Path(w).resolve()) for w in wheels],
            "code": code, "out": str(out)}))
        proc = subprocess.run(["node", str(RUNNER), str(spec_path)],
                              capture_output=True, text=True, timeout=timeout)
        if not out.exists():
            raise PyodideError(f"node failed ({proc.returncode}):\n{proc.stderr}")
        report = json.loads(out.read_text())
    if report["error"]:
        raise PyodideError(f"{report['error']}\n--- set-up:\n{report['setup']}"
                           f"\n--- stdout:\n{report['stdout']}"
                           f"\n--- stderr:\n{report['stderr']}")
    return PyodideRun(report["stdout"], report["stderr"],
                      json.loads(report["result"]) if report["result"] else None)


def build_project_wheel(dest: Path) -> Path:
    """``pip wheel --no-deps .`` of this repo into ``dest``; the wheel's path."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "--disable-pip-version-check", "-w", str(dest), str(ROOT)],
                   check=True, capture_output=True, text=True)
    return next(Path(dest).glob("ipy_lazycache-*.whl"))


@pytest.fixture(scope="session")
def run_in_pyodide():
    """``run_in_pyodide(code, wheels=(), packages=...) -> PyodideRun``."""
    return run_pyodide


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory) -> Path:
    """This project's wheel, built once per session."""
    return build_project_wheel(tmp_path_factory.mktemp("wheel"))
