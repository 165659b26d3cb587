"""A stand-in never replaces a live value, and a hit that cannot do what the
run did becomes a run (issue 20 #5, DESIGN §11).

A def that could not be stored comes back as a stand-in only where nothing
else is bound to its name (a new kernel): in the kernel that holds the value,
an identical cell runs again rather than putting the stand-in over it. A def
this platform stored but cannot read back, and an effect of the run that
cannot be applied again (``os.chdir`` into a folder since removed), make the
hit a run too: the user sees what the plain cell does.
"""

import pytest

from tests._fresh import RUN, session

LOCK = "%%lazycache\n" + RUN + "import threading\nlk = threading.Lock()\nn = 1"


def test_a_stand_in_never_replaces_the_value_the_kernel_holds(run, runs):
    assert run(LOCK).success and runs() == 1
    again = run(LOCK)
    assert again.success and runs() == 2, "the identical cell must run: its stand-in would replace the live lock"
    assert "running the cell" in again.out
    assert run("with lk:\n    ok = True").success and run.shell.user_ns["ok"] is True


def test_a_new_kernel_still_gets_the_stand_in_that_names_the_def(tmp_path):
    session(tmp_path, [LOCK])
    got = session(tmp_path, [LOCK, "r = repr(lk)"], ["n", "r"])
    assert got["runs"] == 1 and got["values"]["n"] == "1"  # a hit: the documented stand-in, nothing hidden
    assert "not restored by %%lazycache: lk" in got["values"]["r"]


@pytest.mark.slow
def test_an_effect_that_cannot_be_applied_again_makes_the_hit_a_run(tmp_path):
    cell = "%%lazycache\n" + RUN + "import os\nos.chdir('out')"
    (tmp_path / "out").mkdir()
    first = session(tmp_path, [cell])
    assert first["cells"][0]["ok"]
    (tmp_path / "out").rmdir()
    (tmp_path / "plain").mkdir()
    plain = session(tmp_path / "plain", [cell], magic=False, fails=(0,))  # no out/ there either
    again = session(tmp_path, [cell, "import os\nwhere = os.path.basename(os.getcwd())"], ["where"], fails=(0,))
    assert again["cells"][0]["ok"] is plain["cells"][0]["ok"] is False, again
    assert "FileNotFoundError" in again["cells"][0]["err"] + again["cells"][0]["out"]
    assert again["values"]["where"] == repr(tmp_path.name)
    assert again["runs"] == 2


@pytest.mark.slow
def test_a_def_this_platform_cannot_read_back_runs_instead(tmp_path):
    """numpy's Generator (round 2: its blob names a module that exists nowhere) must never come back as a
    stand-in on the machine that stored it: the cell runs, or restores it for real."""
    pytest.importorskip("numpy")
    cells = ["%%lazycache\n" + RUN + "import numpy as np\nrng = np.random.default_rng(1)", "w = rng.random()"]
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    expected = session(plain_dir, cells, ["w"], magic=False)["values"]
    session(tmp_path, cells)
    again = session(tmp_path, cells, ["w"])
    assert all(c["ok"] for c in again["cells"]), again
    assert again["values"] == expected
