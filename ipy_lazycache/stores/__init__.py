"""Byte stores on relative POSIX keys. See :mod:`.base` for the interface."""

from .base import InvalidKey, Store, validate_key
from .file import FileStore
from .memory import MemoryStore
from .tiered import TieredStore

__all__ = ["Store", "InvalidKey", "validate_key", "FileStore", "MemoryStore", "TieredStore", "HttpStore"]


def __getattr__(name):  # HttpStore pulls in urllib; load it on demand
    if name == "HttpStore":
        from .http import HttpStore

        return HttpStore
    raise AttributeError(name)
