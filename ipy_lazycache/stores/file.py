"""A folder on disk. Writes go to a temp file that is then ``os.replace``d,
so a crash or a concurrent kernel never leaves a torn file under a key.

Nothing below the root follows a symbolic link: folders are opened one part
at a time with ``O_NOFOLLOW`` relative to their parent's descriptor, files
are opened, written, renamed and removed relative to their folder's
descriptor. A link planted in a shared cache folder can therefore neither
redirect a write or a delete outside the cache nor feed a read. (The root
itself is the user's choice and may be a link.)
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .base import Data, Store, UnsafePath, chunks, validate_key

#: Temp files older than this are leftovers of killed writers.
STALE_TEMP_SECONDS = 3600
#: What our temp files look like (mkstemp's ``.tmp-XXXXXXXX``, the fsspec
#: store's ``.tmp-<uuid hex>-<name>``); only looked for in our own folders.
TEMP_RE = re.compile(r"^\.tmp-.+$")

# mkstemp creates files 0600; entries are meant to be shared and served.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

# getattr: the module is imported everywhere (a browser's Pyodide included),
# though only POSIX systems open folders this way.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
#: O_NONBLOCK: opening a FIFO planted under a key must not hang.
_READ = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC


def is_temp(name: str) -> bool:
    return bool(TEMP_RE.match(name))


def _open_root(root: Path, create: bool) -> int:
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)


def _open_dir(parent: int, name: str, create: bool) -> int:
    """Open folder ``name`` in ``parent`` without following a link. With
    ``create``, a missing folder is made and a link in its place is replaced
    by one (the link is removed; what it points to is not touched)."""
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not (create and stat.S_ISLNK(st.st_mode)):
            kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a folder"
            raise UnsafePath(exc.errno, f"{name} is {kind}") from None
        os.unlink(name, dir_fd=parent)
    try:
        os.mkdir(name, 0o777, dir_fd=parent)
    except FileExistsError:
        pass
    return os.open(name, _DIR, dir_fd=parent)


def write_atomic(path: Path, data: Data, fsync: bool = True) -> None:
    """Write ``data`` (bytes-like or a list of chunks) to ``path`` through a
    temp file in the same folder and ``os.replace``: whole or absent. The
    folder itself must not be a link (e.g. a cache's ``exports/`` pointing
    elsewhere): :class:`UnsafePath`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        dfd = os.open(path.parent, _DIR)
    except OSError as exc:
        if exc.errno in (_ELOOP, _EMLINK, errno.ENOTDIR):
            raise UnsafePath(exc.errno, f"{path.parent} is a symbolic link") from None
        raise
    try:
        _commit(dfd, path.parent, path.name, data, fsync)
    finally:
        os.close(dfd)


def _commit(dfd: int, folder: Path, name: str, data: Data, fsync: bool = True) -> None:
    """Write ``name`` in the folder open as ``dfd`` (whose path is ``folder``)."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    tmp = os.path.basename(tmp)
    try:
        # The temp must be in the folder we hold, not behind a link swapped
        # in since we opened it: the rename below is relative to that folder.
        try:
            here = os.stat(tmp, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            here = None
        if here is None or not os.path.samestat(here, os.fstat(fd)):
            raise UnsafePath(0, f"{folder} changed while writing {name}")
        with os.fdopen(fd, "wb") as f:
            fd = -1
            for chunk in chunks(data):
                f.write(chunk)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
        raise


class FileStore(Store):
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _folder(self, parts, create: bool = False) -> int:
        """A descriptor of the folder ``root/parts...``, no link followed below root."""
        fd = _open_root(self.root, create)
        try:
            for part in parts:
                nfd = _open_dir(fd, part, create)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _parent(self, key: str, create: bool = False) -> tuple[int, str]:
        parts = validate_key(key).split("/")
        return self._folder(parts[:-1], create), parts[-1]

    def open(self, key: str):
        """``key`` as an open binary file, or None if absent. Raises
        :class:`UnsafePath` for a link or anything but a regular file."""
        try:
            dfd, name = self._parent(key)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            fd = os.open(name, _READ, dir_fd=dfd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (_ELOOP, _EMLINK):
                raise UnsafePath(exc.errno, f"{key} is a symbolic link") from None
            raise
        finally:
            os.close(dfd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafePath(0, f"{key} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def get(self, key):
        f = self.open(key)
        if f is None:
            return None
        with f:
            return f.read()

    def put(self, key, data):
        dfd, name = self._parent(key, create=True)
        try:
            _commit(dfd, self._path(key).parent, name, data)
        finally:
            os.close(dfd)

    def write_in_place(self, key: str, data: bytes) -> None:
        """Overwrite (or create) ``key`` in place, without a rename or an
        fsync: for small records whose loss is harmless (recency). The
        entry folder must exist; nothing is created for an entry that is gone."""
        dfd, name = self._parent(key)
        try:
            try:
                fd = os.open(name, os.O_WRONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC, dir_fd=dfd)
            except FileNotFoundError:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666, dir_fd=dfd)
        finally:
            os.close(dfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnsafePath(0, f"{key} is not a regular file")
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)

    def fill(self, keys, fetch: Callable[[dict], set]) -> dict:
        """Write files for ``keys`` through ``fetch({key: temp path}) -> keys
        written`` (e.g. a remote streaming into them), then commit each one
        atomically like :meth:`put`. Returns ``{key: path}`` of those written."""
        temps, out = {}, {}
        try:
            for key in keys:
                dfd, name = self._parent(key, create=True)
                fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self._path(key).parent)
                temps[key] = (dfd, fd, tmp, name)
            written = fetch({key: t[2] for key, t in temps.items()})
            for key in written:
                dfd, fd, tmp, name = temps.pop(key)
                try:
                    here = os.stat(os.path.basename(tmp), dir_fd=dfd, follow_symlinks=False)
                    if not os.path.samestat(here, os.fstat(fd)):
                        raise UnsafePath(0, f"{key}'s folder changed while it was fetched")
                    os.fsync(fd)
                    os.fchmod(fd, 0o666 & ~_UMASK)
                    os.replace(os.path.basename(tmp), name, src_dir_fd=dfd, dst_dir_fd=dfd)
                finally:
                    os.close(fd)
                    os.close(dfd)
                out[key] = self._path(key)
        finally:
            for dfd, fd, tmp, _name in temps.values():
                try:
                    os.unlink(os.path.basename(tmp), dir_fd=dfd)
                except OSError:
                    pass
                os.close(fd)
                os.close(dfd)
        return out

    def has(self, key):
        try:
            f = self.open(key)
        except UnsafePath:
            return False
        if f is None:
            return False
        f.close()
        return True

    def delete(self, key):
        """Remove ``key``: a link is removed itself, a folder in its place
        (damage) with everything in it, never following a link."""
        try:
            dfd, name = self._parent(key)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            _remove(dfd, name)
        finally:
            os.close(dfd)

    def remove_folder(self, key: str, owned: Callable[[str], bool]) -> None:
        """Remove the names in folder ``key`` that ``owned(name)`` accepts,
        then the folder if that emptied it. A link in the folder's place is
        removed itself."""
        validate_key(key)
        try:
            rfd = _open_root(self.root, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            try:
                kfd = _open_dir(rfd, key, create=False)
            except FileNotFoundError:
                return
            except UnsafePath:
                _remove(rfd, key)  # a link or a file where an entry folder should be
                return
            try:
                for name in os.listdir(kfd):
                    if owned(name):
                        _remove(kfd, name)
            finally:
                os.close(kfd)
            try:
                os.rmdir(key, dir_fd=rfd)
            except OSError:
                pass  # not empty: something that is not ours stays
        finally:
            os.close(rfd)

    def keys(self, prefix=""):
        head = prefix.rpartition("/")[0]
        try:
            fd = self._folder(validate_key(head).split("/") if head else [])
        except (FileNotFoundError, NotADirectoryError, UnsafePath):
            return
        try:
            # fwalk(follow_symlinks=False) lists links but never walks into one.
            for dirpath, _dirs, files, _dfd in os.fwalk(".", dir_fd=fd):
                for name in files:
                    if is_temp(name):
                        continue
                    rel = os.path.normpath(os.path.join(head, dirpath, name)).replace(os.sep, "/")
                    if rel.startswith(prefix):
                        yield rel
        finally:
            os.close(fd)

    def listing_root(self) -> Iterator[tuple[str, os.stat_result]]:
        """``(name, lstat)`` of everything directly in the root."""
        return self.listing("")

    def listing(self, key: str) -> Iterator[tuple[str, os.stat_result]]:
        """``(name, lstat)`` of everything directly in folder ``key``."""
        try:
            fd = self._folder(validate_key(key).split("/") if key else [])
        except (FileNotFoundError, NotADirectoryError, UnsafePath):
            return
        try:
            for name in os.listdir(fd):
                try:
                    yield name, os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    continue
        finally:
            os.close(fd)

    def local_path(self, key):
        try:
            f = self.open(key)
        except UnsafePath:
            return None
        if f is None:
            return None
        f.close()
        return self._path(key)

    def remove_stale_temps(
        self, max_age: float = STALE_TEMP_SECONDS, folders: Callable[[str], bool] | None = None
    ) -> int:
        """Delete temp files left by writers that were killed mid-write: in
        the folders directly under the root that ``folders(name)`` accepts
        (all of them by default), and only names shaped like our temps."""
        removed = 0
        now = time.time()
        try:
            rfd = _open_root(self.root, create=False)
        except OSError:
            return 0
        try:
            for sub in os.listdir(rfd):
                if folders is not None and not folders(sub):
                    continue
                try:
                    kfd = _open_dir(rfd, sub, create=False)
                except OSError:
                    continue
                try:
                    for name in os.listdir(kfd):
                        if not is_temp(name):
                            continue
                        try:
                            st = os.stat(name, dir_fd=kfd, follow_symlinks=False)
                            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > max_age:
                                os.unlink(name, dir_fd=kfd)
                                removed += 1
                        except OSError:
                            pass
                finally:
                    os.close(kfd)
        finally:
            os.close(rfd)
        return removed

    def describe(self):
        return str(self.root)


_ELOOP, _EMLINK = errno.ELOOP, errno.EMLINK  # EMLINK: FreeBSD's O_NOFOLLOW error


def _remove(dfd: int, name: str) -> None:
    """Remove ``name`` in folder ``dfd``: unlink files and links (never their
    targets); a real folder goes with its content, fd-based (no link followed)."""
    try:
        os.unlink(name, dir_fd=dfd)
    except FileNotFoundError:
        pass
    except (IsADirectoryError, PermissionError):
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            raise
        shutil.rmtree(name, dir_fd=dfd)
