"""The memo trusts a restored (copy-on-write mapped) array only while none of
the pages holding its bytes was written, wherever the write lands."""

from __future__ import annotations

import sys

import pytest

from ipy_lazycache import core

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page accounting is Linux's")


def _mapped(tmp_path, n=3_000_000):
    np.save(tmp_path / "m.npy", np.arange(float(n)))
    return np.load(tmp_path / "m.npy", mmap_mode="c")


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
