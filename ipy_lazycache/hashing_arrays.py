"""Hashing numpy arrays and scalars: dtype, shape, layout and the bytes."""

from __future__ import annotations

from .hashing_base import _int_bytes, _tag


def _feed_numpy(h, arr, order: bool = False):
    """dtype, shape, (``order``: C or Fortran layout) and the bytes in C order."""
    import numpy as np

    if arr.dtype.hasobject:
        raise TypeError("object array")
    dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    _tag(h, b"A", dtype.str.replace("=", "<").replace("|", "<").encode())
    if _big_endian(arr.dtype):  # equal values, other bytes (tobytes, .view, buffers): keyed
        _tag(h, b"B", repr(arr.dtype.descr).encode())
    if dtype.fields is not None or dtype.subdtype is not None:
        # '|V8' alone would not tell [('a','<i4'),('b','<i4')] from ('<f8').
        _tag(h, b"V", repr(dtype.newbyteorder("<").descr).encode())
        if dtype.fields is not None and arr.dtype.byteorder != ">":
            dtype = dtype.newbyteorder("<")
    _tag(h, b"S", b"".join(_int_bytes(n) + b"," for n in arr.shape))
    if order:  # np.ascontiguousarray, .flags and .strides tell them apart
        _tag(h, b"o", b"F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else b"C")
    if dtype != arr.dtype:
        arr = arr.astype(dtype)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)  # a copy, only for strided views
    # A uint8 view hashes the buffer in place, whatever the dtype (datetimes
    # and structured dtypes do not export a plain buffer).
    h.update(arr.reshape(-1).view(np.uint8))


def _big_endian(dtype) -> bool:
    """Whether ``dtype``, or a field or subarray of it, stores big-endian."""
    if dtype.byteorder == ">":
        return True
    if dtype.fields is not None:
        return any(_big_endian(f[0]) for f in dtype.fields.values())
    return dtype.subdtype is not None and _big_endian(dtype.subdtype[0])


def _feed_array(h, obj, hasher, np):
    """numpy arrays and scalars; subclasses by their class and attributes too."""
    t = type(obj)
    _tag(h, b"n", t.__name__.encode())
    if t.__module__ != "numpy":
        hasher(h, t)
    if isinstance(obj, np.ndarray) and not obj.flags.writeable:  # a write raises: observable
        _tag(h, b"ro")
    arr = np.asarray(obj)
    if arr.dtype.hasobject:
        _tag(h, b"S", b"".join(_int_bytes(n) + b"," for n in arr.shape))
        hasher(h, arr.reshape(-1).tolist())
    else:
        _feed_numpy(h, arr, order=True)
    state = getattr(obj, "__dict__", None)
    if state and t.__module__ != "numpy":
        hasher(h, dict(state))
