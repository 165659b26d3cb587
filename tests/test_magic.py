"""%%lazycache through a real InteractiveShell: what a user does and sees.

Every hit is proven by a side effect no cache can restore: the body appends a
line to ``runs.txt``, and ``runs()`` counts the lines.
"""

import os

import pytest

BODY = 'open("runs.txt", "a").write("run\\n")\n'


def lazy(body, options=""):
    return f"%%lazycache {options}\n" + BODY + body


def test_miss_then_hit_restores_values_and_outputs(run, shell, runs):
    run("a = 21")
    cell = lazy(
        "from IPython.display import HTML, display\n"
        "b = a * 2\n"
        "print('computed', b)\n"
        "display(HTML('<b>bold</b>'))\n"
        "b + 1\n"
    )
    first = run(cell)
    assert first.success and runs() == 1
    assert "computed 42" in first.out and "Out[" in first.out and "43" in first.out
    assert "lazycache: stored" in first.out

    shell.user_ns.pop("b")
    second = run(cell)
    assert second.success
    assert runs() == 1, "the body must not run on a hit"
    assert shell.user_ns["b"] == 42
    assert "computed 42" in second.out and "43" in second.out
    assert second.out.count("<IPython.core.display.HTML object>") == 1
    status = [l for l in second.out.splitlines() if l.startswith("lazycache: restored")]
    assert len(status) == 1 and " b," in status[0]
    assert second.result == 43 or repr(second.result) == "43"


def test_rich_display_is_replayed(shell, runs, published):
    cell = "%%lazycache\n" + BODY + "from IPython.display import HTML, display\ndisplay(HTML('<i>x</i>'))"
    shell.run_cell(cell)
    del published[:]
    shell.run_cell(cell)
    assert runs() == 1
    assert [d.get("text/html") for d in published] == ["<i>x</i>"]


def test_hit_after_restart(run, shell, runs):
    cell = lazy("import math\nroot = math.sqrt(81)\nprint(root)")
    run(cell)
    shell.reset(new_session=False)
    run("%reload_ext ipy_lazycache")
    r = run(cell)
    assert runs() == 1
    assert shell.user_ns["root"] == 9.0
    assert shell.user_ns["math"] is __import__("math")  # modules come back by import
    assert "9.0" in r.out


@pytest.mark.parametrize(
    "change, reruns",
    [
        ("a = 2", True),  # a ref's value
        ("pass", False),  # nothing
    ],
)
def test_ref_value_change(run, shell, runs, change, reruns):
    run("a = 1")
    cell = lazy("b = a + 1")
    run(cell)
    run(change)
    run(cell)
    assert runs() == (2 if reruns else 1)
    assert shell.user_ns["b"] == shell.user_ns["a"] + 1


def test_comments_and_whitespace_do_not_change_the_key(run, runs):
    run("a = 1")
    run(lazy("b = a+1"))
    run(lazy("# a comment\nb  =  (a + 1)   # another\n\n"))
    assert runs() == 1
    run(lazy("b = a + 2"))
    assert runs() == 2


def test_notebook_function_and_its_globals_are_part_of_the_key(run, shell, runs):
    run("scale = 2\ndef helper(x):\n    return x * scale")
    cell = lazy("y = helper(10)")
    run(cell)
    run(cell)
    assert runs() == 1 and shell.user_ns["y"] == 20
    run("def helper(x):\n    return x * scale + 1")  # edit the body
    run(cell)
    assert runs() == 2 and shell.user_ns["y"] == 21
    run("scale = 3")  # a global the function reads
    run(cell)
    assert runs() == 3 and shell.user_ns["y"] == 31
    run("def other(x):\n    return helper(x)")  # a function calling a function
    run(lazy("z = other(1)"))
    run("scale = 4")
    run(lazy("z = other(1)"))
    assert runs() == 5 and shell.user_ns["z"] == 5


def test_notebook_class_is_part_of_the_key(run, shell, runs):
    run("class Model:\n    def fit(self):\n        return 1")
    cell = lazy("score = Model().fit()")
    run(cell)
    run(cell)
    assert runs() == 1
    run("class Model:\n    def fit(self):\n        return 2")
    run(cell)
    assert runs() == 2 and shell.user_ns["score"] == 2


def test_file_dependency(run, shell, runs, tmp_path):
    (tmp_path / "data.csv").write_text("1,2,3")
    cell = lazy("text = open('data.csv').read()", "--files data.csv")
    run(cell)
    run(cell)
    assert runs() == 1
    (tmp_path / "data.csv").write_text("4,5,6")
    run(cell)
    assert runs() == 2 and shell.user_ns["text"] == "4,5,6"


def test_force_reruns_and_overwrites(run, runs):
    run(lazy("x = 1"))
    run(lazy("x = 1", "--force"))
    assert runs() == 2
    run(lazy("x = 1"))
    assert runs() == 2


def test_dir_option_env_and_config(run, shell, runs, tmp_path, monkeypatch):
    run(lazy("x = 1", "--dir mycache"))
    assert (tmp_path / "mycache").is_dir() and not (tmp_path / "__lazycache__").exists()
    monkeypatch.setenv("IPY_LAZYCACHE_DIR", str(tmp_path / "fromenv"))
    run(lazy("x = 2"))
    assert (tmp_path / "fromenv").is_dir()
    run("%config LazyCache.dir = 'fromconfig'")
    run(lazy("x = 3"))
    assert (tmp_path / "fromconfig").is_dir()
    run(lazy("x = 3"))
    assert runs() == 3


def test_deps_names_extra_variables(run, shell, runs):
    run("threshold = 1")
    cell = lazy("y = eval('threshold') * 10", "--deps threshold")
    run(cell)
    run("threshold = 2")
    run(cell)
    assert runs() == 2 and shell.user_ns["y"] == 20


def test_quiet(run, runs):
    first = run(lazy("x = 1", "--quiet"))
    second = run(lazy("x = 1", "--quiet"))
    assert runs() == 1
    assert "lazycache" not in first.out + second.out


@pytest.mark.parametrize("options", ["--bogus", "--dir", "--deps 1abc", "--files", "--force extra"])
def test_bad_options_give_one_usage_error(run, shell, runs, options):
    """Bad input loses nothing: one line says what is wrong, and the cell
    still runs, uncached (a second run runs it again)."""
    r = run(lazy("x = 1", options))
    assert runs() == 1 and shell.user_ns["x"] == 1
    assert sum("UsageError" in line for line in (r.err + r.out).splitlines()) == 1
    assert "Traceback" not in r.err + r.out
    run(lazy("x = 1", options))
    assert runs() == 2


def test_magics_and_shell_lines_inside_a_cached_cell(run, shell, runs):
    cell = lazy("%time total = sum(range(10))\nlisting = !echo hello\n")
    run(cell)
    del shell.user_ns["total"], shell.user_ns["listing"]  # restored, not left over
    r = run(cell)
    assert runs() == 1
    assert shell.user_ns["total"] == 45
    assert list(shell.user_ns["listing"]) == ["hello"]
    assert "Wall time" in r.out  # %time's output is replayed


def test_nested_scopes_count_as_refs(run, shell, runs):
    run("factor = 3")
    cell = lazy("f = lambda v: v * factor\nvals = [f(i) for i in range(3)]\nsq = [i * factor for i in range(2)]")
    run(cell)
    run("factor = 4")
    run(cell)
    assert runs() == 2 and shell.user_ns["vals"] == [0, 4, 8] and shell.user_ns["sq"] == [0, 4]


def test_del_is_replayed(run, shell, runs):
    cell = lazy("tmp = 1\nkeep = tmp + 1\ndel tmp")
    run(cell)
    run("tmp = 'stale'")
    run(cell)
    assert runs() == 1
    assert "tmp" not in shell.user_ns and shell.user_ns["keep"] == 2


def test_a_def_the_run_did_not_assign_is_left_alone(run, shell, runs):
    """``if False: x = 1`` must not restore a stale x over the current one."""
    run("flag = False\nx = 'before'")
    cell = lazy("if flag:\n    x = 1\ny = 2")
    run(cell)
    run("x = 'changed'")
    run(cell)
    assert runs() == 1 and shell.user_ns["x"] == "changed"


@pytest.mark.parametrize(
    "setup, name",
    [
        ("gen = (i for i in range(3))", "gen"),
        ("import threading\nlock = threading.Lock()", "lock"),
    ],
)
def test_unhashable_ref_runs_uncached_with_one_line(run, shell, runs, setup, name):
    run(setup)
    cell = lazy(f"seen = repr({name})[:1]")
    first = run(cell)
    second = run(cell)
    assert first.success and second.success
    assert runs() == 2
    lines = [l for l in second.out.splitlines() if l.startswith("lazycache:")]
    assert len(lines) == 1 and repr(name) in lines[0] and "not cached" in lines[0]
    assert not os.path.exists("__lazycache__") or not any(
        f.endswith("manifest.json") for _, _, fs in os.walk("__lazycache__") for f in fs
    )


def test_mutated_ref_is_restored(run, shell, runs):
    run("lst = [1, 2, 3]\nalias = lst")
    cell = lazy("lst.append(4)\nn = len(lst)")
    run(cell)
    assert shell.user_ns["lst"] == [1, 2, 3, 4]
    run("lst = [1, 2, 3]\nalias = lst")
    run(cell)
    assert runs() == 1
    assert shell.user_ns["lst"] == [1, 2, 3, 4] and shell.user_ns["n"] == 4
    assert shell.user_ns["alias"] is shell.user_ns["lst"]  # updated in place, like a run


def test_mutated_dataframe_is_restored(run, shell, runs):
    pd = pytest.importorskip("pandas")
    setup = "import pandas as pd\ndf = pd.DataFrame({'a': [1.0, None, 3.0]})"
    run(setup)
    cell = lazy("df.dropna(inplace=True)\nrows = len(df)")
    run(cell)
    expected = shell.user_ns["df"].copy()
    run(setup)
    run(cell)
    assert runs() == 1
    pd.testing.assert_frame_equal(shell.user_ns["df"], expected)
    assert shell.user_ns["rows"] == 2


def test_exception_stores_nothing_and_reaches_the_user(run, shell, runs):
    cell = lazy("x = 1\nraise ValueError('boom')")
    r = run(cell)
    assert not r.success and isinstance(r.error_in_exec, ValueError)
    assert "ValueError" in r.out + r.err and "boom" in r.out + r.err
    r2 = run(cell)
    assert runs() == 2 and isinstance(r2.error_in_exec, ValueError)


def test_identities_and_relations_survive(run, shell, runs):
    cell = lazy(
        "class Point:\n"
        "    def __init__(self, x):\n"
        "        self.x = x\n"
        "    def double(self):\n"
        "        return self.x * 2\n"
        "p = Point(3)\n"
        "q = p\n"
        "pts = [p, p]\n"
        "def area(pt):\n"
        "    return pt.x * scale\n"
    )
    run("scale = 10")
    run(cell)
    run(cell)
    ns = shell.user_ns
    assert runs() == 1
    assert isinstance(ns["p"], ns["Point"]) and ns["p"].double() == 6
    assert ns["q"] is ns["p"] and ns["pts"][0] is ns["p"] and ns["pts"][1] is ns["p"]
    assert ns["area"](ns["p"]) == 30
    run("scale = 100")
    assert ns["area"](ns["p"]) == 300  # a restored function reads live globals


def test_instance_of_an_earlier_class_keeps_its_class(run, shell, runs):
    run("class Box:\n    def __init__(self, v):\n        self.v = v")
    cell = lazy("box = Box(5)")
    run(cell)
    run(cell)
    assert runs() == 1
    assert type(shell.user_ns["box"]) is shell.user_ns["Box"]


def test_unserializable_def_becomes_a_tripwire(run, shell, runs):
    cell = lazy("import threading\nlock = threading.Lock()\nok = 1")
    run(cell)
    run("del lock, ok")  # a stand-in never replaces a live value (tests/test_standins.py): here none is bound
    r = run(cell)
    assert runs() == 1 and shell.user_ns["ok"] == 1
    assert "lock" in r.out and "--force" in r.out or "not restored" in r.out
    use = run("lock.acquire()")
    assert not use.success
    message = str(use.error_in_exec)
    assert "'lock'" in message and "--force" in message


def test_damaged_blob_is_a_miss_with_a_warning(run, shell, runs, tmp_path):
    cell = lazy("data = list(range(1000))")
    run(cell)
    blobs = [p for p in (tmp_path / "__lazycache__").rglob("*.pkl")]
    assert blobs
    raw = bytearray(blobs[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    blobs[0].write_bytes(bytes(raw))
    r = run(cell)
    assert runs() == 2 and shell.user_ns["data"] == list(range(1000))
    warnings = [l for l in r.out.splitlines() if "damaged" in l]
    assert len(warnings) == 1
    run(cell)
    assert runs() == 2  # re-stored whole


def test_stats_line_magic(run, runs):
    run(lazy("x = 1"))
    run(lazy("x = 1"))
    r = run("%lazycache stats")
    assert "1 hit," in r.out and "1 miss," in r.out


def test_restored_functions_can_be_hashed_in_a_new_session(run, shell, runs):
    """A function restored after a restart keeps its source, so later cached
    cells that call it (through another function) can still be keyed."""
    cell = lazy("def base(x):\n    return x + 1\nclass K:\n    def go(self):\n        return base(1)")
    run(cell)
    shell.reset(new_session=False)
    import linecache

    for name in [n for n in linecache.cache if n.startswith("<ipython-input")]:
        del linecache.cache[name]  # what a new kernel process would have
    run("%reload_ext ipy_lazycache")
    run(cell)
    assert runs() == 1
    run("def wrapper(x):\n    return base(x) * K().go()")
    downstream = lazy("y = wrapper(3)")
    first = run(downstream)
    assert "not cached" not in first.out
    run(downstream)
    assert runs() == 2 and shell.user_ns["y"] == 8


def test_a_variable_written_before_a_reload_is_not_the_new_sessions_change(run, shell, runs, monkeypatch):
    """The environment delta counts the notebook's writes since the extension
    loaded: a name written before a reload and then changed by the kernel's
    own code (here pytest's, as the kernel sets its own variables) is not a
    change of the new session, so the cell hits after the next reload."""
    run("import os\nos.environ['LAZYCACHE_T'] = 'a'")
    run("%reload_ext ipy_lazycache")
    monkeypatch.setenv("LAZYCACHE_T", "b")  # installed code, not the notebook's
    cell = lazy("x = 1")
    run(cell)
    run("%reload_ext ipy_lazycache")
    run(cell)
    assert runs() == 1 and shell.user_ns["x"] == 1


def test_function_defaults_and_bound_builtins_are_part_of_the_key(run, shell, runs):
    run("a = 1\ndef f(x=a):\n    return x\nlst = [1]\npush = lst.append")
    cell = lazy("y = f()\nz = push.__self__[-1]")
    run(cell)
    run("a = 2\ndef f(x=a):\n    return x")  # same source, different default value
    run(cell)
    assert runs() == 2 and shell.user_ns["y"] == 2
    run("lst.append(5)")  # the bound method's owner changed
    run(cell)
    assert runs() == 3 and shell.user_ns["z"] == 5


def test_codec_blobs_name_the_library_of_their_value(run, tmp_path):
    """A browser without pandas must see from the manifest alone that a frame
    cannot load there (it becomes a tripwire, unfetched)."""
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    import json

    run(lazy("import pandas as pd\nframe = pd.DataFrame({'a': [1, 2]})"))
    (manifest,) = (tmp_path / "__lazycache__").glob("*/manifest.json")
    blobs = json.loads(manifest.read_text())["blobs"]
    (frame_blob,) = [b for b in blobs.values() if b["defs"] == ["frame"]]
    assert {"pandas", "pyarrow"} <= set(frame_blob["modules"])


def test_names_read_inside_code_magics_are_refs(run, shell, runs):
    run("n = 10")
    cell = lazy("%time total = sum(range(n))\n%timeit -n 1 -r 1 total + n")
    run(cell)
    run("n = 20")
    run(cell)
    assert runs() == 2 and shell.user_ns["total"] == 190


def test_names_expanded_in_shell_lines_are_refs(run, shell, runs):
    run("word = 'alpha'")
    cell = lazy("out = !echo {word.upper()} $word")
    run(cell)
    run("word = 'beta'")
    run(cell)
    assert runs() == 2 and list(shell.user_ns["out"]) == ["BETA beta"]


def test_last_expression_value_is_restored_for_out_and_underscore(run, shell, runs):
    cell = lazy("vals = [3, 1, 2]\nsorted(vals)")
    run(cell)
    r = run(cell)
    assert runs() == 1
    assert r.result == [1, 2, 3] and shell.user_ns["_"] == [1, 2, 3]
    assert "[1, 2, 3]" in r.out


def test_unpicklable_last_expression_is_replayed_as_its_display(run, shell, runs):
    cell = lazy("import threading\nthreading.Lock()")
    first = run(cell)
    second = run(cell)
    assert runs() == 1
    shown = [l for l in first.out.splitlines() if "unlocked" in l]
    assert shown and shown == [l for l in second.out.splitlines() if "unlocked" in l]
    assert "not restored" not in second.out  # no tripwire line for the display


def test_defs_that_reference_each_other_keep_their_cycle(run, shell, runs):
    cell = lazy("a = ['a']\nb = ['b', a]\na.append(b)\nc = {'both': (a, b)}")
    run(cell)
    for name in ("a", "b", "c"):
        del shell.user_ns[name]
    run(cell)
    ns = shell.user_ns
    assert runs() == 1
    assert ns["a"][1] is ns["b"] and ns["b"][1] is ns["a"]
    assert ns["c"]["both"][0] is ns["a"] and ns["c"]["both"][1] is ns["b"]
