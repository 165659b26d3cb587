"""Ready to publish: ``python -m build`` makes a wheel and an sdist that
``twine check`` accepts; the wheel holds only the package; installed into a
fresh virtual environment it caches a cell, runs its console script and
offers its ``jupyter lite`` addon."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

CELL_TWICE = textwrap.dedent('''
    import ipy_lazycache, sys
    from IPython.core.interactiveshell import InteractiveShell
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "ipy_lazycache")
    # the body counts its runs in a file: a counter the cell reads (builtins.RUNS) would be one of its inputs
    cell = "%%lazycache\\nopen('runs.txt', 'a').write('run\\\\n')\\nx = sum(range(10))"
    for _ in range(2):
        sh.user_ns.pop("x", None)
        sh.run_cell(cell)
    runs = len(open("runs.txt").read().splitlines())
    print("x", sh.user_ns["x"], "runs", runs, "from", ipy_lazycache.__file__)
    from importlib.metadata import entry_points
    (ep,) = [e for e in entry_points(group="jupyterlite.addon.v0") if e.name == "ipy-lazycache"]
    addon = ep.load()
    print("addon", addon.__module__, addon.__name__, sys.modules[addon.__module__].__file__)
''')


def run(cmd, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, env=env, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_build_check_install_and_run_the_wheel(tmp_path):
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", dist, ROOT], cwd=tmp_path)
    (whl,) = dist.glob("ipy_lazycache-*-py3-none-any.whl")
    (sdist,) = dist.glob("ipy_lazycache-*.tar.gz")
    assert "PASSED" in run([sys.executable, "-m", "twine", "check", "--strict", whl, sdist]).stdout

    # Only the package and its metadata: no tests, no demo output, no cache, no bytecode.
    names = zipfile.ZipFile(whl).namelist()
    assert all(n.startswith(("ipy_lazycache/", "ipy_lazycache-")) for n in names), names
    assert not [n for n in names if "__lazycache__" in n or "_output" in n or n.endswith((".pyc", ".ipynb"))]
    assert "ipy_lazycache/site_startup.py" in names and "ipy_lazycache/stores/http.py" in names
    # The cell badge's labextension, built by the package build (setup.py), as data files.
    share = "ipy_lazycache-{}.data/data/share/jupyter/labextensions/ipy-lazycache/".format(whl.name.split("-")[1])
    badge = [n[len(share):] for n in names if n.startswith(share)]
    assert "package.json" in badge and "install.json" in badge, names
    assert [n for n in badge if n.startswith("static/remoteEntry.") and n.endswith(".js")], badge
    with tarfile.open(sdist) as tf:
        members = tf.getnames()
    assert not [m for m in members if "/tests/" in m or "__lazycache__" in m or "node_modules" in m], members
    assert [m for m in members if m.endswith("/js/src/index.ts")] and [m for m in members if m.endswith("/setup.py")]

    # A fresh environment. Its requirements (IPython, jupyterlite, ...) are this one's, found
    # after its own site-packages (a path in a .pth file: no download, and this environment's
    # own ipy_lazycache, an editable install, is not activated there).
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    py, bindir = venv / "bin" / "python", venv / "bin"
    site = Path(run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "zz_requirements.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--force-reinstall", whl])
    run([py, "-m", "pip", "check"])  # what the wheel requires is there
    assert (venv / "share/jupyter/labextensions/ipy-lazycache/package.json").is_file()  # where JupyterLab looks
    work = tmp_path / "work"
    work.mkdir()
    out = run([py, "-c", CELL_TWICE], cwd=work).stdout
    assert "lazycache: stored" in out and "lazycache: restored" in out, out
    assert f"x 45 runs 1 from {venv}" in out, out  # the second run restored; the wheel's copy ran
    assert f"addon ipy_lazycache.lite LazyCacheAddon {venv}" in out, out
    assert run([bindir / "ipy-lazycache", "--version"]).stdout.startswith("ipy_lazycache ")
    listing = run([bindir / "ipy-lazycache", "info"], cwd=work).stdout
    assert "1 entr" in listing and "runs.txt" in listing, listing  # the entry, named by its cell's first line
