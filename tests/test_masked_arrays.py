"""numpy masked arrays come back as the run made them (issue 21 #1, corpus: scikit-learn's GridSearchCV).

``MaskedArray.__setstate__`` gives a restored array a fill value where the run had none yet, a full mask for
``nomask`` and a soft mask for a hard one: writing into a masked element of a hard-masked array then unmasked
it, and the restored array hashed unlike the run's, so every cell reading it missed after a restart
(``GridSearchCV.cv_results_`` holds one per parameter).
"""

import pytest

from tests._fresh import RUN, twice

pytest.importorskip("numpy")

MAKE = ("%%lazycache\n" + RUN + "import numpy as np\nplain = np.ma.masked_array(np.arange(4))\n"
        "hard = np.ma.masked_array(np.arange(3.0), mask=[0, 1, 0], hard_mask=True)\nheld = {'p': plain}")
READ = "%%lazycache\n" + RUN + "total = float(plain.sum() + hard.sum()) + len(held)"
AFTER = "hard[1] = 9.0\nshown = repr(hard)"
NAMES = ["total", "shown", "plain.fill_value", "held['p'] is plain"]


def test_a_masked_array_comes_back_as_made_and_its_readers_hit(tmp_path):
    expected, first, again = twice(tmp_path, [MAKE, READ, AFTER], NAMES)
    assert first["values"] == again["values"] == expected  # the hard mask kept hard[1] masked
    assert "--" in expected["shown"]
    assert again["runs"] == 2, "both cells hit in a new kernel"
