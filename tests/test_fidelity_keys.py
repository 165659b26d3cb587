"""The key holds everything the cell can observe, and a hit leaves what the
run left (DESIGN §9, §11): each class across a real kernel restart, with a
body-run counter (``runs.txt``) telling a hit from a run."""

import pytest

from tests._fresh import RUN, session


def lazy(body: str) -> str:
    return "%%lazycache\n" + RUN + body


# ----------------------------------------------------------------------------
# Names the cell needs that analysis must see


def test_deleting_a_name_that_is_gone_raises_as_the_run_does(tmp_path):
    """``del big`` reads big: present it is keyed, absent the run raises."""
    cell = lazy("del big\ndone = True")
    first = session(tmp_path, ["big = [0] * 10", cell], ["done"])
    assert [c["ok"] for c in first["cells"]] == [True, True]
    second = session(tmp_path, [cell], ["done", "'big' in dir()"])
    assert not second["cells"][0]["ok"], "the hit deleted a name the namespace does not hold"
    assert "NameError" in second["cells"][0]["err"] + second["cells"][0]["out"]
    assert second["values"]["done"] == "<NameError>"
    assert second["runs"] == 2


@pytest.mark.parametrize("reach", [
    "import sys\ny = sys.modules['__main__'].K * 2",
    "import __main__\ny = __main__.K * 2",
    "y = __import__('__main__').K * 2",
    "y = get_ipython().user_module.K * 2",
])
def test_names_read_through_the_main_module_are_not_stale(tmp_path, reach):
    cell = lazy(reach)
    first = session(tmp_path, ["K = 1", cell], ["y"])
    assert first["values"]["y"] == "2"
    second = session(tmp_path, ["K = 5", cell], ["y"])
    assert second["values"]["y"] == "10"
    assert second["runs"] == 2
    assert "__main__" in second["cells"][1]["out"], "one line says why the cell runs uncached"


def test_main_module_comparison_is_not_dynamic(tmp_path):
    cell = lazy("if __name__ == '__main__':\n    y = 3")
    session(tmp_path, [cell], ["y"])
    second = session(tmp_path, [cell], ["y"])
    assert second["values"]["y"] == "3" and second["runs"] == 1


# ----------------------------------------------------------------------------
# Maybe-bound names


def test_a_bind_a_context_manager_swallowed_is_not_stored(tmp_path):
    setup = "from contextlib import suppress\nd = {{}}\ny = {!r}"
    cell = lazy("with suppress(KeyError):\n    y = d['k']\ndone = 1")
    session(tmp_path, [setup.format("a"), cell], ["y"])
    second = session(tmp_path, [setup.format("b"), cell], ["y", "done"])
    assert second["values"] == {"y": "'b'", "done": "1"}
    assert second["runs"] == 1, "the cell binds nothing it could not restore: a hit"


def test_a_read_after_a_swallowing_with_is_keyed(tmp_path):
    setup = "from contextlib import suppress\nd = {{}}\ny = {!r}"
    cell = lazy("with suppress(KeyError):\n    y = d['k']\nz = y * 2")
    session(tmp_path, [setup.format("a"), cell], ["z"])
    second = session(tmp_path, [setup.format("b"), cell], ["z"])
    assert second["values"]["z"] == "'bb'"
    assert second["runs"] == 2


def test_with_body_values_still_restore(tmp_path):
    """What a with body binds is stored when the run binds it."""
    cell = lazy("import io\nwith io.StringIO('abc') as f:\n    data = f.read()\nn = len(data)")
    session(tmp_path, [cell], ["n"])
    second = session(tmp_path, [cell], ["data", "n"])
    assert second["values"] == {"data": "'abc'", "n": "3"}
    assert second["runs"] == 1
