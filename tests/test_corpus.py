"""A few notebooks of the real-notebook corpus, end to end, in both modes.

Each notebook is run in new kernels through nbclient (``bench/corpus.py``):
plain three times, plain edited, then per mode cold, warm and edited on one cache.
What a user would notice is asserted: no output differs from the plain run,
no error the plain run has not, no hit that shows what an edit made obsolete,
and a re-run in a new kernel restores (hits) every deterministic cell that
was stored. The full corpus is ``bench/corpus.py``; these are its quickest
notebooks from three fields (matplotlib, pandas, scipy.optimize) whose plain
outputs do not depend on the process's string hash seed.
Checks that today's code fails for a recorded cache defect are
xfail(strict=True), naming the defect class in docs/defects-round3.md.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
from corpus import PLAINS, run_notebook, score  # noqa: E402  (bench/corpus.py)

pytestmark = pytest.mark.slow

QUICK = ("mpl_density_contour", "pandas_hierarchical_index", "quantecon_lp_intro")
MODES = ("magic", "auto")
# (notebook, mode): the defect class (docs/defects-round3.md) that fails it today.
KNOWN: dict[tuple[str, str], str] = {}


def _cases():
    for name in QUICK:
        for mode in MODES:
            reason = KNOWN.get((name, mode))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(name, mode, marks=marks, id=f"{name}-{mode}")


@pytest.fixture(scope="module")
def runs():
    """Each notebook's runs, once for both modes (ten kernels per notebook)."""
    done: dict[str, dict] = {}

    def get(name):
        if name not in done:
            done[name] = run_notebook(name, modes=MODES, timeout=120)
        return done[name]

    return get


@pytest.mark.parametrize("name,mode", list(_cases()))
def test_corpus_notebook(runs, name, mode):
    every = runs(name)
    assert not [k for k in (*PLAINS, "plain_edit") if every[k]["failure"]], "the plain runs must finish"
    result = score(every, mode)
    row, details = result["row"], result["details"]
    assert row["errors"] == 0, details["errors"]
    assert row["stale"] == 0, details["stale"]
    assert row["mismatches"] == 0, details["mismatches"]
    assert row["det_stored"] > 0 or mode == "auto", "magic mode stores the cells"
    assert row["warm_hits_det_stored"] >= 0.99 * row["det_stored"], details["misses"]
