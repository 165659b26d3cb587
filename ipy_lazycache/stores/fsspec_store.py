"""A shared cache on any fsspec filesystem: ``s3://``, ``gs://``, ``memory://``,
``file://`` ...

:class:`FsspecStore` is the byte store. :class:`Guarded` wraps it as the slow
tier of a :class:`~.tiered.TieredStore` so that a remote which is down, slow
or denies access never takes a cell down with it: the first failure prints
one ``lazycache:`` line for the session, and the remote is left alone for a
while (the cell behaves as with the local folder only).

``fsspec`` (and ``s3fs`` for ``s3://``) are optional: ``pip install
'ipy_lazycache[remote]'``. They are imported when the store is first used.

Object storage has no rename, but a single PUT (and a completed multipart
upload) appears whole or not at all; :func:`.cache.save` writes blobs first
and the manifest last, so an entry is never visible half-written. Local
``file://`` paths go through a temp name and a move.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

from .base import BadSetting, Store, TooLarge, cap_for, chunks, join, validate_key
from .guarded import DEFAULT_TIMEOUT, Guarded

#: Transfers of known size get ``timeout + size / MIN_RATE`` seconds of wall clock.
MIN_RATE = 1 << 20
#: Concurrent requests per ``get_many`` / ``download``.
MAX_CONCURRENCY = 16

ENV_URL = "IPY_LAZYCACHE_STORE"
ENV_READONLY = "IPY_LAZYCACHE_STORE_READONLY"
ENV_OPTIONS = "IPY_LAZYCACHE_STORE_OPTIONS"
ENV_TIMEOUT = "IPY_LAZYCACHE_STORE_TIMEOUT"

_NO_REMOTE = ("", "none", "local", "off")


def _protocol(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


class FsspecStore(Store):
    """A store under ``url`` on any fsspec filesystem.

    ``storage_options`` go to the filesystem (credentials normally come the
    usual way: environment, profiles, instance roles). For ``s3://``,
    ``endpoint_url`` (alias ``endpoint``), else ``AWS_ENDPOINT_URL_S3`` or
    ``AWS_ENDPOINT_URL``, reaches an S3-compatible server; ``timeout`` bounds
    the connect and each read, with at most one retry.
    """

    streams = True  # download and put_file stream through fsspec

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT, readonly: bool = False, **storage_options):
        try:
            import fsspec
        except ImportError as exc:  # pragma: no cover - exercised without the extra
            raise ImportError(
                f"a {_protocol(url)}:// cache needs fsspec: pip install 'ipy_lazycache[remote]'", name="fsspec"
            ) from exc
        self.url = url.rstrip("/")
        self.timeout = float(timeout) if timeout else DEFAULT_TIMEOUT
        self.writable = not readonly
        protocol = _protocol(url)
        opts = dict(storage_options)
        if protocol in ("s3", "s3a"):
            endpoint = (
                opts.pop("endpoint", None)
                or opts.pop("endpoint_url", None)
                or os.environ.get("AWS_ENDPOINT_URL_S3")
                or os.environ.get("AWS_ENDPOINT_URL")
            )
            if endpoint:
                opts["endpoint_url"] = endpoint
            config = dict(opts.pop("config_kwargs", None) or {})
            config.setdefault("connect_timeout", self.timeout)
            config.setdefault("read_timeout", self.timeout)
            config.setdefault("retries", {"max_attempts": 1, "mode": "standard"})
            opts["config_kwargs"] = config
        # Our own instance: the timeouts and retries below must not leak into
        # (or come from) filesystems the notebook itself uses.
        opts.setdefault("skip_instance_cache", True)
        fs, root = fsspec.core.url_to_fs(url, **opts)
        if hasattr(type(fs), "retries"):
            fs.retries = 2  # s3fs retries on its own, with backoff; a fallback beats waiting
        self.fs = fs
        self.root = root.rstrip("/")
        self._async = bool(getattr(fs, "async_impl", False))
        self._rename = protocol in ("file", "local")  # only local files can be torn mid-write
        import inspect

        params = inspect.signature(fs._cat_file if self._async else fs.cat_file).parameters
        # s3fs would HEAD each object first to split large ones into ranges:
        # one extra round trip per blob. Blobs are fetched concurrently anyway.
        self._cat_kw = {"max_concurrency": 1} if "max_concurrency" in params else {}

    # -- plumbing ----------------------------------------------------------------
    def _full(self, key: str) -> str:
        return f"{self.root}/{validate_key(key)}" if self.root else validate_key(key)

    def _run(self, name, *args, deadline=None, **kwargs):
        """Call a filesystem method; async ones run on fsspec's loop with a
        wall-clock deadline (a coroutine past it is cancelled)."""
        if self._async:
            from fsspec.asyn import sync

            return sync(self.fs.loop, getattr(self.fs, "_" + name), *args, timeout=deadline, **kwargs)
        return getattr(self.fs, name)(*args, **kwargs)

    def _gather(self, make, items, deadline=None):
        """Run ``make(item)`` for each item, concurrently on async filesystems.
        Returns results in order; exceptions are returned, not raised."""
        items = list(items)
        if not self._async:
            out = []
            for item in items:
                try:
                    out.append(make(item, False))
                except Exception as exc:
                    out.append(exc)
            return out
        from fsspec.asyn import sync

        async def run_all():
            gate = asyncio.Semaphore(MAX_CONCURRENCY)

            async def one(item):
                async with gate:
                    return await make(item, True)

            return await asyncio.gather(*(one(i) for i in items), return_exceptions=True)

        return sync(self.fs.loop, run_all, timeout=deadline)

    def _deadline(self, nbytes=None):
        return self.timeout if nbytes is None else self.timeout + nbytes / MIN_RATE

    def _check_writable(self):
        if not self.writable:
            raise PermissionError(f"{self.url} is read-only here")

    # -- the interface -------------------------------------------------------------
    def _cat(self, path: str, cap: int, is_async: bool):
        """Read ``path``, at most ``cap`` bytes (one byte more tells a
        larger object apart), as a coroutine on async filesystems."""
        kw = dict(self._cat_kw, start=0, end=cap + 1) if cap else self._cat_kw
        return self.fs._cat_file(path, **kw) if is_async else self.fs.cat_file(path, **kw)

    def get(self, key):
        return self.get_many([key])[key]

    def get_many(self, keys, sizes=None):
        """Each body is capped (a blob at its declared size, anything else
        at :data:`.base.SMALL_CAP`) and the whole call has one deadline."""
        keys = list(keys)
        caps = {k: cap_for(k, sizes) for k in keys}

        def make(key, is_async):
            return self._cat(self._full(key), caps[key], is_async)

        deadline = self._deadline(sum(caps.values()) if sizes else None)
        results = self._gather(make, keys, deadline=deadline)
        out = {}
        for key, res in zip(keys, results):
            if isinstance(res, FileNotFoundError):
                out[key] = None
            elif isinstance(res, BaseException):
                raise res
            elif len(res) > caps[key]:
                raise TooLarge(0, f"{key} is larger than the {caps[key]} bytes expected")
            else:
                out[key] = res
        return out

    def download(self, targets: dict, sizes: dict | None = None) -> set:
        """Stream each ``key`` into the local file ``targets[key]`` without
        holding it in memory; returns the keys that existed. With ``sizes``,
        an object of another size is refused before its body is read."""
        items = list(targets.items())
        fs = self.fs

        async def fetch(path, lpath, size):
            if size is not None:
                found = (await fs._info(path)).get("size")
                if found != size:
                    raise TooLarge(0, f"{path} has {found} bytes, {size} expected")
            return await fs._get_file(path, lpath)

        def make(item, is_async):
            key, lpath = item
            path, size = self._full(key), (sizes or {}).get(key)
            if is_async:
                return fetch(path, os.fspath(lpath), size)
            if size is not None and fs.info(path).get("size") != size:
                raise TooLarge(0, f"{path} does not have the {size} bytes expected")
            return fs.get_file(path, os.fspath(lpath))

        total = sum((sizes or {}).get(k, 0) for k in targets)
        done = set()
        for (key, _), res in zip(items, self._gather(make, items, deadline=self._deadline(total))):
            if isinstance(res, FileNotFoundError):
                continue
            if isinstance(res, BaseException):
                raise res
            done.add(key)
        return done

    def put(self, key, data):
        self._check_writable()
        path = self._full(key)
        payload = join(data) if len(chunks(data)) > 1 else bytes(chunks(data)[0])
        if self._rename:
            tmp = self._temp(path)
            self._run("pipe_file", tmp, payload)
            self._run("mv", tmp, path)
        else:
            self._run("pipe_file", path, payload, deadline=self._deadline(len(payload)))

    def put_file(self, key, local_path):
        """Upload a local file (multipart for large ones), streaming from disk."""
        self._check_writable()
        path = self._full(key)
        if self._rename:
            tmp = self._temp(path)
            self._run("put_file", os.fspath(local_path), tmp)
            self._run("mv", tmp, path)
        else:
            size = os.path.getsize(local_path)
            self._run("put_file", os.fspath(local_path), path, deadline=self._deadline(size))

    def _temp(self, path):
        head, _, tail = path.rpartition("/")
        self.fs.makedirs(head, exist_ok=True)
        return f"{head}/.tmp-{uuid.uuid4().hex}-{tail}"

    def has(self, key):
        try:
            self._run("info", self._full(key), deadline=self._deadline())
        except FileNotFoundError:
            return False
        return True

    def delete(self, key):
        if not self.writable:
            return
        try:
            self._run("rm_file", self._full(key), deadline=self._deadline())
        except FileNotFoundError:
            pass

    def keys(self, prefix=""):
        head = prefix.rpartition("/")[0]
        base = f"{self.root}/{head}".rstrip("/") if head else self.root
        try:
            found = self._run("find", base, deadline=self._deadline())
        except FileNotFoundError:
            return iter(())
        strip = self.fs._strip_protocol(self.root).rstrip("/") + "/" if self.root else ""
        out = []
        for path in found:
            rel = path.removeprefix(strip)
            if rel.startswith(prefix) and not rel.rpartition("/")[2].startswith(".tmp-"):
                out.append(rel)
        return iter(out)

    def stats(self, prefix: str = "") -> dict:
        """``{key: (size, modification time)}`` from one listing, no body read
        (for pruning: a blob left by a failed upload shows its age)."""
        head = prefix.rpartition("/")[0]
        base = f"{self.root}/{head}".rstrip("/") if head else self.root
        try:
            found = self._run("find", base, detail=True, deadline=self._deadline())
        except FileNotFoundError:
            return {}
        strip = self.fs._strip_protocol(self.root).rstrip("/") + "/" if self.root else ""
        out = {}
        for path, info in found.items():
            rel = path[len(strip):] if path.startswith(strip) else path
            if rel.startswith(prefix):
                out[rel] = (int(info.get("size") or 0), _mtime(info))
        return out

    def describe(self):
        return self.url


def _mtime(info: dict) -> float:
    """A listing entry's modification time in seconds, whatever the backend
    calls it; now when it has none (so nothing looks old enough to remove)."""
    for name in ("LastModified", "mtime", "last_modified", "updated", "created"):
        value = info.get(name)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return value.timestamp()
        try:
            return float(value)
        except (TypeError, ValueError):
            try:
                from datetime import datetime

                return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return time.time()


# ----------------------------------------------------------------------------
# Configuration


def settings(url=None, readonly=None, options=None, timeout=None) -> dict | None:
    """The remote store settings: explicit values, else the environment
    (``IPY_LAZYCACHE_STORE``, ``_READONLY``, ``_OPTIONS`` as JSON, ``_TIMEOUT``).
    None when no remote is configured (``none``/``local`` turn it off).
    Raises :class:`BadSetting` for values that cannot be used."""
    url = url if url is not None else os.environ.get(ENV_URL, "")
    if url.strip().lower() in _NO_REMOTE:
        return None
    if readonly is None:
        readonly = os.environ.get(ENV_READONLY, "").strip().lower() in ("1", "true", "yes", "on")
    if options is None:
        import json

        raw = os.environ.get(ENV_OPTIONS, "")
        try:
            options = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError):
            options = None
        if not isinstance(options, dict):
            raise BadSetting(f"${ENV_OPTIONS} must be a JSON object, not {raw[:60]!r}") from None
    if not isinstance(options, dict):
        raise BadSetting(f"store options must be a dict, not {type(options).__name__}")
    if not timeout:
        raw = os.environ.get(ENV_TIMEOUT, "").strip()
        try:
            timeout = float(raw) if raw else DEFAULT_TIMEOUT
        except ValueError:
            raise BadSetting(f"${ENV_TIMEOUT} must be a number of seconds, not {raw[:60]!r}") from None
        if not (0 < timeout < 1e6):
            raise BadSetting(f"${ENV_TIMEOUT} must be a positive number of seconds, not {raw[:60]!r}")
    return {"url": url.strip(), "readonly": bool(readonly), "options": dict(options), "timeout": float(timeout)}


def remote_tier(url, readonly=False, options=None, timeout=DEFAULT_TIMEOUT) -> Guarded:
    """The guarded remote tier for ``url``; built lazily, so a missing fsspec
    or package, a ``file://`` folder that is not there, or a bad URL is one
    warning at first use, not an error now (see :mod:`.preflight`)."""
    from .preflight import check

    options = dict(options or {})

    def make():
        check(url)  # a missing package or folder is named; nothing is created
        return FsspecStore(url, timeout=timeout, readonly=readonly, **options)

    return Guarded(
        url,
        make,
        readonly=readonly,
        timeout=timeout,
    )
