"""The store interface: three abstract methods on bytes, plus optional
capabilities with plain defaults so a new store only writes what it must."""

from __future__ import annotations

import abc
import re

_KEY_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class InvalidKey(ValueError):
    """A key that could escape the store's root or is otherwise unsafe."""


class StoreUnavailable(Exception):
    """A store that cannot answer now (a remote that is down). The store has
    already told the user; callers treat the lookup as a plain miss."""


def validate_key(key: str) -> str:
    """Refuse keys that are not plain relative POSIX paths of safe parts."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"invalid cache key {key!r}: must be a non-empty string")
    if "\\" in key or key.startswith("/") or "\x00" in key:
        raise InvalidKey(f"invalid cache key {key!r}: absolute paths and backslashes are refused")
    for part in key.split("/"):
        if part in ("", ".", "..") or not _KEY_PART.match(part):
            raise InvalidKey(f"invalid cache key {key!r}: bad path part {part!r}")
    return key


def chunks(data):
    """``put`` takes one bytes-like object or a list of them, so a large value
    can be written from its own buffers without first joining a copy."""
    return data if isinstance(data, (list, tuple)) else (data,)


def join(data) -> bytes:
    parts = chunks(data)
    return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)


class Store(abc.ABC):
    """A flat map from relative POSIX keys to bytes.

    Optional capabilities (``get_many``, ``delete``, ``keys``, ``local_path``)
    have inert defaults; override them where the backend does better.
    """

    #: Whether ``put`` is supported; read-only stores say False.
    writable = True

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None if absent."""

    @abc.abstractmethod
    def put(self, key: str, data) -> None:
        """Store ``data`` (bytes-like, or a list of them) under ``key``, atomically."""

    @abc.abstractmethod
    def has(self, key: str) -> bool:
        """Whether ``key`` is present."""

    def get_many(self, keys) -> dict:
        """``{key: bytes or None}``; stores with latency fetch concurrently."""
        return {k: self.get(k) for k in keys}

    def delete(self, key: str) -> None:
        """Remove ``key`` if present. Read-only stores ignore it."""

    def keys(self, prefix: str = ""):
        """Iterate over keys under ``prefix``; stores that cannot list yield none."""
        return iter(())

    def local_path(self, key: str):
        """A local file path holding ``key``'s bytes, for memory-mapping, or None."""
        return None

    def describe(self) -> str:
        return type(self).__name__
