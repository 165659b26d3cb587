"""The on-disk schema of one entry: ``<key>/manifest.json``.

The manifest is written last, so its presence is the commit marker of an
entry. It lists every blob with its size and integrity digest; a restore
trusts nothing that is not listed here with a matching digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
import time

from .hashing import digest_chunks, digest_file

#: What a cache key looks like (xxh3-128 as hex): an entry folder's name.
KEY_RE = re.compile(r"^[0-9a-f]{32}$")

#: Bumped when the schema changes; entries of a newer format are misses.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class CorruptEntry(Exception):
    """An entry that must not be restored: it is evicted and the cell re-runs."""


def check_blob(name: str, blob: dict, data, sha256: bool = False) -> None:
    """Raise :class:`CorruptEntry` unless ``data`` (bytes, or a local path)
    is the blob the manifest lists; ``sha256`` also checks the signed digest."""
    if data is None:
        raise CorruptEntry(f"blob {name} is missing")
    is_path = not isinstance(data, (bytes, bytearray, memoryview))
    size = os.path.getsize(data) if is_path else len(data)
    if size != blob.get("size"):
        raise CorruptEntry(f"blob {name} has {size} bytes, the manifest says {blob.get('size')}")

    def digest(**new):
        return digest_file(data, **new) if is_path else digest_chunks([data], **new)

    if digest() != blob.get("digest"):
        raise CorruptEntry(f"blob {name} does not match its digest")
    if sha256 and digest(new=hashlib.sha256) != blob.get("sha256"):
        raise CorruptEntry(f"blob {name} does not match its signed SHA-256 digest")


def manifest_key(key: str) -> str:
    return f"{key}/{MANIFEST}"


def producer() -> dict:
    """What produced an entry; informational (keys never depend on it)."""
    from . import __version__

    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": sys.platform,
        "ipy_lazycache": __version__,
    }


def new(key: str, source: str) -> dict:
    return {
        "format": FORMAT_VERSION,
        "key": key,
        "created": time.time(),
        "producer": producer(),
        "source": source,
        "duration": None,
        "blobs": {},
        "defs": {},
        "deleted": [],
        "mutated": [],
        "outputs": [],
        "result": None,
    }


def dumps(manifest: dict) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def loads(data: bytes, key: str) -> dict:
    """Parse and sanity-check a manifest; raise :class:`CorruptEntry`."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptEntry(f"manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise CorruptEntry("manifest is not a JSON object")
    fmt = manifest.get("format")
    if fmt != FORMAT_VERSION:
        raise CorruptEntry(f"manifest format {fmt!r} is not supported by this version ({FORMAT_VERSION})")
    if manifest.get("key") != key:
        raise CorruptEntry("manifest belongs to another key")
    for field in ("blobs", "defs", "deleted", "outputs"):
        if field not in manifest:
            raise CorruptEntry(f"manifest has no {field!r}")
    return manifest


def first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()
    return ""
