"""End to end: ``jupyterlite_demo/`` built by its one command from a clean copy,
then opened in headless Chromium with no network beyond 127.0.0.1."""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._lite import _CELLS, _KERNEL_READY, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEMO = Path(__file__).resolve().parent.parent / "jupyterlite_demo"
GENERATED = ("_output", "static", "pypi", "jupyter-lite.json", "__lazycache__", ".jupyterlite.doit.db",
             "__pycache__", ".cache")

# Run All, as the notebook tells a visitor to, timing each cell in the page
# from the moment the kernel is up: a cell is done when its execution count
# comes back (Run All clears them all first). The browser's clock.
_RUN_ALL_TIMED = """async () => {
  const app = window.jupyterapp;
  const cells = app.shell.currentWidget.content.model.cells;
  const done = new Array(cells.length).fill(null);
  const t0 = performance.now();
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== "code") { done[i] = 0; continue; }
    c.stateChanged.connect((_, change) => {
      if (change.name === "executionCount" && change.newValue !== null) done[i] = (performance.now() - t0) / 1000;
    });
  }
  await app.commands.execute("notebook:run-all-cells");
  const times = [];
  let last = 0;
  for (const t of done) { times.push(t === null ? null : Math.max(t - last, 0)); if (t) last = t; }
  return times;
}"""

# Each cell's badge (issue 24: the site ships the labextension), once a cached cell's says "restored".
_BADGES_AFTER_RESTORE = """async () => {
  const badges = () => window.jupyterapp.shell.currentWidget.content.widgets.map(
    c => { const b = c.node.querySelector(".jp-LazyCacheBadge"); return b ? b.textContent : null; });
  for (let i = 0; i < 100 && !badges().some(b => b && b.startsWith("restored")); i++) {
    await new Promise(r => setTimeout(r, 100));
  }
  return badges();
}"""

# Then a visitor edits the slow cell (a smaller N): its badge says "would miss" before it runs, "stored" after.
_EDIT_AND_RUN = """async () => {
  const app = window.jupyterapp, nb = app.shell.currentWidget.content;
  const badge = i => { const b = nb.widgets[i].node.querySelector(".jp-LazyCacheBadge"); return b && b.textContent; };
  const until = async (i, text) => {
    for (let k = 0; k < 300 && !(badge(i) || "").startsWith(text); k++) await new Promise(r => setTimeout(r, 100));
    return badge(i);
  };
  const cell = nb.widgets[2].model.sharedModel;
  cell.setSource(cell.getSource().replace("N = 1_200_000", "N = 2_000"));
  const missed = await until(2, "would miss");
  nb.activeCellIndex = 2;
  await app.commands.execute("notebook:run-cell");
  return [missed, await until(2, "stored")];
}"""

# What the page shows in its output areas, as a visitor reads it.
_RENDERED = """() => Array.from(document.querySelectorAll(".jp-OutputArea-output")).map(e => e.innerText)"""


# What a visitor sees before anything runs: the rendered outputs in the page.
_SHOWN = """() => {
  const text = Array.from(document.querySelectorAll(".jp-OutputArea-output")).map(e => e.innerText).join("\\n");
  const images = document.querySelectorAll(".jp-OutputArea-output img").length;
  return text.includes("takes the most steps") && images > 0 ? {text, images} : null;
}"""


def run_all(browser, base_url, path, timeout=180):
    """Open the notebook, note when its shipped outputs show (and what they
    say) and when the kernel is up, then Run All, timed in the page."""
    context = browser.new_context()
    requests, console = [], []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.set_default_timeout(timeout * 1000)
    try:
        t0 = time.monotonic()
        page.goto(f"{base_url}notebooks/index.html?path={path}")
        shown = page.wait_for_function(_SHOWN, timeout=timeout * 1000, polling=100).json_value()
        shown["at"] = time.monotonic() - t0
        shown["kernel_up_then"] = page.evaluate(_KERNEL_READY)
        shown["rendered"] = page.evaluate(_RENDERED)
        page.wait_for_function(_KERNEL_READY, timeout=timeout * 1000, polling=100)
        kernel_up = time.monotonic() - t0
        times = page.evaluate(_RUN_ALL_TIMED)
        cells = page.evaluate(_CELLS)
        shown["after_run_all"] = page.evaluate(_RENDERED)
        shown["badges"] = page.evaluate(_BADGES_AFTER_RESTORE)
        shown["edited"] = page.evaluate(_EDIT_AND_RUN)
    except Exception as exc:
        raise AssertionError(f"{path} did not run: {exc}\nconsole:\n" + "\n".join(console[-40:])) from exc
    finally:
        context.close()
    return cells, times, kernel_up, requests, shown


def text(cell) -> str:
    parts = []
    for out in cell["outputs"]:
        if out["output_type"] == "stream":
            parts.append("".join(out["text"]))
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}\n")
    return "".join(parts)


def test_demo_builds_with_one_command_and_restores_in_the_browser(tmp_path, lite_browser):
    # 1. A clean copy (only what git tracks), built by the README's one command.
    demo = tmp_path / "jupyterlite_demo"
    shutil.copytree(DEMO, demo, ignore=shutil.ignore_patterns(*GENERATED))
    assert not (demo / "content" / "__lazycache__").exists()
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(demo / "build.py")], capture_output=True, text=True)
    build_s = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    native = float(re.search(r"executed demo\.ipynb in ([\d.]+) s", proc.stdout).group(1))

    cache = demo / "content" / "__lazycache__"
    manifests = {p.parent.name: json.loads(p.read_text()) for p in cache.glob("*/manifest.json")}
    slow = next(m for m in manifests.values() if "Slow on purpose" in m["source"])
    assert slow["duration"] >= 10, f"the demo's slow cell ran only {slow['duration']:.1f} s natively"

    # Exactly the notebook's entries are shipped, and nothing else of the folder.
    out = demo / "_output"
    shipped = out / "files" / "__lazycache__"
    assert sorted(p.name for p in shipped.iterdir() if p.name != "codes") == sorted(manifests)
    site_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6

    # 2.-5. Open it: the slow cell restores, its body does not run, the plot is there.
    # The notebook is shipped with the outputs of its native run.
    shipped_nb = json.loads((out / "files" / "demo.ipynb").read_text())
    assert "takes the most steps" in json.dumps(shipped_nb["cells"][2]["outputs"])
    # The build says what it is doing, and writes nothing under /tmp on the host.
    assert "executing demo.ipynb natively" in proc.stdout and "indexing contents" in proc.stdout
    assert not list(Path("/tmp").glob("ipy_lazycache_demo*"))

    # 2.-5. Open it: the outputs show at once; then the slow cell restores,
    # its body does not run, the plot is there.
    with serve(out) as base:
        cells, times, kernel_up, requests, shown = run_all(lite_browser, base, "demo.ipynb")
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    load, slow_cell, plot_cell, check = code  # no install cell: the site's kernel has ipy_lazycache
    assert "piplite" not in json.dumps(shipped_nb) and "emscripten" not in cells[code[0]]["source"]
    split = {"pyodide start (ipy_lazycache loaded with it)": kernel_up, "import (%load_ext)": times[load],
             "first lookup (slow cell restored)": times[slow_cell]}
    print(f"\ndemo: build {build_s:.1f} s (native notebook run {native:.1f} s, slow cell "
          f"{slow['duration']:.1f} s), site {site_mb:.1f} MB; browser: outputs shown at {shown['at']:.1f} s, "
          f"cells {[round(t, 2) for t in times]}\ntime to a usable kernel (open -> first restored cell) "
          f"{sum(split.values()):.1f} s = " + " + ".join(f"{k} {v:.2f} s" for k, v in split.items()))

    # Results are on the page before the kernel is up, and before anything ran.
    assert shown["images"] >= 1 and "1,117,065 takes the most steps (527)" in shown["text"], shown
    assert not shown["kernel_up_then"] and shown["at"] < kernel_up, (shown, kernel_up)
    # What the page shows is what a plain run shows: no list of lines joined by
    # commas, none of the cache's own lines (they are in the build log).
    lines = [line for out in shown["rendered"] for line in out.splitlines()]
    assert not [line for line in lines if line.startswith(",")], shown["rendered"]
    assert not [line for line in lines if "lazycache:" in line], shown["rendered"]
    assert "demo.ipynb code cell 2: lazycache: stored" in proc.stdout, proc.stdout[-3000:]
    # After Run All, every cached cell came back whole: nothing it changed failed to re-apply.
    assert not [out for out in shown["after_run_all"] if "could not re-apply" in out], shown["after_run_all"]
    errors = [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, "\n".join(f"--- cell {i}\n{text(c)}" for i, c in enumerate(cells))
    assert "lazycache: restored" in text(cells[slow_cell]), text(cells[slow_cell])
    assert "takes the most steps (" in text(cells[slow_cell])
    assert times[slow_cell] < 2.0, times
    # Side effect no cache restores: the body appends to a file; in the browser it never did.
    assert "body ran 0 time(s) in this kernel (emscripten)" in text(cells[check]), text(cells[check])
    assert "record = (" in text(cells[check])
    pngs = [o["data"]["image/png"] for o in cells[plot_cell]["outputs"]
            if o["output_type"] == "display_data" and "image/png" in o.get("data", {})]
    assert len(pngs) == 1 and "".join(pngs[0]).startswith("iVBORw0KGgo"), cells[plot_cell]["outputs"]
    assert "lazycache: restored" in text(cells[plot_cell])
    # The cell badges came with the site: each cached cell says it was restored and the time it saved.
    badges = shown["badges"]
    assert badges[slow_cell].startswith("restored (saved ") and badges[plot_cell].startswith("restored"), badges
    assert badges[load] is None and badges[check] is None, badges
    assert slow_cell == 2 and shown["edited"] == ["would miss", "stored"], shown["edited"]
    # The cache really came over HTTP from this site, and nothing left 127.0.0.1.
    assert any("/files/__lazycache__/" in u and u.endswith("manifest.json") for u in requests)
    assert [u for u in requests if not u.startswith(("http://127.0.0.1:", "data:", "blob:"))] == []


def test_serve_logs_only_failed_requests(tmp_path):
    """``build.py --serve`` says where to go, then stays quiet: a page load is
    hundreds of requests; only the ones that failed are worth a line."""
    import urllib.error
    import urllib.request

    (tmp_path / "index.html").write_text("hello")
    code = f"import sys; sys.path.insert(0, {str(DEMO)!r}); import build; build.serve(build.Path({str(tmp_path)!r}), 0)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"open (http://127\.0\.0\.1:\d+/)", proc.stdout.readline()).group(1)
        for _ in range(3):
            assert urllib.request.urlopen(url + "index.html").read() == b"hello"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "missing.js")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    logged = [line for line in err.splitlines() if "HTTP/1.1" in line]
    assert len(logged) == 1 and "missing.js" in logged[0] and "404" in logged[0], err


def test_serve_opens_the_notebook_and_steps_past_a_taken_port(tmp_path):
    """The Quick start run again while its first server is up: one line and the
    next free port, not a traceback; the root opens the demo notebook."""
    import http.client
    import socket

    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    code = (f"import sys; sys.path.insert(0, {str(DEMO)!r}); import build; "
            f"build.serve(build.Path({str(tmp_path)!r}), {port})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        said = proc.stdout.readline()
        assert f"port {port} is in use" in said, said
        url = proc.stdout.readline()
        new_port = int(re.search(r"open http://127\.0\.0\.1:(\d+)/ ", url).group(1))
        assert new_port != port
        conn = http.client.HTTPConnection("127.0.0.1", new_port, timeout=10)
        conn.request("GET", "/")
        reply = conn.getresponse()
        assert reply.status == 302 and reply.getheader("Location") == "/notebooks/index.html?path=demo.ipynb"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
        held.close()
