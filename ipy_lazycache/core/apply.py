"""The last step of a hit: restored values into the namespace."""

from __future__ import annotations

import sys

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
    if restored.annotations:  # what ``n: int = 5`` put there (the run creates the dict if need be)
        ns.setdefault("__annotations__", {}).update(restored.annotations)


def refused_standins(restored: Restored, ns: dict) -> list[str]:
    """Defs whose stand-in a hit may not bind (the hit must run instead):
    a stand-in never replaces a value the namespace holds (a later identical
    cell in the same kernel), and a def the store could write but this
    platform, the one that wrote it, cannot read back is no documented
    limit but a run that would have worked. A def that could not be stored,
    or whose module is missing on another platform (pandas in a browser),
    still comes back as the stand-in that names it."""
    m = restored.manifest
    same_platform = (m.get("producer") or {}).get("platform") == sys.platform
    refused = []
    for name in restored.tripwires:
        live = name in ns and not isinstance(ns[name], Tripwire)
        if live or (same_platform and not m["defs"].get(name, {}).get("unstored")):
            refused.append(name)
    return sorted(refused)
