"""Storing a run: blobs first, then the signed manifest that makes it a hit.

:func:`save` writes what :mod:`.run` found the cell changed; a partial write
is discarded, and :func:`evict` removes an entry manifest first.
"""

from __future__ import annotations

from .. import key_parts, manifest as mf, relations
from ..hashing import Unhashable, value_hash
from ..hashing_base import digest_chunks
from ..reports import human_size
from ..tripwire import is_closed_file
from . import file_effects
from .memo import _IMMUTABLE, Memo
from .pickles import _encode
from .plan import ANNOTATIONS, RESULT, Plan, changed_reads
from .restore import load_manifest
from .run import NotStored, Outcome, _user_name, annotations_set, changed_names
from .verify import verify


def save(
    store, plan: Plan, ns: dict, outcome: Outcome, memo: Memo | None = None, signer=None, progress=None
):
    """Write one entry: blobs first, the manifest last as the commit marker.

    Returns ``(manifest, total_bytes)``. Store errors propagate: the caller
    reports them, and the values stay in the namespace either way. Blobs this
    call wrote are removed again when it fails, so no orphan set is left.
    With a signing key (``signer``), blobs get SHA-256 digests and the
    manifest an HMAC. ``progress`` (a :class:`.progress.Progress`) counts
    the bytes written.
    """
    written = []
    try:
        return _save(store, plan, ns, outcome, memo, signer, written, progress)
    except BaseException:
        _discard(store, plan.key, written)
        raise


def _discard(store, key, written):
    """Delete blobs a failed save wrote, unless a (concurrent) manifest uses them."""
    try:
        current = load_manifest(store, key)
    except Exception:
        current = None
    keep = set(current["blobs"]) if current else set()
    for name in written:
        if name.split("/", 1)[1] not in keep:
            try:
                store.delete(name)
            except Exception:
                pass


def _save(store, plan, ns, outcome, memo, signer, written, progress=None):
    if signer is None:
        from .. import signing

        signer = signing.from_config()
    if _shows_widgets(outcome):
        raise NotStored("its output holds a widget, which needs a live kernel; re-run it to use the widget")
    changed = changed_reads(plan)
    if changed:
        raise NotStored(f"{', '.join(changed)} changed while the cell ran")
    files, file_blobs = file_effects.capture(getattr(outcome, "files", None))  # refused before anything is written
    values, deleted, mutated, after = changed_names(plan, ns)
    m = _new_manifest(plan, outcome, deleted, mutated)
    m["parts"] = key_parts.parts(plan, ns, {*values, *deleted, *mutated}, getattr(outcome, "cell_id", None))
    _refuse_unreadable(len(mf.dumps(m)))  # before any blob is written
    if outcome.result_name not in ns:  # ``len``, a builtin: no name of the namespace gives it back
        m["result_name"] = None
    if outcome.value is not None and m["result_name"] is None:
        values[RESULT] = outcome.value  # stored like a def (by reference where it can be), never bound to a name
    annotated = annotations_set(plan, ns)
    if annotated:
        values[ANNOTATIONS] = annotated  # set again on a hit; not a name either
    kept, pids = _references(plan, ns, values)
    locate = relations.Locator(kept, values, relations.imported_modules(plan.source), plan.keyed)
    locate.was = {i: item for i, item in plan.items.items() if item[0] in mutated}
    blobs = _encode(values, pids, locate)
    _refuse_lost_changes(blobs, mutated)
    verify(blobs, values, ns, mutated, {n: after[n] for n in values if after.get(n)}, plan.source)
    blobs.update(file_blobs)
    if progress is not None:
        progress.total(sum(memoryview(p).nbytes for b in blobs.values() for p in b["parts"]))
    total, unstored = _write_blobs(store, plan.key, m, blobs, signer, written, progress)
    file_effects.link(m, files)
    values.pop(RESULT, None)  # encoded above; not a def (no hash, no name)
    values.pop(ANNOTATIONS, None)
    _describe_defs(m, values, after, unstored)
    size = _commit(store, plan.key, m, signer, written)
    if memo is not None:
        _remember(memo, ns, values, after, m)
    return m, total + size


def _new_manifest(plan, outcome, deleted, mutated) -> dict:
    """The manifest of the run, its blobs and defs not yet filled in."""
    m = mf.new(plan.key, plan.source)
    m["duration"] = outcome.duration
    m["outputs"] = outcome.outputs
    m["result"] = outcome.result
    m["result_name"] = outcome.result_name
    m["deleted"] = deleted
    m["mutated"] = mutated
    m["effects"] = outcome.effects
    if outcome.requires:
        m["requires"] = outcome.requires
    return m


def _references(plan, ns, values):
    """Which objects may be written as references instead of copies: other
    defs, the refs the run left unchanged (a ref wins: ``b = a`` restores
    as the ref's object), and notebook classes by their names (instances
    stay instances of the notebook's class after a restart).
    Returns ``(kept refs, id -> (persistent id, object))``."""
    kept = {n: ns[n] for n in plan.refs if n not in values and n in ns}
    pids = {}
    for name, value in values.items():
        if name not in (RESULT, ANNOTATIONS):  # defs never depend on these blobs
            pids[id(value)] = (("def", name), value)
    for name, value in kept.items():
        pids[id(value)] = (("ref", name), value)
    for name, value in ns.items():
        if isinstance(value, type) and value.__module__ == "__main__" and _user_name(name) and id(value) not in pids:
            pids[id(value)] = (("ref", name), value)
    return kept, pids


def _write_blobs(store, key, m, blobs, signer, written, progress):
    """Put each blob under a name holding its digest and list it in ``m``.
    Returns ``(bytes written, def -> why it was not stored)``."""
    total, unstored = 0, {}
    for blob_name, blob in blobs.items():
        parts = blob.pop("parts")
        blob.pop("exact", None)  # the round trip's business, not the manifest's
        if blob["codec"] == "tripwire":
            unstored.update((d, blob.pop("why")) for d in blob["defs"])
        blob["size"] = sum(memoryview(p).nbytes for p in parts)
        blob["digest"] = digest_chunks(parts)
        if signer.key:
            import hashlib  # signing only: OpenSSL takes milliseconds to load

            blob["sha256"] = digest_chunks(parts, new=hashlib.sha256)
        total += blob["size"]
        # The digest in the name keeps concurrent writers of one key from
        # replacing each other's blobs: whichever manifest lands last is whole.
        stem, ext = blob_name.split(".", 1)
        blob_name = f"{stem}.{blob['digest'][:12]}.{ext}"
        written.append(f"{key}/{blob_name}")
        store.put(f"{key}/{blob_name}", parts if progress is None else progress.wrap(parts))
        m["blobs"][blob_name] = blob
    return total, unstored


def _describe_defs(m, values, after, unstored) -> None:
    """Each def's hash, type and (if a tripwire) why, in the manifest."""
    codec_of = {d: blob["codec"] for blob in m["blobs"].values() for d in blob["defs"]}
    for name, value in values.items():
        entry = m["defs"].setdefault(name, {})
        entry["hash"] = after.get(name)  # mutated refs: hashed already
        # Only a hash the memo can reuse is worth computing (an immutable, or
        # an array mapped from its .npy); any other value is hashed again when
        # a later cell reads it, so hashing a figure or model here is waste.
        if entry["hash"] is None and (type(value) in _IMMUTABLE or codec_of.get(name) == "npy"):
            try:
                entry["hash"] = value_hash(value)
            except (Unhashable, RecursionError):
                entry["hash"] = None
        entry["type"] = f"{type(value).__module__}.{type(value).__qualname__}"
        if name in unstored:  # said when storing, not first at a restore
            entry["unstored"] = unstored[name]
            if is_closed_file(value):
                entry["closed"] = True  # neither said nor missed (auto mode): see tripwire.is_closed_file


def _commit(store, key, m, signer, written) -> int:
    """Sign and put the manifest (the entry is a hit from here), then drop
    the blobs of the entry it replaced. Returns the manifest's size."""
    signer.sign(m)
    data = mf.dumps(m)
    _refuse_unreadable(len(data))
    try:  # the entry this one replaces (--force), whose blobs become garbage
        previous = load_manifest(store, key)
    except Exception:
        previous = None
    store.put(mf.manifest_key(key), data)
    del written[:]  # committed: nothing to discard from here on
    for name in set(previous["blobs"]) - set(m["blobs"]) if previous else ():
        try:  # a reader still on the old manifest retries (BlobGone)
            store.delete(f"{key}/{name}")
        except Exception:
            pass
    return len(data)


def _refuse_unreadable(nbytes: int) -> None:
    """A manifest larger than every reader accepts (its outputs: a cell that
    displays 70 MB) would be stored, then found damaged, evicted and written
    again on every run: it is not stored, and the caller says why once."""
    if nbytes > mf.MAX_MANIFEST_BYTES:
        raise NotStored(f"its outputs take {human_size(nbytes)}, more than the {human_size(mf.MAX_MANIFEST_BYTES)} "
                        "a cache reader accepts for a cell's outputs")


def _remember(memo, ns, values, after, m) -> None:
    """The memo now holds the hashes of what this run left bound."""
    memo.clear()
    for name, h in after.items():
        if name not in values:  # unchanged refs; defs and mutated refs below
            memo.record(name, ns[name], h)
    for name, value in values.items():
        memo.record(name, value, m["defs"][name]["hash"])


def _shows_widgets(outcome) -> bool:
    bundles = [o.get("data") or {} for o in outcome.outputs] + [(outcome.result or {}).get("data") or {}]
    return any("application/vnd.jupyter.widget-view+json" in b for b in bundles)


def _refuse_lost_changes(blobs: dict, mutated) -> None:
    """No entry where a ref the run changed in place cannot be stored: a
    tripwire would stand in for its name alone, and every other name bound
    to the object (``t = s`` in an earlier cell) would keep the old content."""
    for blob in blobs.values():
        lost = sorted(set(blob["defs"]) & set(mutated)) if blob["codec"] == "tripwire" else ()
        if lost:
            raise NotStored(f"it changes {', '.join(lost)} in place, which cannot be stored ({blob['why']})")
        if blob["codec"] == "tripwire" and ANNOTATIONS in blob["defs"]:
            raise NotStored(f"its annotations cannot be stored ({blob['why']})")


def evict(store, key: str):
    """Remove an entry: the manifest first, so it stops being a hit at once."""
    store.delete(mf.manifest_key(key))
    for name in list(store.keys(f"{key}/")):
        store.delete(name)
