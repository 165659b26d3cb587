"""The addon through jupyterlite-sphinx: a real ``sphinx-build`` whose
``jupyter lite build`` executes the notebook natively (the addon's execute
option, given through ``jupyterlite_build_command_options``) and ships only
its entry, the kernel setting and the wheel."""

import json
import re
import subprocess
import sys
import time
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
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, src / "nb" / "a.ipynb")
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


MYST_CONF = """
project = "docs"
extensions = ["myst_nb"]
nb_execution_mode = "force"
nb_execution_timeout = 300
exclude_patterns = ["_build", "**/__lazycache__"]
"""
SLOW = """%%lazycache
import time
open(RUNS, "a").write("ran\\n")  # a trace no cache restores
time.sleep(2)  # stands for an expensive step
total = sum(i * i for i in range(10_000))
from IPython.display import HTML, display
display(HTML(f"<b>total = {total}</b>"))
print("total is", total)
total * 2"""


def cell_outputs(html: str) -> list[str]:
    return re.findall(r'<div class="cell_output docutils container">(.*?)</div>\s*</div>\s*</div>', html, re.S)


@pytest.mark.slow
def test_myst_nb_force_execution_restores_from_the_kept_cache_folder(tmp_path):
    """A docs build re-executes every notebook (``nb_execution_mode = "force"``);
    with the cache folder kept between builds, the second build restores the
    slow cell instead of running it, and the page is the same."""
    pytest.importorskip("myst_nb")
    src = tmp_path / "docs"
    src.mkdir()
    (src / "conf.py").write_text(MYST_CONF)
    (src / "index.md").write_text("# Docs\n\n```{toctree}\nanalysis\n```\n")
    runs = tmp_path / "runs.txt"
    setup = "%load_ext ipy_lazycache\n%config LazyCache.verbose = 0"
    cells = [setup, f"RUNS = {str(runs)!r}", SLOW, "print(total + 1)"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Analysis")]
                                  + [nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, src / "analysis.ipynb")

    bin_dir = str(Path(sys.executable).parent)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    pages, took = [], []
    for build in ("first", "second"):  # two clean builds (no Sphinx environment kept): only the cache folder stays
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(tmp_path / build)],
                              capture_output=True, text=True, timeout=600, env=env)
        took.append(time.monotonic() - t0)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert ": WARNING:" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr[-3000:]
        pages.append((tmp_path / build / "analysis.html").read_text())
        if build == "first":
            assert runs.read_text() == "ran\n"
    print(f"\nmyst-nb builds: {took[0]:.1f} s, then {took[1]:.1f} s with the cache folder kept")

    assert runs.read_text() == "ran\n", "the second build ran the slow cell's body"
    assert (src / "__lazycache__").is_dir() and not (tmp_path / "second" / "__lazycache__").exists()
    first, second = cell_outputs(pages[0]), cell_outputs(pages[1])
    assert first == second and len(first) == 2, (first, second)
    assert "total is 333283335000" in first[0] and "666566670000" in first[0]
    assert "<b>total = 333283335000</b>" in first[0]
    assert "333283335001" in first[1]
