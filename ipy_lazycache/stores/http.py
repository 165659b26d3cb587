"""A read-only store over HTTP GET: caches shipped with a JupyterLite site,
or published on any static web server.

The store does the policy (key checks, status codes, what is a miss, one
warning, keys to stop asking for); a *transport* does the requests:

* :class:`UrllibTransport` (the default) uses urllib and, for ``get_many``,
  a small thread pool;
* :class:`PyodideTransport` is what :mod:`ipy_lazycache.platform` passes under
  Pyodide. This module never checks the platform itself.

Status codes are checked here, by hand, for every transport: pyodide-http
and ``pyodide.http.open_url`` do not raise on a 404.
"""

from __future__ import annotations

import sys
import time
from urllib.parse import quote

from .base import Store, TooLarge, cap_for, validate_key

#: Statuses that mean "no such entry": a plain miss, no warning.
MISSING_STATUSES = (404, 410)
#: Concurrent requests natively (the blobs of one entry).
MAX_WORKERS = 8
#: Bytes per second a transfer is allowed on top of the timeout (1 MiB/s):
#: a blob of n bytes gets ``timeout + n / MIN_RATE`` seconds in all.
MIN_RATE = 1 << 20


class ReadOnlyStore(PermissionError):
    """A write to a store that can only read."""


class UrllibTransport:
    """Native requests. ``fetch`` returns ``(status, body)`` and raises on
    network errors, timeouts and truncated bodies (``IncompleteRead``).

    ``timeout`` bounds the connect and each read; ``deadline`` (seconds)
    bounds the whole request, so a body trickled a byte at a time cannot
    hold a cell; ``limit`` is the most bytes accepted (:class:`TooLarge`).
    """

    def fetch(self, url: str, timeout: float, limit: int | None = None, deadline: float | None = None):
        import http.client
        import urllib.error
        import urllib.request

        total = deadline if deadline is not None else timeout
        end = time.monotonic() + total
        request = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
        try:
            with urllib.request.urlopen(request, timeout=min(timeout, total)) as resp:
                length = resp.headers.get("Content-Length", "")
                if limit is not None and length.isdigit() and int(length) > limit:
                    raise TooLarge(0, f"{int(length)} bytes announced, at most {limit} expected")
                sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
                body = bytearray()
                while True:
                    left = end - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"no complete response within {total:g} s")
                    if sock is not None:
                        sock.settimeout(min(timeout, left))
                    chunk = resp.read1(1 << 16)
                    if not chunk:
                        break
                    body += chunk
                    if limit is not None and len(body) > limit:
                        raise TooLarge(0, f"more than {limit} bytes")
                if resp.length:  # the server closed before Content-Length
                    raise http.client.IncompleteRead(bytes(body), resp.length)
                return resp.status, bytes(body)
        except urllib.error.HTTPError as exc:  # a status, not a network error
            exc.close()
            return exc.code, b""

    def fetch_many(self, urls, timeout: float, limits=None, deadline: float | None = None) -> list:
        """One ``(status, body)`` or exception per URL, fetched concurrently."""
        from concurrent.futures import ThreadPoolExecutor

        limits = limits or [None] * len(urls)
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(urls))) as pool:
            return list(pool.map(lambda u, n: _attempt(self.fetch, u, timeout, n, deadline), urls, limits))


class PyodideTransport:
    """Requests from a Pyodide web worker, where cell magics are synchronous.

    ``fetch`` is a synchronous XHR through pyodide-http, which is binary-safe
    in a worker (``responseType = "arraybuffer"``); ``pyodide.http.pyxhr`` is
    not. We call ``pyodide_http._core.send`` directly instead of
    ``pyodide_http.patch_all()``: patching replaces ``urllib`` (and
    ``requests``) for the whole kernel, and its urllib does not raise
    ``HTTPError`` on a 404, so loading this extension would silently change
    how the user's own code sees HTTP errors. ``send`` is the function the
    patch itself wraps (pyodide-http 0.2.x).

    ``fetch_many`` runs ``pyfetch`` requests concurrently through
    ``pyodide.ffi.run_sync`` where the runtime can block on a promise (JSPI,
    e.g. Chromium); elsewhere (Firefox, Safari, Node) it falls back to
    sequential synchronous requests. No threads either way.
    """

    def fetch(self, url: str, timeout: float, limit: int | None = None, deadline: float | None = None):
        from pyodide_http._core import Request, send

        # An XHR's timeout is already a total deadline.
        response = send(Request("GET", url, timeout=deadline if deadline is not None else timeout))
        if response.status_code == 0:  # the XHR gave no HTTP response at all
            raise ConnectionError("no response")
        if limit is not None and len(response.body) > limit:
            raise TooLarge(0, f"more than {limit} bytes")
        return response.status_code, response.body

    def fetch_many(self, urls, timeout: float, limits=None, deadline: float | None = None) -> list:
        from pyodide.ffi import can_run_sync, run_sync

        limits = limits or [None] * len(urls)
        total = deadline if deadline is not None else timeout
        if len(urls) > 1 and can_run_sync():
            return run_sync(self._gather(urls, total, limits))
        return [_attempt(self.fetch, url, timeout, n, deadline) for url, n in zip(urls, limits)]

    async def _gather(self, urls, timeout, limits):
        import asyncio

        from pyodide.http import pyfetch

        async def one(url, limit):
            response = await pyfetch(url)
            body = await response.bytes() if response.status == 200 else b""
            if limit is not None and len(body) > limit:
                raise TooLarge(0, f"more than {limit} bytes")
            return response.status, body

        async def attempt(url, limit):
            try:
                return await asyncio.wait_for(one(url, limit), timeout)
            except Exception as exc:
                return exc

        # one deadline for the lot: the requests run side by side
        return await asyncio.gather(*(attempt(url, n) for url, n in zip(urls, limits)))


def _attempt(fetch, url, *args):
    try:
        return fetch(url, *args)
    except Exception as exc:
        return exc


class HttpStore(Store):
    """Entries under ``base_url``, read with GET.

    * 200 is a hit; 404 (or 410) is a plain miss;
    * any other status, a network error, a timeout or a truncated body is a
      miss too, plus one ``lazycache:`` warning on stderr for the store's
      lifetime (a session: :mod:`..platform` keeps one store per folder);
    * such a key is remembered and not requested again, and so is a key
      that is "deleted": :func:`ipy_lazycache.core.save.evict` deletes the
      manifest of an entry that failed to restore, so the entry is not
      fetched again this session;
    * keys are validated before any request.
    """

    writable = False

    def __init__(
        self, base_url: str, timeout: float = 30.0, transport: UrllibTransport | PyodideTransport | None = None
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"HttpStore needs an http(s) URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.transport = transport if transport is not None else UrllibTransport()
        self._gone: set[str] = set()  # failed or evicted: not asked for again
        self._failed: dict[str, str] = {}  # key -> why its fetch failed
        self._warned = False

    def url(self, key: str) -> str:
        return self.base_url + quote(validate_key(key))

    def get(self, key):
        return self.get_many([key])[key]

    def deadline(self, nbytes: int = 0) -> float:
        """The whole-request budget: the timeout, plus time for the bytes
        at a slow but working rate."""
        return self.timeout + nbytes / MIN_RATE

    def get_many(self, keys, sizes=None):
        keys = [validate_key(k) for k in keys]  # every key, before any request
        out = dict.fromkeys(keys)
        todo = [k for k in out if k not in self._gone]
        if not todo:
            return out
        urls = [self.base_url + quote(k) for k in todo]
        limits = [cap_for(k, sizes) for k in todo]
        deadline = self.deadline(sum(limits) if sizes else 0)
        if len(todo) == 1:
            results = [_attempt(self.transport.fetch, urls[0], self.timeout, limits[0], deadline)]
        else:
            results = self.transport.fetch_many(urls, self.timeout, limits, deadline)
        for key, url, result in zip(todo, urls, results):
            if isinstance(result, BaseException):
                self._fail(key, url, f"{type(result).__name__}: {result}")
                continue
            status, body = result
            if status == 200:
                out[key] = bytes(body)
            elif status not in MISSING_STATUSES:
                self._fail(key, url, f"HTTP {status}")
        return out

    def _fail(self, key, url, reason):
        self._gone.add(key)
        self._failed[key] = reason
        if not self._warned:
            self._warned = True
            print(
                f"lazycache: could not fetch {url} ({reason}); treating it as a miss. "
                f"Further errors from {self.base_url} are not reported this session.",
                file=sys.stderr,
            )

    def failed(self, key):
        return self._failed.get(key)

    def has(self, key):
        return self.get(key) is not None

    def put(self, key, data):
        validate_key(key)
        raise ReadOnlyStore(
            f"{self.base_url} is read-only: an HTTP cache is written by a native run and "
            "published, not written over HTTP (use TieredStore([MemoryStore(), HttpStore(url)]))"
        )

    def delete(self, key):
        """Forget ``key`` for this session (an HTTP cache cannot delete)."""
        self._gone.add(validate_key(key))

    def describe(self):
        return self.base_url
