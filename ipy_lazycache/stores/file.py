"""A folder on disk. Writes go to a temp file that is then ``os.replace``d,
so a crash or a concurrent kernel never leaves a torn file under a key."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from .base import Store, chunks, validate_key

#: Temp files older than this are leftovers of killed writers.
STALE_TEMP_SECONDS = 3600

# mkstemp creates files 0600; entries are meant to be shared and served.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_atomic(path: Path, data, fsync: bool = True) -> None:
    """Write ``data`` (bytes-like or a list of chunks) to ``path`` through a
    temp file in the same folder and ``os.replace``: whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks(data):
                f.write(chunk)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class FileStore(Store):
    def __init__(self, root):
        self.root = Path(root)

    def _path(self, key) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def get(self, key):
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def put(self, key, data):
        write_atomic(self._path(key), data)

    def fill(self, keys, fetch) -> dict:
        """Write files for ``keys`` through ``fetch({key: temp path}) -> keys
        written`` (e.g. a remote streaming into them), then commit each one
        atomically like :meth:`put`. Returns ``{key: path}`` of those written."""
        temps, out = {}, {}
        try:
            for key in keys:
                path = self._path(key)
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, temps[key] = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
                os.close(fd)
            for key in fetch(dict(temps)):
                tmp = temps.pop(key)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o666 & ~_UMASK)
                os.replace(tmp, self._path(key))
                out[key] = self._path(key)
        finally:
            for tmp in temps.values():
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        return out

    def has(self, key):
        return self._path(key).is_file()

    def delete(self, key):
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def keys(self, prefix=""):
        base = self.root
        start = base.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else base
        if not start.is_dir():
            return
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                rel = Path(dirpath, name).relative_to(base).as_posix()
                if rel.startswith(prefix):
                    yield rel

    def local_path(self, key):
        path = self._path(key)
        return path if path.is_file() else None

    def remove_stale_temps(self, max_age=STALE_TEMP_SECONDS) -> int:
        """Delete temp files left by writers that were killed mid-write."""
        removed = 0
        now = time.time()
        for path in self.root.rglob(".tmp-*") if self.root.is_dir() else ():
            try:
                if now - path.stat().st_mtime > max_age:
                    path.unlink()
                    removed += 1
            except OSError:
                pass
        return removed

    def describe(self):
        return str(self.root)
