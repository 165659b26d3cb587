"""Notebooks deploy as they were written (issue 25): a site built by the
addon has ipy_lazycache in its kernel from the start, so a notebook needs no
``piplite`` cell and no platform check; with ``LazyCacheAddon.auto`` the
extension is loaded and auto mode is on when the kernel starts, so a plain
notebook (no ``%load_ext``, no ``%%lazycache``) restores its slow cells.
Both are executed natively by the build, then run in headless Chromium."""

from __future__ import annotations

import json

import pytest

from ipy_lazycache import offline_pyodide
from tests._lite import build_site, run_notebook, serve, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUNS = 'import builtins\nbuiltins.LC_RUNS = getattr(builtins, "LC_RUNS", "") + "{}"\n'
SLOW = (RUNS.format("slow;") + "import time\ntime.sleep(1.5)\n"
        "squares = [i * i for i in range(30)]\nprint('sum', sum(squares))")
REPORT = "import builtins, sys\nprint('runs:', getattr(builtins, 'LC_RUNS', ''), sys.platform)"
KERNEL = "@jupyterlite/pyodide-kernel-extension:kernel"


def build(tmp_path, wheel, cells, path="nb.ipynb", **addon):
    lite = tmp_path / "lite-src"
    offline_pyodide.prepare(lite, wheels=[wheel])
    (lite / "jupyter_lite_config.json").write_text(json.dumps({"LazyCacheAddon": {"execute": True, **addon}}))
    contents = tmp_path / "contents"
    write_notebook(contents / path, cells)
    out = build_site(lite, contents, tmp_path / "site")
    settings = json.loads((out / "jupyter-lite.json").read_text())["jupyter-config-data"]["litePluginSettings"]
    return out, settings[KERNEL]["loadPyodideOptions"]


def run(lite_browser, out, path="nb.ipynb"):
    with serve(out) as base:
        result = run_notebook(lite_browser, base, path, timeout=180)
    texts = [result.text(i) for i in range(len(result.cells))]
    detail = "\n".join(f"--- {i}\n{t}" for i, t in enumerate(texts))
    assert not result.errors(), detail
    return texts, detail, result


def test_load_ext_notebook_needs_no_install_cell(tmp_path, lite_browser, project_wheel):
    cells = ["%load_ext ipy_lazycache", "%%lazycache\n" + SLOW, REPORT]
    out, options = build(tmp_path, project_wheel, cells)
    assert any(p.endswith(".whl") and "ipy_lazycache-" in p for p in options["packages"]), options
    assert "PYTHONSTARTUP" not in options["env"]  # not auto: the notebook loads the extension itself
    texts, detail, result = run(lite_browser, out)
    assert texts[0] == "", detail  # %load_ext says nothing, as natively
    assert "sum 8555" in texts[1] and "lazycache: restored" in texts[1], detail
    assert "runs:  emscripten" in texts[2], detail  # the slow body never ran in the browser
    print(f"\nno install cell: kernel ready {result.timings['kernel_ready']:.1f} s, "
          f"run all {result.timings['run_all']:.2f} s")


def test_plain_notebook_under_auto_mode(tmp_path, lite_browser, project_wheel):
    cells = ["import time", SLOW, RUNS.format("cheap;") + "last = squares[-1]",
             "import builtins\nprint('runs:', builtins.LC_RUNS, 'last:', last)"]
    # Below the site's root: the kernel moves into the notebook's folder after it starts.
    out, options = build(tmp_path, project_wheel, cells, path="deep/nb.ipynb", auto=True)
    assert options["env"]["IPY_LAZYCACHE_AUTO"] == "1" and options["env"]["PYTHONSTARTUP"], options
    native = json.loads((out / "files" / "deep" / "nb.ipynb").read_text())
    assert "sum 8555" in json.dumps(native["cells"][1]["outputs"])  # executed natively, outputs shipped
    texts, detail, _ = run(lite_browser, out, "deep/nb.ipynb")
    assert "sum 8555" in texts[1] and "lazycache: restored" in texts[1], detail
    assert "runs: cheap; last: 841" in texts[3], detail  # the slow body did not run; the cheap one did
