"""Benchmark: a %%lazycache hit of a 256 MiB array from an S3 server, against
a plain s3fs ``get`` of the same object, in one run.

    .venv/bin/python bench/s3.py [--mib 256] [--rounds 1]

The server is moto (``moto[server]``) in its own process on 127.0.0.1. A
writer shell stores the cell in the bucket; each round then times, in turn:

- **hit**: ``run_cell`` of the same cell in a real InteractiveShell whose
  local cache folder is empty, so everything comes from S3: manifest, blobs
  (concurrently), the array streamed into the local folder (fsynced), its
  digest checked, then memory-mapped;
- **s3fs get**: ``S3FileSystem().get(object, file)`` of the array's ``.npy``
  object, the lower bound for moving those bytes (no fsync, no check, no load).

Memory is hot, and the page cache warm for the server's copy. ``run()``
returns the figures for ``bench/run.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            return proc, endpoint
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("moto server did not start")


def run(mib: int = 256, rounds: int = 1) -> dict:
    import boto3
    import s3fs
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    proc, endpoint = _start_server()
    work = tempfile.mkdtemp(prefix="bench-s3-")
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": endpoint}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        url = "s3://bench/cache"
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        shell = InteractiveShell.instance(config=config)
        shell.run_cell("%load_ext ipy_lazycache", store_history=False)
        shell.run_cell(f"%config LazyCache.store = {url!r}", store_history=False)
        shell.run_cell("%config LazyCache.verbose = 0", store_history=False)
        n = mib * (1 << 20) // 8
        cell = f"%%lazycache\nimport numpy as np\narr = np.arange({n}, dtype=np.float64)\n"
        shell.run_cell(f"%config LazyCache.dir = {os.path.join(work, 'writer')!r}", store_history=False)
        t0 = time.perf_counter()
        shell.run_cell(cell)
        store_s = time.perf_counter() - t0
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
        [npy] = [p for p in fs.find("bench/cache") if p.endswith(".npy")]

        hits, gets = [], []
        for r in range(rounds):
            folder = os.path.join(work, f"reader{r}")
            shell.run_cell(f"%config LazyCache.dir = {folder!r}", store_history=False)
            shell.user_ns.pop("arr", None)
            t0 = time.perf_counter()
            result = shell.run_cell(cell)
            hits.append(time.perf_counter() - t0)
            assert result.success and shell.user_ns["arr"].nbytes == n * 8
            assert any(p.endswith("manifest.json") for p in _walk(folder)), "the hit must come from S3"
            del shell.user_ns["arr"]

            target = os.path.join(work, f"plain{r}.npy")
            t0 = time.perf_counter()
            fs.get(npy, target)
            gets.append(time.perf_counter() - t0)
            assert os.path.getsize(target) >= n * 8
        hit, get = min(hits), min(gets)
        return {"mib": mib, "rounds": rounds, "store_s": store_s, "hit_s": hit, "s3fs_get_s": get, "ratio": hit / get}
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _walk(folder):
    for dirpath, _dirs, files in os.walk(folder):
        for f in files:
            yield os.path.join(dirpath, f)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    r = run(args.mib, args.rounds)
    print(f"S3 (moto, 127.0.0.1), {r['mib']} MiB float64 array, hot memory, {r['rounds']} round(s), best:")
    print(f"  store (local + S3, miss): {r['store_s']:.2f} s")
    print(f"  %%lazycache hit from S3:  {r['hit_s']:.2f} s")
    print(f"  plain s3fs get:           {r['s3fs_get_s']:.2f} s")
    print(f"  ratio hit / s3fs get:     {r['ratio']:.2f}x")


if __name__ == "__main__":
    main()
