"""The last step of a hit: restored values into the namespace."""

from __future__ import annotations

from .. import codecs
from ..tripwire import Tripwire
from .memo import Memo
from .restore import Restored


def apply(restored: Restored, ns: dict, memo: Memo | None = None):
    """Bind restored values into ``ns`` and replay deletions.

    A mutated ref is updated in place where its type allows it, so other
    names bound to the same object see the change, as after a real run;
    restored names that were one object with it become that object too.
    """
    m = restored.manifest
    mutated = set(m.get("mutated", ()))
    placed = {}  # id(restored object) -> the object it was put into
    for name, value in sorted(restored.values.items(), key=lambda item: item[0] not in mutated):
        if id(value) in placed:
            value = placed[id(value)]
        elif name in mutated and name in ns and codecs.update_in_place(ns[name], value):
            placed[id(value)] = ns[name]
            value = ns[name]
        ns[name] = value
        if memo is not None and not isinstance(value, Tripwire):
            memo.record(name, value, m["defs"].get(name, {}).get("hash"))
    for name in m["deleted"]:
        ns.pop(name, None)
