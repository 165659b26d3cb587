"""A hit leaves what the run left (DESIGN §9, issue 11), save and restore side.

Two kinds of tests: the cache core driven with a plain dict namespace (run,
store, then restore into a namespace as a later session would have it), and
real InteractiveShells in fresh processes, so that "after a restart" means
a new interpreter (no cloudpickle class registry, no linecache, no modules
imported by the first run).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ipy_lazycache import core
from ipy_lazycache.stores.file import FileStore

BODY = 'open("runs.txt", "a").write("run\\n")\n'


def lazy(body, options=""):
    return f"%%lazycache {options}\n" + BODY + body


# ----------------------------------------------------------------------------
# The core, with a dict namespace


def store_run(store, source, ns, outputs=(), result=None, **plan_options):
    """Key, run and store ``source`` as the magic does; returns the manifest."""
    ns.setdefault("__name__", "__main__")
    plan = core.plan.plan(source, ns, **plan_options)
    core.run.take_before(plan, ns)
    import linecache

    # As IPython does: the cell's source is findable while the kernel lives.
    linecache.cache["<cell>"] = (len(source), None, source.splitlines(True), "<cell>")
    exec(compile(source, "<cell>", "exec"), ns)
    m, _ = core.save.save(store, plan, ns, core.run.Outcome(list(outputs), result))
    return m


def hit(store, source, ns, **plan_options):
    """Key ``source`` against ``ns`` and apply the entry; fails on a miss."""
    ns.setdefault("__name__", "__main__")
    plan = core.plan.plan(source, ns, **plan_options)
    restored = core.restore.restore(store, plan.key, ns)
    assert restored is not None, "expected a hit"
    core.apply.apply(restored, ns)
    return restored


@pytest.fixture
def store(tmp_path):
    return FileStore(tmp_path / "cache")


def test_bindings_analysis_cannot_see_are_stored(store):
    src = (
        "exec('z = base + 1')\nfrom math import *\n"
        "def bump():\n    global counter\n    counter = counter + 1\nbump()\n"
    )
    ns = {"base": 41, "counter": 0}
    m = store_run(store, src, ns, deps=["base"])
    assert {"z", "sqrt", "pi", "counter", "bump"} <= set(m["defs"])
    fresh = {"base": 41, "counter": 0}
    hit(store, src, fresh, deps=["base"])
    assert fresh["z"] == 42 and fresh["counter"] == 1
    import math

    assert fresh["sqrt"] is math.sqrt and fresh["sqrt"](81) == 9.0


def test_conditional_def_left_alone_is_not_stored_but_a_sure_one_is(store):
    src = "if flag:\n    x = 1\ny = 5\n"
    ns = {"flag": False, "x": "old", "y": 5}
    m = store_run(store, src, ns)
    assert "x" not in m["defs"]  # not assigned by this run
    assert "y" in m["defs"]  # assigned, even though to the same object
    later = {"flag": False, "x": "changed since", "y": 7}
    hit(store, src, later)
    assert later["x"] == "changed since" and later["y"] == 5


def test_deletions_are_replayed(store):
    src = "del tmp\nkeep = 1\n"
    m = store_run(store, src, {"tmp": 3})
    assert m["deleted"] == ["tmp"]
    later = {"tmp": 3}
    hit(store, src, later)
    assert "tmp" not in later and later["keep"] == 1


def test_a_global_changed_in_place_through_a_called_function_is_an_effect(store):
    setup = "log = []\ndef add(v):\n    log.append(v)\n"
    ns = {"__name__": "__main__"}
    exec(setup, ns)
    m = store_run(store, "add(3)\n", ns)
    assert ns["log"] == [3] and "log" in m["mutated"]
    later = {"__name__": "__main__"}
    exec(setup, later)
    log, add = later["log"], later["add"]
    hit(store, "add(3)\n", later)
    assert later["log"] is log and log == [3]  # the same list, changed in place
    assert later["add"] is add


def test_a_def_that_is_a_ref_restores_as_that_object(store):
    ns = {"a": [1, 2, 3]}
    m = store_run(store, "b = a\n", ns)
    assert sum(blob["size"] for blob in m["blobs"].values()) < 100  # a reference, not a copy
    later = {"a": [1, 2, 3]}
    hit(store, "b = a\n", later)
    assert later["b"] is later["a"]


def test_an_element_of_a_ref_restores_as_that_element(store):
    rows = [{"id": i} for i in range(3)]
    store_run(store, "first = rows[0]\nby_id = {r['id']: r for r in rows}\n", {"rows": rows})
    later = {"rows": [{"id": i} for i in range(3)]}
    hit(store, "first = rows[0]\nby_id = {r['id']: r for r in rows}\n", later)
    assert later["first"] is later["rows"][0]
    assert all(later["by_id"][i] is later["rows"][i] for i in range(3))


def test_a_view_of_a_ref_restores_as_a_view_of_its_current_object(store):
    np = pytest.importorskip("numpy")
    src = "b = a[::2]\nc = a[2:5].reshape(3, 1)\nd = np.arange(6.0)\ne = d[1:]\n"
    store_run(store, src, {"a": np.arange(10.0), "np": np})
    later = {"a": np.arange(10.0), "np": np}
    hit(store, src, later)
    a, b, c = later["a"], later["b"], later["c"]
    assert np.shares_memory(a, b) and np.shares_memory(a, c) and b.tolist() == [0, 2, 4, 6, 8]
    a[2] = 100.0
    assert b[1] == 100.0 and c[0, 0] == 100.0  # writes through the ref show in the views
    assert np.shares_memory(later["d"], later["e"]) and later["e"].tolist() == [1, 2, 3, 4, 5]


def test_mutated_ref_updated_in_place_keeps_its_aliases(store):
    src = "a.append(4)\nb = a\n"
    store_run(store, src, {"a": [1, 2, 3]})
    a = [1, 2, 3]
    later = {"a": a}
    hit(store, src, later)
    assert later["a"] is a and later["b"] is a and a == [1, 2, 3, 4]


def test_dropna_inplace_updates_the_frame_in_place(store):
    pd = pytest.importorskip("pandas")
    src = "df.dropna(inplace=True)\n"
    store_run(store, src, {"df": pd.DataFrame({"a": [1.0, None, 3.0]})})
    df = pd.DataFrame({"a": [1.0, None, 3.0]})
    alias = df
    later = {"df": df}
    hit(store, src, later)
    assert later["df"] is alias and alias["a"].tolist() == [1.0, 3.0]


def test_module_owned_defs_restore_by_reference(store, tmp_path, monkeypatch):
    (tmp_path / "mymod_e.py").write_text("REGISTRY = {'a': 1}\nclass Thing:\n    pass\nTHING = Thing()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    src = "from random import uniform, seed\nfrom mymod_e import REGISTRY, THING\nimport os\nenv = os.environ\n"
    m = store_run(store, src, {})
    assert all(blob["size"] < 200 for blob in m["blobs"].values())  # references, no copies
    del sys.modules["mymod_e"]  # as after a restart (and the key of an imported local module differs)
    later = {}
    hit(store, src, later)
    import random

    import mymod_e

    assert later["uniform"] == random.uniform and later["uniform"].__self__ is random._inst
    later["seed"](5)
    first = later["uniform"](0, 1)
    random.seed(5)
    assert random.uniform(0, 1) == first  # obeys random.seed, like the module's own
    assert later["REGISTRY"] is mymod_e.REGISTRY and later["THING"] is mymod_e.THING
    assert later["env"] is os.environ


def test_a_generator_is_reported_when_storing(store):
    m = store_run(store, "gen = (i for i in range(3))\nok = 1\n", {})
    assert "generator" in m["defs"]["gen"]["unstored"]  # the error, which the magic prints as it stores
    assert "unstored" not in m["defs"]["ok"]


def test_a_cell_showing_a_widget_is_not_stored(store):
    widget = {"output_type": "display_data", "metadata": {},
              "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "abc"}, "text/plain": "IntSlider"}}
    with pytest.raises(core.run.NotStored, match="widget"):
        store_run(store, "x = 1\n", {}, outputs=[widget])
    assert list(store.keys("")) == []


def test_each_restored_function_has_its_own_source_file(store):
    import inspect
    import linecache

    src = "def f(x):\n    return x + 1\n\ndef g(x):\n    return x * 2\n"
    ns = {"__name__": "__main__"}
    ns_cell = "<ipython-input-9-f00>"
    exec(compile(src, ns_cell, "exec"), ns)
    linecache.cache[ns_cell] = (len(src), None, src.splitlines(True), ns_cell)
    plan = core.plan.plan(src, ns)
    plan.before = {}
    core.save.save(store, plan, ns, core.run.Outcome([], None))
    # A new session gives the same cell file name to other code.
    linecache.cache[ns_cell] = (3, None, ["x = 1\n", "y = 2\n", "z = 3\n"], ns_cell)
    later = {"__name__": "__main__"}
    hit(store, src, later)
    f, g = later["f"], later["g"]
    assert f.__code__.co_filename != g.__code__.co_filename
    assert inspect.getsource(f).startswith("def f(x)") and inspect.getsource(g).startswith("def g(x)")
    assert f(1) == 2 and g(2) == 4


# ----------------------------------------------------------------------------
# Real shells, a fresh process per session


_SESSION = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
sh = InteractiveShell.instance()
sh.run_cell("%load_ext ipy_lazycache", store_history=False)
cells, probes = json.load(sys.stdin)
for cell in cells:
    r = sh.run_cell(cell, store_history=True)
    if not r.success:
        print("CELL FAILED:", cell, repr(r.error_in_exec or r.error_before_exec), file=sys.stderr)
out = {}
for probe in probes:
    try:
        out[probe] = repr(eval(probe, sh.user_ns))
    except Exception as exc:
        out[probe] = f"!{type(exc).__name__}: {exc}"
print("\x00PROBES" + json.dumps(out))
"""


def session(cwd, cells, probes=()):
    """Run ``cells`` in a new IPython in ``cwd``; the probes' reprs and the printed output."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(cwd), os.getcwd()]))
    env.pop("IPY_LAZYCACHE_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-c", _SESSION], input=json.dumps([list(cells), list(probes)]), cwd=cwd, env=env,
        capture_output=True, text=True, timeout=120,
    )
    head, _, tail = proc.stdout.partition("\x00PROBES")
    assert tail, proc.stderr[-3000:]
    return json.loads(tail), head + proc.stderr


def runs_in(cwd):
    try:
        return len((cwd / "runs.txt").read_text().splitlines())
    except FileNotFoundError:
        return 0


def test_restart_relations_instances_enums_lru_and_local_decorators(tmp_path):
    (tmp_path / "mydeco.py").write_text(textwrap.dedent("""
        import functools, time

        def timed(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                t0 = time.perf_counter()
                result = fn(*args, **kwargs)
                wrapper.elapsed = time.perf_counter() - t0
                return result
            return wrapper
    """))
    setup = textwrap.dedent("""
        import enum, functools
        from dataclasses import dataclass

        class Color(enum.Enum):
            RED = 1
            BLUE = 2

        @dataclass
        class Point:
            x: int
            y: int

        def make(n):
            return [Point(i, i) for i in range(n)]

        rows = make(3)
    """)
    cached = lazy(textwrap.dedent("""
        from mydeco import timed

        @timed
        def double(v):
            return scale(v) * 2

        def scale(v):
            return v

        @functools.lru_cache(maxsize=None)
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        made = make(2)
        first = rows[0]
        color = Color.BLUE
        alias = rows
    """))
    probes = [
        "double(21)", "fib(20)", "type(made[0]) is Point", "first is rows[0]", "alias is rows",
        "color is Color.BLUE", "double.__wrapped__.__globals__ is globals()",
        "type(fib).__name__", "fib.cache_info().hits > 0",
    ]
    first, log = session(tmp_path, [setup, cached], probes)
    assert runs_in(tmp_path) == 1 and "stored" in log
    second, log = session(tmp_path, [setup, cached], probes)
    assert runs_in(tmp_path) == 1, log  # a hit after the restart
    assert second == first, log
    assert second["double(21)"] == "42" and second["fib(20)"] == "6765"
    assert second["type(made[0]) is Point"] == "True" and second["color is Color.BLUE"] == "True"
    assert second["first is rows[0]"] == "True" and second["alias is rows"] == "True"


def test_restart_exec_import_star_and_global_statements(tmp_path):
    setup = "base = 41\ncounter = 0\ndef bump():\n    global counter\n    counter += 1\n"
    cached = lazy("exec('z = base + 1')\nfrom math import *\nbump()\n", "--deps base")
    probes = ["z", "sqrt(81)", "counter", "sqrt is __import__('math').sqrt"]
    first, log = session(tmp_path, [setup, cached], probes)
    second, log = session(tmp_path, [setup, cached], probes)
    assert runs_in(tmp_path) == 1, log
    assert second == first == {"z": "42", "sqrt(81)": "9.0", "counter": "1", "sqrt is __import__('math').sqrt": "True"}


def test_restart_module_owned_objects_are_the_modules_own(tmp_path):
    cached = lazy("from random import uniform, seed\nimport numpy as np\nnormal = np.random.normal\n")
    probes = [
        "uniform.__self__ is __import__('random')._inst",
        "(seed(3), uniform(0, 1))[1] == (seed(3), __import__('random').random())[1]",
    ]
    session(tmp_path, [cached], probes)
    second, log = session(tmp_path, [cached], probes + ["normal is np.random.normal"])
    assert runs_in(tmp_path) == 1, log
    assert set(second.values()) == {"True"}, second


def test_logging_through_an_old_handler_is_captured_and_replayed(run, shell, runs, capfd):
    import logging

    logger = logging.getLogger("fidelity_e")
    handler = logging.StreamHandler(sys.stderr)  # holds the stream of before the cell
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        cell = lazy("import logging\nlogging.getLogger('fidelity_e').info('made x')\nx = 1\n")
        first = run(cell)
        assert "made x" in first.err and runs() == 1
        second = run(cell)
        assert runs() == 1 and "made x" in second.err
    finally:
        logger.removeHandler(handler)


def test_display_updates_are_replayed_in_order(shell, runs, published):
    cell = lazy(
        "from IPython.display import display\n"
        "h = display({'text/plain': 'first'}, raw=True, display_id='prog-e')\n"
        "print('between')\n"
        "h.update({'text/plain': 'final'}, raw=True)\n"
    )
    shell.run_cell(cell)
    seen_run = list(published)
    del published[:]
    shell.run_cell(cell)
    assert runs() == 1
    assert [d.get("text/plain") for d in published] == [d.get("text/plain") for d in seen_run] == ["first", "final"]


def test_widget_output_is_not_stored(run, runs):
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "m1", "version_major": 2, "version_minor": 0},
            "text/plain": "IntSlider(value=0)"}
    cell = lazy(f"from IPython.display import display\ndisplay({view!r}, raw=True)\nx = 1\n")
    first = run(cell)
    assert "not stored" in first.out and "widget" in first.out
    assert run(cell).success and runs() == 2  # runs again: a widget needs its live model


def test_generator_reported_when_storing_through_the_shell(run, runs):
    first = run(lazy("gen = (i for i in range(3))\nn = 3\n"))
    assert "gen could not be stored" in first.out


def test_unstorable_last_value_never_puts_an_internal_type_in_out(run, shell, runs):
    cell = lazy("import threading\nthreading.Lock()\n")
    run(cell)
    second = run(cell)
    assert runs() == 1
    out = shell.user_ns["Out"]
    assert all(type(v).__module__.split(".")[0] != "ipy_lazycache" for v in out.values())
    assert "lock" in second.out.lower()


def test_restored_function_source_is_aligned_when_the_stored_source_lacks_leading_lines(store):
    import inspect

    cell = "\ndef f(x):\n    return x + 1\n"  # compiled with a blanked first line
    stored = cell.lstrip("\n")
    ns = {"__name__": "__main__"}
    exec(compile(cell, "<ipython-input-77-e>", "exec"), ns)
    import linecache

    linecache.cache["<ipython-input-77-e>"] = (len(cell), None, cell.splitlines(True), "<ipython-input-77-e>")
    plan = core.plan.plan(stored, ns)
    core.save.save(store, plan, ns, core.run.Outcome([], None))
    del linecache.cache["<ipython-input-77-e>"]
    later = {"__name__": "__main__"}
    hit(store, stored, later)
    assert inspect.getsource(later["f"]) == "def f(x):\n    return x + 1\n"


def test_defs_sharing_objects_stay_one_structure(store):
    class Node:
        pass

    shared = Node()
    ns = {"__name__": "__main__", "Node": Node}
    plan = core.plan.plan("a = 1\nb = 1\nc = 1\n", ns)
    ns.update(a={"node": shared}, b=[shared], c=[1])
    m = core.save.save(store, plan, ns, core.run.Outcome([], None))[0]
    assert len([b for b in m["blobs"].values() if set(b["defs"]) >= {"a", "b"}]) == 1  # one pickle for both
    later = {"__name__": "__main__", "Node": Node}
    r = core.restore.restore(store, plan.key, later)
    assert r.values["a"]["node"] is r.values["b"][0]


def test_restart_subplots_axes_are_the_figures_axes(tmp_path):
    pytest.importorskip("matplotlib")
    cell = lazy("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
                "fig, ax = plt.subplots(2, 2)\n")
    probes = ["ax[0, 0] is fig.axes[0]", "ax[1, 1].figure is fig"]
    first, _ = session(tmp_path, [cell], probes)
    second, log = session(tmp_path, [cell], probes)
    assert runs_in(tmp_path) == 1, log
    assert first == second == {p: "True" for p in probes}, log


def test_state_changed_through_methods_and_function_attributes_is_reapplied(store):
    setup = (
        "events = []\n"
        "class Counter:\n    def __init__(self):\n        self.n = 0\n"
        "    def bump(self):\n        self.n += 1\n        events.append(self.n)\n"
        "c = Counter()\n"
        "def tick():\n    tick.calls = getattr(tick, 'calls', 0) + 1\n"
    )
    src = "c.bump()\ntick()\n"
    ns = {"__name__": "__main__"}
    exec(setup, ns)
    store_run(store, src, ns)
    later = {"__name__": "__main__"}
    exec(setup, later)
    c, events, tick = later["c"], later["events"], later["tick"]
    hit(store, src, later)
    assert later["c"] is c and c.n == 1
    assert later["events"] is events and events == [1]
    assert later["tick"] is tick and tick.calls == 1


@pytest.mark.slow
def test_real_kernels_outputs_display_updates_logging_and_semicolon(tmp_path):
    """Two notebook runs in two real kernels: the second hits and shows the same outputs."""
    nbformat = pytest.importorskip("nbformat")

    cells = [
        "%load_ext ipy_lazycache\nimport logging, sys\nlog = logging.getLogger('nbk')\n"
        "log.addHandler(logging.StreamHandler(sys.stderr))\nlog.setLevel(logging.INFO)",
        lazy("from IPython.display import display\nh = display({'text/plain': 'step 0'}, raw=True, display_id=True)\n"
             "print('working')\nlog.info('logged line')\nh.update({'text/plain': 'done'}, raw=True)\n"
             "total = 41 + 1\ntotal;"),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    from tests.test_kernel import execute as run_notebook, visible

    def execute():
        return visible(run_notebook(path).cells[1])

    first = execute()
    second = execute()
    assert runs_in(tmp_path) == 1
    assert second == first
    texts = [o.get("text") or o.get("data", {}).get("text/plain") for o in first]
    assert texts[0] == "done"  # the display shows its final content
    assert any("logged line" in (t or "") for t in texts)
    assert not any(o["output_type"] == "execute_result" for o in first)  # ';' hides the value


def test_restart_functions_inside_containers_see_the_notebook(tmp_path):
    setup = "k = 1\n"
    cached = lazy("handlers = {'add': lambda x: x + k}\nsteps = [lambda x: x * k]\ndef base(x):\n    return x + k\n")
    probes = ["(globals().__setitem__('k', 10), handlers['add'](1), steps[0](2), base(0))[1:]",
              "__import__('inspect').getsource(base).startswith('def base')"]
    first, _ = session(tmp_path, [setup, cached], probes)
    second, log = session(tmp_path, [setup, cached], probes)
    assert runs_in(tmp_path) == 1, log
    assert second == first == {probes[0]: "(11, 20, 10)", probes[1]: "True"}, log


def test_a_ref_function_taken_as_a_def_is_left_as_it_is(store):
    import inspect
    import linecache

    cell = "def f(x):\n    return x\n"
    ns = {"__name__": "__main__"}
    exec(compile(cell, "<ipython-input-5-aa>", "exec"), ns)
    linecache.cache["<ipython-input-5-aa>"] = (len(cell), None, cell.splitlines(True), "<ipython-input-5-aa>")
    store_run(store, "g = f\nfs = [f]\n", ns)
    del ns["g"], ns["fs"]
    hit(store, "g = f\nfs = [f]\n", ns)  # the same session
    assert ns["g"] is ns["f"] and ns["fs"][0] is ns["f"]
    assert ns["f"].__code__.co_filename == "<ipython-input-5-aa>"  # not renamed to this cell's source
    assert inspect.getsource(ns["f"]) == cell


def test_restart_views_in_place_updates_and_aliases(tmp_path):
    pytest.importorskip("pandas")
    first_cell = lazy("import numpy as np, pandas as pd\na = np.arange(10.0)\n"
                      "df = pd.DataFrame({'x': [1.0, None, 3.0]})\nrows = [[1], [2]]\n")
    aliases = "frame = df\nfirst = rows[0]\n"
    cached = lazy("b = a[::2]\ndf.dropna(inplace=True)\nrows.append([3])\nlast = rows[-1]\n")
    probes = [
        "np.shares_memory(a, b)", "(a.__setitem__(2, 50.0), b[1])[1]", "frame is df", "len(frame)",
        "first is rows[0]", "last is rows[-1]", "len(rows)",
    ]
    first, _ = session(tmp_path, [first_cell, aliases, cached], probes)
    second, log = session(tmp_path, [first_cell, aliases, cached], probes)
    assert runs_in(tmp_path) == 2, log  # each cached cell ran once, in the first session
    assert second == first, log
    assert second["np.shares_memory(a, b)"] == "True"
    assert second["(a.__setitem__(2, 50.0), b[1])[1]"] == "np.float64(50.0)"  # a write to a shows in b
    assert second["frame is df"] == "True" and second["len(frame)"] == "2" and second["last is rows[-1]"] == "True"


def test_old_items_of_a_ref_changed_in_place_stay_the_same_objects(store):
    def setup():
        a, b = [1], {"k": 1}
        return {"rows": [a, b], "first": a, "second": b}

    src = "rows.insert(0, [0])\nrows[1].append(9)\nrows[2]['k'] = 2\ntaken = rows.pop()\n"
    ns = setup()
    store_run(store, src, ns)
    later = setup()
    first, second = later["first"], later["second"]
    hit(store, src, later)
    assert later["rows"] == ns["rows"] == [[0], [1, 9]]
    assert later["rows"][1] is first and first == [1, 9]  # moved, changed, still the same list
    assert later["taken"] is second and second == {"k": 2}


def test_a_chain_of_defs_sharing_objects_is_one_pickle(store):
    ns = {"__name__": "__main__"}
    plan = core.plan.plan("a = b = c = None\n", ns)
    core.run.take_before(plan, ns)
    x, y = {"x": 1}, {"y": 2}
    ns.update(a=[x], b=[x, y], c=[y], lone=[{"z": 3}])  # b aborts at x, before it meets y: found by the group
    m = core.save.save(store, plan, ns, core.run.Outcome([], None))[0]
    assert sorted(sorted(b["defs"]) for b in m["blobs"].values()) == [["a", "b", "c"], ["lone"]]
    r = core.restore.restore(store, plan.key, {"__name__": "__main__"})
    assert r.values["a"][0] is r.values["b"][0] and r.values["b"][1] is r.values["c"][0]


def test_a_restore_that_fails_half_way_leaves_the_namespace_alone(store):
    from ipy_lazycache.manifest import CorruptEntry

    setup = "class K:\n    pass\ndef make():\n    return K()\nrows = [[1], [2]]\n"
    src = "rows[0].append(9)\npair = (rows[0], make())\n"
    ns = {"__name__": "__main__"}
    exec(setup, ns)
    store_run(store, src, ns)
    later = {"__name__": "__main__"}
    exec(setup, later)
    plan = core.plan.plan(src, later)
    del later["K"]  # the instance's class, taken by name, is gone: the restore fails after the first item loaded
    with pytest.raises(CorruptEntry):
        core.restore.restore(store, plan.key, later)
    assert later["rows"] == [[1], [2]]  # the cell will run on this: not half applied
    exec(setup, later)
    item = later["rows"][0]
    hit(store, src, later)
    assert later["rows"] == [[1, 9], [2]] and later["rows"][0] is item and later["pair"][0] is item


def test_a_logging_handler_made_in_the_cell_writes_to_the_real_stream_afterwards(run, shell, runs):
    import logging

    logger = logging.getLogger("fidelity_made_in_cell")
    try:
        run(lazy("import logging, sys\nlogging.getLogger('fidelity_made_in_cell').addHandler("
                 "logging.StreamHandler(sys.stderr))\nx = 1\n"))
        (handler,) = logger.handlers
        assert type(handler.stream).__name__ != "_Tee"  # not the finished recording's stream
    finally:
        logger.handlers.clear()


def test_import_star_is_stored_in_a_few_blobs(store):
    m = store_run(store, "from math import *\nfrom os.path import *\n", {})
    assert {"sqrt", "pi", "join", "exists"} <= set(m["defs"]) and len(m["blobs"]) <= 4
    later = {}
    hit(store, "from math import *\nfrom os.path import *\n", later)
    import math
    import os.path

    assert later["sqrt"] is math.sqrt and later["join"] is os.path.join and later["pi"] == math.pi


def test_module_data_the_cell_put_there_and_cyclic_items_restore(store, tmp_path, monkeypatch):
    (tmp_path / "mymod_f.py").write_text("TABLE = {'a': 1}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # the notebook's folder: mymod_f is a local module
    src = (
        "import mymod_f\nmymod_f.cache = {'made': 1}\ndata = mymod_f.cache\n"
        "table = mymod_f.TABLE\nrows[0].append(2)\n"
    )
    loop = []
    loop.append(loop)
    ns = {"rows": [loop]}
    store_run(store, src, ns)
    del sys.modules["mymod_f"]  # a new kernel: the module has no `cache`
    loop2 = []
    loop2.append(loop2)
    later = {"rows": [loop2]}
    hit(store, src, later)
    import mymod_f

    assert later["data"] == {"made": 1} and later["table"] is mymod_f.TABLE
    assert later["rows"][0] is loop2 and loop2[0] is loop2 and loop2[1] == 2


def test_sets_keep_their_iteration_order(store):
    src = "s = {3, 11}\nboth = [s, s, frozenset(s)]\n"
    ns = {}
    store_run(store, src, ns)
    later = {}
    hit(store, src, later)
    assert list(later["s"]) == list(ns["s"]) == [11, 3]  # plain pickle gives [3, 11]
    assert later["both"][0] is later["both"][1] and list(later["both"][2]) == list(ns["both"][2])


def test_a_def_sharing_an_object_with_one_that_cannot_be_stored_is_still_stored(store):
    ns = {"__name__": "__main__"}
    plan = core.plan.plan("good = bad = None\n", ns)
    core.run.take_before(plan, ns)
    part = {"x": 1}
    ns.update(good=[part], bad=[part, (i for i in range(3))])  # the generator cannot be pickled
    m = core.save.save(store, plan, ns, core.run.Outcome([], None))[0]
    assert "unstored" in m["defs"]["bad"] and "unstored" not in m["defs"]["good"]
    r = core.restore.restore(store, plan.key, {"__name__": "__main__"})
    assert r.values["good"] == [{"x": 1}] and r.tripwires == ["bad"]
