"""Loading an entry: the manifest, each blob checked, then decoded.

:func:`restore` gives a :class:`Restored` (values not yet in the namespace);
:mod:`.apply` binds them.
"""

from __future__ import annotations

import mmap
import os

from .. import codecs, manifest as mf
from ..manifest import CorruptEntry
from ..pickling_objects import OWNED_UP_TO
from ..stores.base import StoreUnavailable, UnsafePath
from .decode import Decoder
from .memo import own
from .plan import ANNOTATIONS, RESULT
from .restored_sources import _register_source


class Restored:
    """A loaded entry, not yet applied to the namespace."""

    def __init__(self, manifest: dict, values: dict, tripwires: list, nbytes: int, result=None,
                 annotations=None, signer=None):
        self.manifest = manifest
        self.signer = signer  # checks the blobs of files a hit puts back (core/file_effects.py)
        self.values = values  # name -> value (tripwires included)
        self.tripwires = tripwires
        self.nbytes = nbytes
        self.result = result  # the last expression's value, if it was stored
        self.annotations = annotations or {}  # __annotations__ entries the run set


def load_manifest(store, key: str) -> dict | None:
    """The entry's manifest, validated (:func:`.manifest.loads`); None when
    there is none. Raises :class:`CorruptEntry`."""
    try:
        f = store.open(mf.manifest_key(key))  # local: its size is known before reading it
        if f is None:
            data = store.get(mf.manifest_key(key))
        else:
            with f:
                if os.fstat(f.fileno()).st_size > mf.MAX_MANIFEST_BYTES:
                    raise CorruptEntry(f"manifest is larger than {mf.MAX_MANIFEST_BYTES >> 20} MiB")
                data = f.read()
    except UnsafePath as exc:  # a link or a folder where the manifest should be
        raise CorruptEntry(f"manifest cannot be read ({exc})") from None
    if data is None:
        return None
    return mf.loads(data, key)


def _open_blob(store, key: str, name: str):
    """A blob as an open local file, or None where the store has no local copy."""
    try:
        return store.open(f"{key}/{name}")
    except UnsafePath as exc:
        raise CorruptEntry(f"blob {name} cannot be read ({exc})") from None


def _private(st) -> bool:
    """Whether only this user can change the file (so a mapping of it shows
    no one else's writes after the check)."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _check(signer, name: str, blob: dict, data) -> None:
    """:func:`.manifest.check_blob`; under ``strict`` signing a mismatch in a
    signed entry is an error, not damage to evict."""
    try:
        mf.check_blob(name, blob, data, sha256=signer.checks)
    except CorruptEntry as exc:
        if signer.mode != "strict":
            raise
        from ..signing import UntrustedEntry

        raise UntrustedEntry(f"a signed entry is not trusted: {exc}") from None


class BlobGone(CorruptEntry):
    """A listed blob is missing: damage, or a newer manifest replaced it."""

    def __init__(self, message, manifest):
        super().__init__(message)
        self.manifest = manifest


def restore(store, key: str, ns: dict, m: dict | None = None, signer=None) -> Restored | None:
    """Load an entry (see :func:`_restore`). A blob that vanished because a
    concurrent writer replaced the entry is retried with the new manifest;
    one that vanished with its manifest (a prune) is a miss, not damage."""
    for _attempt in range(3):
        try:
            return _restore(store, key, ns, m, signer)
        except BlobGone as exc:
            if m is not None:
                raise
            try:
                now = load_manifest(store, key)
            except CorruptEntry:
                now = None
            if now is None:
                return None  # removed meanwhile (a prune, a clear, another kernel): a plain miss
            if now == exc.manifest:
                raise  # not replaced: really damaged
    return None  # replaced three times while reading: a miss


def _restore(store, key: str, ns: dict, m: dict | None = None, signer=None) -> Restored | None:
    """Load an entry's values without touching ``ns`` (refs are read from it).

    Returns None for a miss; raises :class:`CorruptEntry` for an entry that
    must be evicted. Blobs are checked against their digests before any
    unpickling; memory-mapped ``.npy`` files are not read at all (they are
    never unpickled, and reading them would make the restore O(size)).
    """
    if m is None:
        m = load_manifest(store, key)
        if m is None:
            return None
    if signer is None:
        from .. import signing

        signer = signing.from_config()
    # Before anything is fetched or unpickled (raises signing.Unverified).
    signer.check(m)
    skipped = _skipped_blobs(m["blobs"])
    datas, maps, nbytes = _read_blobs(store, key, m, skipped, signer)
    values, tripwires = Decoder(m, ns, skipped, datas, maps).decode_all()
    _register_source(values.values(), m.get("source", ""))
    store.settle(mf.manifest_key(key))  # the entry is whole here: commit its manifest to faster tiers
    result = values.pop(RESULT, None)
    if RESULT in tripwires:  # the replayed display stands in for it
        tripwires.remove(RESULT)
        result = None
    annotations = values.pop(ANNOTATIONS, None)  # a dict (save refuses a tripwire)
    if ANNOTATIONS in tripwires:  # skipped here (a module missing): left as they are
        tripwires.remove(ANNOTATIONS)
        annotations = None
    return Restored(manifest=m, values=values, tripwires=tripwires, nbytes=nbytes, result=result,
                    annotations=annotations, signer=signer)


def _skipped_blobs(blobs: dict) -> dict:
    """Blob name -> why it is not fetched. A blob that needs a module missing
    here (pandas in a browser) is skipped, and so is every blob referencing
    one skipped: their defs become tripwires."""
    skipped = {}
    for name, blob in blobs.items():
        if blob["codec"] == "file":  # a file's bytes: fetched by the hit only where the file differs
            skipped[name] = "a file"
            continue
        missing = codecs.missing_modules(blob.get("modules", ()))
        if missing:
            skipped[name] = f"module {', '.join(missing)} is not available here"
    owner = {d: b for b, blob in blobs.items() for d in blob["defs"]}
    changed = True
    while changed:  # propagate to blobs that reference skipped ones
        changed = False
        for name, blob in blobs.items():
            if name in skipped:
                continue
            for kind, ref in blob.get("needs", ()):
                if kind == "def" and owner.get(ref) in skipped:
                    skipped[name] = f"it references {ref!r}, which could not be restored"
                    changed = True
                    break
    return skipped


#: Blobs up to this size are read, not mapped: the value then owns its
#: memory as the run's did, for about what mapping costs (1 MiB reads in
#: ~0.1 ms hot; joblib maps arrays above the same size). Larger ones are
#: mapped copy-on-write, O(1) (DESIGN §7), and do not own their memory.
MAP_ABOVE = OWNED_UP_TO


def _mappable(blob: dict) -> bool:
    return getattr(codecs.codec_named(blob["codec"]), "mmap", False)


def _read_blobs(store, key: str, m: dict, skipped: dict, signer):
    """The checked bytes of every blob not skipped: ``(datas, maps, nbytes)``,
    ``maps`` holding the memory-mapped ones (name -> mapping)."""
    blobs = m["blobs"]
    sizes = {f"{key}/{name}": blob["size"] for name, blob in blobs.items()}
    opened, streamed = {}, set()
    try:
        wanted = _open_local(store, key, blobs, skipped, opened)
        _stream_mappable(store, key, blobs, sizes, wanted, opened, streamed)
        datas, nbytes = _fetch(store, wanted, sizes, m, signer)
        maps = {}
        nbytes += _map_opened(opened, streamed, blobs, signer, datas, maps)
    finally:
        for f in opened.values():
            f.close()
    return datas, maps, nbytes


def _open_local(store, key: str, blobs: dict, skipped: dict, opened: dict) -> list:
    """Open the mappable blobs the store holds as local files (into
    ``opened``); the keys of the others, to fetch."""
    wanted = []
    for name, blob in blobs.items():
        if name in skipped:
            continue
        if _mappable(blob):
            f = _open_blob(store, key, name)
            if f is not None:
                opened[name] = f
                continue
        wanted.append(f"{key}/{name}")
    return wanted


def _stream_mappable(store, key: str, blobs: dict, sizes: dict, wanted: list, opened: dict, streamed: set) -> None:
    """Mappable blobs held only by a slower tier (a shared remote) are
    streamed into the local folder, never whole in memory, then mapped and
    checked: moved from ``wanted`` to ``opened``."""
    mappable = [k for k in wanted if _mappable(blobs[k.split("/", 1)[1]])]
    for full in store.fetch_paths(mappable, sizes) if mappable else {}:
        name = full.split("/", 1)[1]
        f = _open_blob(store, key, name)
        if f is not None:
            wanted.remove(full)
            opened[name] = f
            streamed.add(name)


def _fetch(store, wanted: list, sizes: dict, m: dict, signer):
    """The fetched blobs' bytes, each checked: ``(datas, nbytes)``."""
    blobs = m["blobs"]
    fetched = store.get_many(wanted, sizes) if wanted else {}
    datas, nbytes = {}, 0
    for full, data in fetched.items():
        name = full.split("/", 1)[1]
        if data is None:
            why = store.failed(full)
            if why:  # a network error, already reported once: a plain miss
                raise StoreUnavailable(f"blob {name} could not be fetched ({why})")
            raise BlobGone(f"blob {name} is missing", m)
        _check(signer, name, blobs[name], data)
        datas[name] = data
        nbytes += len(data)
    return datas, nbytes


def _map_opened(opened: dict, streamed: set, blobs: dict, signer, datas: dict, maps: dict) -> int:
    """Check and map each opened blob (into ``maps``, or ``datas`` when read);
    the bytes they hold."""
    nbytes = 0
    for name, f in opened.items():
        # Checked and decoded from this one open file: a rename in the
        # folder after the check cannot swap in other bytes.
        st = os.fstat(f.fileno())
        if st.st_size != blobs[name]["size"]:
            raise CorruptEntry(f"blob {name} has the wrong size")
        nbytes += st.st_size
        if (signer.checks and not _private(st)) or st.st_size <= MAP_ABOVE:
            # Others can write this file: a mapping would show their later
            # writes. A small blob: reading it costs less than the mapping's
            # difference (an array over a mapping does not own its memory,
            # so ``a.resize`` raises where the run's array would not).
            # Decode from our own copy of the checked bytes.
            datas[name] = f.read()
            _check(signer, name, blobs[name], datas[name])
            continue
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if st.st_size else None
        # Mapped Arrow files carry a pickle (labels, dtypes): checked like
        # fetched blobs. Only .npy (never unpickled) skips the read, unless
        # signed: signed entries give up O(1) restore, data is checked too.
        if blobs[name]["codec"] != "npy" or name in streamed or signer.checks:
            _check(signer, name, blobs[name], mapped if mapped is not None else b"")
        if mapped is None:
            datas[name] = b""
        else:
            own(mapped, f.fileno())  # the memo may trust arrays over it while the file is unchanged
            maps[name] = mapped
    return nbytes
