"""``%lazycache why``, the session's outcomes and the kernel's prediction,
through a real InteractiveShell: what a user (or a front end's badge) reads.

Each run of a body appends a line to ``runs.txt`` (``runs()`` counts them),
so a hit is proven by the body not running.
"""

import pytest

from ipy_lazycache import why

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
    p = why.predict(ext(), cell)
    assert p["state"] == "would miss" and runs() == 1


@pytest.mark.parametrize("code, words", [
    ("x = 1", "not a cached cell"),
    ("%%lazycache --off\nx = 1", "--off"),
    ("%%lazycache\nx = (", "does not parse"),
])
def test_predict_unknown(shell, code, words):
    p = why.predict(ext(), code)
    assert p["state"] == "unknown" and words in p["reason"]
