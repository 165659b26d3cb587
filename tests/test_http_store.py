"""HttpStore natively, against a real threaded HTTP server on 127.0.0.1.

The server serves a folder and records every request it sees; routes can
override a path with a status, a delay or a body shorter than its
Content-Length.
"""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipy_lazycache import platform
from ipy_lazycache.stores import InvalidKey, MemoryStore, TieredStore
from ipy_lazycache.stores.http import HttpStore, ReadOnlyStore


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    #: Content-Length to announce, if not len(body) (a truncated response).
    length: int | None = None


class Server:
    def __init__(self, root: Path):
        self.root = root
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with server._lock:
                    server.requests.append(("GET", self.path))
                route = server.routes.get(self.path) or server._file(self.path)
                time.sleep(route.delay)
                self.send_response(route.status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(route.length if route.length is not None else len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)
                self.wfile.flush()

            def _refuse(self):
                with server._lock:
                    server.requests.append((self.command, self.path))
                self.send_error(405)

            do_PUT = do_POST = do_DELETE = do_HEAD = _refuse

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def _file(self, path: str) -> Route:
        target = (self.root / path.lstrip("/")).resolve()
        if target.is_file() and target.is_relative_to(self.root.resolve()):
            return Route(200, target.read_bytes())
        return Route(404, b"not found")

    def paths(self):
        with self._lock:
            return [p for _, p in self.requests]


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    srv = Server(root)
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def warnings_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("lazycache: could not fetch")]


# ---------------------------------------------------------------- the store --
def test_hits(server):
    server.routes["/c/k1/a.bin"] = Route(body=b"\x00\x01binary\xff")
    server.routes["/c/k1/b.bin"] = Route(body=b"second")
    store = HttpStore(server.url + "c")
    assert store.get("k1/a.bin") == b"\x00\x01binary\xff"
    assert store.get_many(["k1/a.bin", "k1/b.bin"]) == {"k1/a.bin": b"\x00\x01binary\xff", "k1/b.bin": b"second"}
    assert store.has("k1/b.bin")
    assert sorted(server.paths()) == ["/c/k1/a.bin", "/c/k1/a.bin", "/c/k1/b.bin", "/c/k1/b.bin"]


def test_404_is_a_plain_miss(server, capsys):
    store = HttpStore(server.url)
    assert store.get("nope/manifest.json") is None
    assert store.get_many(["a/x", "a/y"]) == {"a/x": None, "a/y": None}
    assert not store.has("a/x")
    assert warnings_in(capsys.readouterr().err) == []
    # a 404 is not remembered: the entry may be published later
    assert store.get("nope/manifest.json") is None
    assert server.paths().count("/nope/manifest.json") == 2


def test_500_is_a_miss_with_one_warning_and_is_not_asked_again(server, capsys):
    for name in ("x", "y", "z"):
        server.routes[f"/k/{name}"] = Route(500, b"boom")
    store = HttpStore(server.url)
    assert store.get("k/x") is None
    assert store.get_many(["k/y", "k/z"]) == {"k/y": None, "k/z": None}
    err = capsys.readouterr().err
    assert len(warnings_in(err)) == 1, err
    assert "HTTP 500" in err and server.url in err
    before = len(server.requests)
    assert store.get("k/x") is None and store.get_many(["k/y", "k/z"]) == {"k/y": None, "k/z": None}
    assert len(server.requests) == before, "failed keys must not be fetched again"


def test_network_error_is_a_miss_with_one_warning(capsys):
    # a port nobody listens on
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = HttpStore(f"http://127.0.0.1:{port}/", timeout=5)
    assert store.get("a/b") is None and store.get("a/c") is None
    assert len(warnings_in(capsys.readouterr().err)) == 1


def test_truncated_body_is_a_miss(server, capsys):
    server.routes["/k/blob"] = Route(body=b"x" * 100, length=1000)
    store = HttpStore(server.url, timeout=5)
    assert store.get("k/blob") is None
    assert len(warnings_in(capsys.readouterr().err)) == 1


def test_get_many_is_concurrent(server):
    keys = [f"e/blob{i}" for i in range(5)]
    for i, key in enumerate(keys):
        server.routes[f"/{key}"] = Route(body=f"data{i}".encode(), delay=0.5)
    store = HttpStore(server.url)
    t0 = time.perf_counter()
    got = store.get_many(keys)
    elapsed = time.perf_counter() - t0
    assert got == {key: f"data{i}".encode() for i, key in enumerate(keys)}
    # sequential would take 2.5 s; concurrent is near the slowest (0.5 s)
    assert 0.5 <= elapsed < 1.5, elapsed


HOSTILE = ["../secret", "a/../../b", "/etc/passwd", "a\\b", "..", "a//b", "a/./b", "%2e%2e/x", "a b", "", "k/ü"]


@pytest.mark.parametrize("key", HOSTILE)
def test_hostile_keys_are_refused_before_any_request(server, key):
    store = HttpStore(server.url)
    with pytest.raises(InvalidKey):
        store.get(key)
    with pytest.raises(InvalidKey):
        store.get_many(["fine/key", key])  # not even the good key is fetched
    with pytest.raises(InvalidKey):
        store.has(key)
    with pytest.raises(InvalidKey):
        store.put(key, b"x")
    with pytest.raises(InvalidKey):
        store.delete(key)
    # and through the tiers the browser uses
    with pytest.raises(InvalidKey):
        TieredStore([MemoryStore(), store]).get(key)
    assert server.requests == []


def test_read_only(server):
    store = HttpStore(server.url)
    assert store.writable is False
    with pytest.raises(ReadOnlyStore, match="read-only"):
        store.put("k/x", b"data")
    tiered = TieredStore([MemoryStore(), store])
    tiered.put("k/x", b"data")  # goes to memory
    assert tiered.get("k/x") == b"data"
    assert server.requests == []


def test_deleted_key_is_not_fetched_again(server):
    server.routes["/k/manifest.json"] = Route(body=b"{}")
    store = HttpStore(server.url)
    assert store.get("k/manifest.json") == b"{}"
    store.delete("k/manifest.json")  # what cache.evict does to a bad entry
    assert store.get("k/manifest.json") is None
    assert server.paths() == ["/k/manifest.json"]


# ---------------------------------------------------------- through %%lazycache
BODY = 'open("runs.txt", "a").write("run\\n")\n'
CELL = "%%lazycache {opts}\n" + BODY + "total = sum(range(n))\nprint('total is', total)\ntotal * 2\n"


def new_session(shell, monkeypatch):
    """A fresh kernel session: new extension state, no stores held."""
    monkeypatch.setattr(platform, "_stores", {})
    shell.reset(new_session=False)
    shell.run_cell("%reload_ext ipy_lazycache", store_history=False)


def publish(run, server, runs, opts=""):
    """A native run writing the entry into the served folder."""
    run("n = 10")
    first = run(CELL.format(opts=f"--dir {server.root / 'cache'} {opts}"))
    assert first.success and runs() == 1 and "lazycache: stored" in first.out
    entries = [p for p in (server.root / "cache").iterdir() if (p / "manifest.json").is_file()]
    assert len(entries) == 1
    return entries[0]


def test_magic_hits_over_http(run, shell, runs, server, monkeypatch):
    entry = publish(run, server, runs)
    new_session(shell, monkeypatch)
    run("n = 10")
    url = f"{server.url}cache"
    hit = run(CELL.format(opts=f"--dir {url}"))
    assert hit.success, hit.err
    assert runs() == 1, "the body must not run on a hit"
    assert shell.user_ns["total"] == 45
    assert "total is 45" in hit.out and "90" in hit.out
    assert "lazycache: restored total" in hit.out
    assert f"/cache/{entry.name}/manifest.json" in server.paths()
    assert all(method == "GET" for method, _ in server.requests)
    assert not warnings_in(hit.err)


def test_magic_miss_over_http_is_kept_in_memory(run, shell, runs, server, monkeypatch):
    url = f"{server.url}cache"
    run("n = 7")
    first = run(CELL.format(opts=f"--dir {url}"))
    assert first.success and runs() == 1 and "lazycache: stored" in first.out
    seen = len(server.requests)
    again = run(CELL.format(opts=f"--dir {url}"))
    assert runs() == 1 and "lazycache: restored total" in again.out
    assert len(server.requests) == seen, "a hit from memory asks the server nothing"
    assert all(method == "GET" for method, _ in server.requests), "nothing is written over HTTP"
    assert not list(server.root.rglob("*")), "nothing was written to the served folder"
    store = platform.store_for(url)
    assert isinstance(store, TieredStore) and isinstance(store.tiers[-1], HttpStore)


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_damaged_blob_over_http_reruns_the_cell(run, shell, runs, server, monkeypatch, damage):
    entry = publish(run, server, runs)
    blob = next(p for p in entry.iterdir() if p.name.startswith("total."))
    data = blob.read_bytes()
    path = f"/cache/{entry.name}/{blob.name}"
    if damage == "truncated":  # Content-Length larger than the body
        server.routes[path] = Route(body=data[: len(data) // 2], length=len(data))
    else:  # same length, different bytes: the digest catches it
        server.routes[path] = Route(body=bytes([data[0] ^ 0xFF]) + data[1:])
    new_session(shell, monkeypatch)
    run("n = 10")
    url = f"{server.url}cache"
    second = run(CELL.format(opts=f"--dir {url}"))
    assert second.success, second.err
    assert runs() == 2, "a damaged entry must re-run the cell"
    assert shell.user_ns["total"] == 45
    # one line says what happened: the failed fetch, or the bytes that do not match
    ours = [line for line in (second.out + second.err).splitlines() if line.startswith("lazycache:")]
    ours = [line for line in ours if "stored" not in line]
    assert len(ours) == 1, ours
    if damage == "truncated":
        assert len(warnings_in(second.err)) == 1 and "IncompleteRead" in ours[0]
    else:
        assert "is damaged" in ours[0] and "does not match its digest" in ours[0]
    # the re-run is kept in memory; the bad entry is not fetched again
    seen = len(server.requests)
    third = run(CELL.format(opts=f"--dir {url}"))
    assert runs() == 2 and "lazycache: restored total" in third.out
    assert len(server.requests) == seen


# ------------------------------------------------------- where the site keeps it
@pytest.mark.parametrize(
    "env, cwd, directory, expected",
    [
        # fallback: site base (from the worker's URL) + files/ + notebook folder
        (None, "/drive/demo", "__lazycache__", "http://h:1/sub/files/demo/__lazycache__/"),
        (None, "/drive", "__lazycache__", "http://h:1/sub/files/__lazycache__/"),
        (None, "/drive/a b", "__lazycache__", "http://h:1/sub/files/a%20b/__lazycache__/"),
        # --dir and %config are resolved against the notebook's folder
        (None, "/drive/demo", "../shared/cache", "http://h:1/sub/files/shared/cache/"),
        (None, "/drive/demo", "/drive/other/cache", "http://h:1/sub/files/other/cache/"),
        # no service worker: /drive is not the working directory
        (None, "/home/pyodide", "__lazycache__", "http://h:1/sub/files/__lazycache__/"),
        # IPY_LAZYCACHE_URL (the deployment addon's), relative to the site or absolute
        ("files/", "/drive/demo", "__lazycache__", "http://h:1/sub/files/demo/__lazycache__/"),
        ("https://cdn.example/site/files", "/drive/demo", "c", "https://cdn.example/site/files/demo/c/"),
        # an http(s) folder is used as it is
        (None, "/drive/demo", "http://x:2/cache", "http://x:2/cache/"),
    ],
)
def test_site_cache_url(monkeypatch, env, cwd, directory, expected):
    if env is None:
        monkeypatch.delenv("IPY_LAZYCACHE_URL", raising=False)
    else:
        monkeypatch.setenv("IPY_LAZYCACHE_URL", env)
    monkeypatch.setattr(platform, "site_base", lambda: "http://h:1/sub/")
    monkeypatch.setattr(platform.os, "getcwd", lambda: cwd)
    assert platform.site_cache_url(directory) == expected
