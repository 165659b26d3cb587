"""Build the ipy_lazycache JupyterLite demo from scratch, in one command:

    python jupyterlite_demo/build.py [--serve] [--port 8000] [--clean]

1. makes this lite dir self-contained: Pyodide from npm and its wheels from
   PyPI, no CDN (``ipy_lazycache.offline_pyodide``; cached between runs);
2. runs ``jupyter lite build`` with the ipy_lazycache addon's ``execute``
   option: ``content/demo.ipynb`` runs natively first (the slow cell takes
   about ten seconds the first time), then exactly the cache entries the
   notebook uses are shipped into the site, with the ipy_lazycache wheel;
3. with ``--serve``, serves the site on http://127.0.0.1:PORT/, which opens
   the demo notebook (the next free port if PORT is taken).

``--clean`` also deletes the notebook's cache, so the native run recomputes.
Everything generated (``_output/``, ``static/pyodide/``, ``pypi/``,
``jupyter-lite.json``, ``content/__lazycache__/``) is git-ignored.
"""

from __future__ import annotations

import argparse
import errno
import functools
import http.server
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTENT = HERE / "content"
OUTPUT = HERE / "_output"
#: Where the site's root sends a visitor.
NOTEBOOK_PATH = "/notebooks/index.html?path=demo.ipynb"


def build(clean: bool = False, out: Path = OUTPUT) -> Path:
    from ipy_lazycache import offline_pyodide

    if clean:
        shutil.rmtree(CONTENT / "__lazycache__", ignore_errors=True)
    # Always a clean site: an incremental rebuild once lost pyodideUrl.
    shutil.rmtree(out, ignore_errors=True)
    (HERE / ".jupyterlite.doit.db").unlink(missing_ok=True)
    t0 = time.perf_counter()
    print(f"demo: laying Pyodide {offline_pyodide.PYODIDE_VERSION} and its wheels into {HERE.name}/static/pyodide"
          f" (the first time: npm and PyPI downloads, kept in {offline_pyodide.cache_dir()}) ...", flush=True)
    offline_pyodide.prepare(HERE)
    print(f"demo: Pyodide {offline_pyodide.PYODIDE_VERSION} and wheels ready in {time.perf_counter() - t0:.1f} s",
          flush=True)
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [str(jupyter) if jupyter.exists() else "jupyter", "lite", "build",
           "--lite-dir", str(HERE), "--contents", str(CONTENT), "--output-dir", str(out),
           "--apps", "lab", "--apps", "notebooks", "--no-sourcemaps",
           "--LazyCacheAddon.execute=True"]
    t0 = time.perf_counter()
    print("demo: jupyter lite build (the notebook runs natively first) ...", flush=True)
    returncode, log = _run_build(cmd)
    if returncode:
        sys.stderr.write(log[-8000:])
        raise SystemExit(f"demo: jupyter lite build failed (exit {returncode})")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"demo: site built in {time.perf_counter() - t0:.1f} s: {out} ({size / 1e6:.1f} MB)")
    return out


# doit prints one line per task it starts (".  phase:addon:task"); say each phase once.
_PHASES = {"post_init": "unpacking the JupyterLite app", "build": "copying contents, cache entries and the wheel",
           "post_build": "indexing contents, writing settings"}


def _run_build(cmd) -> tuple[int, str]:
    """Run ``jupyter lite build``, saying what it is doing as it goes;
    the exit status and its whole output (for a failure)."""
    proc = subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log, said = [], set()
    for line in proc.stdout:
        log.append(line)
        task = line.strip().lstrip(".-! ").split(":", 1)[0]
        if "ipy-lazycache]" in line:
            print("demo:", line.strip(), flush=True)
        elif task in _PHASES and task not in said:
            said.add(task)
            print(f"demo: {_PHASES[task]} ...", flush=True)
    return proc.wait(), "".join(log)


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
        ".json": "application/json", ".whl": "application/octet-stream", ".ipynb": "application/json",
    }

    def do_GET(self):
        # The site's root opens the demo notebook, not JupyterLab's launcher. Only "/":
        # the apps read the root's index.html (its settings) by that name.
        if self.path == "/":
            self.send_response(302)
            self.send_header("Location", NOTEBOOK_PATH)
            self.end_headers()
            return
        super().do_GET()

    def log_request(self, code="-", size="-"):
        # A page load is hundreds of requests: say only what went wrong.
        if not str(code).isdigit() or int(code) >= 400:
            super().log_request(code, size)


def serve(root: Path, port: int) -> None:
    handler = functools.partial(_Handler, directory=str(root))
    with _bind(handler, port) as server:
        print(f"demo: open http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def _bind(handler, port: int, tries: int = 20) -> http.server.ThreadingHTTPServer:
    """A server on ``port``, or on the next free one when it is taken (a
    demo started earlier still serving): said in one line, not a traceback."""
    for candidate in range(port, port + tries) if port else [0]:
        try:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", candidate), handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        if candidate != port:
            print(f"demo: port {port} is in use (another server, perhaps an earlier demo); using {candidate}",
                  flush=True)
        return server
    raise SystemExit(f"demo: ports {port}-{port + tries - 1} are all in use; choose one with --port")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--serve", action="store_true", help="serve the site on 127.0.0.1 after building")
    ap.add_argument("--port", type=int, default=8000, help="port for --serve (0: any free port)")
    ap.add_argument("--clean", action="store_true", help="delete the notebook's cache first (recompute)")
    args = ap.parse_args(argv)
    out = build(clean=args.clean)
    if args.serve:
        serve(out, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
