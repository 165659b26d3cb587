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
        shape, fortran, dtype, offset = _npy_header(mapped)
        if dtype.hasobject:
            raise ValueError("object arrays are not stored as .npy")
        return np.ndarray(shape, dtype, buffer=mapped, offset=offset, order="F" if fortran else "C")


#: Parsed ``.npy`` headers by their bytes: numpy parses one with
#: ``ast.literal_eval`` (a compile), the largest cost of a warm array hit.
_HEADERS: dict = {}


def _npy_header(mapped):
    """``(shape, fortran, dtype, data offset)`` of a mapped ``.npy`` file."""
    import numpy as np

    # magic (6 bytes), version (2), header length (2 bytes in 1.0, 4 after), header
    width = 2 if mapped[6:7] == b"\x01" else 4
    end = 8 + width + int.from_bytes(mapped[8:8 + width], "little")
    prefix = bytes(mapped[:end]) if end <= 65536 else None
    known = _HEADERS.get(prefix)
    if known is not None:
        return known
    fmt = np.lib.format
    mapped.seek(0)
    version = fmt.read_magic(mapped)
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read_header(mapped)
    parsed = (shape, fortran, dtype, mapped.tell())
    if prefix is not None and parsed[3] == end:  # numpy read just these bytes: they are the key
        if len(_HEADERS) >= 256:
            _HEADERS.clear()
        _HEADERS[prefix] = parsed
    return parsed


register(NumpyCodec(), first=False)
