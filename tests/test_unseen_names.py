"""Names a cell needs that analysis used to miss (adversarial class J).

``del big`` succeeds only when ``big`` exists: its absence is keyed, so a
kernel without ``big`` runs the cell and gets the NameError a plain run
gives. Reaching the namespace through the module object
(``sys.modules['__main__'].K``) reads names analysis cannot see, like
``globals()``: the cell runs uncached (or names them with ``--deps``).
"""

from tests._fresh import RUN, session


def test_deleting_a_name_that_is_not_there_is_not_a_hit(tmp_path):
    cell = "%%lazycache\n" + RUN + "del big\ndone = True"
    session(tmp_path, ["big = [0] * 10", cell])
    got = session(tmp_path, [cell], ["done"], fails=(0,))
    assert not got["cells"][0]["ok"] and "NameError" in got["cells"][0]["err"] + got["cells"][0]["out"]
    assert got["values"]["done"] == "<NameError>"


def test_names_read_through_the_main_module_are_not_keyed_by_guess(tmp_path):
    cell = "%%lazycache\n" + RUN + "import sys\ny = sys.modules['__main__'].K * 2"
    session(tmp_path, ["K = 1", cell])
    got = session(tmp_path, ["K = 5", cell], ["y"])
    assert got["values"]["y"] == "10"
    assert "not cached" in got["cells"][1]["out"]
