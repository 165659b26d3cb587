"""Cache management without a kernel: list, measure, prune, clear, verify.

Shared by the ``%lazycache`` line magic and the ``ipy-lazycache`` command.

Recency is tracked in the store, not by file times (git checkouts and copies
reset those): a hit writes ``<key>/used`` holding the time of the hit. An
entry never hit counts as used when it was created (``created`` in its
manifest). Pruning removes the least recently *used* entries first.
"""

from __future__ import annotations

import json
import math
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import manifest as mf
from .core.restore import load_manifest
from .core.save import evict
from .manifest import CorruptEntry
from .reports import Report, _where, human_age, human_size, plural
from .stores.file import STALE_TEMP_SECONDS, FileStore, is_temp

USED = "used"
#: A blob's file name: ``<stem>.<12 hex of its digest>.<codec ext>`` (see
#: cache.save; older entries have no digest part). Only names of this shape
#: are ever removed from an entry folder.
BLOB_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*(\.[0-9a-f]{12})?\.(npy|arrow|pkl|tripwire|module)$")

#: A folder without a manifest younger than this may be a store in progress.
INCOMPLETE_GRACE_SECONDS = STALE_TEMP_SECONDS


class BadInput(ValueError):
    """A bad argument: reported as one line (CLI exit 2, or a UsageError)."""


# ----------------------------------------------------------------------------
# Parsing sizes and ages

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.I)
_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


#: Sizes and ages beyond these are typing mistakes (and would overflow a float).
MAX_SIZE = 1 << 60  # 1 EiB
MAX_AGE = 1000 * 365 * 86400.0


def parse_size(text) -> int:
    """``"2G"`` -> 2 GiB in bytes. Suffixes K, M, G, T (powers of 1024),
    optionally followed by B or iB; a bare number is bytes."""
    if isinstance(text, int) and not isinstance(text, bool) and 0 <= text <= MAX_SIZE:
        return text
    m = _SIZE_RE.match(str(text)[:100])
    if not m:
        raise BadInput(f"bad size {_short(text)}: use a number of bytes or e.g. 500M, 2G")
    unit = "bkmgt".index((m.group(2) or "b").lower())
    number = float(m.group(1))  # at most 100 characters: finite
    if number * 1024**unit > MAX_SIZE:
        raise BadInput(f"bad size {_short(text)}: more than 1 EiB")
    return int(number * 1024**unit)


def parse_age(text) -> float:
    """``"30d"`` -> seconds. Units: s, m (minutes), h, d, w."""
    m = _AGE_RE.match(str(text)[:100])
    if not m:
        raise BadInput(f"bad age {_short(text)}: use a number and a unit s, m, h, d or w, e.g. 30d or 12h")
    seconds = float(m.group(1)) * _AGE_UNITS[m.group(2).lower()]
    if seconds > MAX_AGE:
        raise BadInput(f"bad age {_short(text)}: more than 1000 years")
    return seconds


def _short(text) -> str:
    text = repr(str(text))
    return text if len(text) <= 40 else text[:37] + "...'"


def open_store(directory, must_exist=True):
    """The store for a cache folder (a FileStore), or for a shared store's
    URL (``s3://...``: an FsspecStore configured like the magic's, from the
    ``IPY_LAZYCACHE_STORE_*`` environment). A file or a missing folder is
    bad input."""
    if "://" in str(directory) and not str(directory).startswith(("http://", "https://", "file://")):
        return _open_remote(str(directory))
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise BadInput(f"{directory} is not a folder")
    if must_exist and not path.exists():
        raise BadInput(f"no cache folder at {directory}")
    return FileStore(path)


def _open_remote(url: str):
    from .stores.fsspec_store import FsspecStore, settings

    try:
        conf = settings(url)
        # Writable even with $IPY_LAZYCACHE_STORE_READONLY, which keeps notebooks
        # from writing: pruning or clearing a shared store is asked for explicitly.
        return FsspecStore(conf["url"], timeout=conf["timeout"], **conf["options"])
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    except ImportError as exc:
        raise BadInput(f"{url} needs {exc.name or 'fsspec'}: pip install 'ipy_lazycache[remote]'") from None


# ----------------------------------------------------------------------------
# Recency


def mark_used(store, key: str, now: float | None = None) -> None:
    """Record a hit. Cheap, since it is on every hit: no fsync, and in a file
    store the record is overwritten in place at a fixed width (a rename or a
    truncation over an existing file makes ext4 flush, which costs
    milliseconds). A torn record just reads as unknown; nothing is created for
    an entry that is gone."""
    data = json.dumps({"used": f"{time.time() if now is None else now:020.6f}"}).encode()
    if isinstance(store, FileStore):
        try:  # never through a link: see FileStore.write_in_place
            store.write_in_place(f"{key}/{USED}", data)
        except OSError:
            pass
        return
    if store.writable:
        store.put(f"{key}/{USED}", data)


def last_used(store, key: str) -> float | None:
    try:
        data = store.get(f"{key}/{USED}")
        used = float(json.loads(data)["used"]) if data and len(data) < 100 else None
    except Exception:
        return None
    return used if used is not None and math.isfinite(used) else None


# ----------------------------------------------------------------------------
# Listing


@dataclass
class Entry:
    key: str
    size: int = 0  # bytes on disk, temp files included
    files: int = 0
    manifest: dict | None = None
    problem: str | None = None  # why the manifest cannot be read
    used: float | None = None  # last hit
    newest_mtime: float = 0.0  # only to tell a store in progress from a leftover
    temps: list = field(default_factory=list)
    absent: bool = False  # no manifest at all (maybe a store in progress), not a bad one
    files_: dict = field(default_factory=dict)  # name -> (size, mtime) of what listing saw

    @property
    def complete(self) -> bool:
        return self.manifest is not None

    @property
    def created(self) -> float | None:
        m = self.manifest
        return float(m["created"]) if m and isinstance(m.get("created"), (int, float)) else None

    @property
    def last_use(self) -> float:
        """For pruning: the last hit, else creation, else the newest file."""
        return self.used or self.created or self.newest_mtime

    @property
    def defs(self) -> list:
        return sorted(self.manifest.get("defs", {})) if self.manifest else []

    @property
    def first_line(self) -> str:
        return mf.first_line(self.manifest.get("source", "")) if self.manifest else ""


def is_entry_file(name: str) -> bool:
    """Whether a file name in an entry folder has the shape of one of ours."""
    return name in (mf.MANIFEST, USED) or bool(BLOB_RE.match(name)) or is_temp(name)


def _scan(store: FileStore) -> list[Entry]:
    """Entry folders (``<32 hex>/`` holding only entry-shaped files), listed
    without following links. A link with a key's name is listed as a bad
    entry (so ``clear`` and ``verify --fix`` remove the link itself); a key
    folder of someone else's files is not an entry and is left alone."""
    out = []
    try:
        top = dict(store.listing_root())
    except OSError:
        return out
    for key in sorted(n for n in top if mf.KEY_RE.match(n)):
        st = top[key]
        entry = Entry(key, newest_mtime=st.st_mtime)
        if stat.S_ISLNK(st.st_mode):
            entry.problem = "it is a symbolic link, not an entry folder"
            out.append(entry)
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        listed = list(store.listing(key))
        ours = [(n, s) for n, s in listed if is_entry_file(n)]
        if listed and not ours:
            continue  # not an entry: a folder of someone else's files
        if ours:  # the files' times, not the folder's (creating a temp touches it)
            entry.newest_mtime = 0.0
        for name, fst in ours:
            entry.size += fst.st_size
            entry.files += 1
            entry.newest_mtime = max(entry.newest_mtime, fst.st_mtime)
            entry.files_[name] = (fst.st_size, fst.st_mtime)
            if is_temp(name):
                entry.temps.append(name)
        _read(entry, store)
        out.append(entry)
    return out


def _read(entry: Entry, store) -> None:
    """An entry's manifest (or what is wrong with it) and its last use."""
    if entry.problem:
        return
    try:
        entry.manifest = load_manifest(store, entry.key)
        if entry.manifest is None:
            entry.problem = "no manifest (incomplete or interrupted store)"
            entry.absent = True
    except CorruptEntry as exc:
        entry.problem = str(exc)
    except OSError as exc:
        entry.problem = f"manifest cannot be read ({exc.strerror or exc})"
    entry.used = last_used(store, entry.key) if entry.manifest is not None else None


def entries(store) -> list[Entry]:
    """Every entry folder, complete or not, most recently used first."""
    if isinstance(store, FileStore):
        found = _scan(store)
    else:
        found = _remote_entries(store)
    found.sort(key=lambda e: e.last_use, reverse=True)
    return found


def _remote_entries(store) -> list[Entry]:
    """Entries of a store that lists keys: sizes and times from its listing
    where it gives them (``stats``), without reading any blob."""
    listing = store.stats()
    if listing is None:  # no times: nothing looks old enough to be a leftover
        listing = {k: (len(store.get(k) or b""), time.time()) for k in store.keys()}
    by_key: dict[str, Entry] = {}
    for full, (size, mtime) in sorted(listing.items()):
        key, _, name = full.partition("/")
        if not mf.KEY_RE.match(key) or "/" in name or not is_entry_file(name):
            continue
        e = by_key.setdefault(key, Entry(key))
        e.size += size
        e.files += 1
        e.newest_mtime = max(e.newest_mtime, mtime)
        e.files_[name] = (size, mtime)
    for e in by_key.values():
        _read(e, store)
    return list(by_key.values())


# ----------------------------------------------------------------------------
# Removing


def remove_entry(store, key: str) -> None:
    """Remove an entry: the manifest first, so it stops being a hit at once.
    In a folder, every entry-shaped file goes (temp files of killed writers
    included), then the folder if that emptied it; no link is followed."""
    if isinstance(store, FileStore):
        try:
            store.delete(mf.manifest_key(key))
        except OSError:
            pass
        store.remove_folder(key, is_entry_file)
    else:
        evict(store, key)


@dataclass
class Removed:
    keys: list = field(default_factory=list)
    bytes: int = 0
    temps: int = 0


def prune(store, max_size=None, older_than=None, keep=(), now=None) -> Removed:
    """Free space. Always: temp files of killed writers and folders left
    without a manifest, once older than an hour (younger ones may be a store
    in progress). Then entries not used for ``older_than`` seconds, then the
    least recently used until the cache fits in ``max_size`` bytes. Keys in
    ``keep`` (the entry just stored) are not removed."""
    now = time.time() if now is None else now
    out = Removed()
    if isinstance(store, FileStore):
        out.temps = store.remove_stale_temps(folders=_temp_folder)
    found = entries(store)
    live = []
    for e in found:
        stale = not e.complete and now - e.newest_mtime > INCOMPLETE_GRACE_SECONDS
        old = older_than is not None and e.complete and now - e.last_use > older_than
        if e.key not in keep and (stale or old):
            remove_entry(store, e.key)
            out.keys.append(e.key)
            out.bytes += e.size
        else:
            if e.complete:
                freed = _drop_unreferenced(store, e, now)
                e.size -= freed
                out.bytes += freed
            live.append(e)
    if max_size is not None:
        total = sum(e.size for e in live)
        for e in sorted(live, key=lambda e: e.last_use):  # least recently used first
            if total <= max_size:
                break
            if e.key in keep or not e.complete and now - e.newest_mtime <= INCOMPLETE_GRACE_SECONDS:
                continue
            remove_entry(store, e.key)
            out.keys.append(e.key)
            out.bytes += e.size
            total -= e.size
    return out


def _drop_unreferenced(store, e: Entry, now: float) -> int:
    """Blobs no manifest lists (left by a writer whose manifest was replaced
    by a concurrent one, or by a failed upload) once older than the grace period."""
    listed = set(e.manifest["blobs"]) | {mf.MANIFEST, USED}
    freed = 0
    for name, (size, mtime) in e.files_.items():
        if name in listed or not BLOB_RE.match(name) or now - mtime <= INCOMPLETE_GRACE_SECONDS:
            continue
        try:
            store.delete(f"{e.key}/{name}")
            freed += size
        except OSError:
            pass
    return freed


def _temp_folder(name: str) -> bool:
    """Folders of a cache root that hold our temp files: entries and export lists."""
    return bool(mf.KEY_RE.match(name)) or name == "exports"


def clear(store) -> Removed:
    out = Removed()
    for e in entries(store):
        remove_entry(store, e.key)
        out.keys.append(e.key)
        out.bytes += e.size
    if isinstance(store, FileStore):
        out.temps = store.remove_stale_temps(max_age=-1, folders=_temp_folder)
    return out


# ----------------------------------------------------------------------------
# Verifying


def verify(store, fix=False, signer=None, skipped: list | None = None) -> list[tuple[str, str]]:
    """Check every entry: manifest, blob sizes, xxh3 digests (memory-mapped
    ``.npy`` blobs included, which a restore does not read), and, with a
    signing key, signatures and SHA-256 digests. Returns ``[(key, problem)]``;
    ``fix`` removes those entries. Folders without any manifest that are
    younger than an hour are skipped (a store may be in progress) and
    appended to ``skipped``; a manifest that is there but bad never is."""
    bad = []
    now = time.time()
    signed = signer is not None and bool(signer.key)
    for e in entries(store):
        problem = e.problem
        if problem and e.absent and now - e.newest_mtime <= INCOMPLETE_GRACE_SECONDS:
            if skipped is not None:
                skipped.append(e.key)
            continue
        if problem is None and signed:
            problem = signer.problem(e.manifest)
        if problem is None:
            problem = _check_blobs(store, e, signed)
        if problem:
            bad.append((e.key, problem))
            if fix:
                remove_entry(store, e.key)
    return bad


def _check_blobs(store, e: Entry, signed: bool) -> str | None:
    for name, blob in e.manifest["blobs"].items():
        try:
            f = store.open(f"{e.key}/{name}")
            if f is None:
                data = store.get(f"{e.key}/{name}")
            else:
                with f:
                    mf.check_blob(name, blob, f, sha256=signed)
                continue
            mf.check_blob(name, blob, data, sha256=signed)
        except CorruptEntry as exc:
            return str(exc)
        except OSError as exc:
            return f"blob {name} cannot be read ({exc.strerror or exc})"
    return None


# ----------------------------------------------------------------------------
# Reports: plain text in a terminal, an HTML table in a notebook


def info_report(store, now=None) -> Report:
    now = time.time() if now is None else now
    rows = []
    found = entries(store)
    for e in found:
        if e.complete:
            rows.append([
                e.key[:10], human_size(e.size), human_age(now - e.created if e.created else None),
                human_age(now - e.used if e.used else None), ", ".join(e.defs) or "-", e.first_line[:60],
            ])
        else:
            rows.append([e.key[:10], human_size(e.size), "-", "-", "-", f"({e.problem})"])
    total = sum(e.size for e in found)
    title = f"{plural(len(found), 'entry', 'entries')}, {human_size(total)} in {_where(store)}"
    return Report(title, ["key", "size", "age", "last hit", "defs", "cell"], rows)


def du_report(store) -> Report:
    found = entries(store)
    total = sum(e.size for e in found)
    incomplete = sum(1 for e in found if not e.complete)
    temps = sum(len(e.temps) for e in found)
    extra = f" ({incomplete} incomplete, {plural(temps, 'temp file')})" if incomplete or temps else ""
    return Report(f"{human_size(total)} in {plural(len(found), 'entry', 'entries')}{extra} in {_where(store)}")








