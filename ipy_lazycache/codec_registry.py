"""The codec registry: which codec stores a top-level def, chosen by the
value's type *name* (so choosing one never imports numpy, pandas or
pyarrow). Codecs register themselves here (:mod:`.codecs_numpy`,
:mod:`.codecs_arrow`); :mod:`.codecs` loads them all."""

from __future__ import annotations

import mmap


def _type_path(value) -> str:
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}"


class Codec:
    """One way of storing a top-level def. ``modules`` must import to decode."""

    name = ""
    ext = ""
    modules: tuple[str, ...] = ()
    #: Whether ``decode`` may be given a local file path to memory-map.
    mmap = False

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def encode(self, value) -> list:
        """Bytes-like chunks; the store writes them without joining."""
        raise NotImplementedError

    def decode(self, data, mapped=None):
        """From ``data`` (bytes), or from ``mapped``: a copy-on-write
        ``mmap`` of the very file the cache checked (or, for tests, a path)."""
        raise NotImplementedError


def as_mapping(mapped):
    """``mapped`` as a copy-on-write mmap; a path is opened and mapped here."""
    if mapped is None or isinstance(mapped, mmap.mmap):
        return mapped
    with open(mapped, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)


#: Codecs tried in order for each top-level def; pickle is the fallback.
CODECS: list[Codec] = []


def register(codec: Codec, first=True):
    """Add a codec (e.g. Arrow for data frames) ahead of the built-ins."""
    CODECS.insert(0 if first else len(CODECS), codec)


def codec_for(value) -> Codec | None:
    for codec in CODECS:
        try:
            if codec.accepts(value):
                return codec
        except Exception:
            continue
    return None


def codec_named(name: str) -> Codec | None:
    return next((c for c in CODECS if c.name == name), None)
