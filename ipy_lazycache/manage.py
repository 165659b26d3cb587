"""Cache management without a kernel: list, measure, prune, clear, verify.

Shared by the ``%lazycache`` line magic and the ``ipy-lazycache`` command.

Recency is tracked in the store, not by file times (git checkouts and copies
reset those): a hit writes ``<key>/used`` holding the time of the hit. An
entry never hit counts as used when it was created (``created`` in its
manifest). Pruning removes the least recently *used* entries first.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import manifest as mf
from .cache import evict, load_manifest
from .manifest import CorruptEntry
from .stores.file import STALE_TEMP_SECONDS, FileStore

USED = "used"

#: A folder without a manifest younger than this may be a store in progress.
INCOMPLETE_GRACE_SECONDS = STALE_TEMP_SECONDS


class BadInput(ValueError):
    """A bad argument: reported as one line (CLI exit 2, or a UsageError)."""


# ----------------------------------------------------------------------------
# Parsing sizes and ages

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.I)
_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text) -> int:
    """``"2G"`` -> 2 GiB in bytes. Suffixes K, M, G, T (powers of 1024),
    optionally followed by B or iB; a bare number is bytes."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    m = _SIZE_RE.match(str(text))
    if not m:
        raise BadInput(f"bad size {text!r}: use a number of bytes or e.g. 500M, 2G")
    unit = "bkmgt".index((m.group(2) or "b").lower())
    return int(float(m.group(1)) * 1024**unit)


def parse_age(text) -> float:
    """``"30d"`` -> seconds. Units: s, m (minutes), h, d, w."""
    m = _AGE_RE.match(str(text))
    if not m:
        raise BadInput(f"bad age {text!r}: use a number and a unit s, m, h, d or w, e.g. 30d or 12h")
    return float(m.group(1)) * _AGE_UNITS[m.group(2).lower()]


def open_store(directory, must_exist=True) -> FileStore:
    """The FileStore for a cache folder; a file or a missing folder is bad input."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise BadInput(f"{directory} is not a folder")
    if must_exist and not path.exists():
        raise BadInput(f"no cache folder at {directory}")
    return FileStore(path)


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
        folder = store._path(key)
        if not folder.is_dir():
            return
        try:
            with open(folder / USED, "r+b") as f:
                f.write(data)
        except FileNotFoundError:
            try:
                with open(folder / USED, "xb") as f:
                    f.write(data)
            except OSError:
                pass
        except OSError:
            pass
        return
    if getattr(store, "writable", False):
        store.put(f"{key}/{USED}", data)


def last_used(store, key: str) -> float | None:
    try:
        data = store.get(f"{key}/{USED}")
        return float(json.loads(data)["used"]) if data else None
    except Exception:
        return None


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


def _scan(store: FileStore) -> list[Entry]:
    out = []
    root = store.root
    if not root.is_dir():
        return out
    with os.scandir(root) as it:
        dirs = sorted(e.name for e in it if e.is_dir(follow_symlinks=False) and mf.KEY_RE.match(e.name))
    for key in dirs:
        entry = Entry(key)
        for dirpath, _dirs, files in os.walk(root / key):
            for name in files:
                path = Path(dirpath, name)
                try:
                    st = path.stat()
                except OSError:
                    continue
                entry.size += st.st_size
                entry.files += 1
                entry.newest_mtime = max(entry.newest_mtime, st.st_mtime)
                if name.startswith(".tmp-"):
                    entry.temps.append(path)
        _read(entry, store)
        out.append(entry)
    return out


def _read(entry: Entry, store) -> None:
    """An entry's manifest (or what is wrong with it) and its last use."""
    try:
        entry.manifest = load_manifest(store, entry.key)
        if entry.manifest is None:
            entry.problem = "no manifest (incomplete or interrupted store)"
    except CorruptEntry as exc:
        entry.problem = str(exc)
    entry.used = last_used(store, entry.key)


def entries(store) -> list[Entry]:
    """Every entry folder, complete or not, most recently used first."""
    if isinstance(store, FileStore):
        found = _scan(store)
    else:
        keys = sorted({k.split("/", 1)[0] for k in store.keys() if "/" in k})
        found = []
        for key in keys:
            if not mf.KEY_RE.match(key):
                continue
            e = Entry(key)
            for k in store.keys(f"{key}/"):
                data = store.get(k)
                e.size += len(data or b"")
                e.files += 1
            _read(e, store)
            found.append(e)
    found.sort(key=lambda e: e.last_use, reverse=True)
    return found


# ----------------------------------------------------------------------------
# Removing


def remove_entry(store, key: str) -> None:
    """Remove an entry: the manifest first, so it stops being a hit at once.
    A folder goes whole, temp files of killed writers included."""
    if isinstance(store, FileStore):
        store.delete(mf.manifest_key(key))
        shutil.rmtree(store._path(key), ignore_errors=True)
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
        out.temps = store.remove_stale_temps()
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
            if e.complete and isinstance(store, FileStore):
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


def _drop_unreferenced(store: FileStore, e: Entry, now: float) -> int:
    """Blobs no manifest lists (left by a writer whose manifest was replaced
    by a concurrent one) once older than the grace period."""
    listed = set(e.manifest["blobs"]) | {mf.MANIFEST, USED}
    freed = 0
    folder = store._path(e.key)
    for path in folder.iterdir():
        if path.name in listed or path.name.startswith(".tmp-") or not path.is_file():
            continue
        try:
            st = path.stat()
            if now - st.st_mtime > INCOMPLETE_GRACE_SECONDS:
                path.unlink()
                freed += st.st_size
        except OSError:
            pass
    return freed


def clear(store) -> Removed:
    out = Removed()
    for e in entries(store):
        remove_entry(store, e.key)
        out.keys.append(e.key)
        out.bytes += e.size
    if isinstance(store, FileStore):
        out.temps = store.remove_stale_temps(max_age=-1)
    return out


# ----------------------------------------------------------------------------
# Verifying


def verify(store, fix=False, signer=None) -> list[tuple[str, str]]:
    """Check every entry: manifest, blob sizes, xxh3 digests (memory-mapped
    ``.npy`` blobs included, which a restore does not read), and, with a
    signing key, signatures and SHA-256 digests. Returns ``[(key, problem)]``;
    ``fix`` removes those entries. Folders without a manifest that are
    younger than an hour are skipped (a store may be in progress)."""
    bad = []
    now = time.time()
    for e in entries(store):
        problem = e.problem
        if problem and not e.complete and now - e.newest_mtime <= INCOMPLETE_GRACE_SECONDS:
            continue
        if problem is None and signer is not None and signer.key:
            problem = signer.problem(e.manifest)
        if problem is None:
            signed = signer is not None and bool(signer.key)
            for name, blob in e.manifest["blobs"].items():
                try:
                    mf.check_blob(name, blob, store.local_path(f"{e.key}/{name}"), sha256=signed)
                except CorruptEntry as exc:
                    problem = str(exc)
                    break
        if problem:
            bad.append((e.key, problem))
            if fix:
                remove_entry(store, e.key)
    return bad


# ----------------------------------------------------------------------------
# Reports: plain text in a terminal, an HTML table in a notebook


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


class Report:
    """A titled table (or just a title): ``text()`` and ``html()``."""

    def __init__(self, title: str, columns=(), rows=(), footer: str = ""):
        self.title, self.columns, self.rows, self.footer = title, list(columns), [list(r) for r in rows], footer

    def text(self) -> str:
        lines = [self.title]
        if self.columns and self.rows:
            cells = [self.columns] + [[str(c) for c in r] for r in self.rows]
            widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
            for r in cells:
                lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if self.footer:
            lines.append(self.footer)
        return "\n".join(lines)

    def html(self) -> str:
        esc = html.escape
        parts = [f"<p>{esc(self.title)}</p>"]
        if self.columns and self.rows:
            head = "".join(f"<th>{esc(c)}</th>" for c in self.columns)
            body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in self.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        if self.footer:
            parts.append(f"<p>{esc(self.footer)}</p>")
        return "".join(parts)

    def bundle(self) -> dict:
        return {"text/plain": self.text(), "text/html": self.html()}

    def __str__(self):
        return self.text()


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
    title = f"{len(found)} entries, {human_size(total)} in {_where(store)}"
    return Report(title, ["key", "size", "age", "last hit", "defs", "cell"], rows)


def du_report(store) -> Report:
    found = entries(store)
    total = sum(e.size for e in found)
    incomplete = sum(1 for e in found if not e.complete)
    temps = sum(len(e.temps) for e in found)
    extra = f" ({incomplete} incomplete, {temps} temp files)" if incomplete or temps else ""
    return Report(f"{human_size(total)} in {len(found)} entries{extra} in {_where(store)}")


def removed_report(verb: str, removed: Removed, store) -> Report:
    temps = f" and {removed.temps} stale temp files" if removed.temps else ""
    return Report(f"{verb} {len(removed.keys)} entries ({human_size(removed.bytes)}){temps} from {_where(store)}")


def verify_report(bad, fixed: bool, store) -> Report:
    if not bad:
        return Report(f"all entries verified in {_where(store)}")
    verb = "removed" if fixed else "found"
    return Report(
        f"{verb} {len(bad)} bad entries in {_where(store)}" + ("" if fixed else " (--fix removes them)"),
        ["key", "problem"], [[k[:10], p] for k, p in bad],
    )


def stats_report(stats: dict) -> Report:
    rows = [
        ["hits", stats.get("hits", 0)],
        ["misses", stats.get("misses", 0)],
        ["bytes restored", human_size(stats.get("bytes_restored", 0))],
        ["time saved", f"{stats.get('time_saved', 0.0):.2f} s"],
    ]
    return Report("lazycache: this session", ["statistic", "value"], rows)


def _where(store) -> str:
    return store.describe() if hasattr(store, "describe") else type(store).__name__
