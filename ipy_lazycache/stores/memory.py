"""A dict: the in-memory tier, and the writable tier under Pyodide."""

from __future__ import annotations

from .base import Store, join, validate_key


class MemoryStore(Store):
    def __init__(self):
        self._data: dict[str, bytes] = {}

    def get(self, key):
        return self._data.get(validate_key(key))

    def put(self, key, data):
        self._data[validate_key(key)] = join(data)

    def has(self, key):
        return validate_key(key) in self._data

    def delete(self, key):
        self._data.pop(validate_key(key), None)

    def keys(self, prefix=""):
        return iter([k for k in self._data if k.startswith(prefix)])
