"""Codecs: exact round trips (bytes and memory-mapped files), hashing of
frames, and large data through a real InteractiveShell. Correctness only;
timings live in bench/."""

import glob
import os
import subprocess
import sys

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

from ipy_lazycache import codecs, core, hashing  # noqa: E402
from ipy_lazycache.codecs_arrow import CODEC as ARROW  # noqa: E402
from ipy_lazycache.manifest import CorruptEntry  # noqa: E402
from ipy_lazycache.progress import Progress  # noqa: E402
from ipy_lazycache.stores.file import FileStore  # noqa: E402
from tests.test_memo_pages import owned_array  # noqa: E402

BODY = 'open("runs.txt", "a").write("run\\n")\n'


def round_trips(value, tmp_path):
    """Decode from bytes and from a local file (mapped); return both."""
    codec = codecs.codec_for(value)
    assert codec is not None, type(value)
    parts = codec.encode(value)
    data = b"".join(bytes(memoryview(p)) for p in parts)
    path = tmp_path / f"blob.{codec.ext}"
    path.write_bytes(data)
    return codec, codec.decode(data), codec.decode(None, str(path) if codec.mmap else None) if codec.mmap else None


def assert_same_array(a, b):
    assert type(b) is np.ndarray
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()  # bit-exact (NaN payloads, -0.0)


ARRAYS = {
    "float64": np.array([1.5, np.nan, -0.0, np.inf]),
    "float16": np.arange(5, dtype=np.float16),
    "int8": np.arange(-3, 3, dtype=np.int8),
    "uint64": np.array([0, 2**64 - 1], dtype=np.uint64),
    "bool": np.array([True, False, True]),
    "complex": np.array([1 + 2j, -0.0 - 1j]),
    "big-endian": np.arange(6, dtype=">i4").reshape(2, 3),
    "datetime64": np.array(["2020-01-01T00:00", "NaT"], dtype="M8[ms]"),
    "timedelta64": np.array([1, -5], dtype="m8[s]"),
    "unicode": np.array(["a", "é", ""]),
    "bytes": np.array([b"ab", b""]),
    "structured": np.array([(1, 2.5, b"x")], dtype=[("a", "<i4"), ("b", ">f8"), ("c", "S3")]),
    "empty": np.empty((0, 3)),
    "empty-1d": np.array([], dtype=np.int32),
    "0-d": np.array(3.25),
    "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "non-contiguous": np.arange(40.0).reshape(5, 8)[::2, 1::3],
    "3-d": np.arange(24, dtype=np.int16).reshape(2, 3, 4),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_numpy_round_trip(name, tmp_path):
    arr = ARRAYS[name]
    codec, from_bytes, mapped = round_trips(arr, tmp_path)
    assert codec.name == "npy"
    assert_same_array(arr, from_bytes)
    assert_same_array(arr, mapped)
    if name == "fortran":
        assert mapped.flags.f_contiguous
    # A second hit reuses the parsed header: the same array again, its own copy.
    again = codec.decode(None, str(tmp_path / "blob.npy"))
    assert_same_array(arr, again)
    assert again.flags.f_contiguous == mapped.flags.f_contiguous and not np.shares_memory(again, mapped)
    # The mapped copy is writable, and writing does not touch the file.
    before = (tmp_path / "blob.npy").read_bytes()
    if mapped.size:
        mapped.reshape(-1)[:1] = mapped.reshape(-1)[-1:]
    assert mapped.flags.writeable
    assert (tmp_path / "blob.npy").read_bytes() == before


def test_object_arrays_are_pickled():
    assert codecs.codec_for(np.array([{"a": 1}, None], dtype=object)) is None


def frame():
    n = 6
    df = pd.DataFrame(
        {
            "f": [1.0, np.nan, -0.0, 3.0, np.inf, 5.0],
            "i16": np.arange(n, dtype=np.int16),
            "u64": np.array([0, 1, 2, 3, 4, 2**64 - 1], dtype=np.uint64),
            "b": [True, False, True, True, False, True],
            "str": pd.Series(["a", "b", None, "d", "é", ""], dtype="str"),
            "obj-str": np.array(list("uvwxyz"), dtype=object),
            "cat": pd.Categorical(["a", "b", "a", None, "c", "c"], categories=["c", "b", "a"], ordered=True),
            "tz": pd.date_range("2020-03-29", periods=n, freq="h", tz="Europe/Paris"),
            "naive": pd.to_datetime(["2020-01-01", None, "2021-01-01", "2022-01-01", "2023-01-01", "1970-01-01"]),
            "td": pd.to_timedelta([1, 2, None, 4, 5, 6], unit="s"),
            "Int64": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
            "boolean": pd.array([True, None, False, True, None, False], dtype="boolean"),
            "string": pd.array(["a", None, "c", "d", "e", "f"], dtype="string"),
            "complex": np.arange(n) + 1j,
            "be": np.arange(n, dtype=">f8"),
            "secs": np.arange(n).astype("M8[s]"),
            "period": pd.period_range("2020-01", periods=n, freq="M"),
            "interval": pd.interval_range(0, n),
            "arrow-int": pd.array([1, 2, None, 4, 5, 6], dtype="int64[pyarrow]"),
            3: np.arange(n, dtype=np.float32),
            (1, "t"): np.arange(n, dtype=np.int8),
        }
    )
    df.attrs = {"source": "test", "nested": [1, {"k": 2}]}
    return df


INDEXES = {
    "range": None,
    "multi": pd.MultiIndex.from_arrays([list("aabbcc"), [1, 2, 1, 2, 1, 2]], names=["key", None]),
    "named-object": pd.Index(list("abcdef"), name="name", dtype=object),
    "datetime-freq": pd.date_range("2020", periods=6, freq="D", name="when"),
    "categorical": pd.CategoricalIndex(list("aabbcc"), name="c"),
    "float": pd.Index([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]),
    "tz": pd.date_range("2020", periods=6, freq="D", tz="UTC"),
}


def assert_frames_exact(a, b):
    pd.testing.assert_frame_equal(a, b, check_exact=True, check_freq=True, check_flags=True)
    assert a.attrs == b.attrs
    assert list(a.dtypes) == list(b.dtypes)
    assert list(a.columns) == list(b.columns) and a.columns.dtype == b.columns.dtype
    assert type(a.index) is type(b.index) and a.index.names == b.index.names


@pytest.mark.parametrize("index", sorted(INDEXES))
def test_dataframe_round_trip(index, tmp_path):
    df = frame()
    if INDEXES[index] is not None:
        df = df.set_axis(INDEXES[index])
    codec, from_bytes, mapped = round_trips(df, tmp_path)
    assert codec is ARROW
    assert_frames_exact(df, from_bytes)
    assert_frames_exact(df, mapped)
    # Same content hash as the original: a restored frame keys like the one stored.
    assert hashing.value_hash(mapped) == hashing.value_hash(df)
    # Writable, copy-on-write: the file does not change.
    before = (tmp_path / "blob.arrow").read_bytes()
    mapped.iloc[0, 0] = 42.0
    mapped.loc[:, "i16"] = 7
    assert (tmp_path / "blob.arrow").read_bytes() == before
    assert_frames_exact(df, codec.decode(None, str(tmp_path / "blob.arrow")))


def test_frame_edge_cases(tmp_path):
    cases = [
        pd.DataFrame(),
        pd.DataFrame({"a": pd.Series([], dtype="float64")}),
        pd.DataFrame(np.arange(6.0).reshape(3, 2), columns=["a", "a"]),  # duplicate labels
        pd.DataFrame(np.arange(6.0).reshape(3, 2), columns=pd.MultiIndex.from_tuples([("x", 1), ("x", 2)])),
        pd.DataFrame({"a": np.arange(4)}).iloc[::2],  # a view with a sliced index
        pd.DataFrame({"a": pd.Series(["x", None], dtype="str"), "b": [1, 2]}).set_index("a"),
    ]
    for df in cases:
        _, from_bytes, mapped = round_trips(df, tmp_path)
        assert_frames_exact(df, from_bytes)
        assert_frames_exact(df, mapped)


def test_series_round_trip(tmp_path):
    s = pd.Series([1.5, np.nan], name=("x", 1), index=pd.Index([10, 20], name="i"))
    s.attrs = {"unit": "m"}
    for dtype_series in (s, pd.Series(pd.Categorical(["a", "b"]), name=None), pd.Series([], dtype="Int8")):
        _, from_bytes, mapped = round_trips(dtype_series, tmp_path)
        for out in (from_bytes, mapped):
            pd.testing.assert_series_equal(out, dtype_series, check_exact=True)
            assert out.attrs == dtype_series.attrs


def test_arbitrary_objects_fall_back_to_pickle(tmp_path):
    store = FileStore(tmp_path / "c")
    ns = {"df": pd.DataFrame({"o": [object, 1, "x"], "f": [1.0, 2.0, 3.0]})}
    with pytest.raises(TypeError):
        ARROW.encode(ns["df"])
    with pytest.raises(TypeError):  # str and None mixed: not exactly representable
        ARROW.encode(pd.DataFrame({"o": pd.Series(["a", None], dtype=object)}))
    plan = core.plan.plan("df2 = df.copy()", ns)
    exec("df2 = df.copy()", ns)
    m, _ = core.save.save(store, plan, ns, core.run.Outcome([], None))
    assert [b["codec"] for b in m["blobs"].values()] == ["pickle"]
    restored = core.restore.restore(store, plan.key, {"df": ns["df"]})
    pd.testing.assert_frame_equal(restored.values["df2"], ns["df2"])


def test_arrow_table_and_polars_round_trip(tmp_path):
    t = pa.table({"x": [1, 2, None], "y": ["a", "b", None]}).replace_schema_metadata({"k": "v"})
    _, from_bytes, mapped = round_trips(t, tmp_path)
    assert from_bytes.equals(t, check_metadata=True) and mapped.equals(t, check_metadata=True)
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"x": [1, None, 3], "s": ["a", None, "c"], "c": pl.Series(["a", "b", "a"], dtype=pl.Categorical)})
    _, from_bytes, mapped = round_trips(df, tmp_path)
    for out in (from_bytes, mapped):
        assert out.schema == df.schema and out.equals(df)
    with pytest.raises(TypeError):
        ARROW.encode(pl.DataFrame({"o": [object(), object()]}, schema={"o": pl.Object}))


def test_damaged_arrow_file_is_never_unpickled(tmp_path):
    store = FileStore(tmp_path / "c")
    ns = {}
    plan = core.plan.plan("df = 1", ns)
    ns["df"] = frame()
    m, _ = core.save.save(store, plan, ns, core.run.Outcome([], None))
    (blob,) = [n for n in m["blobs"] if n.endswith(".arrow")]
    path = store.local_path(f"{plan.key}/{blob}")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptEntry):
        core.restore.restore(store, plan.key, {})


# ----------------------------------------------------------------------------
# Hashing


def test_frame_hash_distinguishes_what_matters():
    base = pd.DataFrame({"a": [1.0, 2.0], "s": pd.Series(["x", "y"], dtype="str")})
    variants = [
        base.rename(columns={"a": "b"}),
        base.set_axis(pd.Index([0, 1], dtype="int32")),
        base.astype({"a": "float32"}),
        base.astype({"s": object}),
        base.assign(s=pd.Series(["x", None], dtype="str")),
        base.assign(s=pd.Series(["xy", ""], dtype="str")),  # same bytes, different lengths
        base.set_axis(pd.Index(["a", 1], dtype=object), axis=1),
    ]
    attrs = base.copy()
    attrs.attrs = {"k": 1}
    variants.append(attrs)
    hashes = {hashing.value_hash(v) for v in variants}
    assert len(hashes) == len(variants) and hashing.value_hash(base) not in hashes
    # Content, not layout: a consolidated and a split frame hash alike.
    assert hashing.value_hash(base.copy()) == hashing.value_hash(base)
    assert hashing.value_hash(pd.DataFrame({1: [1]})) != hashing.value_hash(pd.DataFrame({"1": [1]}))


def test_string_hash_same_with_and_without_pyarrow():
    """The key encoding does not depend on which library computes it."""
    code = (
        "import sys\n"
        "if sys.argv[1] == 'blocked': sys.modules['pyarrow'] = None\n"
        "import numpy as np, xxhash\n"
        "from ipy_lazycache.hashing import _tag\n"
        "from ipy_lazycache.hashing_frames import feed_strings\n"
        "h = xxhash.xxh3_128()\n"
        "feed_strings(h, np.array(['a', 'é', '', 'x' * 300, None], dtype=object), _tag)\n"
        "print(h.hexdigest())\n"
    )
    outs = {
        mode: subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True).stdout
        for mode in ("blocked", "present")
    }
    assert outs["blocked"] == outs["present"] and len(outs["present"].strip()) == 32


def test_structured_dtypes_keyed_by_fields():
    a = np.zeros(2, dtype=[("a", "<i4"), ("b", "<i4")])
    assert hashing.value_hash(a) != hashing.value_hash(np.zeros(2, dtype="<f8"))
    assert hashing.value_hash(a) != hashing.value_hash(np.zeros(2, dtype=[("x", "<i4"), ("y", "<i4")]))
    # Equal values in other byte orders are other bytes (tobytes, views): keyed apart.
    assert hashing.value_hash(a) != hashing.value_hash(a.astype([("a", ">i4"), ("b", ">i4")]))
    assert hashing.value_hash(a) == hashing.value_hash(a.astype([("a", "<i4"), ("b", "<i4")]))


def test_memo_is_tied_to_the_object_and_only_trusts_what_cannot_change(tmp_path):
    memo = core.memo.Memo()
    text = "x" * 1000
    memo.record("x", text, "h")
    assert memo.get("x", text) == "h"
    assert memo.get("x", "y" * 1000) is None  # rebinding the name forgets it
    arr = np.zeros(3)
    memo.record("a", arr, "h")
    assert memo.get("a", arr) is None, "an ordinary array can change in place: never trusted"
    np.save(tmp_path / "m.npy", np.arange(10_000.0))
    mapped = owned_array(tmp_path / "m.npy")
    memo.record("m", mapped, "h")
    assert memo.get("m", mapped) == "h", "an unwritten copy-on-write mapping the cache made is trusted"
    mapped[5] = -1.0
    assert memo.get("m", mapped) is None, "a written page makes it re-hashed"


# ----------------------------------------------------------------------------
# Progress


def test_progress_counts_slices_without_copies():
    big = np.zeros(3 * (64 << 20) // 8 + 5)
    p = Progress("x", delay=3600)
    parts = p.wrap([b"head", big.view(np.uint8)])
    seen = [memoryview(x).nbytes for x in parts]
    assert sum(seen) == 4 + big.nbytes and max(seen) <= 64 << 20 and len(seen) == 5
    assert p.done == 4 + big.nbytes and p.bar is None  # below the delay: no bar
    assert len(parts) == 2 and parts[0] == b"head"


def test_progress_bar_after_delay(tmp_path, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    from ipy_lazycache import progress

    # The text bar draws only on a terminal (anything else records the cell): capsys stands in for one.
    monkeypatch.setattr(progress, "_stderr_is_terminal", lambda: True)
    store = FileStore(tmp_path / "c")
    ns = {}
    plan = core.plan.plan("x = 1", ns)
    ns["x"] = np.arange(1000.0)
    with Progress("lazycache: storing", delay=0) as p:
        core.save.save(store, plan, ns, core.run.Outcome([], None), progress=p)
        assert p.bar is not None and p.done == p.size > 8000
    assert "lazycache: storing" in capsys.readouterr().err


# ----------------------------------------------------------------------------
# Through a real InteractiveShell


def _ext():
    import ipy_lazycache

    return ipy_lazycache._magics


@pytest.mark.slow
def test_big_array_restores_mapped_and_chains_without_rehash(run, shell, runs):
    cell = "%%lazycache\n" + BODY + "big = np.arange(100 * 2**20 // 8, dtype=np.float64)\n"
    run("import numpy as np")
    assert run(cell).success and runs() == 1
    reference = hashing.value_hash(np.arange(100 * 2**20 // 8, dtype=np.float64))
    shell.user_ns.pop("big")
    run("pass")  # any plain cell forgets known hashes
    assert run(cell).success and runs() == 1  # a hit
    big = shell.user_ns["big"]
    assert type(big) is np.ndarray and _mapped(big)
    (path,) = glob.glob(os.path.join("__lazycache__", "**", "big.*.npy"), recursive=True)
    before = os.path.getmtime(path), os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(1 << 16)

    # The restored value's hash is known from its manifest: the next cached
    # cell keys it through the memo, without reading the array.
    assert _ext().memo.get("big", big) == reference
    plan = core.plan.plan("s = big.sum()", shell.user_ns, _ext().memo)
    assert plan.refs["big"] == reference

    chained = "%%lazycache\n" + BODY + "s = float(big.sum())\n"
    assert run(chained).success and runs() == 2
    shell.user_ns.pop("s")
    assert run(cell).success and runs() == 2  # restore big again (memo: known)
    assert _ext().memo.get("big", shell.user_ns["big"]) == reference
    assert run(chained).success and runs() == 2  # a hit, keyed through the memo
    assert shell.user_ns["s"] == float(np.arange(100 * 2**20 // 8, dtype=np.float64).sum())

    # Copy-on-write: the user may write; the cache file does not change.
    assert run("big[:10] = -1.0").success
    assert shell.user_ns["big"][0] == -1.0
    with open(path, "rb") as f:
        assert f.read(1 << 16) == head
    assert (os.path.getmtime(path), os.path.getsize(path)) == before
    # ... and the mutation (a plain cell) is seen: the chained cell re-runs.
    assert _ext().memo.get("big", shell.user_ns["big"]) is None
    assert run(chained).success and runs() == 3
    assert shell.user_ns["s"] == float(np.arange(100 * 2**20 // 8, dtype=np.float64).sum()) - 10 * 1.0 - sum(range(10))


def _mapped(arr):
    base = arr
    while base is not None:
        if isinstance(base, __import__("mmap").mmap):
            return True
        base = getattr(base, "base", None)
    return False


def test_dataframes_restore_exactly_through_the_shell(run, shell, runs):
    shell.user_ns["make_frame"] = frame
    cell = "%%lazycache\n" + BODY + "df = make_frame()\nser = df['cat']\n"
    assert run(cell).success and runs() == 1
    shell.user_ns.pop("df")
    shell.user_ns.pop("ser")
    result = run(cell)
    assert result.success and runs() == 1, result.out
    assert_frames_exact(frame(), shell.user_ns["df"])
    pd.testing.assert_series_equal(shell.user_ns["ser"], frame()["cat"], check_exact=True)
    (path,) = glob.glob(os.path.join("__lazycache__", "**", "df.*.arrow"), recursive=True)
    data = open(path, "rb").read()
    assert run("df.iloc[0, 0] = 99.0").success
    assert shell.user_ns["df"].iloc[0, 0] == 99.0
    assert open(path, "rb").read() == data
