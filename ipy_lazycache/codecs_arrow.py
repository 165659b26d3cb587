"""Arrow IPC for data frames: pandas DataFrame/Series, pyarrow Table, polars.

Chosen by type name, so nothing here imports pandas, pyarrow or polars for a
value that is not one of theirs. Blobs are uncompressed Arrow IPC files; from a
local file they are memory-mapped copy-on-write, so a restore maps pages
instead of reading them, and the user can still modify what was restored
without touching the cache file.

pandas frames are stored column by column under positional field names
(``c0``, ``c1``… and ``i0``… for the index levels). Everything that makes the
frame exact but is small (the column labels as an Index, index class and
names, each column's dtype, ``attrs``, flags) is pickled into the schema
metadata, so labels of any type, duplicate labels, categoricals' categories
and time zones round-trip exactly. Data go through Arrow as follows:

- numpy bool/int/uint/float columns: Arrow primitive arrays (NaN stays NaN,
  bit for bit);
- other fixed-size numpy dtypes (datetime64, timedelta64, complex, big-endian,
  ...): their raw bytes as fixed-size binary, viewed back with the dtype;
- object columns holding only ``str``: Arrow strings;
- categoricals: their codes (the categories are in the pickled dtype);
- tz-aware datetimes: their int64 instants;
- other extension dtypes that speak Arrow (nullable ints, pandas strings,
  ``ArrowDtype``, periods, intervals): ``__arrow_array__``/``__from_arrow__``.

Anything else (object columns with arbitrary Python objects, sparse, ...)
raises :class:`NotArrow` in ``encode``, and the cache pickles the value.
"""

from __future__ import annotations

import io
import pickle

from .codec_registry import CODECS, Codec, _type_path, as_mapping, register

META_KEY = b"ipy_lazycache"
_PANDAS = ("pandas.DataFrame", "pandas.Series", "pandas.core.frame.DataFrame", "pandas.core.series.Series")


class NotArrow(TypeError):
    """The value cannot be stored exactly as Arrow; pickle it instead."""


# ----------------------------------------------------------------------------
# Memory-mapped reading


class _Mapped:
    """A copy-on-write map of an IPC file, with numpy views into it."""

    def __init__(self, mm):
        import pyarrow as pa

        # ACCESS_COPY (see codecs.as_mapping): pages are shared with the page
        # cache until written; a write goes to a private copy, never to the file.
        self.mm = mm
        self.buffer = pa.py_buffer(self.mm) if self.mm is not None else pa.py_buffer(b"")
        self.base = self.buffer.address

    def view(self, buf, dtype, count, offset_items):
        """A writable numpy view of an Arrow buffer that lives in the map."""
        import numpy as np

        dtype = np.dtype(dtype)
        start = buf.address - self.base + offset_items * dtype.itemsize
        if self.mm is None or not (0 <= start <= len(self.mm)):
            raise ValueError("buffer outside the mapped file")
        return np.frombuffer(self.mm, dtype=dtype, count=count, offset=start)


def _read_table(data, mm):
    """(table, mapping or None) from a checked mapping or bytes."""
    import pyarrow as pa

    if mm is not None:
        mapped = _Mapped(mm)
        return pa.ipc.open_file(pa.BufferReader(mapped.buffer)).read_all(), mapped
    return pa.ipc.open_file(pa.BufferReader(pa.py_buffer(data))).read_all(), None


def _write_table(table) -> list:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return [sink.getvalue()]  # a pa.Buffer: bytes-like, no further copy


# ----------------------------------------------------------------------------
# pandas columns


def _column_to_arrow(values, dtype):
    """(arrow array, spec) for one column's values (a Series or an Index)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(dtype, np.dtype):
        arr = np.asarray(values.array if hasattr(values, "array") else values)
        if arr.dtype != dtype:
            raise NotArrow(f"unexpected values for dtype {dtype}")
        if dtype.hasobject:
            if arr.size and set(map(type, arr)) != {str}:  # exactly str: no None, no np.str_
                raise NotArrow("object column with values other than str")
            return pa.array(arr, type=pa.large_string(), from_pandas=False), ("objstr",)
        arr = np.ascontiguousarray(arr)
        if dtype.kind in "iuf" and dtype.isnative and dtype.itemsize in (1, 2, 4, 8) and not (
            dtype.kind == "f" and dtype.itemsize == 1
        ):
            return pa.array(arr, from_pandas=False), ("np", dtype.str)
        if dtype.kind == "b":
            return pa.array(arr, from_pandas=False), ("bool",)
        if dtype.itemsize == 0:
            raise NotArrow("zero-size dtype")
        raw = arr.view(np.uint8).reshape(-1) if arr.size else np.empty(0, np.uint8)
        arrow = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(dtype.itemsize), len(arr), [None, pa.py_buffer(raw)]
        )
        return arrow, ("raw", dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        codes = np.asarray(values.array.codes if hasattr(values, "array") else values.codes)
        codes = np.ascontiguousarray(codes)
        return pa.array(codes, from_pandas=False), ("cat", codes.dtype.str)
    if isinstance(dtype, pd.DatetimeTZDtype):
        i8 = np.ascontiguousarray(values.array.asi8 if hasattr(values, "array") else values.asi8)
        return pa.array(i8, from_pandas=False), ("tz",)
    if hasattr(type(dtype), "__from_arrow__"):
        ext = values.array if hasattr(values, "array") else values
        try:
            arrow = pa.array(ext)
        except Exception as exc:
            raise NotArrow(f"{dtype} does not convert to Arrow ({exc})") from None
        return arrow, ("ext",)
    raise NotArrow(f"dtype {dtype} has no Arrow form")


def _column_from_arrow(col, spec, dtype, mapped):
    """Values (numpy array or ExtensionArray) of one column, with ``dtype``."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    kind = spec[0]
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if kind == "np":
        out = _numeric(np, pa, col, chunks, mapped, spec[1])
    elif kind in ("bool", "objstr"):
        out = np.asarray(pa.chunked_array(chunks, col.type).to_numpy(zero_copy_only=False),
                         dtype=bool if kind == "bool" else object)
        out = out if out.flags.writeable else out.copy()
    elif kind == "raw":
        out = _raw(np, chunks, mapped, spec[1])
    elif kind == "cat":
        codes = _numeric(np, pa, col, chunks, mapped, spec[1])
        out = pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
    elif kind == "tz":
        i8 = _numeric(np, pa, col, chunks, mapped, "<i8")
        naive = pd.DatetimeIndex(i8.view(f"M8[{dtype.unit}]"), copy=False)
        out = naive.tz_localize("UTC").tz_convert(dtype.tz).array
    elif kind == "ext":
        out = dtype.__from_arrow__(col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col]))
    else:
        raise ValueError(f"unknown column kind {kind!r}")
    if out.dtype != dtype:
        raise ValueError(f"column decoded as {out.dtype}, expected {dtype}")
    return out


def _numeric(np, pa, col, chunks, mapped, np_dtype):
    """A fixed-width column without nulls: a view of the mapped file where
    possible, else a writable copy."""
    np_dtype = np.dtype(np_dtype)
    if len(chunks) == 1 and chunks[0].null_count == 0:
        chunk = chunks[0]
        if mapped is not None and len(chunk):
            try:
                return mapped.view(chunk.buffers()[1], np_dtype, len(chunk), chunk.offset)
            except ValueError:
                pass
        if np_dtype.kind != "b":
            out = chunk.to_numpy(zero_copy_only=False)
            return out.copy() if not out.flags.writeable else out
    return np.asarray(pa.chunked_array(chunks, col.type).to_numpy(), dtype=np_dtype).copy()


def _raw(np, chunks, mapped, raw_dtype):
    """A column stored as its raw bytes (big-endian and other dtypes Arrow
    has no type for), viewed from the mapped file where possible."""
    n = sum(len(c) for c in chunks)
    if len(chunks) == 1 and mapped is not None and n:
        try:
            return mapped.view(chunks[0].buffers()[1], raw_dtype, n, chunks[0].offset)
        except ValueError:
            pass
    parts = [
        np.frombuffer(c.buffers()[1], dtype=raw_dtype, count=len(c), offset=c.offset * raw_dtype.itemsize)
        for c in chunks
        if len(c)
    ]
    if len(parts) == 1:
        return parts[0].copy()
    # concatenate makes the byte order native; values survive
    return np.concatenate(parts).astype(raw_dtype) if parts else np.empty(0, raw_dtype)


# ----------------------------------------------------------------------------
# pandas frames


def _index_parts(index):
    """(meta, [(values, dtype)]) for an index; a RangeIndex needs no data."""
    import pandas as pd

    if type(index) is pd.RangeIndex or type(index) is pd.MultiIndex:
        # a MultiIndex whole, with the frame's other labels: rebuilt from its level values it came back
        # with its levels sorted, other codes, no unused levels and no freq (observable, and keyed)
        return {"kind": "range", "index": index}, []
    if isinstance(index, pd.MultiIndex):  # a subclass
        levels = [index.get_level_values(i) for i in range(index.nlevels)]
        return {"kind": "multi", "names": list(index.names), "dtypes": [lv.dtype for lv in levels]}, [
            (lv, lv.dtype) for lv in levels
        ]
    meta = {"kind": "flat", "type": type(index).__name__, "name": index.name, "dtype": index.dtype}
    freq = getattr(index, "freq", None)
    if freq is not None and not isinstance(index.dtype, pd.PeriodDtype):
        meta["freq"] = freq
    return meta, [(index, index.dtype)]


def _build_index(meta, arrays):
    import pandas as pd

    kind = meta["kind"]
    if kind == "range":
        return meta["index"]
    if kind == "multi":
        levels = [pd.Index(a, dtype=d, copy=False) for a, d in zip(arrays, meta["dtypes"])]
        return pd.MultiIndex.from_arrays(levels, names=meta["names"])
    if "freq" in meta:
        cls = pd.DatetimeIndex if meta["type"] == "DatetimeIndex" else pd.TimedeltaIndex
        index = cls(arrays[0], freq=meta["freq"], name=meta["name"], copy=False)
    else:
        index = pd.Index(arrays[0], dtype=meta["dtype"], name=meta["name"], copy=False)
    if type(index).__name__ != meta["type"]:
        raise ValueError(f"index decoded as {type(index).__name__}, expected {meta['type']}")
    return index


def _encode_pandas(value):
    import pandas as pd
    import pyarrow as pa

    series = isinstance(value, pd.Series)
    frame = value.to_frame(name=0) if series else value
    if not isinstance(frame, pd.DataFrame) or type(frame) is not pd.DataFrame and not series:
        raise NotArrow("a DataFrame subclass")
    if series and type(value) is not pd.Series:
        raise NotArrow("a Series subclass")
    index_meta, index_cols = _index_parts(frame.index)
    names, arrays, specs, dtypes = [], [], [], []
    for i, (vals, dtype) in enumerate(index_cols):
        arrow, spec = _column_to_arrow(vals, dtype)
        names.append(f"i{i}")
        arrays.append(arrow)
        specs.append(spec)
    col_dtypes = list(frame.dtypes)
    for i in range(frame.shape[1]):
        arrow, spec = _column_to_arrow(frame.iloc[:, i], col_dtypes[i])
        names.append(f"c{i}")
        arrays.append(arrow)
        specs.append(spec)
        dtypes.append(col_dtypes[i])
    meta = {
        "kind": "series" if series else "frame",
        "name": value.name if series else None,
        "columns": None if series else frame.columns,
        "index": index_meta,
        "nindex": len(index_cols),
        "nrows": len(frame),
        "dtypes": dtypes,
        "specs": specs,
        "attrs": dict(value.attrs),
        "allows_duplicate_labels": value.flags.allows_duplicate_labels,
    }
    try:
        blob = pickle.dumps(meta, protocol=5)
    except Exception as exc:
        raise NotArrow(f"labels or attrs cannot be pickled ({exc})") from None
    schema = pa.schema([pa.field(n, a.type) for n, a in zip(names, arrays)], metadata={META_KEY: blob})
    table = pa.Table.from_arrays(arrays, schema=schema) if arrays else pa.table({}, schema=schema)
    return _write_table(table)


def _decode_pandas(table, mapped, meta):
    import pandas as pd

    specs = meta["specs"]
    nindex = meta["nindex"]
    index_dtypes = (
        meta["index"]["dtypes"] if meta["index"]["kind"] == "multi" else [meta["index"].get("dtype")] * nindex
    )
    index_arrays = [
        _column_from_arrow(table.column(i), specs[i], index_dtypes[i], mapped) for i in range(nindex)
    ]
    index = _build_index(meta["index"], index_arrays)
    data = {
        i: _column_from_arrow(table.column(nindex + i), specs[nindex + i], dtype, mapped)
        for i, dtype in enumerate(meta["dtypes"])
    }
    if meta["kind"] == "series":
        out = pd.Series(data[0], index=index, name=meta["name"], copy=False)
    else:
        out = pd.DataFrame(data, index=index, copy=False) if data else pd.DataFrame(index=index)
        out.columns = meta["columns"]
    if len(out) != meta["nrows"]:
        raise ValueError("row count does not match")
    out.attrs = meta["attrs"]
    out.flags.allows_duplicate_labels = meta["allows_duplicate_labels"]
    return out


# ----------------------------------------------------------------------------
# The codec


class ArrowCodec(Codec):
    """Arrow IPC (uncompressed) for pandas, pyarrow and polars frames."""

    name, ext, modules = "arrow", "arrow", ("pyarrow",)
    #: restore may memory-map a local file (see cache.restore).
    mmap = True

    def accepts(self, value):
        path = _type_path(value)
        return path in _PANDAS or path in ("pyarrow.lib.Table", "polars.dataframe.frame.DataFrame")

    def encode(self, value):
        path = _type_path(value)
        if path in _PANDAS:
            return _encode_pandas(value)
        if path == "pyarrow.lib.Table":
            meta = pickle.dumps({"kind": "table"}, protocol=5)
            schema = value.schema
            tagged = schema.with_metadata({**(schema.metadata or {}), META_KEY: meta})
            return _write_table(value.replace_schema_metadata(tagged.metadata))
        # polars: its own IPC writer keeps its dtypes; Object columns raise.
        buf = io.BytesIO()
        try:
            value.write_ipc(buf, compression="uncompressed")
        except Exception as exc:
            raise NotArrow(f"polars frame cannot be written as IPC ({exc})") from None
        flags = _polars_sorted(value)
        if not flags:
            return [buf.getbuffer()]
        # IPC drops the sorted flags, which change results (and the key):
        # the same file again, the flags in its schema's metadata.
        table, _ = _read_table(buf.getbuffer(), None)
        meta = pickle.dumps({"kind": "polars", "sorted": flags}, protocol=5)
        return _write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: meta}))

    def decode(self, data, mapped=None):
        mm = as_mapping(mapped)
        table, mapped = _read_table(data, mm)
        schema_meta = dict(table.schema.metadata or {})
        if META_KEY not in schema_meta:  # written by polars itself
            import polars as pl

            # From the checked bytes, never the path again (a copy: polars
            # maps only files it opens itself).
            return pl.read_ipc(io.BytesIO(mm if mm is not None else data))
        # Only reached for blobs whose digest the cache has checked: this is
        # a pickle (labels, dtypes, attrs), and pickles are never loaded from
        # unverified bytes.
        meta = pickle.loads(schema_meta[META_KEY])
        kind = meta["kind"]
        if kind in ("frame", "series"):
            return _decode_pandas(table, mapped, meta)
        if kind == "table":
            rest = {k: v for k, v in schema_meta.items() if k != META_KEY}
            return table.replace_schema_metadata(rest or None)
        if kind == "polars":
            return _polars_with_flags(mm if mm is not None else data, meta["sorted"])
        raise ValueError(f"unknown arrow blob kind {kind!r}")


def _polars_sorted(df) -> list:
    """[(column index, descending)] of the columns flagged sorted."""
    out = []
    for i, column in enumerate(df.get_columns()):
        flags = column.flags
        if flags.get("SORTED_ASC") or flags.get("SORTED_DESC"):
            out.append((i, bool(flags.get("SORTED_DESC"))))
    return out


def _polars_with_flags(data, flags):
    import polars as pl

    df = pl.read_ipc(io.BytesIO(data))
    columns = df.get_columns()
    for i, descending in flags:
        columns[i] = columns[i].set_sorted(descending=descending)
    return pl.DataFrame(columns)


CODEC = ArrowCodec()


def install():
    """Register the Arrow codec (ahead of the built-ins), once."""
    if not any(c.name == CODEC.name for c in CODECS):
        register(CODEC, first=True)


install()
