"""Issue 12: the cache tried as an attacker and as a careless user would.

One section per class of the issue. Every test drives real parts (a real
InteractiveShell through the ``run`` fixture, real files and symbolic links,
a real HTTP server on 127.0.0.1, a real S3 server, the real CLI in a
subprocess) and asserts what a user would notice: the value restored, a
payload that did (not) run, files that survive, the one line shown.
"""

from __future__ import annotations

import http.server
import json
import os
import pickle
import signal
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import xxhash

from ipy_lazycache import manage
from ipy_lazycache.stores.http import HttpStore

pytestmark = pytest.mark.security

ROOT = Path(__file__).resolve().parent.parent
BODY = 'open("runs.txt", "a").write("run\\n")\n'
KEY = "team secret"


def cli(*argv, cwd, env=None):
    """The real ``ipy-lazycache`` command: (exit code, stdout, stderr)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    p = subprocess.run([sys.executable, "-m", "ipy_lazycache.cli", *argv], cwd=cwd, env=full,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


_MANY = """
import contextlib, io, json, sys, traceback
from ipy_lazycache import cli
out = []
for argv in json.loads(sys.argv[1]):
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try:
            code = cli.main(argv)
        except BaseException:
            traceback.print_exc()
            code = -1
    out.append([code, o.getvalue(), e.getvalue()])
print(json.dumps(out))
"""


def cli_many(*argvs, cwd):
    """Several ``ipy-lazycache`` commands through ``cli.main`` in one process
    (a process each costs ~0.3 s): [(exit code, stdout, stderr)]."""
    p = subprocess.run([sys.executable, "-c", _MANY, json.dumps(argvs)], cwd=cwd, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert p.returncode == 0, p.stderr
    return [tuple(r) for r in json.loads(p.stdout)]


def entries(root="__lazycache__"):
    return sorted(n for n in os.listdir(root) if len(n) == 32) if os.path.isdir(root) else []


def entry_with(def_name, root="__lazycache__"):
    for key in entries(root):
        with open(os.path.join(root, key, "manifest.json")) as f:
            if def_name in json.load(f)["defs"]:
                return os.path.join(root, key)
    raise KeyError(def_name)


def blob_of(d, prefix):
    (name,) = [n for n in os.listdir(d) if n.startswith(prefix + ".")]
    return os.path.join(d, name)


def status(out):
    return [line for line in out.splitlines() if line.startswith(("lazycache:", "UsageError"))]


class Payload:
    """Unpickling this runs a shell command with a visible side effect."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ============================================================================
# 1. Verify and use the same bytes


def _arrow_with_payload(marker) -> bytes:
    """A valid Arrow IPC file whose schema metadata (a pickle, for the
    codec) runs a command when loaded."""
    import pyarrow as pa

    from ipy_lazycache.codecs_arrow import META_KEY

    table = pa.table({"c0": [1, 2, 3]}).replace_schema_metadata({META_KEY: pickle.dumps(Payload(marker))})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


class SwapAtDecode:
    """An audit hook that renames other bytes over a blob file right after the
    cache opened it (at the next audited step: the mapping, an unpickler's
    lookup, or a second open of the blob by a decoder that goes back to the
    path): the deterministic form of a rename race in a shared folder, landing
    between the cache's open and its check or its decode. ``swapped`` counts
    the swaps, so a test can prove the race happened."""

    installed = None

    def __init__(self, blob_path, replacement: bytes):
        self.blob = os.path.basename(blob_path)
        self.folder = os.path.dirname(os.path.abspath(blob_path))
        self.replacement = replacement
        self.swapped = 0
        self.armed = False
        self.busy = False
        SwapAtDecode.installed = self
        if not getattr(SwapAtDecode, "_hooked", False):
            sys.addaudithook(SwapAtDecode._hook)  # cannot be removed: it checks `installed`
            SwapAtDecode._hooked = True

    def _is_blob(self, event, args) -> bool:
        path = args[0] if event == "open" and args else None  # a path, or an fd (os.fdopen)
        return isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).endswith(self.blob)

    @staticmethod
    def _hook(event, args):
        self = SwapAtDecode.installed
        if self is None or self.busy:
            return
        if not self.armed:
            self.armed = self._is_blob(event, args)  # the cache's own open of the blob
            return
        SwapAtDecode.installed = None  # once
        self.busy = True
        try:
            tmp = os.path.join(self.folder, "evil.tmp")
            with open(tmp, "wb") as f:
                f.write(self.replacement)
            os.replace(tmp, os.path.join(self.folder, self.blob))
        finally:
            self.busy = False
        self.swapped += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        SwapAtDecode.installed = None


def test_arrow_blob_swapped_at_the_decoders_open_never_runs(run, shell, runs, tmp_path, monkeypatch):
    """Signed entry, pandas frame as Arrow: a swap right before the decoder
    opens the blob again would run the pickle in the swapped file's schema."""
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", KEY)
    run("import pandas as pd")
    cell = "%%lazycache\n" + BODY + "df = pd.DataFrame({'a': [1.5, 2.5], 'b': ['x', 'y']})\n"
    assert run(cell).success and runs() == 1
    marker = tmp_path / "PWNED-arrow"
    blob = blob_of(entry_with("df"), "df")
    with SwapAtDecode(blob, _arrow_with_payload(marker)) as swap:
        r = run(cell)
    assert swap.swapped == 1, "the swap never happened: the test proves nothing"
    assert not marker.exists(), "code from the swapped file ran"
    assert r.success and runs() == 1, r.out
    assert shell.user_ns["df"].to_dict() == {"a": {0: 1.5, 1: 2.5}, "b": {0: "x", 1: "y"}}


def test_npy_blob_swapped_at_the_decoders_open_is_not_restored(run, shell, runs, monkeypatch):
    import numpy as np

    monkeypatch.setenv("IPY_LAZYCACHE_KEY", KEY)
    run("import numpy as np")
    cell = "%%lazycache\n" + BODY + "arr = np.arange(1000, dtype=np.float64)\n"
    assert run(cell).success and runs() == 1
    blob = blob_of(entry_with("arr"), "arr")
    other = open(blob, "rb").read().replace(np.arange(1000, dtype=np.float64).tobytes(), np.full(1000, 666.0).tobytes())
    with SwapAtDecode(blob, other) as swap:
        r = run(cell)
    assert swap.swapped == 1, "the swap never happened: the test proves nothing"
    assert r.success
    assert np.array_equal(shell.user_ns["arr"], np.arange(1000, dtype=np.float64)), "swapped values restored"


def test_signed_npy_others_can_write_is_read_not_mapped(run, shell, runs, monkeypatch):
    """A mapping shows later writes to pages not yet read; under signing, a
    file others can write is copied into memory after the check."""
    import numpy as np

    monkeypatch.setenv("IPY_LAZYCACHE_KEY", KEY)
    run("import numpy as np")
    cell = "%%lazycache\n" + BODY + "arr = np.arange(200_000, dtype=np.float64)\n"
    assert run(cell).success
    blob = blob_of(entry_with("arr"), "arr")
    os.chmod(blob, 0o666)  # a shared folder: group and others can write
    r = run(cell)
    assert r.success and runs() == 1 and "restored arr" in r.out
    with open(blob, "r+b") as f:  # someone else writes the file in place afterwards
        f.seek(64 * 1024)
        f.write(b"\xff" * 8192)
    assert np.array_equal(shell.user_ns["arr"], np.arange(200_000, dtype=np.float64))


def test_unsigned_private_npy_is_still_mapped(run, shell, runs):
    """The O(1) restore stays for the default case: unsigned, own folder."""
    run("import numpy as np")
    cell = "%%lazycache\n" + BODY + "arr = np.arange(200_000, dtype=np.float64)\n"
    run(cell)
    assert run(cell).success and runs() == 1
    base, mapped = shell.user_ns["arr"], False
    while base is not None:
        mapped |= type(base).__name__ == "mmap"
        base = getattr(base, "base", None)
    assert mapped


# ============================================================================
# 2. No link out of the cache


def test_recency_record_is_not_written_through_a_link(run, runs, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    cell = "%%lazycache\n" + BODY + "x = [1, 2, 3]\n"
    run(cell)
    d = entry_with("x")
    used = os.path.join(d, "used")
    if os.path.exists(used):
        os.unlink(used)
    os.symlink(victim, used)
    r = run(cell)
    assert r.success and runs() == 1, r.out
    assert victim.read_text() == "precious\n"


def test_export_list_is_not_written_through_a_linked_folder(run, runs, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.makedirs("__lazycache__")
    os.symlink(elsewhere, "__lazycache__/exports")
    r = run("%%lazycache\n" + BODY + "x = 1\n")
    assert r.success and runs() == 1
    assert os.listdir(elsewhere) == [], "the export list was written outside the cache"
    assert len([line for line in r.out.splitlines() if "export list" in line]) == 1, r.out


def test_a_linked_entry_folder_is_never_followed(run, shell, runs, tmp_path):
    """The entry folder is a link to a folder of the user's (with a damaged
    manifest, so the magic evicts): nothing there is read or deleted."""
    cell = "%%lazycache\n" + BODY + "x = [1, 2, 3]\n"
    run(cell)
    d = entry_with("x")
    elsewhere = tmp_path / "elsewhere"
    os.rename(d, elsewhere)
    (elsewhere / "precious.txt").write_text("keep me")
    (elsewhere / "manifest.json").write_text("{damaged")
    os.symlink(elsewhere, d)
    before = sorted(os.listdir(elsewhere))
    r = run(cell)
    assert r.success and shell.user_ns["x"] == [1, 2, 3] and runs() == 2
    assert sorted(os.listdir(elsewhere)) == before, "a file outside the cache was touched"
    assert not os.path.islink(d) and os.path.isdir(d), "the link was replaced by a real entry"
    assert run(cell).success and runs() == 2
    # clear removes a link with an entry's name, never what it points to
    os.rename(d, tmp_path / "moved")
    os.symlink(elsewhere, d)
    code, out, err = cli("clear", cwd=os.getcwd())
    assert code == 0 and "Traceback" not in err, err
    assert not os.path.lexists(d) and sorted(os.listdir(elsewhere)) == before


def test_prune_removes_only_what_has_the_shape_of_an_entry(tmp_path):
    """``prune --dir`` pointed at a project folder by mistake."""
    project = tmp_path / "project"
    results = project / ("a" * 32)
    results.mkdir(parents=True)
    (results / "results.csv").write_text("1,2\n")
    notes = project / "notes"
    notes.mkdir()
    (notes / ".tmp-draft.md").write_text("draft")
    orphan = project / ("b" * 32)  # a real leftover: a blob without a manifest
    orphan.mkdir()
    (orphan / "x.0123456789ab.pkl").write_bytes(b"junk")
    old = time.time() - 7200
    for p in (results / "results.csv", notes / ".tmp-draft.md", orphan / "x.0123456789ab.pkl"):
        os.utime(p, (old, old))
    code, out, err = cli("prune", "--dir", str(project), cwd=tmp_path)
    assert code == 0, err
    assert (results / "results.csv").read_text() == "1,2\n"
    assert (notes / ".tmp-draft.md").read_text() == "draft"
    assert not orphan.exists()


# ============================================================================
# 3. Bounded network


class Slow(http.server.BaseHTTPRequestHandler):
    """Routes: /drip (a byte every 0.2 s), /huge (80 MiB, no length), else 404."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.endswith("/drip/manifest.json"):
            self.send_response(200)
            self.send_header("Content-Length", "40")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        elif "/huge/" in self.path:
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"{" * (1 << 20)
            try:
                for _ in range(80):
                    self.wfile.write(chunk)
            except OSError:
                pass  # the client hung up: what a capped read does
            self.close_connection = True
        else:
            self.send_error(404)


@pytest.fixture
def slow_server():
    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    httpd = Server(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_a_trickled_body_is_cut_at_a_total_deadline(slow_server, capsys):
    store = HttpStore(slow_server, timeout=1)
    t0 = time.monotonic()
    assert store.get("drip/manifest.json") is None
    assert time.monotonic() - t0 < 3, "the per-read timeout never trips on a trickle"
    assert len([line for line in capsys.readouterr().err.splitlines() if line.startswith("lazycache:")]) == 1


def test_a_huge_manifest_or_blob_is_a_miss(slow_server, capsys):
    store = HttpStore(slow_server, timeout=10)
    assert store.get("huge/manifest.json") is None, "a manifest has a fixed cap"
    other = HttpStore(slow_server, timeout=10)
    assert other.get_many(["huge/x.0123456789ab.pkl"], sizes={"huge/x.0123456789ab.pkl": 100}) == {
        "huge/x.0123456789ab.pkl": None
    }, "a blob is capped at its declared size"


@pytest.mark.slow
def test_prune_removes_old_orphan_blobs_from_an_object_store(tmp_path):
    from ipy_lazycache.stores.fsspec_store import FsspecStore
    from tests.test_s3 import S3Server

    server = S3Server()
    try:
        bucket = server.bucket("orphans")
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        for k, v in env.items():
            os.environ.setdefault(k, v)
        store = FsspecStore(f"s3://{bucket}/cache", endpoint_url=server.endpoint)
        done = "c" * 32
        store.put(f"{done}/x.0123456789ab.pkl", b"data")
        m = {"format": 1, "key": done, "blobs": {"x.0123456789ab.pkl": {
            "codec": "pickle", "defs": ["x"], "size": 4, "digest": xxhash.xxh3_128(b"data").hexdigest()}},
            "defs": {"x": {"hash": None}}, "deleted": [], "outputs": []}
        store.put(f"{done}/manifest.json", json.dumps(m).encode())
        orphan = "d" * 32  # a failed upload: blobs, no manifest
        store.put(f"{orphan}/y.0123456789ab.pkl", b"left behind")
        # within the grace period nothing goes (an upload may be in progress)
        assert manage.prune(store).keys == []
        assert store.has(f"{orphan}/y.0123456789ab.pkl")
        removed = manage.prune(store, now=time.time() + 2 * manage.INCOMPLETE_GRACE_SECONDS)
        assert removed.keys == [orphan]
        assert not store.has(f"{orphan}/y.0123456789ab.pkl")
        assert store.has(f"{done}/manifest.json") and store.has(f"{done}/x.0123456789ab.pkl")
    finally:
        server.stop()


# ============================================================================
# 4. Crafted or malformed manifests


DEEP = "@@deep@@"

MALFORMED = {
    # replaced by 50 000 nested lists when written (see _damage)
    "deep nesting": lambda m: m.update(outputs=[{"output_type": "display_data", "data": {"x": DEEP}}]),
    "blobs as a list": lambda m: m.update(blobs=list(m["blobs"])),
    "outputs not a list": lambda m: m.update(outputs={"a": 1}),
    "duration a string": lambda m: m.update(duration="long"),
    "deleted a number": lambda m: m.update(deleted=5),
    "result a list": lambda m: m.update(result=[1]),
    "defs a list": lambda m: m.update(defs=["x"]),
    "source a number": lambda m: m.update(source=7),
    "blob name escapes": lambda m: m["blobs"].update({"../../x.pkl": next(iter(m["blobs"].values()))}),
}


def _damage(d, case):
    path = os.path.join(d, "manifest.json")
    if case == "manifest is a folder":
        os.unlink(path)
        os.makedirs(os.path.join(path, "sub"))
        return
    with open(path) as f:
        m = json.load(f)
    MALFORMED[case](m)
    text = json.dumps(m).replace(json.dumps(DEEP), "[" * 50_000 + "]" * 50_000)
    with open(path, "w") as f:
        f.write(text)


@pytest.mark.parametrize("case", [*sorted(MALFORMED), "manifest is a folder"])
def test_malformed_manifest_is_a_miss_and_every_command_names_it(run, shell, runs, case):
    cell = "%%lazycache\n" + BODY + "x = {'a': 1}\nprint('shown')\n"
    run(cell)
    d = entry_with("x")
    _damage(d, case)
    here = os.getcwd()
    *fine, (code, out, err) = cli_many(["info"], ["du"], ["prune"], ["verify"], cwd=here)
    for command, (c, _out, e) in zip(("info", "du", "prune"), fine):
        assert c == 0 and "Traceback" not in e, (command, e)
    assert code == 1 and "Traceback" not in err and os.path.basename(d)[:10] in out, (out, err)
    r = run(cell)
    assert r.success and runs() == 2 and shell.user_ns["x"] == {"a": 1}, r.out
    assert len(status(r.out)) == 2, r.out  # "damaged; re-running" and "stored"
    _damage(entry_with("x"), case)
    code, out, err = cli("verify", "--fix", cwd=here)
    assert code == 0 and "Traceback" not in err, err
    assert entries() == []
    run(cell)
    _damage(entry_with("x"), case)
    code, out, err = cli("clear", cwd=here)
    assert code == 0 and "Traceback" not in err and entries() == [], (out, err)


def test_verify_does_not_call_an_unreadable_young_manifest_verified(run, tmp_path):
    run("%%lazycache\n" + BODY + "x = 1\n")
    with open(os.path.join(entry_with("x"), "manifest.json"), "w") as f:
        f.write("{not json")
    code, out, err = cli("verify", cwd=os.getcwd())
    assert code == 1 and "all entries verified" not in out, out


def _sign_tamper(d, change):
    path = os.path.join(d, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    change(m)
    with open(path, "w") as f:
        json.dump(m, f)


def test_non_ascii_signature_is_untrusted_not_a_crash(run, runs, monkeypatch):
    from IPython.core.error import UsageError

    monkeypatch.setenv("IPY_LAZYCACHE_KEY", KEY)
    cell = "%%lazycache\n" + BODY + "x = [1]\n"
    run(cell)
    _sign_tamper(entry_with("x"), lambda m: m["signature"].update(mac="é" * 64))
    code, out, err = cli("verify", cwd=os.getcwd(), env={"IPY_LAZYCACHE_KEY": KEY})
    assert code == 1 and "Traceback" not in err and "signature does not match" in out, (out, err)
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "strict")
    r = run(cell)
    assert isinstance(r.error_in_exec, UsageError) and "not trusted" in str(r.error_in_exec)
    assert runs() == 1


def test_blob_digest_mismatch_under_strict_is_an_error(run, runs, monkeypatch):
    """A signed manifest whose blob does not match: strict refuses, it does
    not quietly evict and re-run."""
    from IPython.core.error import UsageError

    monkeypatch.setenv("IPY_LAZYCACHE_KEY", KEY)
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "strict")
    cell = "%%lazycache\n" + BODY + "obj = {'a': list(range(50))}\n"
    run(cell)
    blob = blob_of(entry_with("obj"), "obj")
    data = bytearray(open(blob, "rb").read())
    data[len(data) // 2] ^= 1
    open(blob, "wb").write(data)
    r = run(cell)
    assert isinstance(r.error_in_exec, UsageError) and "not trusted" in str(r.error_in_exec), r.out
    assert runs() == 1 and os.path.exists(blob)


# ============================================================================
# 5. export ships only what verifies


def test_export_with_a_key_refuses_entries_whose_signature_fails(run, runs, monkeypatch, tmp_path):
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", KEY)
    run("%%lazycache\n" + BODY + "good = 1\n")
    run("%%lazycache\n" + BODY + "bad = 2\n")
    _sign_tamper(entry_with("bad"), lambda m: m.update(duration=123.0))  # anything not re-signed
    site = tmp_path / "site"
    code, out, err = cli("export", "__lazycache__", str(site), "--all", cwd=os.getcwd(), env={"IPY_LAZYCACHE_KEY": KEY})
    assert code == 1 and "not trusted" in out, (out, err)
    assert entries(site) == [os.path.basename(entry_with("good"))]


# ============================================================================
# 6. Input handled where it enters


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "__lazycache__").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "bad.ipynb").write_bytes(b"\xff\xfe not json")
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    for argv in (
        ["prune", "--max-size", "9" * 400],
        ["prune", "--older-than", "9" * 400 + "d"],
        ["export", "__lazycache__", "out", "--notebook", "bad.ipynb"],
        ["export", "__lazycache__", "out", "--notebook", "list.ipynb"],
        ["export", "__lazycache__", "afile", "--all"],
    ):
        code, out, err = cli(*argv, cwd=tmp_path)
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (argv, code, err)


@pytest.mark.parametrize("line", ["--help", "prune --help", "verify -h"])
def test_line_magic_help_is_shown_and_nothing_raises(run, line):
    r = run(f"%lazycache {line}")
    assert r.success and r.error_in_exec is None, r.error_in_exec
    assert "usage:" in r.out


def test_cell_magic_help_is_shown_and_the_body_does_not_run(run, runs):
    r = run("%%lazycache --help\n" + BODY + "y = 1\n")
    assert r.success and "--files" in r.out and runs() == 0


def test_files_quoted_like_a_shell(run, runs):
    Path("my data.csv").write_text("1\n")
    cell = '%%lazycache --files "my data.csv"\n' + BODY + "y = open('my data.csv').read()\n"
    assert run(cell).success and runs() == 1
    assert run(cell).success and runs() == 1
    Path("my data.csv").write_text("2\n")
    assert run(cell).success and runs() == 2


def test_files_missing_is_reported_once(run, runs):
    cell = "%%lazycache --files nothere.csv\n" + BODY + "y = 1\n"
    first, second = run(cell), run(cell)
    assert [line for line in first.out.splitlines() if "nothere.csv" in line] != []
    assert [line for line in second.out.splitlines() if "nothere.csv" in line] == []
    assert runs() == 1


@pytest.mark.parametrize("path", ["/dev/zero", "."])
def test_files_device_or_folder_is_one_line_and_the_cell_runs(run, shell, runs, path):
    def too_slow(*a):
        raise TimeoutError("--files hung")

    old = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(20)
    try:
        r = run(f"%%lazycache --files {path}\n" + BODY + "y = 1\n")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert not isinstance(r.error_in_exec, TimeoutError)
    assert runs() == 1 and shell.user_ns["y"] == 1
    assert len([line for line in r.out.splitlines() if path in line]) == 1, r.out


def test_files_unreadable_is_one_line_and_the_cell_runs(run, shell, runs):
    """/proc/self/mem: a regular file whose read fails (EIO), even for root."""
    r = run("%%lazycache --files /proc/self/mem\n" + BODY + "y = 1\n")
    assert r.success and runs() == 1 and shell.user_ns["y"] == 1, r.err
    assert len([line for line in r.out.splitlines() if "/proc/self/mem" in line]) == 1, r.out


@pytest.mark.parametrize("env", [
    {"IPY_LAZYCACHE_STORE_TIMEOUT": "banana"},
    {"IPY_LAZYCACHE_STORE_OPTIONS": "{not json"},
    {"IPY_LAZYCACHE_STORE_OPTIONS": "[1, 2]"},
])
def test_bad_store_environment_is_one_line_and_the_folder_still_caches(run, shell, runs, monkeypatch, env):
    monkeypatch.setenv("IPY_LAZYCACHE_STORE", "memory://team-cache")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr("ipy_lazycache.platform._stores", {})
    cell = "%%lazycache\n" + BODY + "y = 1\n"
    first, second = run(cell), run(cell)
    assert first.success and second.success and shell.user_ns["y"] == 1, first.err
    name = next(iter(env))
    assert len([line for line in first.out.splitlines() if name in line]) == 1, first.out
    assert name not in second.out
    assert runs() == 1, "the local folder still caches"


def test_bad_config_value_is_shown_to_the_user(run, shell):
    magics = shell.magics_manager.registry["LazyCache"]
    r = run('%config LazyCache.max_size = "banana"')
    assert "UsageError: LazyCache.max_size" in r.out + r.err
    assert magics.max_size == ""


def test_messages_say_1_entry_and_2_entries(run):
    run("%%lazycache\n" + BODY + "a = 1\n")
    code, out, _ = cli("info", cwd=os.getcwd())
    assert out.startswith("1 entry,"), out
    run("%%lazycache\n" + BODY + "b = 2\n")
    code, out, _ = cli("du", cwd=os.getcwd())
    assert " in 2 entries " in out, out
    code, out, _ = cli("clear", cwd=os.getcwd())
    assert out.startswith("removed 2 entries"), out


# ----------------------------------------------------------------------------
# The schema accepts what other parts write


def test_manifest_with_new_fields_still_loads(tmp_path):
    from ipy_lazycache import manifest as mf

    m = mf.new("e" * 32, "x = 1")
    m.update(effects={"cwd": "/x", "nested": {"a": [1, 2]}}, requires={"numpy.random": "abc"}, mutated=["y"],
             something_new={"from": "a later version"})
    assert mf.loads(mf.dumps(m), "e" * 32)["effects"]["nested"] == {"a": [1, 2]}


def test_every_command_survives_any_folder_content(tmp_path):
    """`verify` and `clear` (and the rest) on a folder of odd things: no
    traceback, no hang, nothing outside touched, only entry-shaped things removed."""
    root = tmp_path / "__lazycache__"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    k = iter("0123456789abcdef")
    fifo = root / (next(k) * 32)  # a FIFO where the manifest should be
    fifo.mkdir(parents=True)
    os.mkfifo(fifo / "manifest.json")
    linkloop = root / (next(k) * 32)
    linkloop.mkdir()
    os.symlink("manifest.json", linkloop / "manifest.json")  # a link to itself
    blob_link = root / (next(k) * 32)
    blob_link.mkdir()
    os.symlink(outside / "keep.txt", blob_link / "x.0123456789ab.pkl")
    (root / (next(k) * 32)).write_text("a file with an entry's name")
    os.symlink(outside, root / (next(k) * 32))  # a link with an entry's name
    empty = root / (next(k) * 32)
    empty.mkdir()
    (root / "exports").mkdir()
    (root / "exports" / "nb.json").write_bytes(b"\xff\x00")
    results = cli_many(["info"], ["du"], ["verify"], ["prune"], ["verify", "--fix"], ["clear"], cwd=tmp_path)
    for argv, (code, out, err) in zip(["info", "du", "verify", "prune", "verify --fix", "clear"], results):
        assert code in (0, 1) and "Traceback" not in err, (argv, out, err)
    assert (outside / "keep.txt").read_text() == "keep" and sorted(os.listdir(outside)) == ["keep.txt"]
    assert sorted(os.listdir(root)) == sorted(["exports", "3" * 32]), os.listdir(root)  # the plain file stays
