"""Ambient state (DESIGN §9): process state no name shows joins a key only
where the cell can observe it, and what a run changed is changed by a hit.

Every scenario runs in new processes (real restarts) and compares with the
same cells run without the magic.
"""

import pytest

from tests._fresh import RUN, session

np = pytest.importorskip("numpy")

pytestmark = pytest.mark.slow  # every test starts several Python processes


def plain(tmp_path, cells, names, env=None):
    folder = tmp_path / "plain"
    folder.mkdir(exist_ok=True)
    return session(folder, cells, names, magic=False, env=env)


def test_a_changed_seed_misses_and_an_unchanged_one_hits(tmp_path):
    def cells(seed):
        return ["import numpy as np", f"np.random.seed({seed})",
                "%%lazycache\n" + RUN + "e = np.random.normal(size=3)"]

    s1 = session(tmp_path, cells(1), ["e.tolist()"])
    s2 = session(tmp_path, cells(1), ["e.tolist()"])
    assert s2["runs"] == 1 and s2["values"] == s1["values"]
    s3 = session(tmp_path, cells(2), ["e.tolist()"])
    assert s3["runs"] == 2, "a new seed must not hit the old draw"
    assert s3["values"] == plain(tmp_path, cells(2), ["e.tolist()"])["values"]


def test_a_notebook_that_never_seeds_still_hits_after_a_restart(tmp_path):
    cells = ["import random, numpy as np", "%%lazycache\n" + RUN + "x = random.random() + np.random.rand()"]
    first = session(tmp_path, cells, ["x"])
    second = session(tmp_path, cells, ["x"])
    assert second["runs"] == 1 and second["values"] == first["values"]


def test_a_draw_inside_a_helper_is_seen_in_the_run(tmp_path):
    """The cell shows no generator, but its helper draws: the entry needs the
    state it started from, and a lookup in another state is a miss."""
    def cells(seed):
        return ["import random", "def pick():\n    return random.random()", f"random.seed({seed})",
                "%%lazycache\n" + RUN + "x = pick()", "after = random.random()"]

    names = ["x", "after"]
    s1 = session(tmp_path, cells(1), names)
    s2 = session(tmp_path, cells(1), names)
    assert s2["runs"] == 1 and s2["values"] == s1["values"]
    s3 = session(tmp_path, cells(5), names)
    assert s3["runs"] == 2
    assert s3["values"] == plain(tmp_path, cells(5), names)["values"]


def test_a_seed_set_in_a_cached_cell_is_set_again_by_a_hit(tmp_path):
    cells = ["import numpy as np, random", "%%lazycache\n" + RUN + "np.random.seed(7)\nrandom.seed(7)\nk = 1",
             "later = (np.random.rand(), random.random())"]
    session(tmp_path, cells, ["later"])
    hit = session(tmp_path, cells, ["later"])
    assert hit["runs"] == 1
    assert hit["values"] == plain(tmp_path, cells, ["later"])["values"]


def test_environment_read_by_name_and_changes_replayed(tmp_path):
    def cells(value):
        return ["import os", f"os.environ['LC_TEST_MODE'] = '{value}'",
                "%%lazycache\n" + RUN + "mode = os.environ['LC_TEST_MODE'] * 2\n%env LC_TEST_SET=yes",
                "seen = os.environ.get('LC_TEST_SET')"]

    names = ["mode", "seen"]
    session(tmp_path, cells("a"), names)
    hit = session(tmp_path, cells("a"), names)
    assert hit["runs"] == 1 and hit["values"] == {"mode": "'aa'", "seen": "'yes'"}
    changed = session(tmp_path, cells("b"), names)
    assert changed["runs"] == 2 and changed["values"]["mode"] == "'bb'"


def test_environment_read_inside_a_called_function_is_required(tmp_path):
    """The cell's text shows no environment read, but the helper it calls
    reads one (``get``, ``getenv`` and ``in`` alike): a hit needs the values
    the run started with, and a lookup with another value runs the cell."""
    helper = ("import os\ndef mode():\n"
              "    return os.environ.get('LC_TEST_MODE', '-') + os.getenv('LC_TEST_LEVEL', '?') + "
              "str('LC_TEST_FLAG' in os.environ)")

    cells, names = [helper, "%%lazycache\n" + RUN + "m = mode()"], ["m"]
    a = session(tmp_path, cells, names, env={"LC_TEST_MODE": "a"})
    hit = session(tmp_path, cells, names, env={"LC_TEST_MODE": "a", "LC_UNRELATED": "9"})
    assert hit["runs"] == 1 and hit["values"] == a["values"] == {"m": "'a?False'"}
    b = session(tmp_path, cells, names, env={"LC_TEST_MODE": "b"})
    assert b["runs"] == 2 and b["values"] == {"m": "'b?False'"}
    flag = session(tmp_path, cells, names, env={"LC_TEST_MODE": "b", "LC_TEST_FLAG": ""})
    assert flag["runs"] == 3 and flag["values"] == {"m": "'b?True'"}
    plain_run = plain(tmp_path, cells, names, env={"LC_TEST_MODE": "b", "LC_TEST_FLAG": ""})
    assert plain_run["values"] == flag["values"]


def test_environment_read_by_a_library_the_cell_imports_is_not_required(tmp_path):
    """numpy reads NUMPY_MADVISE_HUGEPAGE (and matplotlib HOME, MPLBACKEND ...)
    while the cell imports it: installed code's reads are not the notebook's,
    or a shipped entry would miss wherever the environment differs."""
    cells = ["%%lazycache\n" + RUN + "import numpy as np\nx = int(np.arange(4).sum())"]
    session(tmp_path, cells, ["x"], env={"NUMPY_MADVISE_HUGEPAGE": "1"})
    hit = session(tmp_path, cells, ["x"], env={"NUMPY_MADVISE_HUGEPAGE": "0"})
    assert hit["runs"] == 1 and hit["values"] == {"x": "6"}


def test_numpy_print_and_error_options_set_in_a_cell_are_set_by_a_hit(tmp_path):
    body = "np.set_printoptions(precision=2)\nnp.seterr(divide='raise')\nx = np.arange(3) / 3"
    cells = ["import numpy as np", "%%lazycache\n" + RUN + body, "shown = repr(x)\nerr = np.geterr()['divide']"]
    names = ["shown", "err"]
    session(tmp_path, cells, names)
    hit = session(tmp_path, cells, names)
    assert hit["runs"] == 1
    assert hit["values"] == plain(tmp_path, cells, names)["values"] == {"shown": "'array([0.  , 0.33, 0.67])'",
                                                                         "err": "'raise'"}


def test_a_cell_showing_an_array_is_keyed_by_print_options_set_before_it(tmp_path):
    def cells(precision):
        return ["import numpy as np", f"np.set_printoptions(precision={precision})",
                "%%lazycache\n" + RUN + "y = np.arange(3) / 3\nprint(y)"]

    first = session(tmp_path, cells(3), ())
    assert session(tmp_path, cells(3), ())["runs"] == 1
    other = session(tmp_path, cells(5), ())
    assert other["runs"] == 2, "the shown array must not come back with the old precision"
    assert other["cells"][2]["out"].startswith("[0.      0.33333 0.66667]")
    assert first["cells"][2]["out"].startswith("[0.    0.333 0.667]")


def test_warning_filters_set_in_a_cell_are_set_by_a_hit(tmp_path):
    """``filterwarnings`` (put in front) and ``simplefilter(..., append=True)``
    (the whole list): later cells warn, stay silent or raise as after a run."""
    cells = ["import warnings",
             "%%lazycache\n" + RUN + "warnings.filterwarnings('ignore', message='quiet')\n"
             "warnings.simplefilter('error', FutureWarning, append=True)\nk = 1",
             "warnings.warn('quiet please')\nwarnings.warn('loud', UserWarning)",
             "try:\n    warnings.warn('f', FutureWarning)\n    raised = False\n"
             "except FutureWarning:\n    raised = True"]
    names = ["raised"]
    session(tmp_path, cells, names)
    hit = session(tmp_path, cells, names)
    want = plain(tmp_path, cells, names)
    assert hit["runs"] == 1 and hit["values"] == want["values"] == {"raised": "True"}
    assert "quiet" not in hit["cells"][2]["err"] and "loud" in hit["cells"][2]["err"]
    assert hit["cells"][2]["err"] == want["cells"][2]["err"]


def test_decimal_context_set_in_a_cell_is_set_by_a_hit_and_keys_decimal_cells(tmp_path):
    cells = ["import decimal", "%%lazycache\n" + RUN + "decimal.getcontext().prec = 5\nk = 1",
             "seen = str(decimal.Decimal(1) / decimal.Decimal(7))"]
    session(tmp_path, cells, ["seen"])
    hit = session(tmp_path, cells, ["seen"])
    assert hit["runs"] == 1 and hit["values"] == plain(tmp_path, cells, ["seen"])["values"] == {"seen": "'0.14286'"}

    def computing(prec):
        return ["from decimal import Decimal, getcontext", f"getcontext().prec = {prec}",
                "%%lazycache\n" + RUN + "q = str(Decimal(1) / Decimal(7))"]

    folder = tmp_path / "computing"
    folder.mkdir()
    assert session(folder, computing(4), ["q"])["values"] == {"q": "'0.1429'"}
    other = session(folder, computing(6), ["q"])
    assert other["runs"] == 2 and other["values"] == {"q": "'0.142857'"}


def test_unrelated_environment_changes_do_not_miss(tmp_path):
    cells = ["import os", "%%lazycache\n" + RUN + "y = 2"]
    session(tmp_path, cells, env={"LC_UNRELATED": "1"})
    session(tmp_path, cells, env={"LC_UNRELATED": "2"})
    assert session(tmp_path, cells)["runs"] == 1


def test_style_and_rc_changes_are_replayed_and_key_plotting_cells(tmp_path):
    mpl = pytest.importorskip("matplotlib")  # noqa: F841
    cells = ["import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt",
             "%%lazycache\n" + RUN + "plt.rc('lines', linewidth=5)\nplt.style.use('ggplot')\nstyled = True",
             "lw = plt.rcParams['lines.linewidth']; bg = plt.rcParams['axes.facecolor']"]
    names = ["lw", "bg"]
    session(tmp_path, cells, names)
    hit = session(tmp_path, cells, names)
    assert hit["runs"] == 1
    assert hit["values"] == plain(tmp_path, cells, names)["values"]

    # A plotting cell is keyed on rcParams: another style is another entry.
    def plot(width):
        return ["import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt",
                f"plt.rcParams['lines.linewidth'] = {width}",
                "%%lazycache\n" + RUN.replace("runs.txt", "plots.txt") + "fig, ax = plt.subplots()\n"
                "line, = ax.plot([1, 2])\nwidth = line.get_linewidth()"]

    session(tmp_path, plot(2), ["width"])
    assert session(tmp_path, plot(2), ["width"])["values"]["width"] == "2.0"
    other = session(tmp_path, plot(3), ["width"])
    assert other["values"]["width"] == "3.0"


def test_working_directory_change_is_replayed(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f.txt").write_text("inside")
    cells = ["import os", "%%lazycache\n" + RUN + "os.chdir('data')\nmoved = 1",
             "text = open('f.txt').read()"]
    session(tmp_path, cells, ["text"])
    hit = session(tmp_path, cells, ["text"])
    assert hit["runs"] == 1 and hit["values"]["text"] == "'inside'"


def test_pandas_display_options_set_in_a_cell_are_set_by_a_hit(tmp_path):
    pytest.importorskip("pandas")
    cells = ["import pandas as pd", "%%lazycache\n" + RUN + "pd.set_option('display.max_rows', 7)\nk = 1",
             "rows = pd.get_option('display.max_rows')"]
    session(tmp_path, cells, ["rows"])
    hit = session(tmp_path, cells, ["rows"])
    assert hit["runs"] == 1 and hit["values"]["rows"] == "7"


def test_sys_path_edits_are_replayed_as_a_difference(tmp_path):
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "helper_mod.py").write_text("VALUE = 41\n")
    cells = ["import sys, os", "%%lazycache\n" + RUN + "sys.path.insert(0, os.path.abspath('extra'))\nk = 1",
             "import helper_mod\nv = helper_mod.VALUE + 1\nhas_stdlib = any('python3' in p for p in sys.path)"]
    session(tmp_path, cells, ["v"])
    hit = session(tmp_path, cells, ["v", "has_stdlib"])
    assert hit["runs"] == 1 and hit["values"] == {"v": "42", "has_stdlib": "True"}



def test_configuring_magics_in_a_cached_cell_are_run_again_by_a_hit(tmp_path):
    cells = ["%%lazycache\n" + RUN + "%precision 3\nk = 1", "1 / 3"]
    session(tmp_path, cells)
    hit = session(tmp_path, cells)
    assert hit["runs"] == 1
    assert "0.333\n" in hit["cells"][1]["out"] and "0.3333" not in hit["cells"][1]["out"]
