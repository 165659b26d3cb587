"""The key encoding's primitives: type-tagged, length-prefixed,
little-endian chunks into an xxh3-128 stream (:mod:`.hashing` walks values
into it), and the digests of bytes and files."""

from __future__ import annotations

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


def digest_file(path, new=xxhash.xxh3_128) -> str:
    """:func:`digest_chunks` of a file, read in blocks."""
    h = new()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


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
