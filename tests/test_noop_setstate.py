"""An object whose class's ``__setstate__`` does nothing keeps its attributes through a restore (corpus D6).

scikit-learn's ``Bunch`` (``load_iris()``, ``load_digits()``) defines ``__setstate__`` as ``pass``, so the
attributes pickle carries were dropped: the restored Bunch hashed unlike the run's (the round trip refused the
cell, or, for a pickle too large to decode, every reader missed after a restart).
"""

import pytest

from tests._fresh import RUN, session

pytest.importorskip("sklearn")

MAKE = "%%lazycache\n" + RUN + "from sklearn.datasets import load_iris\niris = load_iris()"
READ = "%%lazycache\n" + RUN + "n = iris.data.shape[0] + len(iris.target_names)"


def test_a_bunch_comes_back_with_its_attributes_and_its_reader_hits(tmp_path):
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    names = ["n", "sorted(vars(iris))"]
    expected = session(plain_dir, [MAKE, READ], names, magic=False)["values"]
    first = session(tmp_path, [MAKE, READ], names)
    assert "not stored" not in first["cells"][0]["out"], first["cells"][0]["out"]
    again = session(tmp_path, [MAKE, READ], names)
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, "both cells hit in the new kernel"
