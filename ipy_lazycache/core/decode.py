"""Decoding an entry's checked blobs into values, by codec.

Pickles resolve their references to other defs (loading those first) and to
the namespace's refs; a blob that cannot be decoded here becomes tripwires
that say why. Nothing here touches the namespace.
"""

from __future__ import annotations

from .. import codecs
from ..manifest import CorruptEntry
from ..tripwire import Tripwire
from .rebind import _rebind


class Decoder:
    """One entry's decoding: ``values`` (def name -> value) and the names
    that became tripwires, each blob loaded once, references first."""

    def __init__(self, m: dict, ns: dict, skipped: dict, datas: dict, maps: dict):
        self.m, self.ns, self.skipped, self.datas, self.maps = m, ns, skipped, datas, maps
        self.blobs = m["blobs"]
        self.owner = {d: b for b, blob in self.blobs.items() for d in blob["defs"]}
        self.hashes = {n: d.get("hash") for n, d in m["defs"].items()}
        self.tripwires, self.loading = [], set()
        values = self.values = {}

        def resolve(pid):
            """A pickle's persistent id: a ref from the namespace, or another
            def. A closure over ``values``: the in-place updates codecs defers
            are matched to this restore by it (``_set_old_items``)."""
            kind, name = pid
            if kind == "ref":
                if name not in ns:
                    raise CorruptEntry(f"entry refers to {name!r}, which is not defined")
                return ns[name]
            if name not in values:
                self.load_blob(self.owner[name])
            return _live(m, ns, name, values[name])

        self.resolve = resolve

    def decode_all(self):
        """``(values, tripwires)`` of every blob, in manifest order."""
        for bname in self.blobs:
            if not all(d in self.values for d in self.blobs[bname]["defs"]):
                self.load_blob(bname)
        return self.values, self.tripwires

    def load_blob(self, bname: str) -> None:
        if bname in self.loading:
            raise CorruptEntry(f"blob {bname} references itself")
        self.loading.add(bname)
        blob = self.blobs[bname]
        kind = blob["codec"]
        if bname in self.skipped:
            self._tripwires(blob, self.skipped[bname])
        elif kind in self._BY_KIND:
            self._BY_KIND[kind](self, bname, blob)
        else:
            codec = codecs.codec_named(kind)
            if codec is None:
                raise CorruptEntry(f"unknown codec {kind!r}")
            value = codec.decode(self.datas.get(bname), self.maps.get(bname))
            self.values.update((d, value) for d in blob["defs"])

    def _tripwires(self, blob: dict, reason: str) -> None:
        for d in blob["defs"]:
            self.values[d] = Tripwire(d, reason, self.hashes.get(d))
            self.tripwires.append(d)

    def _tripwire(self, bname: str, blob: dict) -> None:
        self._tripwires(blob, self.datas[bname].decode("utf-8", "replace"))

    def _module(self, bname: str, blob: dict) -> None:
        import importlib

        try:
            module = importlib.import_module(self.datas[bname].decode())
        except ImportError as exc:  # entries written before "modules" was set
            missing = exc.name or self.datas[bname].decode()
            self._tripwires(blob, f"module {missing} is not available here")
            return
        self.values.update((d, module) for d in blob["defs"])

    def _pickle(self, bname: str, blob: dict) -> None:
        try:
            obj = codecs.loads(self.datas[bname], self.resolve)
        except CorruptEntry:
            raise
        except Exception as exc:
            # Verified bytes that do not load here (another Python's code
            # objects, a missing class): a tripwire, not a crash.
            self._tripwires(blob, f"it could not be loaded here ({type(exc).__name__}: {exc})"[:300])
            return
        if blob["codec"] == "pickle-group":
            for d, v in obj.items():
                v = _rebind(v, self.ns)
                for alias in blob.get("aliases", {}).get(d, [d]):
                    self.values[alias] = v
        else:
            obj = _rebind(obj, self.ns)
            for d in blob["defs"]:
                self.values[d] = obj

    #: Codecs decoded here rather than by a codec object.
    _BY_KIND = {"tripwire": _tripwire, "module": _module, "pickle": _pickle, "pickle-group": _pickle}


def _live(m: dict, ns: dict, name: str, value):
    """A def as other defs of the entry hold it. A ref the run changed in
    place is the namespace's own object, which :func:`apply` gives the run's
    content: ``d = {"k": a}; a += 1`` keeps ``d["k"] is a``, and ``b = a[::2]``
    stays a view of ``a``. The restored value where that update cannot be made."""
    if name in m.get("mutated", ()) and name in ns and codecs.can_update_in_place(ns[name], value):
        return ns[name]
    return value
