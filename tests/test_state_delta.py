"""Process state as a delta from a fresh kernel (DESIGN §11): what a
session changed joins every key, a fresh kernel keys as before, an effect is
replayed exactly or the cell is not stored.

Each scenario runs real IPython shells in new processes (restarts), counts
body runs, and compares with the same cells run without the magic.
"""

import pytest

from tests._fresh import RUN, session

pytestmark = pytest.mark.slow  # every test starts several Python processes


def plain(tmp_path, cells, names=(), env=None):
    folder = tmp_path / "plain"
    folder.mkdir(exist_ok=True)
    return session(folder, cells, names, magic=False, env=env)


CACHED = "%%lazycache\n" + RUN + "y = 2 * 21\nprint(y)"


@pytest.mark.parametrize("change", [
    "import pandas as pd\npd.set_option('mode.chained_assignment', 'raise')",
    "import pandas as pd\npd.set_option('future.no_silent_downcasting', True)",
    "%precision 2",
    "get_ipython().ast_node_interactivity = 'all'",
    "import sys\nsys.setrecursionlimit(5000)",
    "import warnings\nwarnings.simplefilter('ignore')",
    "import os\nos.environ['LC_DELTA_TEST'] = '1'",
    "import sys\nsys.path.append('extra')",
    "import sympy\nsympy.init_printing()",
    "import decimal\ndecimal.getcontext().prec = 6",
    "import time, os\nos.environ['TZ'] = 'JST-9'\ntime.tzset()",
])
def test_a_change_to_process_state_misses_and_a_fresh_kernel_hits(tmp_path, change):
    """A cell after a change of process state (any registry) is another
    entry; in a fresh kernel the same cell hits."""
    if "pandas" in change:
        pytest.importorskip("pandas")
    if "sympy" in change:
        pytest.importorskip("sympy")
    fresh = ["x = 1", CACHED]
    session(tmp_path, fresh)
    assert session(tmp_path, fresh)["runs"] == 1, "a fresh kernel's delta is empty: the entry hits"
    changed = session(tmp_path, [change, CACHED])
    assert changed["runs"] == 2, f"after {change!r} the cell must run"
    again = session(tmp_path, [change, CACHED])
    assert again["runs"] == 2, "the same change in a new kernel hits the entry made after it"
    assert session(tmp_path, fresh)["runs"] == 2


def test_a_seed_before_the_extension_loads_is_not_another_seeds_draw(tmp_path):
    """Seeding before ``%load_ext`` is not watched: the generators count as
    seeded, so a draw under another seed runs."""
    def cells(seed):
        return [f"import numpy as np\nnp.random.seed({seed})", "%load_ext ipy_lazycache",
                "%%lazycache\n" + RUN + "e = np.random.rand()"]

    def run(seed):
        return _late(tmp_path, cells(seed))

    first, again = run(1), run(1)
    assert again["runs"] == 1 and first["values"]["e"] == again["values"]["e"]
    other = run(2)
    assert other["runs"] == 2
    assert other["values"] == plain(tmp_path, [cells(2)[0], cells(2)[2]], ["e"])["values"]


def _late(folder, cells):
    """A session whose extension is loaded by one of its cells (not before)."""
    from tests import _fresh

    # no load before the cells; "loaded" is then whether a cell loaded it
    script = _fresh._SCRIPT.replace('if spec["magic"]:', 'if False:').replace(
        '"loaded": loaded}', '"loaded": "lazycache" in sh.magics_manager.magics["cell"]}')
    assert script.count("if False:") == 1 and '"loaded": "lazycache"' in script
    old, _fresh._SCRIPT = _fresh._SCRIPT, script
    try:
        return session(folder, cells, ["e"])
    finally:
        _fresh._SCRIPT = old


def test_sympy_init_printing_in_a_cached_cell_is_not_stored(tmp_path):
    """Its printers are closures: no exact replay, so the cell always runs
    and later cells keep their pretty output."""
    pytest.importorskip("sympy")
    cells = ["%%lazycache\n" + RUN + "import sympy\nsympy.init_printing(use_unicode=True)\nk = 1",
             "sympy.Symbol('alpha')"]
    first = session(tmp_path, cells)
    assert "not stored" in first["cells"][0]["out"] and "printer" in first["cells"][0]["out"]
    second = session(tmp_path, cells)
    assert second["runs"] == 2
    assert "α" in second["cells"][1]["out"]


def test_an_appended_warning_filter_is_replayed_at_the_back(tmp_path):
    """``append=True`` is replayed as one filter at the back, never as the
    previous kernel's whole list (whose ``error`` filter would come back)."""
    cells = ["import warnings",
             "%%lazycache\n" + RUN + "warnings.filterwarnings('ignore', 'noisy', append=True)\nk = 1",
             "try:\n    warnings.warn('plain warning')\n    raised = False\nexcept UserWarning:\n    raised = True",
             "n = sum(1 for f in warnings.filters if f[0] == 'ignore' and getattr(f[1], 'pattern', '') == 'noisy')"]
    first = ["import warnings\nwarnings.simplefilter('error')"] + cells  # this kernel raises on warnings
    session(tmp_path, first, ["raised"])
    hit = session(tmp_path, cells, ["raised", "n"])
    assert hit["values"] == plain(tmp_path, cells, ["raised", "n"])["values"] == {"raised": "False", "n": "1"}


def test_sys_path_append_and_environment_update_are_replayed(tmp_path):
    for folder in (tmp_path, tmp_path / "plain"):
        (folder / "extra").mkdir(parents=True)
        (folder / "extra" / "helper_mod2.py").write_text("VALUE = 7\n")
    """Exactly: a path appended that is already on ``sys.path`` is appended
    again (it was recorded as no change)."""
    cells = ["import sys, os\nn0 = len(sys.path)",
             "%%lazycache\n" + RUN + "sys.path.append(os.path.abspath('extra'))\nsys.path.append(sys.path[0])\n"
             "os.environ.update({'LC_UPD_A': 'a', 'LC_UPD_B': 'b'})\nk = 1",
             "import helper_mod2\nv = (helper_mod2.VALUE, os.environ.get('LC_UPD_A'), os.environ.get('LC_UPD_B'), "
             "len(sys.path) - n0, sys.path[-1] == sys.path[0])"]
    session(tmp_path, cells, ["v"])
    hit = session(tmp_path, cells, ["v"])
    assert hit["runs"] == 1 and hit["values"] == plain(tmp_path, cells, ["v"])["values"] == {
        "v": "(7, 'a', 'b', 2, True)"}


def test_a_module_put_into_sys_modules_is_not_stored(tmp_path):
    cells = ["%%lazycache\n" + RUN + "import sys, types\nm = types.ModuleType('lcfake')\nm.X = 5\n"
             "sys.modules['lcfake'] = m", "import lcfake\ny = lcfake.X"]
    session(tmp_path, cells, ["y"])
    again = session(tmp_path, cells, ["y"])
    assert again["runs"] == 2 and again["values"] == {"y": "5"}
    assert "not stored" in again["cells"][0]["out"]


def test_the_time_zone_keys_a_cell_reading_local_time(tmp_path):
    cells = ["%%lazycache\n" + RUN + "import time\ny = time.strftime('%H:%M', time.localtime(0))"]
    utc = session(tmp_path, cells, ["y"], env={"TZ": "UTC0"})
    jst = session(tmp_path, cells, ["y"], env={"TZ": "JST-9"})
    assert jst["runs"] == 2 and (utc["values"], jst["values"]) == ({"y": "'00:00'"}, {"y": "'09:00'"})
    assert session(tmp_path, cells, ["y"], env={"TZ": "JST-9"})["runs"] == 2


def test_a_time_zone_set_in_a_cached_cell_is_set_by_a_hit(tmp_path):
    cells = ["%%lazycache\n" + RUN + "import os, time\nos.environ['TZ'] = 'JST-9'\ntime.tzset()\nk = 1",
             "import time\nlate = time.strftime('%H', time.localtime(0))"]
    session(tmp_path, cells, ["late"], env={"TZ": "UTC0"})
    hit = session(tmp_path, cells, ["late"], env={"TZ": "UTC0"})
    assert hit["runs"] == 1 and hit["values"] == {"late": "'09'"}


def test_scipy_distributions_key_the_same_in_every_process(tmp_path):
    """A distribution object holds numpy's unseeded global generator: keyed
    by what it is, a warm re-run hits every cell that reads it."""
    pytest.importorskip("scipy")
    cells = ["from scipy.stats import beta, norm\nfrozen = norm(0, 2)",
             "%%lazycache\n" + RUN + "y = float(beta.pdf(0.5, 2, 5)) + float(frozen.pdf(0.1))"]
    session(tmp_path, cells, ["y"])
    warm = session(tmp_path, cells, ["y"])
    assert warm["runs"] == 1, "the cell hits after a restart"
    assert warm["values"] == plain(tmp_path, cells, ["y"])["values"]


@pytest.mark.parametrize("body, probe, want", [
    ("import sys\nsys.setrecursionlimit(4321)", "__import__('sys').getrecursionlimit()", "4321"),
    ("get_ipython().ast_node_interactivity = 'all'", "get_ipython().ast_node_interactivity", "'all'"),
    ("import pandas as pd\npd.set_option('future.no_silent_downcasting', True)",
     "__import__('pandas').get_option('future.no_silent_downcasting')", "True"),
    ("import locale\nlocale.setlocale(locale.LC_NUMERIC, 'C.UTF-8')",
     "__import__('locale').setlocale(__import__('locale').LC_NUMERIC)", "'C.UTF-8'"),
    ("get_ipython().display_formatter.formatters['text/latex'].enabled = False",
     "get_ipython().display_formatter.formatters['text/latex'].enabled", "False"),
    ("from matplotlib_inline.config import InlineBackend\nInlineBackend.instance().figure_formats = {'svg'}",
     "sorted(__import__('matplotlib_inline.config').config.InlineBackend.instance().figure_formats)", "['svg']"),
])
def test_a_change_a_cached_cell_makes_is_made_again_by_a_hit(tmp_path, body, probe, want):
    if "pandas" in body:
        pytest.importorskip("pandas")
    if "matplotlib_inline" in body:
        pytest.importorskip("matplotlib_inline")
    cells = ["%%lazycache\n" + RUN + body + "\nk = 1", f"seen = {probe}"]
    first = session(tmp_path, cells, ["seen"])
    hit = session(tmp_path, cells, ["seen"])
    assert first["runs"] == hit["runs"] == 1, hit["cells"][0]["out"]
    assert hit["values"] == plain(tmp_path, cells, ["seen"])["values"] == {"seen": want}


@pytest.mark.parametrize("body", [
    "import ast\nclass T(ast.NodeTransformer):\n    pass\nget_ipython().ast_transformers.append(T())",
    "get_ipython().display_formatter.formatters['text/plain'].for_type(complex, lambda v, p, c: p.text('z'))",
    "import warnings\nwarnings.filters.pop()",
])
def test_a_change_with_no_exact_replay_is_not_stored_with_one_line(tmp_path, body):
    cells = ["%%lazycache\n" + RUN + body + "\nk = 1"]
    first = session(tmp_path, cells)
    lines = [line for line in first["cells"][0]["out"].splitlines() if line.startswith("lazycache:")]
    assert len(lines) == 1 and lines[0].startswith("lazycache: not stored:") and "cannot redo" in lines[0]
    assert session(tmp_path, cells)["runs"] == 2


def test_the_first_cell_is_where_every_baseline_starts(tmp_path):
    """A kernel's own setup before its first cell (a startup file that loaded the extension, then moved,
    set paths, a zone, a limit ...) is no change of the session's: ``start_here`` rebases every provider
    that measures from the session's start, and the delta joining every key is empty again."""
    change = ("import os, sys, time\nos.environ['TZ'] = 'JST-9'\ntime.tzset()\nsys.setrecursionlimit(4321)\n"
              "get_ipython().ast_node_interactivity = 'all'\nsys.path.append('extra')\nos.environ['LC_X'] = '1'\n"
              "os.mkdir('sub')\nos.chdir('sub')")
    probe = ("import ipy_lazycache\nreg = ipy_lazycache._magics.sequence.ambient\nbefore = sorted(reg.delta())\n"
             "reg.start_here()\nafter = sorted(reg.delta())")
    got = session(tmp_path, [change, probe], ["before", "after"])
    for name in ("timezone", "recursionlimit", "interactivity", "sys.path", "environ", "cwd"):
        assert f"'delta:{name}'" in got["values"]["before"], got
    assert got["values"]["after"] == "[]", got
