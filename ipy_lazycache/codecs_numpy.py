"""``.npy`` blobs for numpy arrays, memory-mapped from a local file."""

from __future__ import annotations

import io

from .codec_registry import Codec, _type_path, as_mapping, register


class NumpyCodec(Codec):
    """``.npy``; from a local file it is memory-mapped copy-on-write, so a
    restore is O(1) in size and the user can still write to the array."""

    name, ext, modules = "npy", "npy", ("numpy",)
    mmap = True

    def accepts(self, value):
        # A read-only array is pickled (:func:`.pickling._reduce_array`):
        # a ``.npy`` file cannot say that the array was read-only.
        return _type_path(value) == "numpy.ndarray" and not value.dtype.hasobject and value.flags.writeable

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
        shape, fortran, dtype, offset = _npy_header(data if mapped is None else mapped)
        if dtype.hasobject:
            raise ValueError("object arrays are not stored as .npy")
        order = "F" if fortran else "C"
        if mapped is not None:
            # A view of the mapping the cache checked (the mmap stays alive
            # as its base): writable, its writes private (ACCESS_COPY), pages
            # read on touch. Only large blobs come here (restore.py maps
            # them): a zero-copy restore is worth not owning the memory.
            return np.ndarray(shape, dtype, buffer=mapped, offset=offset, order=order)
        # From bytes: an array that owns its memory, as the run's did
        # (``a.resize(...)`` works, ``a.base is None``), not a view of them.
        out = np.empty(shape, dtype, order=order)
        if out.nbytes:
            out.reshape(-1, order="A").view(np.uint8)[:] = np.frombuffer(data, np.uint8, out.nbytes, offset)
        return out


#: Parsed ``.npy`` headers by their bytes: numpy parses one with
#: ``ast.literal_eval`` (a compile), the largest cost of a warm array hit.
_HEADERS: dict = {}


def _npy_header(buf):
    """``(shape, fortran, dtype, data offset)`` of a ``.npy`` file's bytes or mapping."""
    import numpy as np

    # magic (6 bytes), version (2), header length (2 bytes in 1.0, 4 after), header
    width = 2 if buf[6:7] == b"\x01" else 4
    end = 8 + width + int.from_bytes(buf[8:8 + width], "little")
    if end > 65536:  # numpy refuses headers past 10 000 bytes anyway
        raise ValueError("the .npy header is too large")
    prefix = bytes(buf[:end])
    known = _HEADERS.get(prefix)
    if known is not None:
        return known
    fmt = np.lib.format
    head = io.BytesIO(prefix)
    version = fmt.read_magic(head)
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read_header(head)
    parsed = (shape, fortran, dtype, head.tell())
    if parsed[3] == end:  # numpy read just these bytes: they are the key
        if len(_HEADERS) >= 256:
            _HEADERS.clear()
        _HEADERS[prefix] = parsed
    return parsed


register(NumpyCodec(), first=False)
