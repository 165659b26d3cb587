"""The differential tester (tests/difftest.py) in CI: generated notebooks run with and without ``%%lazycache``
across restarts and edits must show the same namespace, process state and outputs.

A fixed seed and a budget of about 3 minutes on a 2-core machine; run longer with
``IPY_LAZYCACHE_DIFF_N=300 IPY_LAZYCACHE_DIFF_SEED=7 pytest -q tests/test_differential.py``
or ``python tests/difftest.py run --n 300 --seed 7 --confirm``.
"""

import concurrent.futures
import os

import pytest

from tests import difftest

N = int(os.environ.get("IPY_LAZYCACHE_DIFF_N", "25"))
SEED = int(os.environ.get("IPY_LAZYCACHE_DIFF_SEED", "0"))
N_AUTO = int(os.environ.get("IPY_LAZYCACHE_DIFF_N_AUTO", "8"))


@pytest.fixture(scope="module")
def pool():
    # the two chains of a scenario (with and without the magic) run side by side
    with concurrent.futures.ThreadPoolExecutor(2) as p:
        yield p


@pytest.mark.slow
@pytest.mark.parametrize("index", range(N))
def test_scenario_same_with_and_without_the_magic(index, pool):
    outcome = difftest.run_scenario(difftest.generate(SEED, index), pool)
    assert not outcome.grammar_errors, outcome.report()
    assert not outcome.diffs, outcome.report()


@pytest.mark.slow
@pytest.mark.parametrize("index", range(N_AUTO))
def test_scenario_same_in_auto_mode(index, pool):
    """The same notebooks with no %%lazycache lines, in auto mode with no minimum time (every eligible cell
    is cached): still the same as plain IPython."""
    outcome = difftest.run_scenario(difftest.generate(SEED + 500, index), pool, auto=True)
    assert not outcome.grammar_errors, outcome.report()
    assert not outcome.diffs, outcome.report()


def test_generator_is_deterministic_and_covers_every_motif():
    a, b = difftest.generate(SEED, 3), difftest.generate(SEED, 3)
    assert a.sources(2, True) == b.sources(2, True) and a.files(2) == b.files(2)
    tags = {m.tag for i in range(60) for m in difftest.generate(SEED, i).motifs}
    assert tags == set(difftest.MOTIFS)


def test_canonical_description_sees_what_a_user_sees():
    """Set order, subclass attributes and array memory order are observable, so the description keeps them."""
    import numpy as np

    class Tag(str):
        pass

    t1, t2 = Tag("a"), Tag("a")
    t2.unit = "m"
    canon = difftest.canon
    assert canon({1, 9}, {}) != canon({9, 1}, {})
    assert canon(t1, {}) != canon(t2, {})
    assert canon(np.zeros((2, 2)), {}) != canon(np.asfortranarray(np.zeros((2, 2))), {})
    assert "0x" not in canon(object(), {}).replace("0x?", "")


@pytest.mark.slow
def test_the_tester_sees_no_difference_between_two_plain_runs(pool):
    """Both chains without the magic: any difference would be the tester's own noise (addresses, hash seeds,
    unseeded draws, folder names), which would make its findings worthless."""
    for index in range(2):
        outcome = difftest.run_scenario(difftest.generate(SEED + 1000, index), pool, control=True)
        assert not outcome.diffs and not outcome.grammar_errors, outcome.report()
