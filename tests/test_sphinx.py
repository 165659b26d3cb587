"""The addon through jupyterlite-sphinx: a real ``sphinx-build`` whose
``jupyter lite build`` executes the notebook natively (the addon's execute
option, given through ``jupyterlite_build_command_options``) and ships only
its entry, the kernel setting and the wheel."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("jupyterlite_sphinx")
pytestmark = pytest.mark.slow

CONF = """
project = "cached"
extensions = ["jupyterlite_sphinx"]
jupyterlite_contents = ["nb"]
jupyterlite_build_command_options = {"LazyCacheAddon.execute": "True"}
"""


def test_sphinx_build_ships_the_executed_notebooks_entry(tmp_path):
    src = tmp_path / "src"
    (src / "nb").mkdir(parents=True)
    (src / "conf.py").write_text(CONF)
    (src / "index.rst").write_text("Cached\n======\n\n.. jupyterlite:: nb/a.ipynb\n")
    cells = ["%load_ext ipy_lazycache", "%%lazycache\ntotal = sum(range(10**6))\nprint(total)"]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), src / "nb" / "a.ipynb")
    # A stale entry in the notebook's cache folder that no cell uses: never shipped.
    stale = src / "nb" / "__lazycache__" / ("0" * 32)
    stale.mkdir(parents=True)
    (stale / "manifest.json").write_text("{}")

    bin_dir = str(Path(sys.executable).parent)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    lite = tmp_path / "out" / "lite"
    shipped = sorted(p.parent.name for p in (lite / "files" / "nb" / "__lazycache__").glob("*/manifest.json"))
    assert len(shipped) == 1 and shipped != ["0" * 32]
    (manifest,) = (lite / "files" / "nb" / "__lazycache__").glob("*/manifest.json")
    outputs = json.loads(manifest.read_text())["outputs"]
    assert outputs[0]["text"] == f"{sum(range(10**6))}\n"  # the native run's output, shipped
    settings = json.loads((lite / "jupyter-lite.json").read_text())["jupyter-config-data"]["litePluginSettings"]
    env_settings = settings["@jupyterlite/pyodide-kernel-extension:kernel"]["loadPyodideOptions"]["env"]
    assert env_settings["IPY_LAZYCACHE_URL"] == "files/"
    assert list((lite / "pypi").glob("ipy_lazycache-*.whl"))
