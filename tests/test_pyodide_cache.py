"""%%lazycache under real Pyodide (Node): the in-memory path in a real
InteractiveShell, and the same cell key as CPython's.

Node has no ``js.location``, no XHR and no JSPI, so the HTTP path is covered
by the browser test (tests/test_lite_cache.py); here the HTTP tier is only
seen failing, which must be a miss plus one warning.
"""


import pytest
from IPython.core.interactiveshell import InteractiveShell

from ipy_lazycache import core

pytestmark = [pytest.mark.pyodide, pytest.mark.slow]

# The body's side effect is an attribute of builtins: not a ref, not a def,
# so no cache restores it. It counts the runs of the body.
CELL = (
    "%%lazycache{opts}\n"
    "import builtins\n"
    "builtins.LC_RUNS = getattr(builtins, 'LC_RUNS', '') + '{tag};'\n"
    "total = sum(range(n)) + len(words)\n"
    "pairs = {{w: i for i, w in enumerate(words)}}\n"
    "print('total', total)\n"
    "total * 2\n"
)
SETUP = "n = 100\nwords = ['a', 'b', 'c']"

CODE = r"""
import builtins, io, json, os, sys, threading, contextlib
os.makedirs("/tmp/work", exist_ok=True)
os.chdir("/tmp/work")
from IPython.core.interactiveshell import InteractiveShell
from ipy_lazycache import core, platform
sh = InteractiveShell.instance()
sh.run_cell("%load_ext ipy_lazycache")
sh.run_cell(SETUP)
threads = threading.active_count()

def run(cell):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        res = sh.run_cell(cell)
    return {"ok": res.success, "out": out.getvalue(), "err": err.getvalue(),
            "result": res.result if isinstance(res.result, int) else None}

mem1 = run(CELL.format(opts="", tag="mem"))
sh.user_ns.pop("total"); sh.user_ns.pop("pairs")
mem2 = run(CELL.format(opts="", tag="mem"))
restored = {"total": sh.user_ns.get("total"), "pairs": sh.user_ns.get("pairs")}
store = platform.store_for(platform.cache_dir())
key = core.plan.plan(sh.transform_cell(CELL.format(opts="", tag="mem").split("\n", 1)[1]),
                 sh.user_ns).key

# With a cache URL (what the deployment addon sets), the HTTP tier is used;
# in Node it cannot fetch: a miss plus one warning, then hits from memory.
os.environ["IPY_LAZYCACHE_URL"] = "http://127.0.0.1:9/files/"
url1 = run(CELL.format(opts=" --dir elsewhere", tag="url"))
url2 = run(CELL.format(opts=" --dir elsewhere", tag="url"))
url_store = platform.store_for("elsewhere")

RESULT = {
    "mem": [mem1, mem2], "url": [url1, url2], "restored": restored, "key": key,
    "runs": builtins.LC_RUNS,
    "store": [type(t).__name__ for t in store.tiers],
    "url_store": [type(t).__name__ for t in url_store.tiers],
    "url_base": url_store.tiers[-1].base_url,
    "transport": type(url_store.tiers[-1].transport).__name__,
    "files": sorted(os.listdir("/tmp/work")),
    "threads": [threads, threading.active_count()],
}
"""


def native_key():
    sh = InteractiveShell.instance()
    ns = {}
    exec(SETUP, ns)
    ns.pop("__builtins__")
    body = CELL.format(opts="", tag="mem").split("\n", 1)[1]
    return core.plan.plan(sh.transform_cell(body), ns).key


def test_memory_path_under_pyodide(run_in_pyodide, project_wheel):
    code = f"SETUP = {SETUP!r}\nCELL = {CELL!r}\n" + CODE
    out = run_in_pyodide(code, [project_wheel])
    r = out.result
    mem1, mem2 = r["mem"]
    assert mem1["ok"] and "lazycache: stored" in mem1["out"], mem1
    assert "total 4953" in mem1["out"]
    assert mem2["ok"] and "lazycache: restored" in mem2["out"], mem2
    assert "total 4953" in mem2["out"], "outputs are replayed"
    assert r["restored"] == {"total": 4953, "pairs": {"a": 0, "b": 1, "c": 2}}
    # each body ran once: the re-runs were hits
    assert r["runs"] == "mem;url;"
    # outside a site (Node has no js.location) the store is memory only
    assert r["store"] == ["MemoryStore"]
    # with a cache URL: memory in front of HTTP through Pyodide's transport
    assert r["url_store"] == ["MemoryStore", "HttpStore"]
    assert r["url_base"] == "http://127.0.0.1:9/files/elsewhere/"
    assert r["transport"] == "PyodideTransport"
    url1, url2 = r["url"]
    warnings = [l for l in url1["err"].splitlines() if l.startswith("lazycache: could not fetch")]
    assert len(warnings) == 1, url1
    assert url1["ok"] and "lazycache: stored" in url1["out"]
    assert url2["ok"] and "lazycache: restored" in url2["out"] and not url2["err"], url2
    # nothing written to disk, no thread started
    assert r["files"] == []
    assert r["threads"][0] == r["threads"][1]
    # the cell's key is the same as CPython's
    assert r["key"] == native_key()
