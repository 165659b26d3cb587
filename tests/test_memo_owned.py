"""The memo trusts only the cache's own bytes (issue 20, DESIGN §11).

A recorded content hash may be reused only for an immutable value or for an
array whose memory is a private mapping the cache itself made of a blob file
that is unchanged (device, inode, size, change time) and none of whose pages
this process wrote. Every other array is hashed again: a mapping the user
made is written through itself, another mapping or another process, and a
hash recorded over written pages goes stale when the kernel drops them.
Each case runs a cached cell, changes the array's bytes without naming the
array in a cell the cache sees, and runs the cached cell again: it must run
(the body-run counter says so) and give what a plain run gives.
"""

import sys

import pytest

from tests._fresh import RUN, session

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mappings and page accounting: Linux")

SUM = "%%lazycache\n" + RUN + "s = float(a.sum())"


def _again_after(run, runs, setup, change, expected):
    """``setup`` makes ``a``; the cached sum runs; ``change`` rewrites its bytes; the cached sum must run again."""
    assert run(setup).success
    assert run(SUM).success
    assert runs() == 1
    assert run(change).success
    assert run(SUM).success
    assert run.shell.user_ns["s"] == expected
    assert runs() == 2, "the cached cell hit on a stale hash of the array"


def test_a_memmap_opened_for_writing_is_hashed_again(run, runs):
    _again_after(run, runs, "import numpy as np\na = np.memmap('d.bin', 'float64', 'w+', shape=(100_000,))\na[:] = 1",
                 "a[:] = 2", 200_000.0)


def test_an_array_loaded_read_write_mapped_is_hashed_again(run, runs):
    setup = "import numpy as np\nnp.save('d.npy', np.ones(50_000))\na = np.load('d.npy', mmap_mode='r+')"
    _again_after(run, runs, setup, "a[:] = 3", 150_000.0)


def test_an_array_over_an_anonymous_mapping_is_hashed_again(run, runs):
    setup = ("import mmap\nimport numpy as np\nm = mmap.mmap(-1, 8 * 4096)\n"
             "a = np.ndarray((4096,), 'f8', buffer=m)\na[:] = 1")
    _again_after(run, runs, setup, "a[:] = 4", 4 * 4096.0)


def test_a_write_through_another_mapping_of_the_same_file_is_seen(run, runs):
    setup = ("import numpy as np\nnp.save('d.npy', np.ones(50_000))\na = np.load('d.npy', mmap_mode='r')\n"
             "w = np.load('d.npy', mmap_mode='r+')")
    _again_after(run, runs, setup, "w[:] = 5\nw.flush()", 250_000.0)


@pytest.mark.parametrize("mode", ["r", "c"])
def test_a_file_rewritten_by_another_process_is_seen(run, runs, mode):
    setup = f"import numpy as np\nnp.save('d.npy', np.ones(50_000))\na = np.load('d.npy', mmap_mode={mode!r})"
    rewrite = ("import subprocess, sys\nsubprocess.run([sys.executable, '-c', "
               "\"import numpy as np; f = np.load('d.npy', mmap_mode='r+'); f[:] = 6; f.flush()\"], check=True)")
    _again_after(run, runs, setup, rewrite, 300_000.0)


# Across a restart: arrays the cache restored itself (private mappings of its blobs). Only blobs over
# restore.MAP_ABOVE (1 MiB) are mapped; smaller arrays are read into memory they own.

MAKE = "%%lazycache\n" + RUN + "import numpy as np\na = np.ones(200_000)"


def _blob_rewrite(value):
    """A plain cell that rewrites the restored array's blob in place, from another process."""
    script = (
        "import glob, numpy as np\n"
        "for p in glob.glob('__lazycache__/**/*.npy', recursive=True):\n"
        f"    f = np.load(p, mmap_mode='r+'); f[:] = {value}; f.flush()\n"
    )
    return f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {script!r}], check=True)"


def test_a_restored_blob_rewritten_in_place_is_hashed_again(tmp_path):
    session(tmp_path, [MAKE])
    got = session(tmp_path, [MAKE, SUM, _blob_rewrite(7), SUM, "t = float(a.sum())"], ["s", "t"])
    assert all(c["ok"] for c in got["cells"]), got
    assert got["values"]["s"] == got["values"]["t"], "the cached sum hit with the blob's old content"
    assert got["runs"] == 1 + 2  # the first session's run, then the sum twice


def test_pages_written_then_dropped_do_not_leave_a_stale_hash(tmp_path):
    """A hash is never recorded over written pages: ``madvise(MADV_DONTNEED)`` on a private mapping drops them
    and the array shows the file's bytes again, whatever hash the memo kept for the written ones."""
    session(tmp_path, [MAKE])
    cells = [MAKE, "a[:] = 5", SUM, "import mmap\na.base.madvise(mmap.MADV_DONTNEED)", SUM, "t = float(a.sum())"]
    got = session(tmp_path, cells, ["s", "t"])
    assert all(c["ok"] for c in got["cells"]), got
    assert got["values"]["t"] == "200000.0"  # the kernel really dropped the written pages
    assert got["values"]["s"] == got["values"]["t"], "the cached sum hit on the hash of the dropped pages"


def test_a_chain_over_a_restored_array_still_trusts_the_memo(tmp_path):
    """What the memo is for: the cache's own unwritten mapping is not hashed again (a hit after a hit)."""
    session(tmp_path, [MAKE, SUM])
    got = session(tmp_path, [MAKE, SUM, SUM], ["s"])
    assert got["values"]["s"] == "200000.0"
    assert got["runs"] == 2  # both bodies ran once, in the first session only
