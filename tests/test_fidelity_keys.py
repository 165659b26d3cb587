"""The key holds everything the cell can observe, and a hit leaves what the
run left (DESIGN §9, §11): each class across a real kernel restart, with a
body-run counter (``runs.txt``) telling a hit from a run."""

import pytest

from tests._fresh import RUN, session


def lazy(body: str) -> str:
    return "%%lazycache\n" + RUN + body


# ----------------------------------------------------------------------------
# Names the cell needs that analysis must see


def test_deleting_a_name_that_is_gone_raises_as_the_run_does(tmp_path):
    """``del big`` reads big: present it is keyed, absent the run raises."""
    cell = lazy("del big\ndone = True")
    first = session(tmp_path, ["big = [0] * 10", cell], ["done"])
    assert [c["ok"] for c in first["cells"]] == [True, True]
    second = session(tmp_path, [cell], ["done", "'big' in dir()"], fails=(0,))
    assert not second["cells"][0]["ok"], "the hit deleted a name the namespace does not hold"
    assert "NameError" in second["cells"][0]["err"] + second["cells"][0]["out"]
    assert second["values"]["done"] == "<NameError>"
    assert second["runs"] == 2


@pytest.mark.parametrize("reach", [
    "import sys\ny = sys.modules['__main__'].K * 2",
    "import __main__\ny = __main__.K * 2",
    "y = __import__('__main__').K * 2",
    "y = get_ipython().user_module.K * 2",
])
def test_names_read_through_the_main_module_are_not_stale(tmp_path, reach):
    cell = lazy(reach)
    first = session(tmp_path, ["K = 1", cell], ["y"])
    assert first["values"]["y"] == "2"
    second = session(tmp_path, ["K = 5", cell], ["y"])
    assert second["values"]["y"] == "10"
    assert second["runs"] == 2
    assert "not cached" in second["cells"][1]["out"], "one line says why the cell runs uncached"


def test_main_module_comparison_is_not_dynamic(tmp_path):
    cell = lazy("if __name__ == '__main__':\n    y = 3")
    session(tmp_path, [cell], ["y"])
    second = session(tmp_path, [cell], ["y"])
    assert second["values"]["y"] == "3" and second["runs"] == 1


# ----------------------------------------------------------------------------
# Maybe-bound names


def test_a_bind_a_context_manager_swallowed_is_not_stored(tmp_path):
    setup = "from contextlib import suppress\nd = {{}}\ny = {!r}"
    cell = lazy("with suppress(KeyError):\n    y = d['k']\ndone = 1")
    session(tmp_path, [setup.format("a"), cell], ["y"])
    second = session(tmp_path, [setup.format("b"), cell], ["y", "done"])
    assert second["values"] == {"y": "'b'", "done": "1"}
    assert second["runs"] == 1, "the cell binds nothing it could not restore: a hit"


def test_a_read_after_a_swallowing_with_is_keyed(tmp_path):
    setup = "from contextlib import suppress\nd = {{}}\ny = {!r}"
    cell = lazy("with suppress(KeyError):\n    y = d['k']\nz = y * 2")
    session(tmp_path, [setup.format("a"), cell], ["z"])
    second = session(tmp_path, [setup.format("b"), cell], ["z"])
    assert second["values"]["z"] == "'bb'"
    assert second["runs"] == 2


def test_with_body_values_still_restore(tmp_path):
    """What a with body binds is stored when the run binds it."""
    cell = lazy("import io\nwith io.StringIO('abc') as f:\n    data = f.read()\nn = len(data)")
    session(tmp_path, [cell], ["n"])
    second = session(tmp_path, [cell], ["data", "n"])
    assert second["values"] == {"data": "'abc'", "n": "3"}
    assert second["runs"] == 1


# ----------------------------------------------------------------------------
# The key is a function of all the state a cell can observe, not of "=="


def _two_sessions(tmp_path, setup_first, setup_second, cell, names):
    session(tmp_path, [setup_first, cell], names)
    return session(tmp_path, [setup_second, cell], names)


@pytest.mark.parametrize("first, second, cell, expect", [
    ("import numpy as np\na = np.array([1, 2], dtype='>i4')", "import numpy as np\na = np.array([1, 2], dtype='<i4')",
     "y = a.tobytes().hex()", "'0100000002000000'"),
    ("import numpy as np\na = np.zeros(1, dtype=[('f', '>i2')])",
     "import numpy as np\na = np.zeros(1, dtype=[('f', '<i2')])", "y = str(a.dtype)", "\"[('f', '<i2')]\""),
    ("import numpy as np\na = np.arange(3)\na.flags.writeable = False", "import numpy as np\na = np.arange(3)",
     "y = bool(a.flags.writeable)", "True"),
], ids=["byte-order", "field-byte-order", "writeable"])
def test_equal_arrays_that_differ_observably_key_differently(tmp_path, first, second, cell, expect):
    out = _two_sessions(tmp_path, first, second, lazy(cell), ["y"])
    assert out["values"]["y"] == expect
    assert out["runs"] == 2


def test_multiindex_levels_are_keyed_not_only_its_values(tmp_path):
    first = ("import pandas as pd\n"
             "full = pd.DataFrame({'v': [1, 2]}, index=pd.MultiIndex.from_tuples([('a', 1), ('b', 2)]))\n"
             "df = full.loc[['a']]")
    second = "import pandas as pd\ndf = pd.DataFrame({'v': [1]}, index=pd.MultiIndex.from_tuples([('a', 1)]))"
    out = _two_sessions(tmp_path, first, second, lazy("lv = df.index.levels[0].tolist()"), ["lv"])
    assert out["values"]["lv"] == "['a']"
    assert out["runs"] == 2


def test_a_frames_duplicate_labels_flag_is_keyed(tmp_path):
    setup = "import pandas as pd\ndf = pd.DataFrame({{'v': [1, 2]}}).set_flags(allows_duplicate_labels={})"
    cell = lazy("try:\n    n = len(pd.concat([df, df]))\nexcept Exception as e:\n    n = type(e).__name__")
    out = _two_sessions(tmp_path, setup.format(False), setup.format(True), cell, ["n"])
    assert out["values"]["n"] == "4"
    assert out["runs"] == 2


def test_multiindex_frames_still_hit(tmp_path):
    setup = ("import pandas as pd\n"
             "df = pd.DataFrame({'v': [1, 2]}, index=pd.MultiIndex.from_tuples([('a', 1), ('b', 2)]))")
    cell = lazy("s = int(df['v'].sum())")
    session(tmp_path, [setup, cell], ["s"])
    out = session(tmp_path, [setup, cell], ["s"])
    assert out["values"]["s"] == "3" and out["runs"] == 1


def test_polars_sorted_flag_is_keyed(tmp_path):
    pytest.importorskip("polars")
    first = "import polars as pl\ndf = pl.DataFrame({'a': [3, 1, 2]}).with_columns(pl.col('a').set_sorted())"
    second = "import polars as pl\ndf = pl.DataFrame({'a': [3, 1, 2]})"
    out = _two_sessions(tmp_path, first, second, lazy("m = df['a'].max()"), ["m"])
    assert out["values"]["m"] == "3"
    assert out["runs"] == 2


def test_a_restored_sorted_polars_frame_keeps_its_flag_and_later_cells_hit(tmp_path):
    pytest.importorskip("polars")
    make = "%%lazycache\nimport polars as pl\ndf = pl.DataFrame({'a': [3, 1, 2]}).sort('a')"
    cells = [make, lazy("m = df['a'].max()")]
    first = session(tmp_path, cells, ["m", "df['a'].flags['SORTED_ASC']"])
    second = session(tmp_path, cells, ["m", "df['a'].flags['SORTED_ASC']"])
    assert first["values"] == second["values"] == {"m": "3", "df['a'].flags['SORTED_ASC']": "True"}
    assert second["runs"] == 1


def test_a_loggers_level_is_keyed(tmp_path):
    setup = "import logging\nlog = logging.getLogger('keys-test')\nlog.setLevel(logging.{})"
    cell = lazy("y = log.isEnabledFor(logging.INFO)")
    out = _two_sessions(tmp_path, setup.format("DEBUG"), setup.format("WARNING"), cell, ["y"])
    assert out["values"]["y"] == "False"
    assert out["runs"] == 2
    again = session(tmp_path, [setup.format("WARNING"), cell], ["y"])
    assert again["values"]["y"] == "False"
    assert again["runs"] == 2, "the same level hits (isEnabledFor's cache is not keyed)"


NOTEBOOK_CLASS = ("class V:\n    __slots__ = ('v',)\n    def __init__(self, v):\n        self.v = v\n"
                  "    def __reduce__(self):\n        return (V, (0,))\nobj = V({})")


def test_an_instance_whose_reduce_drops_its_state_is_keyed_by_its_attributes(tmp_path):
    cell = lazy("y = obj.v")
    out = _two_sessions(tmp_path, NOTEBOOK_CLASS.format(1), NOTEBOOK_CLASS.format(2), cell, ["y"])
    assert out["values"]["y"] == "2"
    assert out["runs"] == 2
    again = session(tmp_path, [NOTEBOOK_CLASS.format(2), cell], ["y"])
    assert again["values"]["y"] == "2" and again["runs"] == 2


def test_an_attribute_getstate_leaves_out_is_keyed(tmp_path):
    setup = ("import threading\nclass C:\n    def __init__(self, x, scale):\n        self.x, self.scale = x, scale\n"
             "        self.lock = threading.Lock()\n"
             "    def __getstate__(self):\n        return {{'x': self.x}}\nc = C(1, {})")
    cell = lazy("y = c.x * c.scale")
    out = _two_sessions(tmp_path, setup.format(10), setup.format(20), cell, ["y"])
    assert out["values"]["y"] == "20"
    assert out["runs"] == 2
    again = session(tmp_path, [setup.format(20), cell], ["y"])
    assert again["values"]["y"] == "20" and again["runs"] == 2, "keyed though one attribute (a lock) cannot be hashed"


# ----------------------------------------------------------------------------
# A hit does to the namespace what the run did


def test_a_hit_sets_the_annotations_the_run_set(tmp_path):
    cell = lazy("n: int = 5\nlabel: 'units' = 'm'")
    names = ["n", "__annotations__"]
    (tmp_path / "plain").mkdir()
    plain = session(tmp_path / "plain", [cell], names, magic=False)
    session(tmp_path, ["x: float = 1.0", cell], names)
    second = session(tmp_path, ["x: float = 1.0", cell], names)
    assert second["runs"] == 1
    assert second["values"]["n"] == "5"
    assert second["values"]["__annotations__"] == "{'x': <class 'float'>, 'n': <class 'int'>, 'label': 'units'}"
    assert plain["values"]["__annotations__"] == "{'n': <class 'int'>, 'label': 'units'}"


def test_a_builtin_as_the_last_value_is_the_hits_value_too(tmp_path):
    cells = [lazy("y = 1\nlen"), "t = type(_).__name__\nsame = _ is len"]
    first = session(tmp_path, cells, ["t", "same"])
    second = session(tmp_path, cells, ["t", "same"])
    assert first["values"] == second["values"] == {"t": "'builtin_function_or_method'", "same": "True"}
    assert second["runs"] == 1
    assert "Out[1]: <function len" in second["cells"][0]["out"]


# ----------------------------------------------------------------------------
# The tool's own output never lands in the cell's


SLOW_STORE = ("class Slow:\n    def __reduce__(self):\n        import time\n        time.sleep(2.3)\n"
              "        return (Slow, ())\nslow = Slow()\nprint('made')")


def test_a_slow_store_writes_no_progress_bar_into_a_captured_stderr(tmp_path):
    """stderr here is a StringIO, as under %%capture or a test harness: a
    text bar's \\r-erased lines would stay in it."""
    cell = lazy(SLOW_STORE)
    first = session(tmp_path, [cell], ["type(slow).__name__"])
    assert first["cells"][0]["ok"]
    assert first["cells"][0]["err"] == ""
    assert "storing" not in first["cells"][0]["out"]
    second = session(tmp_path, [cell], ["type(slow).__name__"])
    assert second["cells"][0]["err"] == "" and second["runs"] == 1
