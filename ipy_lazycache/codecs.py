"""Values to bytes and back.

Codecs are chosen by the value's type *name*, so choosing one never imports
numpy or pandas for a value that does not use them. Everything without a
special codec goes through pickle protocol 5 (cloudpickle, so functions and
classes defined in the notebook are stored by value).
"""

from __future__ import annotations

import io
import mmap
import pickle
import sys
import types


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


class NumpyCodec(Codec):
    """``.npy``; from a local file it is memory-mapped copy-on-write, so a
    restore is O(1) in size and the user can still write to the array."""

    name, ext, modules = "npy", "npy", ("numpy",)
    mmap = True

    def accepts(self, value):
        return _type_path(value) == "numpy.ndarray" and not value.dtype.hasobject

    def encode(self, value):
        import numpy as np

        fmt = np.lib.format
        meta = fmt.header_data_from_array_1_0(value)
        header = io.BytesIO()
        try:
            fmt.write_array_header_1_0(header, meta)
        except ValueError:  # very large structured dtypes need format 2.0
            header = io.BytesIO()
            fmt.write_array_header_2_0(header, meta)
        if value.flags.c_contiguous or value.flags.f_contiguous:
            body = value.reshape(-1, order="A").view(np.uint8) if value.size else b""
        else:
            body = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
        return [header.getvalue(), body]

    def decode(self, data, mapped=None):
        import numpy as np

        mapped = as_mapping(mapped)
        if mapped is None:
            return np.load(io.BytesIO(data), allow_pickle=False)
        # The array is a view of the mapping the cache checked (the mmap
        # stays alive as its base): a plain ndarray, as the cell made it,
        # writable, its writes private (ACCESS_COPY), pages read on touch.
        fmt = np.lib.format
        mapped.seek(0)
        version = fmt.read_magic(mapped)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(mapped)
        if dtype.hasobject:
            raise ValueError("object arrays are not stored as .npy")
        return np.ndarray(shape, dtype, buffer=mapped, offset=mapped.tell(), order="F" if fortran else "C")


#: Codecs tried in order for each top-level def; pickle is the fallback.
CODECS: list[Codec] = [NumpyCodec()]


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


# ----------------------------------------------------------------------------
# Pickle with persistent references


_ATOMIC = (type(None), bool, int, float, complex, str, bytes)


class _Pickler:
    """cloudpickle's pickler, with two additions:

    - objects that are other top-level names (defs stored elsewhere, refs
      already in the namespace) become persistent references, so identities
      between names survive a restore and a ref is not copied into the blob;
    - the top-level modules of every reduced object are recorded, so a
      restore can tell, before fetching, whether the blob can load here.
    """

    def __new__(cls, file, pids, root_ids):
        import cloudpickle

        class Pickler(cloudpickle.Pickler):
            def persistent_id(self, obj):
                if type(obj) in _ATOMIC or id(obj) in root_ids:
                    return None
                pid = pids.get(id(obj))
                if pid is not None and pid[1] is obj:
                    self.used.add(pid[0])
                    return pid[0]
                return None

            def reducer_override(self, obj):
                mod = getattr(type(obj), "__module__", None)
                if mod:
                    self.modules.add(mod.split(".")[0])
                if isinstance(obj, (type, types.FunctionType)):
                    mod = getattr(obj, "__module__", None)
                    if isinstance(mod, str):
                        self.modules.add(mod.split(".")[0])
                return super().reducer_override(obj)

        p = Pickler(file, protocol=5)
        p.used = set()
        p.modules = set()
        return p


def dumps(value, pids: dict, root_ids=()) -> tuple[bytes, set, set]:
    """Pickle ``value``; ``pids`` maps ``id(obj) -> (pid, obj)``.

    Returns the bytes, the pids used and the top-level modules needed.
    """
    buf = io.BytesIO()
    p = _Pickler(buf, pids, set(root_ids))
    p.dump(value)
    modules = {m for m in p.modules if m not in ("builtins", "__main__", "copyreg", "cloudpickle")}
    return buf.getvalue(), p.used, modules


def loads(data, resolve):
    """Unpickle, resolving persistent references with ``resolve(pid)``."""

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            return resolve(tuple(pid))

    return Unpickler(io.BytesIO(data)).load()


def missing_modules(modules) -> list[str]:
    """Modules a blob needs that cannot be imported here (e.g. in a browser)."""
    import importlib.util

    out = []
    for name in modules:
        if name in sys.modules:
            continue
        try:
            if importlib.util.find_spec(name) is None:
                out.append(name)
        except (ImportError, ValueError):
            out.append(name)
    return sorted(out)


# Arrow IPC for pandas/pyarrow/polars frames (imports none of them until a
# value is one of theirs).
from . import codecs_arrow  # noqa: E402,F401  (registers itself)
