"""Stores composed fastest first: reads fall through and back-fill the faster
tiers; writes go to the first tier (or to every writable tier, fastest
first, with ``write_through=True``).

``hold`` names keys (manifests) that are commit markers: one found in a
slower tier is not back-filled when read, but by :meth:`settle`, once the
caller has the rest of the entry; so a faster tier never holds a manifest
whose blobs it lacks."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .base import Store


class TieredStore(Store):
    def __init__(self, tiers: Sequence[Store], write_through: bool = False, hold: Callable[[str], bool] | None = None):
        if not tiers:
            raise ValueError("TieredStore needs at least one tier")
        self._tiers = list(tiers)
        self.write_through = write_through
        self._hold = hold
        self._held: dict = {}  # key -> (tier index, data) awaiting settle()

    @property
    def tiers(self):
        return self._tiers

    @property
    def writable(self):
        return self.tiers[0].writable

    def get(self, key):
        for i, tier in enumerate(self.tiers):
            data = tier.get(key)
            if data is not None:
                if i and self._hold is not None and self._hold(key):
                    self._held[key] = (i, data)
                else:
                    self._held.pop(key, None)
                    self._backfill(i, key, data)
                return data
        return None

    def settle(self, key):
        """Back-fill a held key (see ``hold``) now that its entry is complete."""
        held = self._held.pop(key, None)
        if held is not None:
            self._backfill(held[0], key, held[1])

    def fetch_paths(self, keys, sizes: dict | None = None) -> dict:
        """Stream keys from slower tiers into the first tier's files, with no
        copy in memory, where the first tier can ``fill`` and a slower tier
        :attr:`~.base.Store.streams` its ``download`` (refusing objects whose size is not in ``sizes``).
        Returns ``{key: local path}`` for the keys fetched."""
        fill = self.tiers[0].fill
        out: dict = {}
        missing = list(keys)
        for tier in self.tiers[1:]:
            if not tier.streams or not missing:
                continue
            out.update(fill(missing, lambda targets, tier=tier: tier.download(targets, sizes)))
            missing = [k for k in missing if k not in out]
        return out

    def get_many(self, keys, sizes=None):
        out = {}
        missing = list(keys)
        for i, tier in enumerate(self.tiers):
            if not missing:
                break
            found = tier.get_many(missing, sizes) if sizes else tier.get_many(missing)
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
        self._held.pop(key, None)  # a newer value: the held one must never be back-filled
        first = self.tiers[0]
        first.put(key, data)
        for tier in self.tiers[1:] if self.write_through else ():
            if not tier.writable:
                continue
            path = first.local_path(key) if tier.streams else None
            if path is not None:
                tier.put_file(key, path)  # streams from disk
            else:
                tier.put(key, data)

    def has(self, key):
        return any(tier.has(key) for tier in self.tiers)

    def delete(self, key):
        self._held.pop(key, None)
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

    def open(self, key):
        for tier in self.tiers:
            f = tier.open(key)
            if f is not None:
                return f
        return None

    def failed(self, key):
        return next((why for why in (t.failed(key) for t in self.tiers) if why), None)

    def describe(self):
        return " -> ".join(t.describe() for t in self.tiers)
