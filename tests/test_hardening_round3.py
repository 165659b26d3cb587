"""Issue 22 (hardening, round 3): bad settings and inputs are one clear line,
and nothing the cache reads or stores is unbounded.

Real shells, real files, the real CLI in a subprocess; only a remote cloud
boundary (credentials for a bucket that is not there) is stood in for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ipy_lazycache import hashing_base

pytestmark = pytest.mark.security

ROOT = Path(__file__).resolve().parent.parent


def cli(*argv, cwd, env=None, timeout=120):
    """The real ``ipy-lazycache`` command: (exit code, stdout, stderr)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    p = subprocess.run([sys.executable, "-m", "ipy_lazycache.cli", *argv], cwd=cwd, env=full,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


# ----------------------------------------------------------------------------
# Files read for a key are read boundedly


@pytest.mark.skipif(not os.path.exists("/proc/self/pagemap"), reason="Linux /proc only")
def test_a_proc_file_that_never_ends_is_refused_quickly():
    """``/proc/self/pagemap`` says its size is 0 and reads on for hundreds of
    gigabytes: on 2d4d966 keying ``%run`` of it hung (``digest_file`` read
    to the end)."""
    t0 = time.perf_counter()
    with pytest.raises(hashing_base.UnboundedFile, match="reads past 1 MiB"):
        hashing_base.digest_file("/proc/self/pagemap")
    assert time.perf_counter() - t0 < 5
    # A small /proc file is still keyed by what it reads.
    assert len(hashing_base.digest_file("/proc/self/cmdline")) == 32


@pytest.mark.skipif(not os.path.exists("/proc/self/pagemap"), reason="Linux /proc only")
@pytest.mark.parametrize("how", ["%run", "--files"])
def test_a_cell_reading_a_proc_file_runs_uncached_with_one_line(run, shell, runs, how):
    """On 2d4d966 ``%%lazycache`` + ``%run /proc/self/pagemap`` hung while
    keying (and ``--files`` of it read until memory ran out)."""
    import signal

    def too_slow(*a):
        raise TimeoutError("keying hung")

    counted = 'open("runs.txt", "a").write("run\\n")\n'
    if how == "%run":
        cell = "%%lazycache\n" + counted + "try:\n    %run /proc/self/pagemap\nexcept Exception:\n    pass\ny = 1\n"
    else:
        cell = "%%lazycache --files /proc/self/pagemap\n" + counted + "y = 1\n"
    old = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(30)
    try:
        r = run(cell)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert not isinstance(r.error_in_exec, TimeoutError), "keying hung"
    assert runs() == 1 and shell.user_ns["y"] == 1
    lines = [line for line in r.out.splitlines() if "/proc/self/pagemap" in line]
    assert len(lines) == 1 and "reads past 1 MiB" in lines[0], r.out


def test_a_fifo_or_device_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done = []
    t = threading.Thread(target=lambda: done.append(pytest.raises(hashing_base.UnboundedFile,
                                                                  hashing_base.digest_file, fifo)), daemon=True)
    t.start()
    t.join(10)
    assert done, "digest_file hung on a FIFO"
    with pytest.raises(hashing_base.UnboundedFile, match="not a regular file"):
        hashing_base.digest_file("/dev/zero")


@pytest.mark.parametrize("size", [0, 10, (1 << 20) - 1, 3 << 20])
def test_a_regular_file_keys_as_before(tmp_path, size):
    """The digest is the content's xxh3-128, as before, so keys (and golden vectors) do not move."""
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(size))
    import xxhash

    assert hashing_base.digest_file(path) == xxhash.xxh3_128(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------
# The command line and a shared store it cannot use

NO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.mark.parametrize("command", ["du", "info", "prune"])
def test_a_bucket_without_credentials_is_one_line_and_exit_2(tmp_path, command):
    """On 2d4d966: ~60 lines of botocore traceback and exit 1. The server is a
    real S3 server on 127.0.0.1 (moto), so no request leaves the machine."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    from tests.test_s3 import S3Server

    server = S3Server()
    try:
        server.bucket("team")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({k: v for k, v in NO_CREDENTIALS.items() if v}, AWS_ENDPOINT_URL=server.endpoint,
                   HOME=str(tmp_path), PYTHONPATH=str(ROOT))
        p = subprocess.run([sys.executable, "-m", "ipy_lazycache.cli", command, "--dir", "s3://team/cache"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.stop()
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stdout == "" and len(p.stderr.splitlines()) == 1, p.stderr[-2000:]
    assert "s3://team/cache: the store cannot be used" in p.stderr and "credentials" in p.stderr


def test_a_store_url_names_the_package_that_is_missing(tmp_path):
    """On 2d4d966 ``gs://`` said "needs fsspec" with fsspec installed."""
    pytest.importorskip("fsspec")
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    code, out, err = cli("info", "--dir", "gs://bucket/p", cwd=tmp_path)
    assert code == 2 and err.strip() == "ipy-lazycache: gs://bucket/p needs gcsfs for gs://: pip install gcsfs"


def test_a_file_url_of_a_missing_folder_creates_nothing(tmp_path):
    missing = tmp_path / "not" / "there"
    for command in ("du", "prune", "clear"):
        code, out, err = cli(command, "--dir", f"file://{missing}", cwd=tmp_path)
        assert code == 2 and f"no cache folder at {missing}" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "not").exists()
    (tmp_path / "shared").mkdir()
    code, out, err = cli("du", "--dir", f"file://{tmp_path / 'shared'}", cwd=tmp_path)
    assert code == 0 and "0 entries" in out, err
    from ipy_lazycache.stores import preflight

    assert "there is no folder" in preflight.problem(f"file://{missing}")
    assert preflight.problem(f"file://{tmp_path / 'shared'}") is None
    assert not (tmp_path / "not").exists()


@pytest.mark.parametrize("command", ["du", "info", "prune", "verify"])
def test_the_line_magic_on_a_missing_folder_says_so_like_the_cli(run, tmp_path, command):
    """The issue saw ``%lazycache du --dir /nonexistent`` answer "0 B in 0
    entries" where the command line says there is no cache folder. 2d4d966
    already answered with a UsageError in a plain shell and in an nbclient
    kernel (checked by hand); this pins it, and that nothing is created."""
    missing = tmp_path / "nonexistent"
    run("x = 1")
    r = run(f"%lazycache {command} --dir {missing}")
    assert type(r.error_in_exec).__name__ == "UsageError", r.out
    assert str(r.error_in_exec) == f"no cache folder at {missing}"
    assert not missing.exists()
    code, out, err = cli(command, "--dir", str(missing), cwd=tmp_path)
    assert code == 2 and err.strip() == f"ipy-lazycache: no cache folder at {missing}"


def test_a_store_url_of_a_missing_folder_is_one_line_and_creates_nothing(run, shell, runs, tmp_path):
    """On 2d4d966 ``--store file:///nonexistent/dir`` silently created the
    folder (as root, at the file system's root) on the first store."""
    missing = tmp_path / "nonexistent" / "dir"
    cell = f"%%lazycache --store file://{missing}\n" + 'open("runs.txt", "a").write("run\\n")\ny = 1\n'
    first = run(cell)
    assert first.success and runs() == 1 and shell.user_ns["y"] == 1
    lines = [line for line in first.out.splitlines() if str(missing) in line]
    assert len(lines) == 1 and "there is no folder" in lines[0], first.out
    assert not (tmp_path / "nonexistent").exists()
    second = run(cell)  # the local folder still caches; the line is not repeated
    assert runs() == 1 and str(missing) not in second.out


def test_a_store_url_whose_package_is_missing_names_it(run, shell, runs):
    """On 2d4d966 ``--store gs://...`` said "needs fsspec" with fsspec installed."""
    pytest.importorskip("fsspec")
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    r = run("%%lazycache --store gs://bucket/cache\n" + 'open("runs.txt", "a").write("run\\n")\nz = 2\n')
    assert r.success and runs() == 1
    lines = [line for line in r.out.splitlines() if "gs://bucket/cache" in line]
    assert len(lines) == 1 and "needs gcsfs" in lines[0] and "pip install gcsfs" in lines[0], r.out


# ----------------------------------------------------------------------------
# A cell that reads standard input is never stored


def test_a_cell_that_asks_for_input_is_never_stored(run, shell, runs, monkeypatch):
    """On 2d4d966 the typed token was pickled into the entry and restored on
    the next run without asking."""
    import io

    cell = '%%lazycache\nopen("runs.txt", "a").write("run\\n")\ntoken = input("token? ")\n'
    monkeypatch.setattr(sys, "stdin", io.StringIO("first-token\nsecond-token\n"))
    r = run(cell)
    assert shell.user_ns["token"] == "first-token"
    assert "not stored: it read standard input" in r.out and "stored token" not in r.out, r.out
    run(cell)
    assert runs() == 2 and shell.user_ns["token"] == "second-token"
    import builtins
    import getpass

    assert not hasattr(builtins.input, "__lazycache_stdin__") and not hasattr(getpass.getpass, "__lazycache_stdin__")


def test_auto_mode_never_stores_a_slow_cell_that_read_input(run, shell, runs, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("one\ntwo\n"))
    run("%lazycache auto on --min-time 0.2")
    cell = 'import time\nopen("runs.txt", "a").write("run\\n")\nanswer = input()\ntime.sleep(0.3)\n'
    first = run(cell)
    second = run(cell)
    assert runs() == 2 and shell.user_ns["answer"] == "two", first.out + second.out
    assert "stored" not in first.out + second.out  # auto mode says nothing about cells it leaves alone


KERNEL_CELLS = ["%load_ext ipy_lazycache",
                "%%lazycache\nimport getpass, time\ntime.sleep(0.2)\ntoken = getpass.getpass('token? ')\n"
                "print('got', token)"]


def _kernel_run(kc, code, answer):
    """Execute ``code``; answer every input request with ``answer``; the text shown."""
    import queue

    msg_id = kc.execute(code, allow_stdin=True)
    out = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            m = kc.get_stdin_msg(timeout=0.05)
            if m["msg_type"] == "input_request":
                kc.input(answer)
        except queue.Empty:
            pass
        try:
            m = kc.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            continue
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "stream":
            out.append(m["content"]["text"])
        elif m["msg_type"] == "error":
            out.append(m["content"]["ename"])
        elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return "".join(out)
    raise TimeoutError(code)


@pytest.mark.slow
def test_a_kernel_cell_asking_for_a_password_asks_again_after_a_restart(tmp_path, monkeypatch):
    """A real ipykernel whose front end answers the password prompt. On
    2d4d966 the second kernel skipped the prompt and restored the first token."""
    from jupyter_client.manager import start_new_kernel

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    seen = []
    for answer in ("token-one", "token-two"):  # two kernels: a restart
        km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
        try:
            for code in KERNEL_CELLS:
                seen.append(_kernel_run(kc, code, answer))
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    assert "got token-one" in seen[1] and "got token-two" in seen[3], seen
    assert "not stored: it read standard input" in seen[1]
    assert not list((tmp_path / "__lazycache__").glob("*/manifest.json"))


# ----------------------------------------------------------------------------
# What is stored is capped by what is read


def test_outputs_larger_than_a_reader_accepts_are_not_stored(run, shell, runs, tmp_path):
    """On 2d4d966 a cell showing 70 MB was "stored"; every later run found the
    entry damaged, evicted it, ran and wrote 67 MB again."""
    cell = '%%lazycache\nopen("runs.txt", "a").write("run\\n")\nprint("x" * 70_000_000)\nbig = 1\n'
    first = run(cell)
    tail = first.out[-1000:]
    assert "not stored: its outputs take 66.8 MiB, more than the 64.0 MiB a cache reader accepts" in tail, tail
    second = run(cell)
    tail = second.out[-1000:]
    assert runs() == 2 and "damaged" not in tail and tail.count("not stored") == 1, tail
    assert not list((tmp_path / "__lazycache__").glob("*/*")), "nothing of the entry is left"


# ----------------------------------------------------------------------------
# A prune racing a lookup


def test_a_prune_between_reading_the_manifest_and_its_blobs_is_a_plain_miss(tmp_path):
    """On 2d4d966 the lookup reported the entry "damaged" (and evicted it):
    it was removed, which is a plain miss. The prune is the real command, run
    at the one moment that matters: after the lookup read the manifest,
    before it opened the first blob."""
    from ipy_lazycache.core.sequence import Sequence, Shell, run
    from ipy_lazycache.stores.file import FileStore

    class PrunedMidRead(FileStore):
        armed = False

        def open(self, key):
            if self.armed and not key.endswith("/manifest.json"):
                self.armed = False
                p = subprocess.run([sys.executable, "-m", "ipy_lazycache.cli", "prune", "--max-size", "0",
                                    "--dir", str(self.root)], capture_output=True, text=True,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
                assert p.returncode == 0 and "pruned 1 entry" in p.stdout, p.stdout + p.stderr
            return super().open(key)

    class Front(Shell):
        def __init__(self):
            self.said = []

        def say(self, text):
            self.said.append(text)

    cell = "values = [i * i for i in range(1000)]\ntotal = sum(values)\n"
    store, runs = PrunedMidRead(tmp_path / "cache"), []

    def body(ns):
        def run_body():
            runs.append(1)
            exec(cell, ns)

        return run_body

    first = {}
    run(Sequence(Front()), cell, first, body(first), store)
    store.armed = True
    front, second = Front(), {}
    run(Sequence(front), cell, second, body(second), store)
    assert not store.armed, "the prune ran mid-read"
    assert runs == [1, 1] and second["total"] == sum(i * i for i in range(1000))
    assert not [line for line in front.said if "damaged" in line], front.said
