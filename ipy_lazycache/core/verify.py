"""Verifying a store by a round trip (DESIGN §11): decode what was encoded
and check that it hashes like the value the run left.

The key of every later cell that reads a def is computed from the restored
value, so a def that comes back different (another type, a lost attribute,
two objects where the run had one) is a wrong or missed hit waiting to
happen. What does not come back equal is refused here, by name, before any
byte is written; a hit costs nothing more (the check runs at store time).
``.npy`` and Arrow blobs are not decoded (their bytes are the array's or
the columns' own, and their digest proves them), nor pickles of builtin
containers and atoms only (exact by construction: ``exact`` in the blob,
:data:`.pickling._EXACT`), nor pickles over :data:`CHECKED_BYTES`, whose
decoding would cost more than the store.
"""

from __future__ import annotations

import linecache

from .. import codecs, unpickling
from ..hashing import Unhashable, value_hash
from ..hashing_graph import Graph
from .decode import Decoder
from .plan import RESULT
from .restored_sources import _give_source
from .run import NotStored

#: Codecs whose encoding is the value's own buffers (an array's, a frame's
#: columns' in Arrow), checked by their digests: nothing to decode.
_BY_BUFFER = frozenset({"npy", "arrow", "tripwire", "module"})

#: Blobs larger than this are not decoded: decoding and hashing a large
#: pickle costs more than the store itself (a fitted forest: twice), and the
#: check must keep a store within 1.25x of one without it.
CHECKED_BYTES = 1 << 18

#: Off only to measure what the check costs (``bench/run.py``).
checking = True


def verify(blobs: dict, values: dict, ns: dict, mutated, hashes: dict, source: str) -> None:
    """Raise :class:`NotStored` naming every def whose blob does not decode
    to a value that hashes like ``values[def]``. Decoding is the hit's own
    (:class:`.decode.Decoder`), into a copy of the namespace so that restored
    functions read restored globals, as after a hit; ``hashes`` (def -> hash)
    holds the run's hashes known already."""
    if not checking:
        return
    shadow = dict(ns)
    m = {"blobs": {b: {k: v for k, v in blob.items() if k != "parts"} for b, blob in blobs.items()},
         "defs": {}, "mutated": list(mutated)}
    datas = {b: b"".join(bytes(p) for p in blob["parts"]) for b, blob in blobs.items() if _decoded(blob, values)}
    decoder = Decoder(m, shadow, {}, datas, {})
    for bname, blob in blobs.items():
        if bname not in datas:  # checked by its digest, or not decoded: the run's own object
            decoder.values.update((d, values[d]) for d in blob["defs"] if d in values)
    cells = len(unpickling.registered)
    try:
        back, _ = decoder.decode_all()
    except Exception as exc:  # noqa: BLE001 - an entry that does not load is refused, not stored
        raise NotStored(f"it would not load back ({type(exc).__name__}: {exc})"[:300]) from None
    finally:  # in-place updates found while loading are a hit's business, not this check's
        codecs._pending[:] = [p for p in codecs._pending if p[0] is not decoder.resolve]
    shadow.update((n, v) for n, v in back.items() if n in values and n != RESULT)
    # A ref the run changed in place is not replaced on a hit but given the
    # run's state (:mod:`.in_place`): the object stays the run's own.
    checked = [d for b, blob in blobs.items() if b in datas for d in blob["defs"]
               if d in values and not (d in mutated and codecs.can_update_in_place(ns.get(d), back.get(d)))]
    # As a hit does: restored notebook functions find the cell's source
    # under a file name of their own (registered only while they are hashed).
    files = _give_source([back[n] for n in checked if n in back], source)
    try:
        refused = [(n, why) for n in checked if (why := _differs(values[n], back.get(n, _MISSING), n, hashes))]
        if not refused and len(checked) > 1 and _sharing(values, checked) != _sharing(back, checked):
            refused = [(", ".join(sorted(checked)), "come back sharing other objects between them")]
    finally:
        files += unpickling.registered[cells:]  # cell sources the decode registered: this check's own
        del unpickling.registered[cells:]
        for file in files:
            linecache.cache.pop(file, None)
    if refused:
        said = "; ".join(f"{n} {why}" for n, why in sorted(refused))
        raise NotStored(f"a stored value would not come back as the run left it: {said}")


_MISSING = object()


def _decoded(blob: dict, values: dict) -> bool:
    """Whether ``blob`` is decoded to be checked: not one whose bytes are the
    value's own buffer, and not one holding a class (decoding a class by
    value runs its bases' ``__init_subclass__`` hooks, an effect on the
    user's objects; a class is keyed by its code, which a pickle keeps), nor
    one whose decoding registers the value with its library."""
    if blob["codec"] in _BY_BUFFER or blob.get("exact"):
        return False
    if sum(memoryview(p).nbytes for p in blob["parts"]) > CHECKED_BYTES:
        return False
    return not any(isinstance(values.get(d), type) or _registers(values.get(d)) for d in blob["defs"])


def _registers(value) -> bool:
    """A value whose unpickling registers it with its library: a pyplot
    figure joins pyplot's figures (and shows at the end of the cell)."""
    return (type(value).__module__ or "").startswith("matplotlib.")


def _sharing(values: dict, names: list) -> str | None:
    """What ``names`` share between them as a later cell's key sees it (they
    are its refs then: one graph), or None where one cannot be keyed."""
    graph = Graph()
    try:
        for number, name in enumerate(sorted(names)):
            graph.next_ref(number)
            value_hash(values[name], graph)
    except (Unhashable, RecursionError):
        return None
    return graph.digest()


def _differs(value, back, name: str, hashes: dict) -> str | None:
    """Why ``back`` is not ``value`` as a later key sees it, or None."""
    if back is _MISSING:
        return "is missing from its blob"
    if type(back) is not type(value):
        return f"comes back as {type(back).__module__}.{type(back).__qualname__}"
    try:
        if name not in hashes:
            hashes[name] = value_hash(value)
    except (Unhashable, RecursionError):
        hashes[name] = None
    if hashes[name] is None:
        return None  # never keyed by content: a later cell reading it runs uncached anyway
    try:
        same = value_hash(back) == hashes[name]
    except (Unhashable, RecursionError):
        return "comes back as a value that cannot be keyed"
    return None if same else "comes back with other content, attributes or sharing"
