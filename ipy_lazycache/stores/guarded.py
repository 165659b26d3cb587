"""A remote tier made harmless (:class:`Guarded`): any failure (down, slow,
denied, not installed) prints one line per session and turns the remote off
for a while; reads then miss and writes are skipped, so a cell behaves as
with the local folder only."""

from __future__ import annotations

import time

from .base import Store, StoreUnavailable, validate_key
from .preflight import Unusable

#: Seconds before a remote operation gives up: connect and each read, and
#: the whole of a read of unknown size (see ``_deadline``).
DEFAULT_TIMEOUT = 10.0


#: Seconds a failed remote is left alone before it is tried again.
RETRY_AFTER = 60.0


#: Remote URLs already warned about this session (one line each).
_warned: set = set()


class Guarded(Store):
    """The remote tier, made harmless: any failure (down, slow, denied, not
    installed) prints one line per session and turns the remote off for
    ``retry_after`` seconds. Reads then miss, writes are skipped.

    ``get_many`` and ``download`` raise :class:`StoreUnavailable` instead of
    answering "absent", because a blob missing from an entry whose manifest
    was found would otherwise look like damage.

    Once a write under ``<key>/`` is lost, later writes of that entry are
    skipped too, so the remote never gets a manifest whose blobs are missing.
    """

    streams = True  # download and put_file go to the remote's own

    def __init__(self, url, factory, readonly=False, timeout=DEFAULT_TIMEOUT, retry_after=RETRY_AFTER, say=print):
        self.url = url
        self._factory = factory
        self.readonly = readonly
        self.timeout = timeout
        self.retry_after = retry_after
        self._say = say
        self._store = None
        self._down_until = 0.0
        self._lost: set = set()  # entry prefixes with a write that did not happen
        self.failures = 0

    @property
    def writable(self):
        return not self.readonly

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def _inner(self) -> Store:
        if self._store is None:
            self._store = self._factory()
        return self._store

    def _fail(self, exc):
        self.failures += 1
        self._down_until = time.monotonic() + self.retry_after
        if self.url not in _warned:
            _warned.add(self.url)
            self._say(f"lazycache: {describe_failure(self.url, exc, self.timeout)}")

    def _try(self, op, default, unavailable=False):
        if self.down:
            if unavailable:
                raise StoreUnavailable(f"{self.url} is unavailable")
            return default
        try:
            return op(self._inner())
        except Exception as exc:
            if isinstance(exc, ValueError) and type(exc).__name__ == "InvalidKey":
                raise
            self._fail(exc)
            if unavailable:
                raise StoreUnavailable(f"{self.url} is unavailable") from exc
            return default

    # -- reads ---------------------------------------------------------------------
    def get(self, key):
        validate_key(key)
        return self._try(lambda s: s.get(key), None)

    def get_many(self, keys, sizes=None):
        keys = list(keys)
        for k in keys:
            validate_key(k)
        return self._try(lambda s: s.get_many(keys, sizes), None, unavailable=True)

    def download(self, targets, sizes=None):
        for k in targets:
            validate_key(k)
        return self._try(lambda s: s.download(targets, sizes), set(), unavailable=True)

    def has(self, key):
        validate_key(key)
        return self._try(lambda s: s.has(key), False)

    def keys(self, prefix=""):
        return iter(self._try(lambda s: list(s.keys(prefix)), []))

    # -- writes --------------------------------------------------------------------
    def _write(self, key, op):
        validate_key(key)
        if self.readonly:
            return
        entry = key.split("/", 1)[0]
        if entry in self._lost:
            return
        ok = self._try(lambda s: (op(s), True)[1], False)
        if not ok:
            self._lost.add(entry)

    def put(self, key, data):
        self._write(key, lambda s: s.put(key, data))

    def put_file(self, key, local_path):
        self._write(key, lambda s: s.put_file(key, local_path))

    def delete(self, key):
        validate_key(key)
        if not self.readonly:
            self._try(lambda s: s.delete(key), None)

    def describe(self):
        return self.url + (" (read-only)" if self.readonly else "")


def describe_failure(url, exc, timeout) -> str:
    """One line for the user: what went wrong with the remote, and what now."""
    detail = " ".join(str(exc).split())[:160] or type(exc).__name__
    fallback = "using the local cache only for now."
    if isinstance(exc, Unusable):  # preflight's line names what is missing
        return f"the shared store {exc}; {fallback}"
    if isinstance(exc, ImportError):
        return f"the shared store {url} needs {exc.name or 'fsspec'}: pip install 'ipy_lazycache[remote]'; {fallback}"
    if isinstance(exc, PermissionError) or _is_denied(exc):
        return f"the shared store {url} refused access ({detail}); check your credentials; {fallback}"
    if _is_timeout(exc):
        return f"the shared store {url} did not answer within {timeout:g} s; {fallback}"
    return f"the shared store {url} is unavailable ({type(exc).__name__}: {detail}); {fallback}"


def _names(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield from (t.__name__ for t in type(exc).__mro__)
        exc = exc.__cause__ or exc.__context__


def _is_timeout(exc) -> bool:
    return any(n in ("TimeoutError", "FSTimeoutError", "ReadTimeoutError", "ConnectTimeoutError") for n in _names(exc))


def _is_denied(exc) -> bool:
    text = str(exc)
    return any(
        code in text
        for code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "Forbidden")
    )
