"""A hit is a run for process state nobody keys: what a cached cell sets on an installed library, the magics it
defines, interpreter settings (issue 21 #4). Each case: a plain run, then two sessions with the extension (a restart
between); a later plain cell must see what it sees without the magic. Replayed effects hit after the restart; the
ones a hit cannot redo are not stored (the cell runs again, and says so)."""

import pytest

from tests._fresh import RUN, session

CASES = {  # name: (cells, the later cell's value, runs after the restart: 1 replayed, 2 not stored)
    "a method added to a library's class": (
        ["import pandas as pd",
         "%%lazycache\n" + RUN + "pd.DataFrame.total = lambda self: int(self.sum().sum())\nk = 1",
         "v = pd.DataFrame({'a': [1, 2]}).total()"], 2),
    "an attribute set on a library module": (
        ["import json", "%%lazycache\n" + RUN + "json.my_default = 3\nk = 1", "v = json.my_default"], 2),
    "setattr on a module the cell imports": (
        ["%%lazycache\n" + RUN + "import collections\nsetattr(collections, 'registry', {'a': 1})\nk = 1",
         "import collections\nv = collections.registry"], 2),
    "a magic defined by the notebook": (
        ["%%lazycache\n" + RUN + "from IPython.core.magic import register_line_magic\n@register_line_magic\n"
         "def shout(line):\n    return line.upper()\nk = 1", "v = %shout hi"], 2),
    "socket's default timeout": (
        ["%%lazycache\n" + RUN + "import socket\nsocket.setdefaulttimeout(5)\nk = 1",
         "import socket\nv = socket.getdefaulttimeout()"], 1),
    "the cyclic GC turned off": (
        ["%%lazycache\n" + RUN + "import gc\ngc.disable()\nk = 1", "import gc\nv = gc.isenabled()"], 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_later_cell_sees_what_the_run_left_after_a_restart(tmp_path, case):
    cells, runs = CASES[case]
    (tmp_path / "plain").mkdir()
    (tmp_path / "work").mkdir()
    plain = session(tmp_path / "plain", cells, ["v"], magic=False)
    first = session(tmp_path / "work", cells, ["v"])
    again = session(tmp_path / "work", cells, ["v"])
    assert first["values"] == again["values"] == plain["values"]
    assert again["runs"] == runs
    if runs == 2:
        said = [c["out"] for c in first["cells"] if "not stored" in c["out"]]
        assert said and "which a hit cannot redo" in said[0]
