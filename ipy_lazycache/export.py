"""Export lists and bundling: which entries a notebook uses, and copying them.

A native session records, in each cache folder it uses, the key of every
``%%lazycache`` cell it hit or stored, in a small JSON file per notebook::

    __lazycache__/exports/<readable name>-<digest>.json     (or sessions.json)
    {"format": 1, "notebook": "...", "updated": ..., "cells": {"<cell>": {"key": ..., "time": ...}}}

One record per *cell*, so a cell whose key changes (new code, new inputs)
replaces its old key: entries the notebook no longer uses drop out. A cell is
identified by its notebook cell id (``id:<id>``, sent by Jupyter front-ends)
or, where the client sends none (nbclient, a terminal), by a hash of its
source (``src:<hash>``). Readers that know the notebook keep only records
whose cell is still in it, by either identity (:func:`notebook_cells`).

The file is rewritten with a temp file and ``os.replace`` after each cell,
so a killed kernel leaves the previous or the new list, never a torn one.
Lists are read, written and removed without following a symbolic link
(an ``exports`` link to another folder is refused, never written through).

:func:`export` copies listed entries (or all of them) from one cache folder
to another, checking every blob's size and digest on the way; nothing here
imports IPython.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from . import manifest as mf
from .manifest import CorruptEntry
from .reports import human_size, plural
from .stores.base import UnsafePath, validate_key
from .stores.file import FileStore, write_atomic

EXPORTS = "exports"
FORMAT = 1
#: The one list of every session that did not know its notebook (nbconvert,
#: papermill, myst-nb, a terminal). One file, not one per session: a docs
#: build that runs on every commit would otherwise leave a file per run.
#: Readers that know the notebook keep only its cells' records.
UNNAMED = "sessions.json"


# ----------------------------------------------------------------------------
# Identities


def source_id(source: str) -> str:
    """A cell's identity from its source, for clients that send no cell id."""
    return "src:" + xxhash.xxh3_64_hexdigest(source.encode("utf-8", "surrogatepass"))


def cell_identity(info) -> str | None:
    """The identity of the running cell from IPython's ``ExecutionInfo``."""
    if info is None:
        return None
    cell_id = getattr(info, "cell_id", None)
    if cell_id:
        return f"id:{cell_id}"
    raw = getattr(info, "raw_cell", None)
    return source_id(raw) if raw is not None else None


def notebook_path(shell=None) -> str | None:
    """The running notebook's path, where the kernel knows it.

    ipykernel puts the Jupyter session's path (``JPY_SESSION_NAME``, set by
    jupyter_server) into ``__session__``; VS Code sets ``__vsc_ipynb_file__``.
    """
    ns = getattr(shell, "user_ns", None) or {}
    for value in (ns.get("__session__"), ns.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


#: Readable part of a list's name; the digest after it keeps names apart.
_READABLE = 60
#: Export lists are small (a key per cell); a bigger file is not one.
MAX_LIST_BYTES = 16 << 20


def _base(notebook: str) -> str:
    return os.path.basename(notebook.rstrip("/\\"))


def list_name(notebook: str | None) -> str:
    """The export list's file name for a notebook (or this session).

    A readable prefix (the file name in ASCII, shortened) and a digest of the
    whole file name: two notebooks whose names differ only in letters the
    prefix cannot show (``分析.ipynb``, ``解析.ipynb``) get two lists, and a
    long name still fits a file system's 255 bytes.
    """
    if not notebook:
        return UNNAMED
    base = _base(notebook)
    readable = re.sub(r"[^A-Za-z0-9_.\-]", "_", base)[:_READABLE].lstrip(".-") or "notebook"
    digest = xxhash.xxh3_128_hexdigest(base.encode("utf-8", "surrogatepass"))[:16]
    return f"{readable}-{digest}.json"


def _legacy_name(notebook: str) -> str:
    """The name lists had before the digest (read only, for old caches):
    it is not injective, so its content must name the same notebook."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", _base(notebook)) + ".json"


def _legacy_list(store: FileStore, notebook: str) -> dict | None:
    """The old-style list of ``notebook`` in the cache folder ``store``, if any."""
    data = _read(store, _legacy_name(notebook))
    theirs = data.get("notebook") if data else None
    return data if isinstance(theirs, str) and _base(theirs) == _base(notebook) else None


# ----------------------------------------------------------------------------
# Recording (native sessions)


def record(store, key: str, cell: str | None, notebook: str | None = None) -> Path | None:
    """Record that ``cell`` of ``notebook`` uses ``key`` in ``store``'s folder.

    Only file stores (native sessions) keep lists. Returns the list's path,
    or None when nothing was recorded. A no-op when the record is unchanged,
    so a hit costs one small read.
    """
    if not isinstance(store, FileStore) or not cell:
        return None
    path = store.root / EXPORTS / list_name(notebook)
    data = _read(store, path.name) or (notebook and _legacy_list(store, notebook)) or {
        "format": FORMAT, "notebook": notebook, "cells": {}}
    if data.get("cells", {}).get(cell, {}).get("key") == key:
        return path
    now = time.time()
    data["format"], data["notebook"], data["updated"] = FORMAT, notebook, now
    data.setdefault("cells", {})[cell] = {"key": key, "time": now}
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode())
    return path


def read_list(path) -> dict | None:
    """One export list, or None when it is absent or unreadable."""
    path = Path(path)
    return _read(FileStore(path.parent.parent), path.name)


def _read(store: FileStore, name: str, bad: list | None = None) -> dict | None:
    """List ``name`` of the cache folder ``store``, read without following a
    link (``exports`` included); None when absent, or (described in ``bad``)
    not a list."""
    try:
        f = store.open(f"{EXPORTS}/{name}")
        if f is None:
            return None
        with f:
            raw = f.read(MAX_LIST_BYTES + 1)
        if len(raw) > MAX_LIST_BYTES:
            raise ValueError(f"larger than {human_size(MAX_LIST_BYTES)}")
        data = json.loads(raw)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc) or type(exc).__name__
        if bad is not None:
            bad.append(f"{EXPORTS}/{name} is not an export list ({why}); ignored")
        return None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), dict):
        if bad is not None:
            bad.append(f"{EXPORTS}/{name} is not an export list (no cells); ignored")
        return None
    return data


# ----------------------------------------------------------------------------
# Reading lists


def notebook_cells(ipynb) -> set[str]:
    """Every identity a cell of this notebook can have been recorded under."""
    nb = json.loads(Path(ipynb).read_text(encoding="utf-8"))
    ids = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("id"):
            ids.add(f"id:{cell['id']}")
        source = cell.get("source", "")
        ids.add(source_id("".join(source) if isinstance(source, list) else source))
    return ids


def lists_in(cache_dir, bad: list | None = None) -> dict[str, dict]:
    """``{file name: list}`` of every export list in a cache folder; a file
    that is not one is left out (and described in ``bad``). An ``exports``
    that is a link holds no lists."""
    store = FileStore(cache_dir)
    out = {}
    for name, st in sorted(store.listing(EXPORTS)):
        if name.endswith(".json") and stat.S_ISREG(st.st_mode):
            data = _read(store, name, bad)
            if data is not None:
                out[name] = data
    return out


def listed_keys(cache_dir, notebook=None, bad: list | None = None) -> set[str]:
    """The keys listed in ``cache_dir``'s export lists.

    With ``notebook`` (a path to an ``.ipynb``), only that notebook's list,
    and only records of cells still in the notebook. When no list names the
    notebook, lists of sessions that did not know their notebook are used.
    Lists that cannot be read are described in ``bad``.
    """
    lists = lists_in(cache_dir, bad)
    if notebook is not None:
        mine = lists.get(list_name(str(notebook))) or _legacy_list(FileStore(cache_dir), str(notebook))
        chosen = [mine] if mine else [d for d in lists.values() if not d.get("notebook")]
        cells = notebook_cells(notebook) if Path(notebook).exists() else None
    else:
        chosen, cells = list(lists.values()), None
    keys = set()
    for data in chosen:
        for cell, rec in data["cells"].items():
            key = rec.get("key") if isinstance(rec, dict) else None
            if isinstance(key, str) and mf.KEY_RE.match(key) and (cells is None or cell in cells):
                keys.add(key)
    return keys


def reset_list(cache_dir, notebook) -> None:
    """Forget a notebook's list (before a full run rebuilds it), an old-style
    list of the same notebook too. Never through a link: an ``exports`` that
    is one raises :class:`~.stores.base.UnsafePath`."""
    store = FileStore(cache_dir)
    names = [list_name(str(notebook))]
    if _legacy_list(store, str(notebook)) is not None:
        names.append(_legacy_name(str(notebook)))
    for name in names:
        try:
            store.delete(f"{EXPORTS}/{name}")
        except UnsafePath as exc:
            raise UnsafePath(exc.errno, f"{store.root / EXPORTS} is a symbolic link or not a folder: "
                             "export lists are never removed through one") from None


def all_keys(cache_dir) -> set[str]:
    """Every committed entry (a key folder with a manifest) in a cache folder."""
    root = Path(cache_dir)
    if not root.is_dir():
        return set()
    return {p.name for p in root.iterdir() if mf.KEY_RE.match(p.name) and (p / mf.MANIFEST).is_file()}


# ----------------------------------------------------------------------------
# Verifying and copying


def entry_files(store, key: str) -> tuple[dict, list[str]]:
    """An entry's manifest and the names of the files that make it up
    (blobs first, ``manifest.json`` last). Raises :class:`CorruptEntry`."""
    validate_key(key)
    data = store.get(mf.manifest_key(key))
    if data is None:
        raise CorruptEntry("it has no manifest")
    m = mf.loads(data, key)
    for name in m["blobs"]:
        validate_key(f"{key}/{name}")
    return m, [*m["blobs"], mf.MANIFEST]


def verify_entry(store, key: str) -> int:
    """Check every blob of an entry; its size in bytes. Raises :class:`CorruptEntry`."""
    m, names = entry_files(store, key)
    total = 0
    for name, blob in m["blobs"].items():
        data = store.get(f"{key}/{name}")
        mf.check_blob(name, blob, data, sha256=blob.get("sha256") is not None)
        total += len(data)
    return total + len(store.get(mf.manifest_key(key)) or b"")


@dataclass
class Exported:
    """What :func:`export` did."""

    copied: list = field(default_factory=list)  # keys
    nbytes: int = 0
    bad: list = field(default_factory=list)  # (key, reason)
    missing: list = field(default_factory=list)  # listed keys not in the source
    withheld: list = field(default_factory=list)  # (key, [environment variables its cell sets])

    @property
    def ok(self) -> bool:
        return not self.bad and not self.missing and not self.withheld

    def lines(self) -> list[str]:
        out = [f"export: {key[:10]} is damaged ({why}); not copied" for key, why in self.bad]
        out += [f"export: {key[:10]} is listed but not in the cache folder; not copied" for key in self.missing]
        out += [f"export: {key[:10]} sets environment variable{'s' if len(names) > 1 else ''} {', '.join(names)}; "
                "not copied, since a shipped cache would publish the value (set it in a cell that is not cached)"
                for key, names in self.withheld]
        failed = len(self.bad) + len(self.missing) + len(self.withheld)
        out.append(f"export: copied {plural(len(self.copied), 'entry', 'entries')} ({human_size(self.nbytes)})"
                   + (f"; {failed} failed" if failed else ""))
        return out


def export(src, dest, keys=None, progress: bool | None = None) -> Exported:
    """Copy entries from cache folder ``src`` to ``dest``, verified.

    ``keys`` defaults to every committed entry. Each blob is read, checked
    against the manifest (size, xxh3, SHA-256 when signed) and written
    atomically; the manifest goes last, so a failed entry leaves nothing that
    reads as an entry. Only the manifest and its blobs are copied (no export
    lists, no recency files). An entry whose cell set environment variables
    is withheld (:func:`environ_set`): its manifest holds their values. A
    progress bar (tqdm, if installed) appears when copying takes more than a
    second.
    """
    src_store, dest_store = FileStore(src), FileStore(dest)
    result = Exported()
    plan = _plan(src, src_store, sorted(all_keys(src) if keys is None else keys), result)
    bar = _bar(sum(s for _, _, s in plan), progress)
    try:
        for key, m, _size in plan:
            written = []
            try:
                for name, blob in m["blobs"].items():
                    data = src_store.get(f"{key}/{name}")
                    mf.check_blob(name, blob, data, sha256=blob.get("sha256") is not None)
                    dest_store.put(f"{key}/{name}", data)
                    written.append(f"{key}/{name}")
                    result.nbytes += len(data)
                    if bar is not None:
                        bar.update(len(data))
                data = src_store.get(mf.manifest_key(key))
                mf.loads(data, key)
                dest_store.put(mf.manifest_key(key), data)
                result.nbytes += len(data)
                result.copied.append(key)
            except CorruptEntry as exc:
                result.bad.append((key, str(exc)))
                for name in written:
                    dest_store.delete(name)
    finally:
        if bar is not None:
            bar.close()
    return result


def _plan(src, src_store, keys, result: Exported) -> list:
    """``[(key, manifest, size)]`` of the entries to copy; the others go
    into ``result`` (missing, damaged or untrusted, withheld)."""
    plan = []
    signer = _signer()
    for key in keys:
        try:
            m, names = entry_files(src_store, key)
            _check_signature(m, signer)
            secrets = environ_set(m)
            if secrets:
                result.withheld.append((key, secrets))
                continue
        except CorruptEntry as exc:
            if not (Path(src) / key).exists():
                result.missing.append(key)
            else:
                result.bad.append((key, str(exc)))
            continue
        except Exception as exc:
            result.bad.append((key, f"{type(exc).__name__}: {exc}"))
            continue
        plan.append((key, m, sum(int(b.get("size") or 0) for b in m["blobs"].values())))
    return plan


def environ_set(m: dict) -> list[str]:
    """The environment variables an entry's cell set, whose values its
    manifest holds to set them again on a hit (a ``.env`` loaded into
    ``os.environ``: API tokens). Such entries are never exported."""
    effect = m.get("effects", {}).get("environ")
    values = effect.get("set") if isinstance(effect, dict) else None
    return sorted(str(k) for k in values) if isinstance(values, dict) else []


def _signer():
    """The signing configuration (``IPY_LAZYCACHE_KEY``), or None without a key."""
    from . import signing

    signer = signing.from_config()
    return signer if signer.key else None


def _check_signature(m: dict, signer) -> None:
    """With a key set, an entry whose signature does not verify is never
    shipped (``verify`` would report it too). Raises :class:`CorruptEntry`."""
    why = signer.problem(m) if signer is not None else None
    if why is not None:
        raise CorruptEntry(f"not trusted: {why}")


def _bar(total: int, progress):
    if progress is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc="export", delay=1.0, file=sys.stderr,
                disable=None if progress is None else not progress)


# ----------------------------------------------------------------------------
# Command line: ``ipy-lazycache export`` (registered in :mod:`.cli`)


def configure(p):
    """Arguments of ``ipy-lazycache export``."""
    p.description = ("Copy the entries listed in SRC's export lists (or every entry, with --all) "
                     "to DEST, checking every blob's digest. Exit status 1 if an entry is damaged or missing.")
    p.add_argument("src", help="cache folder to export from (e.g. notebooks/__lazycache__)")
    p.add_argument("dest", help="cache folder to create or update (e.g. site/notebooks/__lazycache__)")
    p.add_argument("--all", action="store_true", help="export every entry, not only the listed ones")
    p.add_argument("--notebook", metavar="IPYNB", help="only this notebook's list, and only cells still in it")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def run_command(args):
    """``(Report, exit code)`` for parsed ``export`` arguments."""
    from .manage import BadInput
    from .reports import Report

    src = Path(args.src)
    if not src.is_dir():
        raise BadInput(f"export: no cache folder at {src}")
    if args.notebook and not Path(args.notebook).is_file():
        raise BadInput(f"export: no notebook at {args.notebook}")
    keys, unread = None, []
    if not args.all:
        keys = listed_keys(src, args.notebook, unread)
        unread = [f"export: {line}" for line in unread]
        if not keys:
            where = f" for {args.notebook}" if args.notebook else ""
            return Report("\n".join([*unread, f"export: {src} has no export list{where}; run the notebook "
                                      "natively first, or pass --all"])), 1
    result = export(src, Path(args.dest), keys, progress=False if args.no_progress else None)
    return Report("\n".join([*unread, *result.lines()])), 0 if result.ok and not unread else 1
