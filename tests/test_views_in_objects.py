"""numpy views held inside a def keep their base through a restore (corpus: sklearn_gaussian_mixtures,
sklearn_model_validation).

numpy pickles a view as a copy. ``load_digits()`` holds ``images`` as a view of its ``data``, GridSearchCV's
``cv_results_`` its per-split scores as slices of one array: after a restart they were separate arrays, a write
into one no longer showed in the other, and the sharing (in the key) made every reader miss.
"""

import pytest

from tests._fresh import RUN, twice

pytest.importorskip("numpy")

MAKE = ("%%lazycache\n" + RUN + "import numpy as np\n"
        "held = (lambda t: {'a': t[:6], 'b': t[6:].reshape(2, 3)})(np.arange(12.0))")
READ = "%%lazycache\n" + RUN + "s = float(held['a'].sum() + held['b'].sum())"
AFTER = "held['a'].base[7] = -1.0\nseen = (held['a'].base is held['b'].base, held['b'].tolist())"


def test_views_inside_a_def_share_their_base_after_a_restart_and_readers_hit(tmp_path):
    expected, first, again = twice(tmp_path, [MAKE, READ, AFTER], ["s", "seen"])
    assert expected["seen"] == "(True, [[6.0, -1.0, 8.0], [9.0, 10.0, 11.0]])"
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, "both cells hit in the new kernel"


# A notebook object holding the columns of one array (each an eighth of it, as GridSearchCV's per-split
# scores) and np.split's parts: each view alone is much smaller than its base, together they cover it.
MAKE_PARTS = ("%%lazycache\n" + RUN + "import numpy as np\n"
              "class Scores:\n    pass\n"
              "held = Scores()\n"
              "grid = np.arange(64.0).reshape(8, 8)\n"
              "held.cols = {k: grid[:, k] for k in range(8)}\n"
              "held.parts = np.split(np.arange(40.0), 8)\n"
              "del grid")
READ_PARTS = "%%lazycache\n" + RUN + "s = float(sum(c.sum() for c in held.cols.values()) + held.parts[3].sum())"
AFTER_PARTS = ("held.cols[0].base[1] = -1.0\nheld.parts[0].base[6] = -2.0\n"
               "seen = (held.cols[1][0], held.parts[1][1], held.cols[0].base is held.cols[7].base)")


def test_views_that_together_cover_their_base_keep_it_after_a_restart_and_readers_hit(tmp_path):
    expected, first, again = twice(tmp_path, [MAKE_PARTS, READ_PARTS, AFTER_PARTS], ["s", "seen"])
    assert expected["seen"] == "(np.float64(-1.0), np.float64(-2.0), True)"
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, "both cells hit in the new kernel"
