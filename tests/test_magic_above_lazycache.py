"""Issue 21 #5, the other order: a cell magic above ``%%lazycache`` (``%%time``) ran the body uncached and
silently, because the extension's cleanup transform blanked the ``%%lazycache`` line of the body ``%%time``
transforms. IPython runs ``%%time\\n%%lazycache\\nbody`` by timing ``run_cell_magic('lazycache', '', body)``:
the body is cached, a hit restores it without running it, and ``%%time`` still prints its timing."""

from tests._fresh import RUN, session, twice

TIMED = "%%time\n%%lazycache\n" + RUN + "x = 40 + 2\nx"
CAPTURED = "%%capture cap\n%%lazycache --quiet\n" + RUN + "print('hidden')\ny = 3"
READER = "%%time\n%%lazycache\n" + RUN + "import math\nz = math.sqrt(x + y + 4)"


def test_a_cell_magic_above_lazycache_caches_the_body_and_still_runs_around_it(tmp_path):
    names = ["x", "y", "z", "cap.stdout"]
    expected, first, again = twice(tmp_path, [TIMED, CAPTURED, READER], names)
    assert expected == {"x": "42", "y": "3", "z": "7.0", "cap.stdout": "'hidden\\n'"}
    assert first["values"] == again["values"] == expected
    assert first["runs"] == 3, "each body ran once in the first session"
    assert again["runs"] == 3, "no body ran again in the new kernel: all three hit"
    for run, said in ((first, "lazycache: stored x"), (again, "lazycache: restored x")):
        timed, _, reader = run["cells"]
        assert said in timed["out"] and "Wall time" in timed["out"], timed
        assert timed["out"].rstrip().endswith("Out[1]: 42"), timed  # %%time returns the body's value
        assert "Wall time" in reader["out"] and reader["out"].count("lazycache:") == 1, reader
    assert "lazycache: restored math, z" in again["cells"][2]["out"]


def test_timeit_above_lazycache_runs_the_body_once_and_says_so_once(tmp_path):
    """``%%timeit`` calls the magic six times here: the first stores, the others hit, with one line between them.
    (No plain run to compare with: plain ``%%timeit`` binds nothing, the magic it times binds the body's names.)"""
    cells = ["%%timeit -n 3 -r 2\n%%lazycache\n" + RUN + "w = 6 * 7", "seen = w"]
    first, again = session(tmp_path, cells, ["seen"]), session(tmp_path, cells, ["seen"])
    assert first["values"] == again["values"] == {"seen": "42"}
    assert first["runs"] == 1 and again["runs"] == 1, "the body ran once, in the first session"
    for run, said in ((first, "lazycache: stored w"), (again, "lazycache: restored w")):
        out = run["cells"][0]["out"]
        assert out.count("lazycache:") == 1 and said in out and "per loop" in out, out
