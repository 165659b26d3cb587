"""Content hashes of data frames at memory speed.

Part of the key encoding of :mod:`.hashing` (type-tagged, length-prefixed,
little-endian), so the same frame gives the same hash on every platform and
whichever library computes it. Columns are fed from their buffers:

- fixed-size numpy columns: dtype, shape and the raw bytes (``_feed_numpy``);
- strings (``str`` dtype, ``string``, object columns holding only ``str``,
  Arrow strings): ``count``, then every length as int64 (-1 for missing),
  then the UTF-8 bytes back to back. pyarrow computes this from its buffers
  when present; a plain loop gives the same bytes where it is not;
- categoricals: ordered flag, categories (as an index), codes;
- tz-aware datetimes: dtype, time zone and int64 instants;
- nullable (masked) columns: the mask and the data with missing slots zeroed;
- anything else: its values as Python objects, as before.

The index (RangeIndex by its range, MultiIndex by its levels and codes), the column
labels (as an index, so ``1`` and ``"1"`` differ), every dtype, the Series
name and ``attrs`` are part of the hash.
"""

from __future__ import annotations

from array import array

_LE = b"<"


def _n(n: int) -> bytes:
    return int(n).to_bytes(8, "little", signed=True)


def feed_pandas(h, obj, hasher, tag, feed_numpy):
    import pandas as pd

    if isinstance(obj, pd.Series):
        tag(h, b"PS")
        hasher(h, obj.name)
        tag(h, b"t", str(obj.dtype).encode())
        feed_index(h, obj.index, hasher, tag, feed_numpy)
        feed_column(h, obj, obj.dtype, hasher, tag, feed_numpy)
    else:
        tag(h, b"PD", _n(obj.shape[1]))
        feed_index(h, obj.columns, hasher, tag, feed_numpy)
        dtypes = list(obj.dtypes)
        for dtype in dtypes:
            tag(h, b"t", str(dtype).encode())
        feed_index(h, obj.index, hasher, tag, feed_numpy)
        for i, dtype in enumerate(dtypes):
            feed_column(h, obj.iloc[:, i], dtype, hasher, tag, feed_numpy)
    hasher(h, dict(obj.attrs))
    if not obj.flags.allows_duplicate_labels:  # operations that would duplicate a label raise
        tag(h, b"FD")


def feed_index(h, index, hasher, tag, feed_numpy):
    import numpy as np
    import pandas as pd

    if type(index) is pd.RangeIndex:
        tag(h, b"RI", _n(index.start) + _n(index.stop) + _n(index.step))
        hasher(h, index.name)
        return
    if isinstance(index, pd.MultiIndex):
        # By levels and codes, not the values they give: the levels are
        # observable (``.levels``, unused values after a selection, their order).
        tag(h, b"ML", _n(index.nlevels))
        hasher(h, list(index.names))
        for level, codes in zip(index.levels, index.codes):
            feed_index(h, level, hasher, tag, feed_numpy)
            feed_numpy(h, np.asarray(codes))
        return
    tag(h, b"IX", type(index).__name__.encode())
    hasher(h, index.name)
    tag(h, b"t", str(index.dtype).encode())
    freq = getattr(index, "freq", None)
    if freq is not None:
        tag(h, b"q", str(freq).encode())
    feed_column(h, index, index.dtype, hasher, tag, feed_numpy)


def _masked_dtype():
    try:
        from pandas.core.dtypes.dtypes import BaseMaskedDtype
    except ImportError:  # pragma: no cover - older pandas
        return ()
    return BaseMaskedDtype


def feed_column(h, values, dtype, hasher, tag, feed_numpy):
    """One column's (or index's) values, with ``dtype`` already in the key."""
    import numpy as np
    import pandas as pd

    ext = values.array if hasattr(values, "array") else values
    if isinstance(dtype, np.dtype):
        arr = np.asarray(ext)
        if not dtype.hasobject:
            feed_numpy(h, arr)
            return
        if arr.size and set(map(type, arr.ravel())) == {str}:
            feed_strings(h, arr, tag)
            return
        hasher(h, arr.tolist())
        return
    if isinstance(dtype, pd.CategoricalDtype):
        tag(h, b"KC", b"\x01" if dtype.ordered else b"\x00")
        feed_index(h, dtype.categories, hasher, tag, feed_numpy)
        feed_numpy(h, np.asarray(ext.codes))
        return
    if isinstance(dtype, pd.DatetimeTZDtype):
        tz = dtype.tz
        tag(h, b"KZ", f"{type(tz).__module__}.{type(tz).__qualname__}:{tz}".encode())
        feed_numpy(h, np.asarray(ext.asi8))
        return
    masked = _masked_dtype()
    if masked and isinstance(dtype, masked):
        mask = np.asarray(ext.isna(), dtype=bool)
        zero = False if dtype.numpy_dtype.kind == "b" else 0
        data = ext.to_numpy(dtype=dtype.numpy_dtype, na_value=zero)
        tag(h, b"KM")
        feed_numpy(h, mask)
        feed_numpy(h, data)
        return
    if isinstance(dtype, pd.StringDtype) or _is_arrow_string(dtype):
        feed_strings(h, ext, tag)
        return
    arr = np.asarray(ext.to_numpy() if hasattr(ext, "to_numpy") else ext)
    if arr.dtype.hasobject:
        hasher(h, arr.tolist())
    else:
        feed_numpy(h, arr)


def _is_arrow_string(dtype) -> bool:
    pa_type = getattr(dtype, "pyarrow_dtype", None)
    if pa_type is None:
        return False
    import pyarrow as pa

    return pa.types.is_string(pa_type) or pa.types.is_large_string(pa_type) or pa.types.is_string_view(pa_type)


def feed_strings(h, values, tag):
    """Strings (with missing values) as count, int64 lengths (-1 missing) and
    UTF-8 bytes. ``values``: an object ndarray, ExtensionArray or Arrow array."""
    try:
        import pyarrow as pa
    except ImportError:
        pa = None
    if pa is not None:
        try:
            if isinstance(values, (pa.Array, pa.ChunkedArray)):
                arrow = values
            elif hasattr(values, "__arrow_array__"):
                arrow = pa.array(values)
            else:  # an object ndarray of str only (checked by the caller)
                arrow = pa.array(values, type=pa.large_string(), from_pandas=False)
        except Exception:
            arrow = None
        if arrow is not None:
            _feed_arrow_strings(h, arrow, tag)
            return
    _feed_python_strings(h, values, tag)


def _feed_arrow_strings(h, arrow, tag):
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    chunks = [c if pa.types.is_large_string(c.type) else c.cast(pa.large_string()) for c in chunks]
    tag(h, b"U8", _n(sum(len(c) for c in chunks)))
    for c in chunks:  # all lengths first, then all bytes: independent of chunking
        lengths = pc.fill_null(pc.binary_length(c), -1).cast(pa.int64())
        h.update(np.ascontiguousarray(lengths.to_numpy(zero_copy_only=False), dtype="<i8").view(np.uint8))
    for c in chunks:
        if not len(c):
            continue
        if c.null_count:
            c = pc.fill_null(c, "")
        offsets = np.frombuffer(c.buffers()[1], dtype="<i8", count=len(c) + 1, offset=c.offset * 8)
        start, stop = int(offsets[0]), int(offsets[-1])
        if stop > start:
            h.update(memoryview(c.buffers()[2])[start:stop])


def _feed_python_strings(h, values, tag):
    items = list(values.tolist() if hasattr(values, "tolist") else values)
    lengths = array("q")
    encoded = []
    for x in items:
        if isinstance(x, str):
            b = x.encode("utf-8", "surrogatepass")
            lengths.append(len(b))
            encoded.append(b)
        else:  # None, NaN, pd.NA: missing
            lengths.append(-1)
    if lengths.itemsize != 8:  # pragma: no cover
        raise TypeError("array('q') is not 64-bit here")
    import sys

    if sys.byteorder != "little":  # pragma: no cover
        lengths.byteswap()
    tag(h, b"U8", _n(len(items)))
    h.update(lengths.tobytes())
    for b in encoded:
        h.update(b)


# ----------------------------------------------------------------------------
# Arrow tables and polars frames


def feed_arrow_table(h, table, hasher, tag, feed_numpy):
    """Schema, then each column canonically (independent of chunking)."""
    tag(h, b"AT", _n(table.num_columns))
    tag(h, b"s", str(table.schema.remove_metadata()).encode())
    meta = table.schema.metadata or {}
    hasher(h, sorted(meta.items()))
    for col in table.columns:
        feed_arrow_column(h, col, hasher, tag, feed_numpy)


def feed_arrow_column(h, col, hasher, tag, feed_numpy):
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        _feed_arrow_strings(h, col, tag)
        return
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t)) and t.bit_width % 8 == 0:
        tag(h, b"AV", _n(sum(len(c) for c in chunks)))
        for c in chunks:
            valid = np.asarray(c.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            h.update(valid.view(np.uint8))
        width = t.bit_width // 8
        as_int = {1: pa.int8(), 2: pa.int16(), 4: pa.int32(), 8: pa.int64()}.get(width)
        if as_int is None:
            hasher(h, col.to_pylist())
            return
        for c in chunks:
            c = c.view(as_int)  # the same bits; keeps the validity
            if c.null_count:
                c = pc.fill_null(c, 0)
            buf = c.buffers()[1]
            if len(c):
                h.update(memoryview(buf)[c.offset * width : (c.offset + len(c)) * width])
        return
    # Anything else (nested, dictionary, bool, decimal): the values as Python
    # objects. Exact, only slower.
    hasher(h, col.to_pylist())


def feed_polars(h, df, hasher, tag, feed_numpy):
    tag(h, b"PL", str(df.schema).encode())
    # A sorted flag changes results (max() of a column flagged sorted is its
    # last value) and Arrow does not carry it: keyed where one is set.
    flagged = [(i, f) for i, s in enumerate(df.get_columns()) for f in _SORTED if s.flags.get(f)]
    if flagged:
        tag(h, b"PF", ";".join(f"{i}:{f}" for i, f in flagged).encode())
    feed_arrow_table(h, df.to_arrow(), hasher, tag, feed_numpy)


_SORTED = ("SORTED_ASC", "SORTED_DESC")
