"""Files a run left in its working folder: stored with the entry, put back on a hit.

:mod:`.file_watch` notes the paths; here, at store time, each one's state
after the run (a regular file's bytes, a folder, or nothing) becomes part of
the entry: the bytes as blobs of codec ``file`` (digested, signed, exported
and shipped to a site like any blob), the states under the manifest's
``files``. On a hit each path is put back where it differs, relative to the
hit's working folder: digests compared first, bytes written to a temporary
file then renamed over, parent folders made. Nothing is written outside that
folder: :mod:`.manifest` refuses an entry naming an absolute path or ``..``,
and a path that reaches outside through a link makes the hit a run.
"""

from __future__ import annotations

import os
import shutil
import stat

from ..hashing_base import UnboundedFile, digest_file
from ..manifest import safe_relative_path
from ..reports import human_size
from .restore import _check
from .run import NotStored

#: The blob codec of a file's bytes (never decoded into a value).
CODEC = "file"
#: Files a hit puts back, in all, per cell. The entry holds them whole and a
#: hit may rewrite them: larger outputs (a dataset, a model checkpoint) cost
#: less to remake than to copy into the cache, to every export and to every
#: site visitor's browser; a run that writes more is not stored.
MAX_BYTES = 64 << 20


def capture(watch) -> tuple[dict, dict]:
    """``(states, blobs)`` of the paths ``watch`` noted, as the run left them;
    ``states`` maps each relative path to ``{"absent": True}``, ``{"dir": True}``
    or ``{}`` (a file, whose blob :func:`link` names), ``blobs`` are ready for
    the store. Raises :class:`NotStored` where a hit could not redo it."""
    if watch is None:
        return {}, {}
    unheard = watch.unheard()
    if unheard:
        raise NotStored(f"it changed the file {unheard[0]} without Python's open (a native writer such as "
                        "pyarrow's Parquet, or a child process), which a hit cannot redo")
    if not (watch.paths or watch.in_place):
        return {}, {}
    if watch.in_place:
        raise NotStored(f"it updates the file {sorted(watch.in_place)[0]} in place, which a hit cannot redo")
    states, blobs, total = {}, {}, 0
    for i, rel in enumerate(sorted(watch.paths)):
        if not safe_relative_path(rel):  # a name the manifest's schema refuses (a backslash): never a damaged entry
            raise NotStored(f"it writes {rel[:60]!r}, a file name a hit cannot write safely")
        full = os.path.join(watch.folder, *rel.split("/"))
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            states[rel] = {"absent": True}
            continue
        if stat.S_ISDIR(st.st_mode):
            states[rel] = {"dir": True}
            continue
        if not stat.S_ISREG(st.st_mode):
            raise NotStored(f"it leaves {rel} as a link or special file, which a hit cannot redo")
        total += st.st_size
        if total > MAX_BYTES:
            raise NotStored(f"it writes more than {human_size(MAX_BYTES)} of files in its folder ({rel} ...), "
                            "more than a hit puts back")
        with open(full, "rb") as f:
            data = f.read()
        states[rel] = {}
        blobs[f"file{i}.bin"] = {"codec": CODEC, "defs": [], "parts": [data], "path": rel}
    return states, blobs


def link(m: dict, states: dict) -> None:
    """Name each file's written blob in its state: ``m["files"]``."""
    for name, blob in m["blobs"].items():
        if blob["codec"] == CODEC:
            states[blob.pop("path")]["blob"] = name
    if states:
        m["files"] = states


class NotReplayed(Exception):
    """A hit cannot put the run's files back here: the cell runs instead."""


def replay(store, m: dict, folder: str, signer) -> None:
    """Put each file of the entry back into ``folder`` as the run left it.
    Raises :class:`NotReplayed` (nothing written when a path leads outside)."""
    base = os.path.realpath(folder)
    todo = [(rel, state, _target(base, rel, state)) for rel, state in sorted(m["files"].items())]
    stale = [(rel, state, full) for rel, state, full in todo if not _same(full, state, m["blobs"])]
    names = [state["blob"] for _rel, state, _full in stale if "blob" in state]
    datas = _fetch(store, m, names, signer) if names else {}
    for rel, state, full in stale:
        try:
            _put(full, state, datas)
        except OSError as exc:
            raise NotReplayed(f"could not put back the file {rel} ({exc.strerror or exc})") from None


def _target(base: str, rel: str, state: dict) -> str:
    """The path to write, once it is known to lie in ``base``: its folder,
    resolved through any link, must be ``base`` or inside it."""
    full = os.path.join(base, *rel.split("/"))
    inside = _within(os.path.realpath(os.path.dirname(full)), base)
    if inside and state.get("dir") and os.path.islink(full):  # a folder made through a link: where it leads
        inside = _within(os.path.realpath(full), base)
    if not inside:
        raise NotReplayed(f"its file {rel} leads outside the working folder (through a link); nothing was written")
    return full


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def _same(full: str, state: dict, blobs: dict) -> bool:
    try:
        st = os.lstat(full)
    except (FileNotFoundError, NotADirectoryError):
        return bool(state.get("absent"))
    if state.get("absent"):
        return False
    if state.get("dir"):
        return stat.S_ISDIR(st.st_mode)
    blob = blobs[state["blob"]]
    if not stat.S_ISREG(st.st_mode) or st.st_size != blob["size"]:
        return False
    try:
        return digest_file(full) == blob["digest"]
    except UnboundedFile:  # grew while read: not the stored bytes
        return False


def _fetch(store, m: dict, names: list, signer) -> dict:
    key = m["key"]
    sizes = {f"{key}/{n}": m["blobs"][n]["size"] for n in names}
    fetched = store.get_many(list(sizes), sizes)
    datas = {}
    for name in names:
        data = fetched.get(f"{key}/{name}")
        if data is None:
            raise NotReplayed(f"the bytes of a file it wrote ({name}) could not be read from the cache")
        try:
            _check(signer, name, m["blobs"][name], data)
        except Exception as exc:  # damaged, or not what was signed: the run stores the entry again
            raise NotReplayed(f"a file it wrote is damaged in the cache ({exc})") from None
        datas[name] = data
    return datas


def _put(full: str, state: dict, datas: dict) -> None:
    if state.get("absent"):
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.unlink(full)
        return
    if state.get("dir"):
        os.makedirs(full, exist_ok=True)
        return
    folder, name = os.path.split(full)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.lazycache-{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(datas[state["blob"]])
        os.replace(tmp, full)  # a reader sees the old file or the new one, never half of it
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
