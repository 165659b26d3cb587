"""The store interface: three abstract methods on bytes, plus every other
capability the core and management use, declared with an inert default so
a new store only writes what it must and no caller probes for a method."""

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

    Three methods are required (``get``, ``put``, ``has``). Every other
    capability the core or management uses is declared here with an inert
    default, so callers call it plainly (never probe a store for it);
    override it where the backend does better.
    """

    #: Whether ``put`` is supported; read-only stores say False.
    writable = True

    #: Whether :meth:`download` and :meth:`put_file` move bytes between local
    #: files and the store without a whole copy in memory (a remote that
    #: streams). Where False, a tier in front reads and writes through
    #: ``get_many``/``put`` instead.
    streams = False

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
        """Where the store is, for one line to the user (a folder, a URL)."""
        return type(self).__name__

    @property
    def tiers(self) -> list[Store]:
        """The stores this one reads through, fastest first (the first is
        where a session keeps its own records); a plain store is its only tier."""
        return [self]

    def stats(self, prefix: str = "") -> dict[str, tuple[int, float]] | None:
        """``{key: (size, modification time)}`` under ``prefix`` from one
        listing, without reading bodies; None where the store has no such
        listing (the caller then reads sizes and has no times)."""
        return None

    def put_file(self, key: str, local_path: str | os.PathLike) -> None:
        """Store the bytes of a local file under ``key``; stores that
        :attr:`stream` send it without reading it whole into memory."""
        with open(local_path, "rb") as f:
            self.put(key, f.read())

    def download(self, targets: dict[str, str], sizes: dict[str, int] | None = None) -> set[str]:
        """Write each key of ``targets`` (``{key: local file path}``) into its
        file; returns the keys written (absent ones are not). Stores that
        :attr:`stream` write without a whole copy in memory."""
        done = set()
        for key, data in self.get_many(list(targets), sizes).items():
            if data is not None:
                with open(targets[key], "wb") as f:
                    f.write(data)
                done.add(key)
        return done

    def fill(self, keys: list[str], fetch) -> dict[str, str]:
        """Have ``fetch(targets)`` (a :meth:`download`) write ``keys`` straight
        into this store's own files, committed as they complete; returns
        ``{key: local path}`` for those filled. Stores without local files
        fill nothing."""
        return {}

    def fetch_paths(self, keys: list[str], sizes: dict[str, int] | None = None) -> dict[str, str]:
        """Bring keys held only by a slower tier into the first tier's files,
        streamed (no whole copy in memory); returns ``{key: local path}`` for
        those brought. A store without slower tiers brings nothing."""
        return {}

    def settle(self, key: str) -> None:  # noqa: B027 - an optional capability, inert by default
        """``key`` (a manifest, the commit marker) was read from a slower tier
        and its entry is now whole here: commit it to the faster tiers. Inert
        for a store with one tier."""
