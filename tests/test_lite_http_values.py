"""numpy and pandas values through the HTTP store, natively.

What an ordinary (online) JupyterLite site does with a cell that made a numpy
array and a pandas frame: its entry is served over HTTP and restored from the
``.npy`` and Arrow blobs. This machine has no Pyodide build of numpy or
pandas, so the same path runs natively: ``--dir http://127.0.0.1:PORT/...``
against a real server serving an *exported* cache, with the original cache
folder deleted and the session in an empty folder. An audit hook proves that
the hit opens, creates and maps no file, as in a browser, where there is none.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from ipy_lazycache import export, platform

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

CELL = """%%lazycache --dir WHERE
open(RUNS, "a").write("run\\n")
grid = np.arange(200_000, dtype="float64").reshape(400, 500) / 7
labels = np.array(["a", "b", "c"])
frame = pd.DataFrame({"x": np.arange(50_000), "name": [f"row {i}" for i in range(50_000)]})
summary = frame.describe()
print("made", grid.shape, len(frame))
"""
#: open flags that write (os.open and mkstemp name no mode, only flags)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
DELAY = 0.3  # per blob: long enough to see whether requests overlap

# A server in its own process (so the audit hook below sees only this one):
# serves a folder, slowly, and logs when each request was in flight.
SERVER = """
import functools, http.server, json, sys, time
root, log, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])

class Recorder(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        start = time.time()
        if not self.path.endswith("manifest.json"):
            time.sleep(delay)
        super().do_GET()
        with open(log, "a") as f:
            f.write(json.dumps([self.path, start, time.time()]) + "\\n")

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Recorder, directory=root))
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def most_in_flight(spans) -> int:
    """The largest number of requests being served at one moment."""
    edges = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans], key=lambda x: (x[0], x[1]))
    now = best = 0
    for _, d in edges:
        now += d
        best = max(best, now)
    return best


@pytest.fixture
def served(tmp_path):
    root, log = tmp_path / "www", tmp_path / "server.log"
    root.mkdir()
    cmd = [sys.executable, "-c", SERVER, str(root), str(log), str(DELAY)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        yield root, f"http://127.0.0.1:{port}/", log
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_numpy_and_pandas_values_restore_over_http_without_the_file_system(shell, tmp_path, served, monkeypatch):
    root, base, log = served
    runs = tmp_path / "runs.txt"
    shell.user_ns.update(np=np, pd=pd, RUNS=str(runs))

    # 1. A native run fills a local cache folder, which is exported and deleted.
    local = tmp_path / "work" / "__lazycache__"
    assert shell.run_cell(CELL.replace("WHERE", str(local))).success
    made = {k: shell.user_ns[k] for k in ("grid", "labels", "frame", "summary")}
    result = export.export(local, root / "site" / "__lazycache__", progress=False)
    assert result.ok and len(result.copied) == 1
    (entry,) = result.copied
    blobs = sorted(p.name for p in (root / "site" / "__lazycache__" / entry).iterdir() if p.name != "manifest.json")
    assert any(b.endswith(".npy") for b in blobs) and any(b.endswith(".arrow") for b in blobs), blobs
    shutil.rmtree(tmp_path / "work")

    # 2. A new session in an empty folder reads it from the server.
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    monkeypatch.setattr(platform, "_stores", {})
    for name in made:
        shell.user_ns.pop(name)
    shell.run_cell("%reload_ext ipy_lazycache", store_history=False)
    touched = []
    watching = [True]

    def audit(event, args):
        if not watching[0]:
            return
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            # open() gives a mode string; os.open (mkstemp too) gives None and says it in the flags
            writes = isinstance(args[2], int) and args[2] & WRITE_FLAGS
            touched.append((event, os.fsdecode(args[0]), "w" if writes else args[1]))
        elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "shutil.rmtree", "mmap.__new__",
                       "os.truncate", "os.link", "os.symlink", "os.chmod", "os.utime", "tempfile.mkstemp",
                       "tempfile.mkdtemp"):
            touched.append((event, *args[:2]))

    sys.addaudithook(audit)  # cannot be removed: switched off below
    try:
        hit = shell.run_cell(CELL.replace("WHERE", f"{base}site/__lazycache__"))
    finally:
        watching[0] = False
    assert hit.success, hit.error_in_exec

    # The body did not run; every value is equal to the one made natively.
    assert runs.read_text() == "run\n"
    ns = shell.user_ns
    assert np.array_equal(ns["grid"], made["grid"]) and ns["grid"].dtype == made["grid"].dtype
    assert np.array_equal(ns["labels"], made["labels"])
    pd.testing.assert_frame_equal(ns["frame"], made["frame"])
    pd.testing.assert_frame_equal(ns["summary"], made["summary"])

    # The blobs came over HTTP, at the same time, each once.
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    blob_spans = [s for s in seen if not s[0].endswith("manifest.json")]
    fetched = sorted(p.rsplit("/", 1)[1] for p, _, _ in blob_spans)
    assert fetched == blobs, (fetched, blobs)
    assert most_in_flight(blob_spans) >= 2, blob_spans
    # Nothing in that path used the file system: no file opened for writing,
    # no folder made, no file mapped, and nothing under the session's folders.
    writes = [t for t in touched if t[0] != "open" or any(m in (t[2] or "") for m in "wax+")]
    assert writes == [], writes
    local_reads = [t for t in touched if str(tmp_path) in str(t[1]) or "__lazycache__" in str(t[1])]
    assert local_reads == [], local_reads
    assert list(empty.iterdir()) == []
