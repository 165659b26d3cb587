"""``%lazycache why``, the session's outcomes and the kernel's prediction,
through a real InteractiveShell: what a user (or a front end's badge) reads.

Each run of a body appends a line to ``runs.txt`` (``runs()`` counts them),
so a hit is proven by the body not running.
"""

import os
from pathlib import Path

import pytest

from ipy_lazycache import why

ROOT = Path(__file__).resolve().parent.parent

BODY = 'open("runs.txt", "a").write("run\\n")\n'


def lazy(body, options=""):
    return f"%%lazycache {options}\n" + BODY + body


def restart(run, shell):
    """A new kernel as far as the cache can tell: empty namespace, fresh extension."""
    shell.reset(new_session=False)
    run("%reload_ext ipy_lazycache")


def ext():
    return why.loaded()


# -- outcomes -----------------------------------------------------------------------------


def test_outcomes_of_a_store_then_a_hit_by_cell_id(run, shell, runs):
    heard = []
    ext().outcomes.listeners.append(heard.append)
    cell = lazy("x = 6 * 7")
    run(cell, cell_id="cell-a")
    stored = ext().outcomes.get("cell-a")
    assert stored.state == "stored" and stored.names == ["x"] and stored.key and stored.cell_id == "cell-a"
    restart(run, shell)
    run(cell, cell_id="cell-a")
    assert runs() == 1
    hit = ext().outcomes.last
    assert hit.state == "restored" and hit.names == ["x"] and hit.key == stored.key and hit.cell_id == "cell-a"
    assert ext().outcomes.get("cell-a") is hit and hit.to_dict()["state"] == "restored"
    assert [o.state for o in heard] == ["stored"]  # the listener went with the old extension


def test_a_listener_that_raises_breaks_no_cell(run, shell, runs):
    def broken(outcome):
        raise RuntimeError("the comm is gone")

    heard = []
    ext().outcomes.listeners[:] = [broken, heard.append]
    r = run(lazy("y = 1"))
    assert r.success and shell.user_ns["y"] == 1 and [o.state for o in heard] == ["stored"]


def test_outcome_of_a_cell_that_cannot_be_keyed(run, shell):
    run("import threading\nlock = threading.Lock()")
    run(lazy("held = lock.locked()"), cell_id="c1")
    o = ext().outcomes.get("c1")
    assert o.state == "ran uncached" and "lock" in o.reason and o.key is None


def test_outcome_without_a_cell_id(run):
    run(lazy("z = 2"))
    assert ext().outcomes.last.cell_id is None and ext().outcomes.last.state == "stored"


def test_outcomes_of_auto_mode(run, shell):
    run("%lazycache auto on --min-time 0.3")
    run("q = 1", cell_id="quick")
    o = ext().outcomes.get("quick")
    assert o.state == "ran uncached" and o.reason.startswith("too quick") and o.auto
    run("import time\ntime.sleep(0.35)\ngen = (i for i in range(3))", cell_id="gen")
    o = ext().outcomes.get("gen")
    assert o.state == "ran uncached" and o.reason.startswith("a def it cannot store: gen")
    run("import time\ntime.sleep(0.35)\nslow = 3", cell_id="slow")
    assert ext().outcomes.get("slow").state == "stored"


def test_outcome_of_an_effect_no_hit_can_replay(run, shell):
    run(lazy("import sys, types\nsys.modules['lc_why_made'] = types.ModuleType('lc_why_made')"), cell_id="eff")
    __import__("sys").modules.pop("lc_why_made", None)
    o = ext().outcomes.get("eff")
    assert o.state == "ran uncached" and o.reason.startswith("an effect it cannot replay"), o.reason


# -- predict ------------------------------------------------------------------------------


def test_predict_hit_and_miss_without_running_or_storing(run, shell, runs, tmp_path):
    run("a = 1")
    cell = lazy("b = a + 1")
    assert why.predict(ext(), cell)["state"] == "would miss"
    assert not (tmp_path / "__lazycache__").exists() or not any((tmp_path / "__lazycache__").glob("*/manifest.json"))
    run(cell)
    restart(run, shell)
    run("a = 1")
    before = dict(shell.user_ns)
    assert why.predict(ext(), cell) == {"state": "would hit", "reason": why.predict(ext(), cell)["reason"]}
    assert why.predict(ext(), cell)["state"] == "would hit"
    assert "b" not in shell.user_ns and set(shell.user_ns) == set(before) and runs() == 1
    run("a = 2")
    assert why.predict(ext(), cell) == {"state": "would miss", "reason": "variable a changed: 1 → 2"}
    assert runs() == 1
    assert why.predict(ext(), cell + "\nc = 1") == {"state": "would miss",
                                                    "reason": "the code changed (and 1 more)"}


@pytest.mark.parametrize("code, words", [
    ("x = 1", "not a cached cell"),
    ("%%lazycache --off\nx = 1", "--off"),
    ("%%lazycache\nx = (", "does not parse"),
])
def test_predict_unknown(shell, code, words):
    p = why.predict(ext(), code)
    assert p["state"] == "unknown" and words in p["reason"]


# -- %lazycache why: one test per kind of difference, across a restart ------------------------


def why_after_change(run, shell, before: str, after: str, cell: str, cell_id="c1", options="") -> str:
    """Run ``before`` then the cached ``cell``; restart; run ``after`` then
    the cell again (a miss, stored); what ``%lazycache why`` says."""
    run(before)
    assert "lazycache: stored" in run(lazy(cell, options), cell_id=cell_id).out
    restart(run, shell)
    run(after)
    second = run(lazy(cell, options), cell_id=cell_id)
    assert "lazycache: stored" in second.out, second.out + second.err
    said = run("%lazycache why").out
    assert said == run(f"%lazycache why {cell_id}").out
    assert said.startswith(f"lazycache: cell {cell_id} missed, ran ")
    return said


def test_why_names_the_changed_code_lines(run, shell):
    run(lazy("x = 1\ny = 2"), cell_id="code")
    restart(run, shell)
    run(lazy("x = 1\ny = 3"), cell_id="code")
    out = run("%lazycache why").out
    assert "  - the code changed:\n    -y = 2\n    +y = 3\n" in out and "x = 1" not in out.split("changed:")[1]


def test_why_names_the_variable_whose_content_changed(run, shell):
    out = why_after_change(run, shell, "a = [1, 2, 3]\nk = 1", "a = [1, 2, 3, 4]\nk = 2", "b = len(a) + k")
    assert "  - variable a changed: 3 → 4 items\n" in out
    assert "  - variable k changed: 1 → 2\n" in out


def test_why_names_an_arrays_shape_or_where_its_values_differ(run, shell):
    pytest.importorskip("numpy")
    out = why_after_change(run, shell, "import numpy as np\na = np.zeros(1000)",
                           "import numpy as np\na = np.zeros(1000)\na[700] = 1", "total = float(a.sum())")
    assert "array a ((1000,), float64) changed: values differ in 1 of 64 slices of its 1000 elements, " \
           "within flat positions 687–702" in out
    run("a = np.zeros((2, 3), dtype='int32')")
    run(lazy("total = float(a.sum())"), cell_id="c1")
    assert "  - array a changed: shape (1000,) → (2, 3), dtype float64 → int32\n" in run("%lazycache why").out


def test_why_names_a_data_frames_columns(run, shell):
    pytest.importorskip("pandas")
    out = why_after_change(run, shell, "import pandas as pd\ndf = pd.DataFrame({'x': [1, 2], 'y': [3, 4]})",
                           "import pandas as pd\ndf = pd.DataFrame({'x': [1, 2], 'y': [3, 5], 'z': [0, 0]})",
                           "n = int(df.sum().sum())")
    assert "  - data frame df changed: columns added: z; columns changed: y; shape (2, 2) → (2, 3)\n" in out


def test_why_names_the_function_whose_code_changed(run, shell):
    out = why_after_change(run, shell, "def f(v):\n    return v + 1", "def f(v):\n    return v + 2", "y = f(1)")
    assert "  - function f's code changed:\n    -    return v + 1\n    +    return v + 2\n" in out


def test_why_says_a_functions_code_is_the_same_when_what_it_reads_changed(run, shell):
    out = why_after_change(run, shell, "K = 1\ndef f(v):\n    return v + K", "K = 2\ndef f(v):\n    return v + K",
                           "y = f(1)")
    assert "  - function f: its code is the same, but something it reads changed (a global, a default)" in out


def test_why_names_the_file(run, shell, tmp_path):
    (tmp_path / "data.txt").write_text("one")
    run(lazy("size = len(open('data.txt').read())", "--files data.txt"), cell_id="f")
    restart(run, shell)
    (tmp_path / "data.txt").write_text("three")
    assert "lazycache: stored" in run(lazy("size = len(open('data.txt').read())", "--files data.txt"),
                                      cell_id="f").out
    assert "  - file data.txt changed\n" in run("%lazycache why f").out


def test_why_names_the_environment_variable(run, shell, monkeypatch):
    monkeypatch.setenv("LC_WHY_MODE", "fast")
    run("import os")
    run(lazy("mode = os.environ.get('LC_WHY_MODE')"), cell_id="e")
    restart(run, shell)
    monkeypatch.setenv("LC_WHY_MODE", "slow")
    run("import os")
    run(lazy("mode = os.environ.get('LC_WHY_MODE')"), cell_id="e")
    out = run("%lazycache why").out
    assert "  - environment variable LC_WHY_MODE changed\n" in out
    monkeypatch.delenv("LC_WHY_MODE")
    run(lazy("mode = os.environ.get('LC_WHY_MODE')"), cell_id="e")
    assert "  - environment variable LC_WHY_MODE changed (now unset)\n" in run("%lazycache why").out


def test_why_names_the_seed(run, shell):
    out = why_after_change(run, shell, "import random\nrandom.seed(1)", "import random\nrandom.seed(2)",
                           "draw = random.random()")
    assert "  - the random module's seed (or draws before this cell) changed\n" in out


def test_why_names_an_option(run, shell):
    pytest.importorskip("numpy")
    out = why_after_change(run, shell, "import numpy as np\na = np.arange(3) / 3",
                           "import numpy as np\na = np.arange(3) / 3\nnp.set_printoptions(precision=2)",
                           "text = str(a)")
    assert "numpy's print options" in out, out
    run("np.set_printoptions(precision=8)")


def test_why_names_a_local_module(run, shell, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "lc_why_helper.py").write_text("N = 1\n")
    run(lazy("import lc_why_helper\nn = lc_why_helper.N"), cell_id="m")
    restart(run, shell)
    __import__("sys").modules.pop("lc_why_helper", None)
    (tmp_path / "lc_why_helper.py").write_text("N = 2\n")
    run(lazy("import lc_why_helper\nn = lc_why_helper.N"), cell_id="m")
    out = run("%lazycache why").out
    __import__("sys").modules.pop("lc_why_helper", None)
    assert "  - module lc_why_helper changed (its file, or a value in it)\n" in out, out


def test_why_names_the_package_version_an_entry_was_made_with(run, shell, tmp_path):
    import json
    import sys

    cell = lazy("import xxhash\nname = xxhash.__name__")
    run(cell, cell_id="v")
    (path,) = (tmp_path / "__lazycache__").glob("*/manifest.json")
    m = json.loads(path.read_text())
    assert "version:xxhash" in m["requires"]
    m["requires"]["version:xxhash"] = f"{sys.platform}:0.0.1"  # as if stored under an older xxhash
    path.write_text(json.dumps(m))
    restart(run, shell)
    assert "lazycache: stored" in run(cell, cell_id="v").out
    out = run("%lazycache why").out
    assert out.endswith("(name, xxhash).\nIt ran though an entry of its key exists: its entry was made with "
                        "xxhash 0.0.1; another version is installed here.\n")


def test_why_after_a_hit_and_an_uncached_run(run, shell, runs):
    run(lazy("import time\ntime.sleep(0.2)\nx = 1"), cell_id="h")
    restart(run, shell)
    run(lazy("import time\ntime.sleep(0.2)\nx = 1"), cell_id="h")
    out = run("%lazycache why h").out
    assert runs() == 1 and out.startswith("lazycache: cell h was restored from entry ") and ": time, x, in " in out
    assert float(out.split("saving ")[1].split(" ms")[0]) > 150
    run("%lazycache auto on --min-time 5")
    run("z = 1", cell_id="q")
    out = run("%lazycache why q").out
    assert out.startswith("lazycache: cell q ran uncached (auto mode): too quick: it ran ") and \
        "auto mode caches cells of 5.0 s or more." in out


def test_an_entry_from_before_explanations(run, shell, tmp_path):
    import json

    run(lazy("a = 1"), cell_id="old")
    for path in (tmp_path / "__lazycache__").glob("*/manifest.json"):
        m = json.loads(path.read_text())
        del m["parts"]  # written by a version that did not record them
        path.write_text(json.dumps(m))
    restart(run, shell)
    run(lazy("a = 2"), cell_id="old")
    out = run("%lazycache why").out
    assert "predates explanations" in out and "the code changed" not in out


def test_why_with_nothing_run_and_bad_arguments(run):
    assert run("%lazycache why").out == "lazycache: no cell has run with the cache this session.\n"
    assert run("%lazycache why nope").out == "lazycache: cell nope has not run with the cache this session.\n"
    r = run("%lazycache why a b")
    assert not r.success and "at most one cell id" in r.err + r.out
    assert "usage: %lazycache why [CELL_ID]" in run("%lazycache why --help").out


# -- ipy-lazycache why NOTEBOOK [CELL_ID] ----------------------------------------------------


def test_cli_why_reads_a_notebooks_cache_folder(run, shell, tmp_path):
    import json
    import subprocess
    import sys

    first, second = lazy("total = sum(data)"), lazy("half = total / 2")
    run("data = [1, 2, 3]")
    run(first, cell_id="c-sum")
    run(second, cell_id="c-half")
    run("data = [1, 2, 3, 4]")
    run(first, cell_id="c-sum")
    cells = [{"cell_type": "code", "id": i, "source": s, "metadata": {}, "outputs": [], "execution_count": None}
             for i, s in (("c-data", "data = [1, 2, 3, 4]"), ("c-sum", first), ("c-half", second + "  # edited"))]
    (tmp_path / "nb.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                                   "nbformat_minor": 5}))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "ipy_lazycache.cli", "why", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    listing = cli("nb.ipynb")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].startswith("nb.ipynb: cached cells and their entries in ") and len(lines) == 3
    assert lines[1].startswith("  cell 2 (id c-sum): entry ") and "restores total; the run took" in lines[1]
    assert lines[2].startswith("  cell 3 (id c-half): entry ") and lines[2].endswith(
        "; its code was edited since: it would miss")
    one = cli("nb.ipynb", "c-sum")
    assert one.returncode == 0 and one.stdout.splitlines()[1].startswith("Compared with entry ")
    assert "  - variable data changed: 3 → 4 items" in one.stdout
    edited = cli("nb.ipynb", "3").stdout
    assert "The notebook's code differs from the entry's:\n    -half = total / 2\n    +half = total / 2  # edited" \
        in edited and "No earlier entry of this cell" in edited
    said = run("%lazycache why nb.ipynb c-sum").out  # the magic runs the same command (ages may tick)
    assert said.splitlines()[0].split(", stored")[0] == one.stdout.splitlines()[0].split(", stored")[0]
    assert said.splitlines()[2:] == one.stdout.splitlines()[2:]
    bad = cli("nb.ipynb", "c-none")
    assert bad.returncode == 2 and "has no code cell 'c-none'" in bad.stderr


# -- a real kernel: the front end's cell id -------------------------------------------------


@pytest.mark.slow
def test_a_kernel_takes_the_cell_id_from_the_execute_request(tmp_path, monkeypatch):
    """JupyterLab and Notebook 7 send ``metadata.cellId``; ipykernel hands it to IPython as ``info.cell_id``."""
    from jupyter_client.manager import start_new_kernel

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))

    def run(code, cell_id=None):
        msg = kc.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                 "user_expressions": {}, "allow_stdin": False},
                             metadata={"cellId": cell_id} if cell_id else {})
        kc.shell_channel.send(msg)
        out = []
        while True:
            m = kc.get_iopub_msg(timeout=60)
            if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                continue
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
            elif m["msg_type"] in ("display_data", "execute_result"):
                out.append(m["content"]["data"]["text/plain"] + "\n")
            elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                return "".join(out)

    try:
        run("%load_ext ipy_lazycache\na = 1")
        assert "lazycache: stored b" in run("%%lazycache\nb = a + 1", "cell-xyz")
        run("x = 0")  # another cell ran since
        assert run("%lazycache why cell-xyz").startswith("lazycache: cell cell-xyz missed, ran ")
        p = run("from ipy_lazycache import why\nprint(why.predict(None, '%%lazycache\\nb = a + 1', 'cell-xyz'))")
        assert p.startswith("{'state': 'would hit', 'reason': 'entry "), p
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_damaged_parts_record_explains_what_it_can():
    from ipy_lazycache import explain

    old = {"key": "a" * 32, "source": "x = 1", "parts": {"code": 5, "refs": [1], "about": {"a": 3}, "environ": "x"}}
    new = {"code": "c", "refs": {"a": "1"}, "about": {"a": {"type": "int", "value": "2"}}}
    assert explain.differences(old, new, "x = 2") == ["the code changed:", "    -x = 1", "    +x = 2",
                                                      "it now reads variable a"]


def test_why_after_force_says_so(run, shell):
    run(lazy("x = 1"), cell_id="f")
    run(lazy("x = 1", "--force"), cell_id="f")
    out = run("%lazycache why").out
    assert out.endswith("(x).\nIt ran though an entry of its key exists: run with --force.\n")
    assert ext().outcomes.get("f").reason == "run with --force"
    assert why.predict(ext(), lazy("x = 1", "--force")) == {"state": "would miss",
                                                           "reason": "--force runs it and stores it again"}


def test_forget_removes_the_cells_entry(run, shell, runs):
    cell = lazy("x = 1")
    run(cell, cell_id="g")
    assert why.forget(ext(), "g").startswith("lazycache: removed entry ")
    assert why.predict(ext(), cell, "g")["state"] == "would miss"
    run(cell, cell_id="g")
    assert runs() == 2 and ext().outcomes.get("g").state == "stored"
    assert why.forget(ext(), "nope") == "lazycache: no entry to forget for cell nope."


def test_descriptions_stay_small_in_the_manifest(run, shell, tmp_path):
    import json

    for i in range(12):  # functions whose sources alone would take 24 KiB
        run(f"def f{i}(v):\n    '''{'x' * 2000}'''\n    return v + {i}")
    run(lazy("total = " + " + ".join(f"f{i}(1)" for i in range(12))), cell_id="big")
    (path,) = (tmp_path / "__lazycache__").glob("*/manifest.json")
    about = json.loads(path.read_text())["parts"]["about"]
    assert len(json.dumps(about)) <= 16 << 10 and about["f3"] == {"type": "function", "code": about["f3"]["code"]}
