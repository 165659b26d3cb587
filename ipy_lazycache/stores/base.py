"""The store interface: three abstract methods on bytes, plus optional
capabilities with plain defaults so a new store only writes what it must."""

from __future__ import annotations

import abc
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

#: What ``put`` takes: one bytes-like object, or a sequence of them (written
#: in order without joining, so a large value goes out from its own buffers).
Data = bytes | bytearray | memoryview | Sequence[bytes | bytearray | memoryview]

_KEY_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class InvalidKey(ValueError):
    """A key that could escape the store's root or is otherwise unsafe."""


class UnsafePath(OSError):
    """A symbolic link, or something other than a regular file or folder,
    where an entry's file or folder should be. Never followed."""


class TooLarge(OSError):
    """A remote body larger than its cap (a manifest's fixed cap, or a blob's
    declared size), or slower than its deadline allows: a miss."""


#: The most a store reads for a key whose size is not declared (manifests,
#: records): manifests list blobs, they do not hold them.
SMALL_CAP = 64 << 20


def cap_for(key: str, sizes: dict | None) -> int:
    """The most bytes a store should accept for ``key``: its declared size
    where the caller knows it (a blob), else :data:`SMALL_CAP`."""
    if sizes and key in sizes:
        return int(sizes[key])
    return SMALL_CAP


class BadSetting(ValueError):
    """A store setting that cannot be used (non-JSON options, a timeout that
    is not a number): one line for the user, and the local cache only."""


class StoreUnavailable(Exception):
    """A store that cannot answer now (a remote that is down). The store has
    already told the user; callers treat the lookup as a plain miss."""


def validate_key(key: object) -> str:
    """Refuse keys that are not plain relative POSIX paths of safe parts."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"invalid cache key {key!r}: must be a non-empty string")
    if "\\" in key or key.startswith("/") or "\x00" in key:
        raise InvalidKey(f"invalid cache key {key!r}: absolute paths and backslashes are refused")
    for part in key.split("/"):
        if part in ("", ".", "..") or not _KEY_PART.match(part):
            raise InvalidKey(f"invalid cache key {key!r}: bad path part {part!r}")
    return key


def chunks(data: Data) -> Sequence:
    """``put`` takes one bytes-like object or a list of them, so a large value
    can be written from its own buffers without first joining a copy."""
    return data if isinstance(data, (list, tuple)) else (data,)


def join(data: Data) -> bytes:
    parts = chunks(data)
    return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)


class Store(abc.ABC):
    """A flat map from relative POSIX keys to bytes.

    Optional capabilities (``get_many``, ``delete``, ``keys``, ``local_path``, ``open``, ``failed``)
    have inert defaults; override them where the backend does better.
    """

    #: Whether ``put`` is supported; read-only stores say False.
    writable = True

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None if absent."""

    @abc.abstractmethod
    def put(self, key: str, data: Data) -> None:
        """Store ``data`` (bytes-like, or a list of them) under ``key``, atomically."""

    @abc.abstractmethod
    def has(self, key: str) -> bool:
        """Whether ``key`` is present."""

    def get_many(self, keys: Iterable[str], sizes: dict[str, int] | None = None) -> dict[str, bytes | None]:
        """``{key: bytes or None}``; stores with latency fetch concurrently.
        ``sizes`` declares what the caller expects (blob sizes from a
        manifest): a remote store reads no more than that."""
        return {k: self.get(k) for k in keys}

    def delete(self, key: str) -> None:  # noqa: B027 - an optional capability, inert by default
        """Remove ``key`` if present. Read-only stores ignore it."""

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Iterate over keys under ``prefix``; stores that cannot list yield none."""
        return iter(())

    def local_path(self, key: str) -> os.PathLike | None:
        """A local file path holding ``key``'s bytes (to upload it), or None."""
        return None

    def open(self, key: str) -> BinaryIO | None:
        """``key`` as an open binary file on local disk, to check and then
        decode (memory-map) exactly what was checked; None where the store
        is not local or the key is absent."""
        return None

    def failed(self, key: str) -> str | None:
        """Why the last read of ``key`` gave nothing though it may exist (a
        network error the store has already told the user about), or None
        for a plain absence. A blob that failed this way is not damage."""
        return None

    def describe(self) -> str:
        return type(self).__name__
