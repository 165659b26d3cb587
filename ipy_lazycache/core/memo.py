"""Which value hashes may be reused from an earlier cell, and the proof.

A :class:`Memo` keeps the hash of what a cell bound. Only the cache's own
bytes are trusted (DESIGN §11): an immutable value, or a numpy array over a
private mapping the restore itself made of a blob file (:func:`own`) whose
identity is unchanged and none of whose pages this process wrote (the page
scan below). Every other array (np.memmap, a mapping the user made, a file
another process rewrites) is hashed again.
"""

from __future__ import annotations

import os
import weakref


class Memo:
    """Content hashes of values that provably have not changed since hashed.

    Code can change a value through an alias without naming it (a plain cell,
    a silent execution, a widget callback, a thread, another mapping of the
    same file, another process), so a recorded hash is reused only where that
    is impossible: an immutable value, or an array over a mapping of
    :func:`own`. A chain of cached cells over a restored array then never
    re-hashes it. A hash is never recorded over written pages: the kernel can
    drop them (``madvise(MADV_DONTNEED)``) and show the file's bytes again.
    """

    def __init__(self):
        self._known: dict[str, tuple[object, str, object]] = {}

    def get(self, name, obj):
        hit = self._known.get(name)
        if hit is None or hit[0] is not obj:
            return None
        if hit[2] is not None and not _unwritten_mapping(obj, hit[2]):
            del self._known[name]
            return None
        return hit[1]

    def record(self, name, obj, content_hash):
        self._known.pop(name, None)
        if not content_hash:
            return
        if type(obj) in _IMMUTABLE:
            self._known[name] = (obj, content_hash, None)
            return
        shape = _mapped_array_shape(obj)
        if shape is not None and _unwritten_mapping(obj, shape):
            self._known[name] = (obj, content_hash, shape)

    def clear(self):
        self._known.clear()


_IMMUTABLE = frozenset({str, bytes, int, float, complex, bool, type(None)})

#: The private mappings the restore made of blob files: id(mmap) -> (weak
#: reference to it, the file's path, its identity when mapped).
_OWNED: dict[int, tuple] = {}


def _identity(st) -> tuple:
    """What changes when a file is replaced or written in place."""
    return st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns


def own(mapped, fd: int) -> None:
    """Register ``mapped``, a copy-on-write mapping the restore made of the
    blob file open as ``fd``: arrays over it may be memoized while the file
    at that path is the same file, unchanged. Nothing is registered where the
    path cannot be known (not Linux): nothing mapped is trusted there."""
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
        ident = _identity(os.fstat(fd))
    except OSError:
        return
    key = id(mapped)

    def forget(ref, key=key):
        if _OWNED.get(key, (None,))[0] is ref:
            del _OWNED[key]

    _OWNED[key] = (weakref.ref(mapped, forget), path, ident)


def _owned(base) -> bool:
    """Whether ``base`` is a mapping of :func:`own` whose file is unchanged."""
    entry = _OWNED.get(id(base))
    if entry is None or entry[0]() is not base:
        return False
    try:
        return _identity(os.stat(entry[1])) == entry[2]
    except OSError:
        return False


def _mapped_array_shape(obj):
    """For a numpy array whose data is a mapping of :func:`own`: what must not
    change besides its pages (shape, strides, dtype, data address)."""
    if type(obj).__module__ != "numpy" or not hasattr(obj, "__array_interface__"):
        return None
    import mmap

    base = obj
    while getattr(base, "base", None) is not None and not isinstance(base, mmap.mmap):
        base = base.base
    if not isinstance(base, mmap.mmap) or id(base) not in _OWNED:
        return None
    # The writeable flag is in the key (hashing_arrays): turning it off must not reuse the hash.
    return (obj.__array_interface__["data"][0], obj.shape, obj.strides, obj.dtype, obj.nbytes,
            bool(obj.flags.writeable), base)


def _unwritten_mapping(obj, shape) -> bool:
    """True when the array is as recorded, its mapping's file is unchanged, and
    none of its pages was written by this process (a written copy-on-write
    page becomes anonymous)."""
    if _mapped_array_shape(obj) != shape or not _owned(shape[-1]):
        return False
    written = _pages_written(obj)
    if written is not None:
        return not written
    start = shape[0]
    try:  # the whole mapping's count, from smaps (slow: the kernel walks every mapping)
        with open("/proc/self/smaps", "rb") as f:
            inside = False
            for line in f:
                if b"-" in line[:20] and line[:1] not in (b"", b" ") and not line[:1].isupper():
                    lo, _, rest = line.partition(b"-")
                    hi = rest.split(b" ", 1)[0]
                    inside = int(lo, 16) <= start < int(hi, 16)
                elif inside and line.startswith(b"Anonymous:"):
                    return int(line.split()[1]) == 0
    except OSError:
        pass
    return False  # not Linux, or the mapping is gone: hash again


def _pages_written(arr) -> bool | None:
    """Whether a page holding ``arr``'s bytes was written by this process: a
    written page of a copy-on-write file mapping is an anonymous page
    (present, not a file page), or swapped out. The kernel is asked about the
    array's own pages only (PAGEMAP_SCAN, Linux 6.7+, stops at the first such
    page; else 8 bytes per page read from /proc/self/pagemap), where smaps
    would walk every mapping of the process (tens of ms with pandas loaded).
    None where neither can tell (not Linux)."""
    import mmap

    if arr.size == 0:
        return False
    addr = arr.__array_interface__["data"][0]
    lo = addr + sum((n - 1) * st for n, st in zip(arr.shape, arr.strides) if st < 0)
    hi = addr + sum((n - 1) * st for n, st in zip(arr.shape, arr.strides) if st > 0) + arr.itemsize
    page = mmap.PAGESIZE
    lo, hi = lo // page * page, -(-hi // page) * page
    try:
        fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            # one walk: not a file page, and present or swapped
            return _scan(fd, lo, hi, _PAGE_IS_FILE, inverted=_PAGE_IS_FILE, anyof=_PAGE_IS_PRESENT | _PAGE_IS_SWAPPED)
        except OSError:  # a kernel without PAGEMAP_SCAN: read the page entries
            import numpy as np

            data = os.pread(fd, (hi - lo) // page * 8, lo // page * 8)
            if len(data) != (hi - lo) // page * 8:
                return None
            entries = np.frombuffer(data, dtype="<u8")
            present, swapped, file_page = np.uint64(1 << 63), np.uint64(1 << 62), np.uint64(1 << 61)
            return bool(((entries & (present | file_page)) == present).any() or (entries & swapped).any())
    except OSError:
        return None
    finally:
        os.close(fd)


#: PAGEMAP_SCAN (linux/fs.h): _IOWR('f', 16, struct pm_scan_arg), and its page categories.
_PAGEMAP_SCAN = 0xC0606610


_PAGE_IS_FILE, _PAGE_IS_PRESENT, _PAGE_IS_SWAPPED = 1 << 2, 1 << 3, 1 << 4


def _scan(fd, lo, hi, mask, inverted=0, anyof=0) -> bool:
    """Whether a page in [lo, hi) has all categories of ``mask`` (those in
    ``inverted`` must be absent) and one of ``anyof``; the kernel stops at the first."""
    import ctypes
    import fcntl
    import struct

    found = (ctypes.c_uint64 * 3)()  # one struct page_region
    # struct pm_scan_arg: size, flags, start, end, walk_end, vec, vec_len,
    # max_pages, category_inverted, category_mask, category_anyof_mask, return_mask
    arg = bytearray(struct.pack("12Q", 96, 0, lo, hi, 0, ctypes.addressof(found), 1, 1, inverted, mask, anyof,
                                mask | anyof))
    return fcntl.ioctl(fd, _PAGEMAP_SCAN, arg) > 0
