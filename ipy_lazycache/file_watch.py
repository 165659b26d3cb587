"""Which files a run writes, removes, renames or makes in its working folder.

A cell that writes ``out.csv`` leaves a file a later cell reads; a hit must
leave it too (DESIGN §11: an effect is replayed exactly or the cell is not
stored). While a run is watched, one audit hook (``sys.addaudithook``,
installed at the first watched run and never removed: hooks cannot be)
notes the paths Python opens for writing (the ``open`` event with write
flags), removes, renames (both ends), makes or removes as folders. The
store records each path's state after the run (:mod:`.core.file_effects`).

Only paths inside the run's working folder (its cwd when it started) count,
minus the cache folder, ``__pycache__`` and ``.ipynb_checkpoints``: a temp
file or a library's cache in ``~/.cache`` is the machine's, not the
notebook's, and is left alone as before. Not seen at all: writes by native
code that does not go through Python's ``open`` (pyarrow's Parquet writer,
HDF5, sqlite), and files a subprocess writes.

Native code that writes without Python's ``open`` (pyarrow's Parquet
writer, HDF5, sqlite) and child processes (``!cmd > out``) are not heard
by the hook: the folder is scanned before and after the run instead
(:func:`scan`: size, mtime and inode of each file), and a file changed that
no event named means the run is not stored (a hit could not redo it). The
scan skips hidden entries, ``.ipynb`` files (the server's autosave) and
gives up beyond :data:`MAX_SCAN` entries (a data folder): there only the
hook's paths count.

Appends (``open(p, "a")``) are left out on purpose: what a log holds after
a run depends on every run before it, so neither its final state nor the
appended bytes are what one run "did" to a folder a hit finds (and the run
counters of the tests and probes, ``runs.txt``, are such logs). A file
updated in place (``"r+"``, no truncation, on an existing file) has no
exact replay either: the run is marked, and the store refuses it.
"""

from __future__ import annotations

import os
import sys
import threading

#: Path parts never recorded: Python's and Jupyter's own files.
SKIP_PARTS = frozenset({"__pycache__", ".ipynb_checkpoints"})
_WRITE = os.O_WRONLY | os.O_RDWR
_CREATE_NEW = os.O_CREAT | os.O_EXCL

#: Entries a folder scan reads at most before it gives up (see the docstring).
MAX_SCAN = 5000

#: The watches of the runs under way (nested cells: each records).
_active: list = []
_installed: list = []
_busy = threading.local()  # the hook's own file checks do not record themselves


class Watch:
    """One run's record: ``paths`` (relative to ``folder``, ``/``-separated)
    whose state after the run a hit puts back; ``in_place``: paths updated
    in place, which no hit can redo; ``appended``: logs, left alone;
    ``before``: the folder's :func:`scan` when the run started."""

    def __init__(self, folder, exclude=(), scan_folder=True):
        self.folder = os.path.realpath(folder)
        self.prefix = self.folder.rstrip(os.sep) + os.sep
        self.exclude = tuple(os.path.realpath(os.fspath(p)).rstrip(os.sep) + os.sep for p in exclude if p)
        self.paths: set = set()
        self.in_place: set = set()
        self.appended: set = set()
        self.before = scan(self) if scan_folder else None

    def unheard(self) -> list:
        """Files changed since :attr:`before` that no event named (native
        writers, child processes): a hit could not redo them."""
        after = scan(self) if self.before is not None else None
        if after is None:
            return []
        heard = self.paths | self.in_place | self.appended
        gone = [h + "/" for h in self.paths if not os.path.lexists(os.path.join(self.folder, *h.split("/")))]
        changed = {rel for rel in self.before.keys() | after.keys() if self.before.get(rel) != after.get(rel)}
        return sorted(rel for rel in changed - heard if not any(rel.startswith(g) for g in gone))  # rmtree's

    def relative(self, full: str) -> str | None:
        """``full`` (resolved) relative to the folder, or None outside it."""
        if not full.startswith(self.prefix) or any((full + os.sep).startswith(e) for e in self.exclude):
            return None
        parts = full[len(self.prefix):].split(os.sep)
        if not parts[0] or SKIP_PARTS.intersection(parts):
            return None
        return "/".join(parts)


def scan(watch: Watch) -> dict | None:
    """``relative path -> (size, mtime, inode)`` of the files in the watch's
    folder, hidden entries, ``.ipynb`` files and the excluded folders left
    out; None beyond :data:`MAX_SCAN` entries."""
    out, todo, seen = {}, [watch.folder], 0
    while todo:
        try:
            entries = list(os.scandir(todo.pop()))
        except OSError:
            continue
        seen += len(entries)
        if seen > MAX_SCAN:
            return None
        for e in entries:
            if e.name.startswith(".") or e.name.endswith(".ipynb"):
                continue
            rel = watch.relative(e.path)
            if rel is None:
                continue
            st = e.stat(follow_symlinks=False)
            if e.is_dir(follow_symlinks=False):
                todo.append(e.path)
            else:
                out[rel] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def start(folder, exclude=(), scan_folder=True) -> Watch:
    """Watch the runs from now on; returns this run's :class:`Watch`
    (``scan_folder``: also :func:`scan` it, see the docstring)."""
    if not _installed:
        sys.addaudithook(_hook)
        _installed.append(True)
    watch = Watch(folder, exclude, scan_folder)
    _active.append(watch)
    return watch


def stop(watch: Watch) -> Watch:
    _active[:] = [w for w in _active if w is not watch]
    return watch


def _hook(event, args):
    if not _active:  # every audited event of the process comes here: leave at once
        return
    handler = _HANDLERS.get(event)
    if handler is None or getattr(_busy, "on", False):
        return
    _busy.on = True
    try:
        handler(args)
    except Exception:
        pass  # a path we cannot resolve is not ours to break the user's call over
    finally:
        _busy.on = False


def _resolve(path, dir_fd=None, follow=False):
    """The absolute, resolved path an event names (the final component
    resolved only when ``follow``: ``open`` follows a link, ``os.remove``
    removes the link itself); None for a file descriptor."""
    if isinstance(path, int) or path is None:
        return None
    path = os.fsdecode(os.fspath(path))
    if dir_fd is not None and dir_fd != -1:
        base = os.readlink(f"/proc/self/fd/{dir_fd}")  # Linux; elsewhere this raises and the event is skipped
    else:
        base = os.getcwd()
    joined = os.path.normpath(os.path.join(base, path))
    if follow:
        return os.path.realpath(joined)
    head, tail = os.path.split(joined)
    return os.path.join(os.path.realpath(head), tail)


def _note(full, in_place=False):
    if full is None:
        return
    for watch in _active:
        rel = watch.relative(full)
        if rel is not None:
            (watch.in_place if in_place else watch.paths).add(rel)


def _open(args):
    path, _mode, flags = args
    if not isinstance(flags, int) or not flags & _WRITE:
        return  # a read
    full = _resolve(path, follow=True)
    if full is None:
        return
    if flags & os.O_APPEND:  # a log (see the module's docstring): heard, left alone
        for watch in _active:
            rel = watch.relative(full)
            if rel is not None:
                watch.appended.add(rel)
        return
    keeps = not flags & os.O_TRUNC and (flags & _CREATE_NEW) != _CREATE_NEW
    _note(full, in_place=keeps and os.path.lexists(full))


def _one(args):
    """Events whose first argument is the path and whose last a ``dir_fd``."""
    _note(_resolve(args[0], args[-1] if len(args) > 1 else None))


def _two(args):
    """``os.rename``/``os.replace``: both ends change."""
    src, dst, src_fd, dst_fd = args
    _note(_resolve(src, src_fd))
    _note(_resolve(dst, dst_fd))


def _link(args):
    """``os.link`` (src, dst, src_dir_fd, dst_dir_fd), ``os.symlink`` (src, dst, dir_fd): dst is made."""
    _note(_resolve(args[1], args[-1]))


_HANDLERS = {
    "open": _open,
    "os.remove": _one,
    "os.rmdir": _one,
    "os.mkdir": _one,
    "shutil.rmtree": _one,
    "os.truncate": lambda args: _note(_resolve(args[0], follow=True), in_place=True),
    "os.rename": _two,
    "os.replace": _two,
    "os.link": _link,
    "os.symlink": _link,
}
