"""Sets whose iteration order follows the string hash seed, across a restart (issue 21 #3, corpus D8/D10/D15).

A set of str iterates in an order ``PYTHONHASHSEED`` sets, random per kernel. Keyed by that order, a cell
reading the set missed in every new kernel (xarray's ``Dataset._coord_names``, the sets of words of a regex
notebook); stored only where the storing process could rebuild the order, a set left by ``-=`` came back as a
stand-in and every later cell raised ``TripwireError``. Each session here is a new process with its own seed.
"""

from tests._fresh import RUN, session

MAKE = ("%%lazycache\n" + RUN + "s = set(str(i) for i in range(1000))\n"
        "s -= set(str(i) for i in range(0, 1000, 2))\nwords = set('adams jefferson madison monroe adams'.split())")
READ = "%%lazycache\n" + RUN + "n = len(s)\nfirst = sorted(s, key=int)[:3]\nw = sorted(words)"
NAMES = ["n", "first", "w", "type(s).__name__"]


def test_a_set_of_str_comes_back_and_its_readers_hit_in_a_kernel_with_another_seed(tmp_path):
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    expected = session(plain_dir, [MAKE, READ], NAMES, magic=False, env={"PYTHONHASHSEED": "3"})["values"]
    first = session(tmp_path, [MAKE, READ], NAMES, env={"PYTHONHASHSEED": "1"})
    assert "could not be stored" not in first["cells"][0]["out"], first["cells"][0]["out"]
    again = session(tmp_path, [MAKE, READ], NAMES, env={"PYTHONHASHSEED": "2"})
    assert first["values"] == again["values"] == expected
    assert "not restored" not in again["cells"][0]["out"] + again["cells"][1]["out"]
    assert again["runs"] == 2, "both cells hit in the new kernel: the sets are the same values"


def test_a_changed_set_of_str_still_misses(tmp_path):
    session(tmp_path, [MAKE, READ], NAMES, env={"PYTHONHASHSEED": "1"})
    edited = MAKE.replace("monroe", "polk")
    again = session(tmp_path, [edited, READ], NAMES, env={"PYTHONHASHSEED": "2"})
    assert again["runs"] == 4 and again["values"]["w"] == repr(["adams", "jefferson", "madison", "polk"])
