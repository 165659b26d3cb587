"""The key encoding's primitives: type-tagged, length-prefixed,
little-endian chunks into an xxh3-128 stream (:mod:`.hashing` walks values
into it), and the digests of bytes and files."""

from __future__ import annotations

import os

import xxhash


class Unhashable(Exception):
    """A value whose content cannot be hashed; the cell must run uncached."""


def digest_chunks(parts, new=xxhash.xxh3_128) -> str:
    """Digest of bytes given as chunks: xxh3-128 for integrity, or any
    hashlib-style constructor (``hashlib.sha256`` under signing)."""
    h = new()
    for part in parts:
        h.update(part)
    return h.hexdigest()


#: A file whose size says 0 (``/proc``, ``/sys``) is read up to this much:
#: ``/proc/self/pagemap`` says 0 and reads on for hundreds of gigabytes.
PSEUDO_FILE_CAP = 1 << 20
#: Files at least this large are hashed from a read-only mapping (no copy,
#: about 3x the speed of reading blocks from a warm page cache).
_MAP_FROM = 1 << 20


class UnboundedFile(OSError):
    """A file that cannot be keyed by its content: not a regular file, or
    one that reads past what its size says (a ``/proc`` file, one growing)."""


def digest_file(path, new=xxhash.xxh3_128) -> str:
    """:func:`digest_chunks` of a file's content, read without hanging: for
    files a key depends on (``--files``, ``%run`` scripts, local modules).

    Opened non-blocking (a FIFO), a regular file only (``/dev/zero`` never
    ends), and read up to the size ``fstat`` gives, or :data:`PSEUDO_FILE_CAP`
    for a file whose size says 0. Raises ``FileNotFoundError``,
    :class:`UnboundedFile` (more than that to read) or another ``OSError``."""
    import stat

    try:
        import mmap
    except ImportError:  # a platform without it (WebAssembly): read instead
        mmap = None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnboundedFile(0, f"{path} is not a regular file")
        h = new()
        if st.st_size >= _MAP_FROM and mmap is not None:
            with mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ) as mapped:
                h.update(mapped)
            os.lseek(fd, st.st_size, os.SEEK_SET)
        else:
            os.set_blocking(fd, True)
            h.update(_read_upto(fd, st.st_size or PSEUDO_FILE_CAP, path, pseudo=not st.st_size))
        if os.read(fd, 4096):  # not 1 byte: /proc/self/pagemap reads in 8-byte units
            raise UnboundedFile(0, f"{path} is longer than its size says ({st.st_size} bytes): "
                                   "a system file or one being written, not keyed by its content")
        return h.hexdigest()
    finally:
        os.close(fd)


def _read_upto(fd: int, limit: int, path, pseudo: bool) -> bytes:
    parts, got = [], 0
    while got < limit:
        block = os.read(fd, min(1 << 20, limit - got))
        if not block:
            return b"".join(parts)
        parts.append(block)
        got += len(block)
    if pseudo and os.read(fd, 4096):
        raise UnboundedFile(0, f"{path} says its size is 0 and reads past {PSEUDO_FILE_CAP >> 20} MiB: "
                               "a system file, not keyed by its content")
    return b"".join(parts)


def _tag(h, tag: bytes, payload: bytes = b""):
    n = len(payload)
    if n > 4096:  # no copy of large payloads
        h.update(tag)
        h.update(n.to_bytes(8, "little"))
        h.update(payload)
    else:  # one call: the same bytes, fewer Python calls on the hot path
        h.update(tag + n.to_bytes(8, "little") + payload)


def _int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 8) // 8 or 1, "little", signed=True)
