"""The on-disk schema of one entry: ``<key>/manifest.json``.

The manifest is written last, so its presence is the commit marker of an
entry. It lists every blob with its size and integrity digest; a restore
trusts nothing that is not listed here with a matching digest.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import sys
import time

from .hashing_base import digest_chunks

#: What a cache key looks like (xxh3-128 as hex): an entry folder's name.
KEY_RE = re.compile(r"^[0-9a-f]{32}$")

#: Bumped when the schema changes; entries of a newer format are misses.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class CorruptEntry(Exception):
    """An entry that must not be restored: it is evicted and the cell re-runs."""


def check_blob(name: str, blob: dict, data, sha256: bool = False) -> None:
    """Raise :class:`CorruptEntry` unless ``data`` is the blob the manifest
    lists; ``sha256`` also checks the signed digest.

    ``data`` is what will be decoded: bytes-like (a memory map included) or
    an open binary file, read from its start. Never a path: a check by path
    and a second open to decode leave a window to swap the file in between.
    """
    if data is None:
        raise CorruptEntry(f"blob {name} is missing")
    is_file = not isinstance(data, (bytes, bytearray, memoryview, mmap.mmap))
    size = os.fstat(data.fileno()).st_size if is_file else len(data)
    if size != blob.get("size"):
        raise CorruptEntry(f"blob {name} has {size} bytes, the manifest says {blob.get('size')}")

    def digest(**new):
        if not is_file:
            return digest_chunks([data], **new)
        data.seek(0)
        return digest_chunks(iter(lambda: data.read(1 << 22), b""), **new)

    if digest() != blob.get("digest"):
        raise CorruptEntry(f"blob {name} does not match its digest")
    if sha256 and digest(new=_sha256()) != blob.get("sha256"):
        raise CorruptEntry(f"blob {name} does not match its signed SHA-256 digest")


def _sha256():
    import hashlib  # signed entries only: OpenSSL takes milliseconds to load

    return hashlib.sha256


def manifest_key(key: str) -> str:
    return f"{key}/{MANIFEST}"


def producer() -> dict:
    """What produced an entry; informational (keys never depend on it)."""
    import platform

    from .version import __version__

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
    """Parse a manifest and validate it against the schema (:func:`validate`);
    raise :class:`CorruptEntry`. Nothing may use a field before this."""
    if data is None:
        raise CorruptEntry("manifest is missing")
    if len(data) > MAX_MANIFEST_BYTES:
        raise CorruptEntry(f"manifest is larger than {MAX_MANIFEST_BYTES >> 20} MiB")
    try:
        manifest = json.loads(data)
    except RecursionError:
        raise CorruptEntry("manifest is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptEntry(f"manifest is not valid JSON ({exc})") from None
    seen = (key, bytes(data))
    if seen not in _VALID:  # validation depends on the bytes and the key alone
        validate(manifest, key)
        if len(data) <= _VALID_BYTES:
            if len(_VALID) >= 256:
                _VALID.clear()
            _VALID.add(seen)
    return manifest


#: (key, bytes) of manifests that passed :func:`validate`: a hit of an entry
#: read before (every warm hit) parses it but skips the schema walk.
_VALID: set = set()
_VALID_BYTES = 1 << 16


# ----------------------------------------------------------------------------
# Schema. Checked in one place, so code that reads a manifest can trust the
# type of every field it uses; unknown top-level keys are allowed (newer
# writers add fields) and ignored.

#: Reading stops here: a manifest lists blobs, it does not hold them.
MAX_MANIFEST_BYTES = 64 << 20
#: A blob larger than this (1 PiB) is a forged size, not data.
MAX_BLOB_BYTES = 1 << 50
#: Nesting beyond this is refused (outputs are JSON mime bundles; a real
#: one is a few levels deep), so no later walk can hit RecursionError.
MAX_DEPTH = 64

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_RESERVED = (MANIFEST, "used")


class _Bad(Exception):
    pass


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise _Bad(what)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _strs(v, what: str) -> None:
    _need(isinstance(v, list) and all(isinstance(x, str) for x in v), f"{what} must be a list of strings")


def _depth_ok(value) -> bool:
    """Iteratively: no JSON container nested deeper than MAX_DEPTH."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > MAX_DEPTH:
                return False
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return True


def _bundle(v, what: str) -> None:
    _need(isinstance(v, dict), f"{what} must be an object")
    _need(isinstance(v.get("data", {}), dict) and isinstance(v.get("metadata", {}), dict),
          f"{what} needs data and metadata objects")


def _blob(key: str, name, b) -> None:
    from .stores.base import InvalidKey, validate_key

    try:
        validate_key(f"{key}/{name}")
    except InvalidKey:
        raise _Bad(f"blob name {str(name)[:40]!r} is not a safe file name") from None
    _need("/" not in name and name not in _RESERVED, f"blob name {name!r} is reserved")
    _need(isinstance(b, dict), f"blob {name} must be an object")
    _need(isinstance(b.get("codec"), str), f"blob {name} has no codec")
    _strs(b.get("defs"), f"blob {name}'s defs")
    _need(_is_int(b.get("size")) and 0 <= b["size"] <= MAX_BLOB_BYTES, f"blob {name} has no valid size")
    _need(isinstance(b.get("digest"), str) and bool(_HEX32.match(b["digest"])), f"blob {name} has no valid digest")
    _need(isinstance(b.get("sha256", ""), str), f"blob {name}'s sha256 must be a string")
    needs = b.get("needs", [])
    _need(isinstance(needs, list) and all(
        isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], str) for p in needs
    ), f"blob {name}'s needs must be [kind, name] pairs")
    _strs(b.get("modules", []), f"blob {name}'s modules")
    aliases = b.get("aliases", {})
    _need(isinstance(aliases, dict), f"blob {name}'s aliases must be an object")
    for names in aliases.values():
        _strs(names, f"blob {name}'s aliases")


def _check(m, key: str) -> None:
    _need(isinstance(m, dict), "manifest is not a JSON object")
    fmt = m.get("format")
    _need(fmt == FORMAT_VERSION and _is_int(fmt),
          f"manifest format {fmt!r} is not supported by this version ({FORMAT_VERSION})")
    _need(m.get("key") == key, "manifest belongs to another key")
    for name in ("blobs", "defs", "deleted", "outputs"):
        _need(name in m, f"manifest has no {name!r}")
    _need(_depth_ok(m), f"manifest is nested more than {MAX_DEPTH} levels deep")
    _need(isinstance(m["blobs"], dict), "'blobs' must be an object")
    for name, b in m["blobs"].items():
        _blob(key, name, b)
    _need(isinstance(m["defs"], dict), "'defs' must be an object")
    for name, d in m["defs"].items():
        _need(isinstance(d, dict), f"def {name!r} must be an object")
        _need(d.get("hash") is None or isinstance(d["hash"], str), f"def {name!r} has a bad hash")
        _need(isinstance(d.get("type", ""), str), f"def {name!r} has a bad type")
    _strs(m["deleted"], "'deleted'")
    _strs(m.get("mutated", []), "'mutated'")
    _need(isinstance(m["outputs"], list), "'outputs' must be a list")
    for out in m["outputs"]:
        _need(isinstance(out, dict) and isinstance(out.get("output_type"), str), "each output needs an output_type")
        if out["output_type"] == "stream":
            _need(isinstance(out.get("text"), str) and isinstance(out.get("name", ""), str),
                  "a stream output needs text")
        elif out["output_type"] in ("display_data", "execute_result"):
            _bundle(out, "a display output")
    if m.get("result") is not None:
        _bundle(m["result"], "'result'")
    _need(m.get("result_name") is None or isinstance(m["result_name"], str), "'result_name' must be a string")
    _need(isinstance(m.get("source", ""), str), "'source' must be a string")
    _need(m.get("duration") is None or (_is_num(m["duration"]) and m["duration"] >= 0), "'duration' must be seconds")
    _need(m.get("created") is None or _is_num(m["created"]), "'created' must be a time")
    for name in ("producer", "signature", "effects", "parts"):
        _need(isinstance(m.get(name, {}), dict), f"{name!r} must be an object")
    _files(m)
    requires = m.get("requires", {})
    _need(isinstance(requires, dict) and all(isinstance(v, str) for v in requires.values()),
          "'requires' must map names to strings")


def safe_relative_path(path) -> bool:
    """A path a hit may write: relative, ``/``-separated, no ``..``, no empty
    or ``.`` part, no NUL, no backslash or drive (Windows)."""
    return (isinstance(path, str) and 0 < len(path) <= 4096 and "\x00" not in path and "\\" not in path
            and not path.startswith("/") and path[1:2] != ":"
            and all(p not in ("", ".", "..") for p in path.split("/")))


def _files(m) -> None:
    """The files a hit puts back (:mod:`.core.file_effects`): each a path in
    the working folder, absent, a folder or a listed blob of codec ``file``."""
    files = m.get("files", {})
    _need(isinstance(files, dict), "'files' must be an object")
    for path, state in files.items():
        _need(safe_relative_path(path), f"file path {str(path)[:60]!r} is not inside the working folder")
        _need(isinstance(state, dict) and (
            state.get("absent") is True or state.get("dir") is True
            or (isinstance(state.get("blob"), str) and m["blobs"].get(state["blob"], {}).get("codec") == "file")
        ), f"file {path!r} has no valid state")


def validate(manifest, key: str) -> dict:
    """Raise :class:`CorruptEntry` unless ``manifest`` has the schema of an
    entry for ``key``: types, sizes, safe blob names and bounded nesting."""
    try:
        _check(manifest, key)
    except _Bad as exc:
        raise CorruptEntry(str(exc)) from None
    return manifest


def first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()
    return ""
