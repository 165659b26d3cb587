"""The differential tester (tests/difftest.py) in CI: generated notebooks run with and without ``%%lazycache``
(and in auto mode) across restarts and edits must show the same namespace, process state and outputs, and every
cached cell must hit on an unedited re-run.

CI runs, in both modes, notebooks in which every motif occurs once (``difftest.covering``), plus a few random
ones; about 3 minutes on an idle 2-core machine. Run longer with
``IPY_LAZYCACHE_DIFF_N=300 IPY_LAZYCACHE_DIFF_SEED=7 pytest -q tests/test_differential.py``
or ``python tests/difftest.py run --n 300 --seed 7 --confirm``.

The mutant tests check the tester itself: a cache that never hits and a stale class dunder must fail it.
"""

import concurrent.futures
import os

import pytest

from tests import difftest

Describer, Cell, Motif, Notebook = difftest.dd.Describer, difftest.Cell, difftest.Motif, difftest.Notebook

SEED = int(os.environ.get("IPY_LAZYCACHE_DIFF_SEED", "0"))
N = int(os.environ.get("IPY_LAZYCACHE_DIFF_N", "2"))  # random notebooks beyond the covering ones
N_AUTO = int(os.environ.get("IPY_LAZYCACHE_DIFF_N_AUTO", "1"))
COVER = difftest.covering(SEED)
#: (mode, case) -> its docs/defects-round3.md section: a real defect (xfail, strict: a fix must flip it)
KNOWN: dict = {}


def _cases():
    out = []
    for mode, n in (("magic", N), ("auto", N_AUTO)):
        for case in [f"cover{i}" for i in range(len(COVER))] + [f"random{i}" for i in range(n)]:
            reason = KNOWN.get((mode, case))
            marks = [pytest.mark.xfail(strict=True, reason=f"docs/defects-round3.md: {reason}")] if reason else []
            out.append(pytest.param(mode, case, marks=marks, id=f"{mode}-{case}"))
    return out


def _notebook(mode: str, case: str) -> Notebook:
    if case.startswith("cover"):
        return COVER[int(case[5:])]
    return difftest.generate(SEED + (500 if mode == "auto" else 0), int(case[6:]))


@pytest.fixture(scope="module")
def pool():
    # the two chains of a scenario (with and without the magic) run side by side
    with concurrent.futures.ThreadPoolExecutor(2) as p:
        yield p


@pytest.mark.slow
@pytest.mark.parametrize("mode, case", _cases())
def test_scenario_same_with_and_without_the_magic_and_hits_on_rerun(mode, case, pool):
    outcome = difftest.run_scenario(_notebook(mode, case), pool, auto=mode == "auto")
    assert not outcome.grammar_errors, outcome.report()
    assert not outcome.diffs, outcome.report()


def test_ci_runs_every_motif_in_both_modes():
    covered = [m.tag for nb in COVER for m in nb.motifs]
    assert sorted(covered) == sorted(difftest.MOTIFS)  # each once, and the same notebooks serve both modes


def test_generator_is_deterministic_and_covers_every_motif():
    a, b = difftest.generate(SEED, 3), difftest.generate(SEED, 3)
    assert a.sources(2, True) == b.sources(2, True) and a.files(2) == b.files(2)
    tags = {m.tag for i in range(60) for m in difftest.generate(SEED, i).motifs}
    assert tags == set(difftest.MOTIFS)


def _describe(ns: dict) -> dict:
    d = Describer(ns)
    return {k: d.describe(k, v) for k, v in sorted(ns.items())}


def test_description_sees_what_a_user_sees():
    """Set order, subclass attributes, memory order, deep sharing, dunders, globals and __self__ are observable."""
    import functools

    import numpy as np
    import pandas as pd

    class Tag(str):
        pass

    t1, t2 = Tag("a"), Tag("a")
    t2.unit = "m"
    one = _describe
    assert one({"s": {1, 9}}) != one({"s": {9, 1}})
    assert one({"t": t1}) != one({"t": t2})
    assert one({"a": np.zeros((2, 2))}) != one({"a": np.asfortranarray(np.zeros((2, 2)))})
    inner = [1]
    assert one({"a": [inner], "b": {"k": inner}}) != one({"a": [inner], "b": {"k": [1]}})  # sharing, two deep
    lst = [0]
    assert one({"lst": lst, "f": lst.append}) != one({"lst": lst, "f": [0].append})  # a bound method's __self__
    ns = {}
    exec("def f():\n    return 1", ns)
    assert one({"f": ns["f"]}) != one({"f": functools.partial(ns["f"])})
    assert "globals=other dict" in one({"f": ns["f"]})["f"]
    idx = pd.Index([1, 2], name="k")
    assert one({"s": pd.Series([1.0, 2.0], index=idx)}) != one({"s": pd.Series([1.0, 2.0], index=[1, 2])})
    assert one({"s": pd.Series([1, 2])}) != one({"s": pd.Series([1, 2], dtype="int32")})
    assert one({"s": pd.Series([0.1 + 0.2])}) != one({"s": pd.Series([0.3])})  # exact values
    gen = iter([1, 2])
    before = one({"g": gen})
    next(gen)
    assert one({"g": gen}) != before  # an iterator's position
    assert "0x" not in one({"o": object()})["o"].replace("0x?", "")


def test_a_description_that_fails_is_a_difference_even_on_both_sides():
    class Broken:
        def __getattribute__(self, name):
            raise RuntimeError("no")

    nb = Notebook([])
    side = {"cells": [], "namespace": {"x": Describer({}).describe("x", Broken())}, "hashes": {}}
    diffs = difftest._compare_names(0, nb.cells(), {}, side, side)
    assert diffs and "cannot be described" in diffs[0].where


def _stale_eq_notebook() -> Notebook:
    cls = "class Pt:\n    def __init__(self, v):\n        self.v = v\n    def __eq__(self, other):\n" \
          "        return self.v == other.v"
    # the cached cell reads the class and stores a bool: a restored class (restored-class-dict-order)
    # or a stored instance (slotnames-written) would make this control notebook fail for the defects' sake
    m = Motif("hand", "class-with-eq",
              cells=[Cell(cls, cls), Cell("same = Pt(1) == Pt(1)", "same = Pt(1) == Pt(2)", cached=True)])
    return Notebook([m], seed=SEED, index=-1)


@pytest.mark.slow
@pytest.mark.parametrize("auto", [False, True], ids=["magic", "auto"])
def test_mutant_a_cache_that_never_hits_fails_the_tester(auto, pool):
    """A cache that forgets every entry between sessions restores nothing: the tester must fail it, in both
    modes (a miss on an unedited re-run is a failure)."""
    outcome = difftest.run_scenario(_stale_eq_notebook(), pool, auto=auto, mutant="never-hit")
    assert any("a miss on an unedited re-run" in d.where for d in outcome.diffs), outcome.report()


@pytest.mark.slow
def test_mutant_a_stale_dunder_fails_the_tester(pool):
    """A class whose ``__eq__`` is not the one the cell defined (as a stale restore would leave it) is seen."""
    outcome = difftest.run_scenario(_stale_eq_notebook(), pool, mutant="stale-dunder")
    assert any(d.where == "name Pt" and "__eq__" in str(d.magic) for d in outcome.diffs), outcome.report()


@pytest.mark.slow
def test_the_unbroken_hand_notebook_passes(pool):
    """The mutants' notebook itself is clean, so their failures are the mutants' doing."""
    outcome = difftest.run_scenario(_stale_eq_notebook(), pool)
    assert not outcome.diffs and not outcome.grammar_errors, outcome.report()


@pytest.mark.slow
def test_the_tester_sees_no_difference_between_two_plain_runs(pool):
    """Both chains without the magic: any difference would be the tester's own noise (addresses, hash seeds,
    unseeded draws, folder names), which would make its findings worthless."""
    outcome = difftest.run_scenario(COVER[0], pool, control=True)
    assert not outcome.diffs and not outcome.grammar_errors, outcome.report()


def test_an_extension_that_did_not_load_is_a_difference():
    """Auto mode with a failed ``%load_ext`` would run every cell plainly and compare equal: the tester says so."""
    nb = _stale_eq_notebook()
    session = {"loaded": False, "cells": [], "oracles": {"changes": [], "reached": {}, "found": {}}}
    diffs = difftest._compare_magic_side(0, nb, session, control=False, auto=True)
    assert [d.where for d in diffs] == ["%load_ext ipy_lazycache (auto mode)"]
