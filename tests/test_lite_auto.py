"""Auto mode end to end: a notebook without any %%lazycache line, executed
natively with IPY_LAZYCACHE_AUTO=1, built into a JupyterLite site by the
deployment addon (which passes auto mode on to the site's kernels), restores
its slow cell in headless Chromium while its cheap cell runs.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from ipy_lazycache import offline_pyodide
from tests._lite import build_site, run_notebook, serve, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TAG = 'import builtins\nbuiltins.LC_RUNS = getattr(builtins, "LC_RUNS", "") + "{}"\n'
CELLS = [
    "%pip install ipy_lazycache",
    "%load_ext ipy_lazycache",
    "import time\nn = 30",
    TAG.format("slow;") + "time.sleep(1.5)\nsquares = [i * i for i in range(n)]\nprint('sum', sum(squares))",
    TAG.format("cheap;") + "last = squares[-1]",
    "import builtins\nprint('runs:', builtins.LC_RUNS, 'last:', last)",
]
SLOW, REPORT = 3, 5


def test_auto_mode_notebook_restores_in_the_browser(tmp_path, lite_browser, project_wheel, monkeypatch):
    monkeypatch.setenv("IPY_LAZYCACHE_AUTO", "1")
    monkeypatch.setenv("IPY_LAZYCACHE_AUTO_MIN_TIME", "0.5")
    contents = tmp_path / "contents"
    path = write_notebook(contents / "auto" / "plain.ipynb", CELLS)

    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if not c.source.startswith("%pip")]
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    native = "".join(o.get("text", "") for o in nb.cells[SLOW - 1].outputs if o.get("output_type") == "stream")
    assert "lazycache: stored" in native, native

    lite = tmp_path / "lite-src"
    offline_pyodide.prepare(lite, wheels=[project_wheel])
    out = build_site(lite, contents, tmp_path / "site")  # the addon ships the entry and the auto setting
    config = json.loads((out / "jupyter-lite.json").read_text())
    kernel = config["jupyter-config-data"]["litePluginSettings"]["@jupyterlite/pyodide-kernel-extension:kernel"]
    assert kernel["loadPyodideOptions"]["env"]["IPY_LAZYCACHE_AUTO"] == "1"

    with serve(out) as base:
        run = run_notebook(lite_browser, base, "auto/plain.ipynb", timeout=180)
    texts = [run.text(i) for i in range(len(CELLS))]
    detail = "\n".join(f"--- {i}\n{t}" for i, t in enumerate(texts))
    assert not run.errors(), detail
    assert "sum 8555" in texts[SLOW] and "lazycache: restored" in texts[SLOW], detail
    assert "runs: cheap; last: 841" in texts[REPORT], detail  # the slow body did not run; the cheap one did
