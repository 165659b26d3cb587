"""An instance a library holds as a module global is stored as that global, as the key names it (corpus:
quantecon_lln_clt).

A frozen scipy distribution (``st.norm(loc=5, scale=2)``) holds numpy's global ``RandomState``. The key names
it (``numpy.random.mtrand:_rand``), but the store pickled a copy: the round trip found the copy would differ and
the cell was not stored, so it ran on every re-run; and a restored copy would no longer follow
``np.random.seed``, which a plain run's distribution does.
"""

import pytest

from tests._fresh import RUN, session

pytest.importorskip("scipy")

SETUP = "import numpy as np\nimport scipy.stats as st"
MAKE = "%%lazycache\n" + RUN + "dist = st.norm(loc=5, scale=2)"
DRAW = "np.random.seed(3)\ndraw = float(dist.rvs())\nshared = dist.dist._random_state is np.random.mtrand._rand"


def test_a_frozen_distribution_is_stored_and_still_draws_from_numpys_generator(tmp_path):
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    expected = session(plain_dir, [SETUP, MAKE, DRAW], ["draw", "shared"], magic=False)["values"]
    first = session(tmp_path, [SETUP, MAKE, DRAW], ["draw", "shared"])
    assert "not stored" not in first["cells"][1]["out"], first["cells"][1]["out"]
    again = session(tmp_path, [SETUP, MAKE, DRAW], ["draw", "shared"])
    assert expected["shared"] == "True"
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 1, "the cell hit in the new kernel"
