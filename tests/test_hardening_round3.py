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

from ipy_lazycache import hashing, sources

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
    with pytest.raises(sources.UnboundedFile, match="reads past 1 MiB"):
        sources.digest_input("/proc/self/pagemap")
    assert time.perf_counter() - t0 < 5
    # A small /proc file is still keyed by what it reads.
    assert len(sources.digest_input("/proc/self/cmdline")) == 32


def test_a_fifo_or_device_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done = []
    t = threading.Thread(target=lambda: done.append(pytest.raises(sources.UnboundedFile,
                                                                  sources.digest_input, fifo)), daemon=True)
    t.start()
    t.join(10)
    assert done, "digest_input hung on a FIFO"
    with pytest.raises(sources.UnboundedFile, match="not a regular file"):
        sources.digest_input("/dev/zero")


@pytest.mark.parametrize("size", [0, 10, (1 << 20) - 1, 3 << 20])
def test_a_regular_file_keys_as_before(tmp_path, size):
    """The digest is ``hashing.digest_file``'s, so keys (and golden vectors) do not move."""
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(size))
    assert sources.digest_input(path) == hashing.digest_file(path)
