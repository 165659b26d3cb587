"""Build a real JupyterLite site offline and run notebooks in headless Chromium.

The pieces, each usable alone:

* :func:`write_notebook` - an ``.ipynb`` from a list of cell sources;
* :func:`build_site` - a clean ``jupyter lite build`` of a lite dir (copied,
  so the source dir gets no ``_output`` or doit db) with ``--contents``;
  run :func:`ipy_lazycache.offline_pyodide.prepare` on the lite dir first;
* :func:`serve` - a threaded static server for ``_output`` on 127.0.0.1;
* :func:`launch_chromium` / :func:`run_notebook` - open a notebook with
  Playwright, wait for the kernel, run all cells and return every cell's
  outputs (nbformat-like dicts) and every URL the page and its workers asked
  for, so a test can assert that nothing left 127.0.0.1.

Use in ``tests/conftest.py``::

    from tests._lite import lite_browser  # noqa: F401

Chromium is Debian's (``/usr/lib/chromium/chromium``, not the wrapper);
never ``playwright install``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests._ci import unavailable

CHROMIUM = os.environ.get("IPY_LAZYCACHE_CHROMIUM", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root
    "--disable-dev-shm-usage",
    # No traffic of the browser's own (updates, sync, safe browsing, ...):
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-features=OptimizationHints,MediaRouter,Translate",
    # Anything but 127.0.0.1 fails at once instead of hanging; the request
    # is still seen (and reported) by the page's request events.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
LOCAL_HOSTS = {"127.0.0.1"}


# ------------------------------------------------------------------ build --
def write_notebook(path: Path, cells: list[str]) -> Path:
    """Write a Python notebook whose code cells are ``cells``."""
    nb = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python", "display_name": "Python (Pyodide)",
                           "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [{"cell_type": "code", "id": f"cell-{i}", "metadata": {},
                   "execution_count": None, "outputs": [], "source": src}
                  for i, src in enumerate(cells)],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


def build_site(lite_dir: Path, contents: Path, work: Path,
               apps=("notebooks", "lab")) -> Path:
    """Build ``lite_dir`` with ``contents`` into ``work/_output``, clean.

    The lite dir is copied to ``work/lite`` and built there from scratch:
    an incremental rebuild once dropped ``pyodideUrl`` and the kernel fell
    back to the CDN.  Returns the output dir.
    """
    work = Path(work)
    src = work / "lite"
    out = work / "_output"
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(lite_dir, src, ignore=shutil.ignore_patterns(
        "_output", ".jupyterlite.doit.db", "__pycache__"))
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [str(jupyter), "lite", "build", "--lite-dir", str(src),
           "--contents", str(Path(contents).resolve()), "--output-dir", str(out),
           "--no-sourcemaps"]
    for app in apps:
        cmd += ["--apps", app]
    proc = subprocess.run(cmd, cwd=src, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"jupyter lite build failed:\n{proc.stdout}\n{proc.stderr}")
    return out


# ------------------------------------------------------------------ serve --
class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript", ".js": "text/javascript",
        ".wasm": "application/wasm", ".json": "application/json",
        ".whl": "application/octet-stream", ".zip": "application/zip",
        ".ipynb": "application/json",
    }

    def log_message(self, *args):  # keep pytest output clean
        pass


@contextlib.contextmanager
def serve(root: Path):
    """Serve ``root`` on 127.0.0.1 (free port); yields the base URL."""
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- browser --
@contextlib.contextmanager
def launch_chromium():
    """Yield a headless Playwright ``Browser`` on Debian's Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class LiteRun:
    """What one notebook run produced."""

    cells: list[dict]
    requests: list[str]
    console: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def external_requests(self) -> list[str]:
        """Requests that went anywhere but 127.0.0.1 (data:/blob: are local)."""
        return [u for u in self.requests
                if urlsplit(u).scheme not in ("data", "blob")
                and urlsplit(u).hostname not in LOCAL_HOSTS]

    def text(self, i: int) -> str:
        """Cell ``i``'s streams, ``text/plain`` results and errors, as text."""
        parts = []
        for out in self.cells[i]["outputs"]:
            if out["output_type"] == "stream":
                parts.append(_join(out["text"]))
            elif out["output_type"] in ("execute_result", "display_data"):
                parts.append(_join(out["data"].get("text/plain", "")) + "\n")
            elif out["output_type"] == "error":
                parts.append(f"{out['ename']}: {out['evalue']}\n")
        return "".join(parts)

    def errors(self) -> list[dict]:
        return [o for c in self.cells for o in c["outputs"]
                if o["output_type"] == "error"]


def _join(text) -> str:
    return "".join(text) if isinstance(text, list) else text


_KERNEL_READY = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session
            && w.sessionContext.session.kernel;
  return !!k && k.status === "idle";
}"""

_RUN_ALL = """async () => {
  const app = window.jupyterapp;
  await app.commands.execute("notebook:run-all-cells");
}"""

_CELLS = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
  const res = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    res.push({
      cell_type: c.type,
      source: c.sharedModel.getSource(),
      execution_count: c.type === "code" ? (c.executionCount ?? null) : null,
      outputs: c.type === "code" ? c.outputs.toJSON() : [],
      metadata: c.sharedModel.getMetadata(),
    });
  }
  return res;
}"""


def run_notebook(browser, base_url: str, path: str, timeout: float = 120,
                 app: str = "notebooks") -> LiteRun:
    """Open ``path`` (relative to the contents) and run all its cells.

    Waits for the kernel (running before it exists pops a "Select Kernel"
    dialog), runs ``notebook:run-all-cells`` (whose promise settles when the
    last cell is done) and reads the cells back from the notebook model.
    """
    context = browser.new_context()
    requests: list[str] = []
    console: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.set_default_timeout(timeout * 1000)
    t0 = time.monotonic()
    timings = {}
    try:
        page.goto(f"{base_url}{app}/index.html?path={path}")
        page.wait_for_function(_KERNEL_READY, timeout=timeout * 1000, polling=250)
        timings["kernel_ready"] = time.monotonic() - t0
        t1 = time.monotonic()
        page.evaluate(_RUN_ALL)
        timings["run_all"] = time.monotonic() - t1
        cells = page.evaluate(_CELLS)
    except Exception as exc:
        raise AssertionError(f"notebook {path} did not run: {exc}\n"
                             "console:\n" + "\n".join(console[-40:])) from exc
    finally:
        context.close()
    return LiteRun(cells, requests, console, timings)


# --------------------------------------------------------------- fixtures --
def browser_available() -> str | None:
    """Why browser tests cannot run here, or None if they can."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (run .ci/setup-browser.sh)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not Path(sys.executable).with_name("jupyter").exists():
        return "jupyterlite is not installed"
    return None


@pytest.fixture(scope="session")
def lite_browser():
    """A headless Chromium shared by the session's browser tests."""
    reason = browser_available()
    if reason:
        unavailable(reason)  # fails under CI=true
    with launch_chromium() as browser:
        yield browser
