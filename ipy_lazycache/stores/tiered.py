"""Stores composed fastest first: reads fall through and back-fill the faster
tiers; writes go to the first tier."""

from __future__ import annotations

from .base import Store


class TieredStore(Store):
    def __init__(self, tiers):
        if not tiers:
            raise ValueError("TieredStore needs at least one tier")
        self.tiers = list(tiers)

    @property
    def writable(self):
        return self.tiers[0].writable

    def get(self, key):
        for i, tier in enumerate(self.tiers):
            data = tier.get(key)
            if data is not None:
                self._backfill(i, key, data)
                return data
        return None

    def get_many(self, keys):
        out = {}
        missing = list(keys)
        for i, tier in enumerate(self.tiers):
            if not missing:
                break
            found = tier.get_many(missing)
            for key, data in found.items():
                if data is not None:
                    out[key] = data
                    self._backfill(i, key, data)
            missing = [k for k in missing if k not in out]
        out.update((k, None) for k in missing)
        return out

    def _backfill(self, found_at, key, data):
        for tier in self.tiers[:found_at]:
            if tier.writable:
                tier.put(key, data)

    def put(self, key, data):
        self.tiers[0].put(key, data)

    def has(self, key):
        return any(tier.has(key) for tier in self.tiers)

    def delete(self, key):
        for tier in self.tiers:
            tier.delete(key)

    def keys(self, prefix=""):
        seen = set()
        for tier in self.tiers:
            for key in tier.keys(prefix):
                if key not in seen:
                    seen.add(key)
                    yield key

    def local_path(self, key):
        for tier in self.tiers:
            path = tier.local_path(key)
            if path is not None:
                return path
        return None

    def describe(self):
        return " -> ".join(t.describe() for t in self.tiers)
