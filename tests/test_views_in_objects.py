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
