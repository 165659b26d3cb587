"""A hit imports only what the cell uses.

A numpy cell stored in one process and hit in a fresh one (a kernel restart)
must not pull in pandas, pyarrow, polars, fsspec, asyncio, tqdm or the
network stack: each costs milliseconds to tens of milliseconds that the user
pays on every first hit, for nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numpy")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Modules a numpy cell's first hit, with the local cache folder, has no use for.
NOT_FOR_A_NUMPY_HIT = [
    "pandas",
    "pyarrow",
    "polars",
    "fsspec",
    "s3fs",
    "asyncio",
    "tqdm",
    "matplotlib",
    "urllib.request",
    "http.client",
    "ssl",
    "email",
    "concurrent.futures",
    "subprocess",
    "uuid",
    "ipy_lazycache.stores.fsspec_store",
    "ipy_lazycache.stores.http",
    "hmac",  # signing only
    "html",
]

SESSION = textwrap.dedent(
    """
    import json, os, sys, time
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    import numpy  # the cell's own import, done before the baseline

    before = set(sys.modules)
    t = time.perf_counter()
    shell.run_cell("%load_ext ipy_lazycache", store_history=False)
    result = shell.run_cell(os.environ["CELL"], store_history=True)
    elapsed = time.perf_counter() - t
    assert result.success, result.error_in_exec or result.error_before_exec
    a = shell.user_ns["a"]
    print(json.dumps({
        "new": sorted(set(sys.modules) - before),
        "seconds": elapsed,
        "a": a.tolist()[:3] + [float(a.sum())],
    }))
    """
)


def _session(tmp_path, cell):
    env = dict(os.environ, IPY_LAZYCACHE_DIR=str(tmp_path / "cache"), CELL=cell)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))  # this checkout's package
    for var in ("IPY_LAZYCACHE_STORE", "IPY_LAZYCACHE_STORE_OPTIONS"):
        env.pop(var, None)  # the local folder only, as by default
    proc = subprocess.run(
        [sys.executable, "-c", SESSION], check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_first_numpy_hit_after_a_restart_imports_nothing_it_does_not_use(tmp_path):
    counter = tmp_path / "runs.txt"
    cell = f"%%lazycache\nimport numpy as np\nopen({str(counter)!r}, 'a').write('x')\na = np.arange(1000.0)\n"

    stored = _session(tmp_path, cell)
    hit = _session(tmp_path, cell)

    assert counter.read_text() == "x", "the body ran again: the second session was not a hit"
    assert hit["a"] == stored["a"] == [0.0, 1.0, 2.0, 499500.0]
    imported = set(hit["new"])
    assert "ipy_lazycache.magics" in imported  # the baseline was taken before the extension loaded
    assert sorted(m for m in NOT_FOR_A_NUMPY_HIT if m in imported) == []
