"""The memo trusts a restored (copy-on-write mapped) array only while none of
the pages holding its bytes was written, wherever the write lands, and only
over a mapping the cache made itself of an unchanged blob file."""

from __future__ import annotations

import mmap
import os
import sys

import pytest

from ipy_lazycache import codecs, core

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page accounting is Linux's")


def owned_array(path):
    """The array a restore makes of the ``.npy`` blob at ``path``: a copy-on-write mapping the cache owns."""
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        core.memo.own(mapped, f.fileno())
    return codecs.codec_named("npy").decode(b"", mapped)


def _mapped(tmp_path, n=3_000_000):
    np.save(tmp_path / "m.npy", np.arange(float(n)))
    return owned_array(tmp_path / "m.npy")


def test_a_write_deep_inside_a_large_mapping_is_seen(tmp_path):
    memo = core.memo.Memo()
    arr = _mapped(tmp_path)  # ~23 MiB: thousands of pages
    float(arr.sum())  # every page read (present, still the file's)
    memo.record("a", arr, "h")
    assert memo.get("a", arr) == "h"
    arr[2_345_678] = -1.0  # one page, far from the start
    assert memo.get("a", arr) is None


def test_a_view_is_judged_by_its_own_pages(tmp_path):
    memo = core.memo.Memo()
    arr = _mapped(tmp_path)
    tail = arr[::-1][:1000]  # the last 1000 elements, negative strides
    memo.record("t", tail, "h")
    arr[10] = -1.0  # far outside the view's bytes
    assert memo.get("t", tail) == "h", "the view's own bytes are unchanged"
    arr[-5] = -1.0  # inside it
    assert memo.get("t", tail) is None


def test_pagemap_agrees_with_the_mapping_state(tmp_path):
    arr = _mapped(tmp_path)
    assert core.memo._pages_written(arr) is False  # untouched: no page present
    float(arr.sum())
    assert core.memo._pages_written(arr) is False  # read: file pages
    arr[-1] = 0.5
    assert core.memo._pages_written(arr) is True


def test_without_pagemap_scan_the_page_entries_tell(tmp_path, monkeypatch):
    asked = []

    def old_kernel(*args, **kwargs):
        asked.append(args)
        raise OSError(25, "Inappropriate ioctl for device")  # what a kernel before 6.7 answers

    monkeypatch.setattr(core.memo, "_scan", old_kernel)
    test_pagemap_agrees_with_the_mapping_state(tmp_path)
    assert asked, "the stubbed scan was never reached: the fallback was not what answered"


def test_only_the_caches_own_mappings_are_trusted(tmp_path):
    memo = core.memo.Memo()
    np.save(tmp_path / "m.npy", np.arange(10_000.0))
    users = np.load(tmp_path / "m.npy", mmap_mode="c")  # the same bytes, mapped by the user: others may rewrite
    memo.record("u", users, "h")
    assert memo.get("u", users) is None
    ours = owned_array(tmp_path / "m.npy")
    memo.record("o", ours, "h")
    assert memo.get("o", ours) == "h"
    os.utime(tmp_path / "m.npy")  # any change of the file (here its change time) ends the trust
    assert memo.get("o", ours) is None


def test_no_hash_is_recorded_over_written_pages(tmp_path):
    memo = core.memo.Memo()
    arr = _mapped(tmp_path, 10_000)
    arr[0] = -1.0
    memo.record("a", arr, "h")
    assert memo.get("a", arr) is None
    arr.base.madvise(mmap.MADV_DONTNEED)  # the written page is dropped: the file's bytes again, no page written
    assert memo.get("a", arr) is None, "a hash recorded over the written page would now be served"
