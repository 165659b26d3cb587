"""A real JupyterLite site in headless Chromium restores entries written by
a native CPython run of the same notebook.

1. The notebook runs natively (nbclient + ipykernel, in its own folder), which
   writes ``demo/__lazycache__/``.
2. The site is built offline (:mod:`ipy_lazycache.offline_pyodide`) with the
   project's wheel in its piplite index and the notebook folder, cache
   included, as its contents. The deployment addon (issue #5) is disabled
   here, so the kernel finds the cache by the fallback: the site base from
   ``js.location`` plus ``files/`` plus the notebook's folder under ``/drive``.
3. Chromium runs the notebook. The body of every ``%%lazycache`` cell adds a
   tag to ``builtins.LC_RUNS``: a side effect outside the user namespace that
   no cache restores, printed by the last (plain) cell.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from ipy_lazycache import offline_pyodide

# lite_browser comes from conftest: importing it here too would make a second
# session browser, and Playwright's sync API refuses a second one in a thread.
from tests._lite import build_site, run_notebook, serve, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PIP = "%pip install ipy_lazycache"
SETUP = "import sys\nbase = 20\nplat = sys.platform"
# Shipped: written natively, restored in the browser.
SHIPPED = """%%lazycache
import builtins, sys
builtins.LC_RUNS = getattr(builtins, "LC_RUNS", "") + "shipped;"
made_on = sys.platform
total = sum(range(base)) + 1
info = {"total": total, "made_on": made_on}
print("computed total", total, "on", made_on)
open("shipped.txt", "w").write(f"written on {made_on}")  # not shipped as content: the hit puts it back
from IPython.display import HTML, display
display(HTML("<b>bold total</b>"))
total * 2"""
# Shipped, but pandas is not in the offline site: pd and frame become
# tripwires (their blobs are not fetched); n_rows and the output restore.
PANDAS = """%%lazycache
import builtins
builtins.LC_RUNS = getattr(builtins, "LC_RUNS", "") + "pandas;"
import pandas as pd
frame = pd.DataFrame({"a": [1, 2, 3]})
n_rows = len(frame)
print("rows", n_rows)"""
# Reads plat, which differs in the browser: a miss there, then a hit from
# memory when the same cell runs again. attrs is in the site's Pyodide lock
# but not loaded: the kernel does not load it for a cell magic, the magic does.
FRESH = """%%lazycache
import builtins
builtins.LC_RUNS = getattr(builtins, "LC_RUNS", "") + "fresh;"
import attrs
shout = plat.upper() + "!"
print("shout", shout, "attrs", attrs.__version__)"""
REPORT = """import builtins
print("runs:", getattr(builtins, "LC_RUNS", ""))
print("made_on:", made_on, "total:", total, "info:", info)
print("n_rows:", n_rows, "frame:", type(frame).__name__, "shout:", shout)
print("file:", open("shipped.txt").read())
try:
    from pyodide.ffi import can_run_sync
    print("jspi:", can_run_sync())
except ImportError:
    print("jspi: native")
%lazycache stats"""
CELLS = [PIP, "%load_ext ipy_lazycache", SETUP, SHIPPED, PANDAS, FRESH, FRESH, REPORT]
I_SHIPPED, I_PANDAS, I_FRESH, I_AGAIN, I_REPORT = 3, 4, 5, 6, 7


def run_natively(path: Path) -> nbformat.NotebookNode:
    """Execute the notebook in a real native kernel in its folder, without
    the ``%pip`` cell (the package is installed here already)."""
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if not c.source.startswith("%pip")]
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def native_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def stamp(cell, name) -> float:
    from datetime import datetime

    return datetime.fromisoformat(cell["metadata"]["execution"][name].replace("Z", "+00:00")).timestamp()


def test_browser_restores_a_native_cache(tmp_path, lite_browser, project_wheel):
    t_start = time.monotonic()
    contents = tmp_path / "contents"
    nb_path = write_notebook(contents / "demo" / "cached.ipynb", CELLS)

    # 1. the native run writes demo/__lazycache__/
    native = run_natively(nb_path)
    report = native_text(native.cells[-1])
    assert "runs: shipped;pandas;fresh;\n" in report, report  # FRESH's copy hit on disk
    cache = contents / "demo" / "__lazycache__"
    assert sum(1 for p in cache.glob("*/manifest.json")) == 3
    frame_blobs = [p.relative_to(cache).as_posix() for p in cache.glob("*/frame.*")]
    pd_blobs = [p.relative_to(cache).as_posix() for p in cache.glob("*/pd.*")]
    assert frame_blobs and pd_blobs
    (contents / "demo" / "shipped.txt").unlink()  # the site ships the cache, not the file the cell wrote
    t_native = time.monotonic()

    # 2. an offline site with the project wheel in its piplite index
    lite = tmp_path / "lite-src"
    offline_pyodide.prepare(lite, wheels=[project_wheel], packages=(*offline_pyodide.DEFAULT_PACKAGES, "attrs"))
    (lite / "jupyter_lite_config.json").write_text(json.dumps(
        {"LiteBuildConfig": {"disable_addons": ["ipy-lazycache"]}}))
    (lite / "overrides.json").write_text(json.dumps(
        {"@jupyterlab/notebook-extension:tracker": {"recordTiming": True}}))
    out = build_site(lite, contents, tmp_path / "site")
    assert (out / "files" / "demo" / "__lazycache__").is_dir()
    t_built = time.monotonic()

    # 3. the browser
    with serve(out) as base:
        run = run_notebook(lite_browser, base, "demo/cached.ipynb", timeout=180)
    t_done = time.monotonic()
    texts = [run.text(i) for i in range(len(CELLS))]
    detail = "\n".join(f"--- {i}\n{t}" for i, t in enumerate(texts)) + "\nconsole:\n" + "\n".join(run.console[-30:])

    assert not run.errors(), detail
    assert [c["execution_count"] for c in run.cells] == list(range(1, len(CELLS) + 1)), detail

    # the shipped cell hit: values from the native run, outputs replayed
    shipped = texts[I_SHIPPED]
    assert "computed total 191 on linux\n" in shipped, detail
    assert "<IPython.core.display.HTML object>" in shipped
    assert "382" in shipped
    assert "lazycache: restored" in shipped and "lazycache: stored" not in shipped, detail
    html = [o for o in run.cells[I_SHIPPED]["outputs"] if "text/html" in o.get("data", {})]
    assert html and "".join(html[0]["data"]["text/html"]) == "<b>bold total</b>"

    # the pandas cell hit too: its output and n_rows restored, pd and frame tripwires
    pandas = texts[I_PANDAS]
    assert "rows 3\n" in pandas and "lazycache: restored" in pandas, detail
    assert re.search(r"frame \(module (pandas|pyarrow)", pandas) and "pd (module pandas" in pandas, detail

    # the fresh cell missed (plat differs in the browser), then hit from memory
    assert re.search(r"shout EMSCRIPTEN! attrs \d", texts[I_FRESH]), detail  # attrs was loaded
    assert "lazycache: stored" in texts[I_FRESH], detail
    assert "shout EMSCRIPTEN!" in texts[I_AGAIN] and "lazycache: restored" in texts[I_AGAIN], detail

    # only FRESH's body ran in the browser, once
    report = texts[I_REPORT]
    assert "runs: fresh;\n" in report, detail
    assert "made_on: linux total: 191 info: {'total': 191, 'made_on': 'linux'}" in report
    assert "n_rows: 3 frame: Tripwire shout: EMSCRIPTEN!" in report
    assert "file: written on linux\n" in report, detail  # the shipped hit wrote the run's file in the browser
    assert "3 hits, 1 miss," in report, detail

    # over HTTP from the site; pandas blobs never fetched; nothing left 127.0.0.1
    fetched = [u.split("/__lazycache__/", 1)[1] for u in run.requests if "/files/demo/__lazycache__/" in u]
    assert any(u.endswith("/manifest.json") for u in fetched), run.requests
    assert not set(fetched) & set(frame_blobs + pd_blobs), fetched
    assert run.external_requests == [], run.external_requests

    # what a hit costs, from the front end's view (busy to idle) and the kernel's
    def cost(i):
        c = run.cells[i]
        return stamp(c, "iopub.status.idle") - stamp(c, "iopub.status.busy")

    own = {i: re.search(r"lazycache: restored .* in (\d+) ms", texts[i]) for i in (I_SHIPPED, I_PANDAS, I_AGAIN)}
    print(
        f"\nwall: native run {t_native - t_start:.1f}s, prepare+build {t_built - t_native:.1f}s, "
        f"browser {t_done - t_built:.1f}s (kernel ready {run.timings['kernel_ready']:.1f}s, "
        f"run all {run.timings['run_all']:.1f}s), total {t_done - t_start:.1f}s"
        f"\nhit over HTTP: {cost(I_SHIPPED) * 1000:.0f} ms cell (kernel says {own[I_SHIPPED].group(1)} ms); "
        f"with tripwires: {cost(I_PANDAS) * 1000:.0f} ms (kernel {own[I_PANDAS].group(1)} ms); "
        f"miss: {cost(I_FRESH) * 1000:.0f} ms; hit from memory: {cost(I_AGAIN) * 1000:.0f} ms "
        f"(kernel {own[I_AGAIN].group(1)} ms); {re.search(r'jspi: .*', report).group(0)}"
    )
