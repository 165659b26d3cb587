"""A dict whose attributes are its items (``self.__dict__ = self``) comes back as one (issue 21, corpus D11).

statsmodels' ``Dataset`` (``sm.datasets.star98.load()``) is such a dict. Pickled, it came back with a
``__dict__`` of its own: ``data.exog = ...`` no longer changed ``data['exog']``, the store's round trip refused
it, and the cell that loads the data ran again on every re-run.
"""

from tests._fresh import RUN, session

CLASS = ("class AttrDict(dict):\n    def __init__(self, **kw):\n        super().__init__(**kw)\n"
         "        self.__dict__ = self\n")
MAKE = "%%lazycache\n" + RUN + "data = AttrDict(rows=[1, 2])\ndata.extra = 'x'"
AFTER = "data.more = 3\nseen = (data.__dict__ is data, sorted(data), data['extra'], data.rows)"


def test_a_dict_that_is_its_own_dict_comes_back_as_one_after_a_restart(tmp_path):
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    expected = session(plain_dir, [CLASS, MAKE, AFTER], ["seen"], magic=False)["values"]
    first = session(tmp_path, [CLASS, MAKE, AFTER], ["seen"])
    assert "not stored" not in first["cells"][1]["out"], first["cells"][1]["out"]
    again = session(tmp_path, [CLASS, MAKE, AFTER], ["seen"])
    assert expected["seen"] == "(True, ['extra', 'more', 'rows'], 'x', [1, 2])"
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 1, "the cell hit in the new kernel"
