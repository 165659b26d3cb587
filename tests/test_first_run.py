"""The first run is untouched (DESIGN §9): with the magic, a cell's first
run does exactly what it does without it."""

import re
import sys
import warnings

import pytest

from tests._fresh import RUN, session

BODY = 'open("runs.txt", "a").write("run\\n")\n'


def test_functions_the_cell_calls_see_the_names_it_rebinds(run, shell):
    run("df = [1, 2]")
    run("def add_col():\n    return df + [3]")
    r = run("%%lazycache\ndf = add_col()")
    assert r.success, r.err
    assert shell.user_ns["df"] == [1, 2, 3]


def test_top_level_await_works(tmp_path):
    """In a process of its own: another test's running event loop must not
    decide it (IPython runs top-level await on its own loop)."""
    cells = ["%%lazycache\n" + RUN + "import asyncio\nawait asyncio.sleep(0)\nawaited = 5"]
    first = session(tmp_path, cells, ["awaited"])
    assert first["cells"][0]["ok"], first["cells"][0]["out"]
    second = session(tmp_path, cells, ["awaited"])
    assert first["values"] == second["values"] == {"awaited": "5"}
    assert second["runs"] == 1


def test_traceback_names_the_cell_and_line_like_a_plain_cell(run):
    plain = run("x = 1\n1 / 0")
    cached = run("%%lazycache\nx = 1\n1 / 0")
    assert not cached.success and isinstance(cached.error_in_exec, ZeroDivisionError)
    text = re.sub(r"\x1b\[[0-9;]*m", "", cached.err + cached.out)
    assert "ipy_lazycache" not in text, "the extension's own frames must not show"
    # The same cell line is pointed at (line 3 of the cell as written, under the magic).
    assert "----> 3 1 / 0" in text
    assert "----> 2 1 / 0" in re.sub(r"\x1b\[[0-9;]*m", "", plain.err + plain.out)


def test_syntax_error_looks_as_without_the_magic(run):
    r = run("%%lazycache\nx = (")
    assert isinstance(r.error_before_exec, SyntaxError)
    assert "ipy_lazycache" not in r.err + r.out


def test_semicolon_suppresses_the_value_on_a_run_and_on_a_hit(run, shell, runs):
    cell = "%%lazycache\n" + BODY + "21 * 2;"
    first = run(cell, store_history=True)  # IPython reads `;` from the history
    second = run(cell, store_history=True)
    assert runs() == 1
    for r in (first, second):
        shown = [line for line in r.out.splitlines() if not line.startswith("lazycache:")]
        assert not any("42" in line for line in shown) and r.result is None


def test_last_value_sets_out_and_underscore_on_a_hit(run, shell, runs):
    cell = "%%lazycache\n" + BODY + "[1, 2, 3]"
    run(cell, store_history=True)
    r = run(cell, store_history=True)
    assert runs() == 1 and r.result == [1, 2, 3]
    assert shell.user_ns["_"] == [1, 2, 3]


def test_warnings_name_the_cell_line(run):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run("import warnings\nwarnings.warn('plain')", store_history=True)
        run("%%lazycache\nimport warnings\nwarnings.warn('careful')", store_history=True)
    plain, cached = seen[-2], seen[-1]
    assert str(cached.message) == "careful" and cached.lineno == 3 and plain.lineno == 2
    assert cached.filename.startswith("<ipython-input-") or "ipykernel" in cached.filename
    assert cached.filename != plain.filename and "ipy_lazycache" not in cached.filename


def test_a_cell_that_fails_is_not_stored(run, runs):
    cell = "%%lazycache\n" + BODY + "y = 1\nraise ValueError('no')"
    assert not run(cell).success
    assert not run(cell).success
    assert runs() == 2


def test_restored_list_changed_by_a_silent_execution_is_keyed_by_its_new_content(run, shell, runs):
    """Code that is not a plain cell (silent executions, threads) can change a
    value: a hash known from the restore is not trusted after it."""
    run("%%lazycache\nlst = [1, 2]")
    run("%%lazycache\nlst = [1, 2]")  # a hit: lst's hash is known from the manifest
    shell.run_cell("lst.append(3)", silent=True)
    r = run("%%lazycache\n" + BODY + "total = sum(lst)")
    assert r.success and shell.user_ns["total"] == 6

    import threading

    t = threading.Thread(target=shell.user_ns["lst"].append, args=(4,))
    t.start()
    t.join()
    run("%%lazycache\n" + BODY + "total = sum(lst)")
    assert shell.user_ns["total"] == 10 and runs() == 2


def test_help_shows_usage_and_runs_nothing(run, runs):
    r = run("%%lazycache --help\n" + BODY + "x = 1")
    assert "--force" in r.out and runs() == 0


@pytest.mark.slow
def test_differential_first_run_across_restarts(tmp_path):
    """Same notebook with and without the magic, in new processes: equal."""
    cells = ["import asyncio\ndf = [1, 2]", "def add_col():\n    return df + [3]",
             "%%lazycache\n" + RUN + "df = add_col()\nawait asyncio.sleep(0)\nn = len(df)",
             "%%lazycache\n" + RUN + "n * 2;", "%%lazycache\n" + RUN + "n * 3", "m = _ + 1"]
    names = ["df", "n", "m"]
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain = session(plain_dir, cells, names, magic=False)
    first = session(tmp_path, cells, names)
    second = session(tmp_path, cells, names)
    assert first["values"] == plain["values"] == second["values"]
    assert second["runs"] == first["runs"] == 3


def test_a_cell_that_imports_hits_on_its_second_run_whether_or_not_the_module_was_loaded(
        run, shell, runs, tmp_path, monkeypatch):
    """The key of ``import m`` must not depend on whether m is loaded yet."""
    monkeypatch.syspath_prepend(str(tmp_path))  # as '' is in a kernel's path
    (tmp_path / "fresh_local_mod.py").write_text("VALUE = 3\n")
    cell = "%%lazycache\n" + BODY + "import fresh_local_mod, json\nv = fresh_local_mod.VALUE + len(json.dumps([]))"
    run(cell)
    run(cell)
    assert runs() == 1 and shell.user_ns["v"] == 5
    (tmp_path / "fresh_local_mod.py").write_text("VALUE = 4\n")  # edited, not reloaded: never a wrong hit
    r = run(cell)
    assert runs() == 2, "the edited module's cell must run, not hit"
    assert shell.user_ns["v"] == 5 and "not cached" in r.out and "reload" in r.out


def test_an_entry_from_another_version_of_an_imported_module_is_a_miss(run, shell, runs):
    """Imports are keyed by name (so a site whose Pyodide has another version,
    or lacks the module, can still restore); the version is checked at lookup."""
    import glob
    import json

    cell = "%%lazycache\n" + BODY + "import attrs\nname = attrs.__name__"
    run(cell)
    run(cell)
    assert runs() == 1
    (path,) = glob.glob("__lazycache__/*/manifest.json")
    with open(path) as f:
        m = json.load(f)
    assert m["requires"] == {"version:attrs": f"{sys.platform}:{__import__('attrs').__version__}"}
    m["requires"]["version:attrs"] = "wasm-elsewhere:0.0.1"  # another platform's build: results are shipped on purpose
    with open(path, "w") as f:
        json.dump(m, f)
    run(cell)
    assert runs() == 1
    m["requires"]["version:attrs"] = f"{sys.platform}:0.0.1"  # as if written here with attrs 0.0.1
    with open(path, "w") as f:
        json.dump(m, f)
    run(cell)
    assert runs() == 2 and shell.user_ns["name"] == "attrs"


def test_a_cell_that_changes_a_module_is_not_stored(run, shell, runs, tmp_path, monkeypatch):
    """A hit cannot set a module's attributes again: such a cell always runs."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "conf_mod_a.py").write_text("CONST = 1\n")
    (tmp_path / "conf_mod_b.py").write_text("CONST = 1\n")
    run("import conf_mod_a")
    for cell in ("%%lazycache\n" + BODY + "conf_mod_a.CONST = 11",
                 "%%lazycache\n" + BODY + "import conf_mod_b\nconf_mod_b.CONST = 12"):
        r = run(cell)
        assert "not stored: it changes conf_mod_" in r.out
        run(cell)
    assert runs() == 4
    assert shell.user_ns["conf_mod_a"].CONST == 11 and shell.user_ns["conf_mod_b"].CONST == 12


def test_a_set_of_colliding_hashes_comes_back_in_its_iteration_order(run, shell, runs):
    """3, 11 and 19 collide in a small set's table: the order a hit gives must
    be the run's (pickle alone would re-insert them in another order)."""
    cell = "%%lazycache\n" + BODY + "s = {3, 11, 19}\norder = list(s)"
    run(cell)
    expected = list(shell.user_ns["s"])
    del shell.user_ns["s"]
    run(cell)
    assert runs() == 1 and list(shell.user_ns["s"]) == expected == shell.user_ns["order"]
