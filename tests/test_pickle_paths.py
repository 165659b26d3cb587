"""The two ways a def is pickled (codecs.dumps): first without persistent
ids, checked against pickle's memo, else with them. Whichever is taken, a
restore gives the same values and relations. Driven through the cache core
with a real FileStore, as tests/test_fidelity_run.py does."""

import pytest

from ipy_lazycache import codecs, core, pickling
from ipy_lazycache.stores.file import FileStore


@pytest.fixture
def store(tmp_path):
    return FileStore(tmp_path / "cache")


@pytest.fixture
def paths(monkeypatch):
    """Which path each pickle took: True for the one without persistent ids."""
    taken = []
    plain = pickling._dumps_plain

    def spy(*args):
        out = plain(*args)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(pickling, "_dumps_plain", spy)  # codecs.dumps is pickling.dumps
    return taken


def run_and_restore(store, setup, source):
    ns = {"__name__": "__main__"}
    exec(setup, ns)
    plan = core.plan.plan(source, ns)
    core.run.take_before(plan, ns)
    exec(compile(source, "<cell>", "exec"), ns)
    core.save.save(store, plan, ns, core.run.Outcome([], None))
    later = {"__name__": "__main__"}
    exec(setup, later)
    restored = core.restore.restore(store, core.plan.plan(source, later).key, later)
    assert restored is not None, "expected a hit"
    core.apply.apply(restored, later)
    return ns, later


def test_figure_keeps_module_objects_and_axes_without_persistent_ids(store, paths):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.markers

    setup = "import matplotlib.pyplot as plt\n"
    src = "fig, ax = plt.subplots(2, 2)\nline, = ax[0, 0].plot([1, 2, 3])\nplt.close(fig)\n"
    ns, later = run_and_restore(store, setup, src)
    assert paths == [True]
    fig, ax, line = later["fig"], later["ax"], later["line"]
    assert fig is not ns["fig"] and ax[1, 1].figure is fig and line in ax[0, 0].lines
    # the marker's empty path is matplotlib's own object (a module attribute), not a copy
    assert ns["line"]._marker._path is matplotlib.markers._empty_path
    assert line._marker._path is matplotlib.markers._empty_path
    assert list(line.get_ydata()) == [1, 2, 3]


REFS = (
    "import numpy as np\nbase = np.arange(10.0)\nrows = [[1], [2]]\n"
    "class Point:\n    def __init__(self, x):\n        self.x = x\n"
)


@pytest.mark.parametrize("src, check", [
    ("held = [base, 1]\n", "held[0] is base"),
    ("held = [base[2:5], 1]\n", "(base.__setitem__(3, -1.0), held[0][1] == -1.0)[1]"),
    ("held = [rows[1], 1]\n", "held[0] is rows[1]"),
    ("held = [{3, 11}, {1, 2}]\n", "[list(s) for s in held] == [[11, 3], [1, 2]]"),  # pickle would give [3, 11]
    ("held = [Point(4), 1]\n", "type(held[0]) is Point and held[0].x == 4"),
])
def test_a_def_holding_a_relation_takes_the_persistent_path(store, paths, src, check):
    ns, later = run_and_restore(store, REFS, src)
    assert paths == [False]
    assert eval(check, later), check
    assert eval(check, ns), check  # what the run left


def test_plain_values_round_trip_without_persistent_ids(store, paths):
    setup = "import functools, fractions\n"
    src = (
        "data = {'rows': [(i, str(i), i / 3) for i in range(500)], 'sets': [{1, 2}, frozenset({'a'}), set()],\n"
        "        'fn': functools.partial(max, 0), 'exact': fractions.Fraction(1, 3), 'empty': ()}\n"
    )
    ns, later = run_and_restore(store, setup, src)
    assert paths == [True]
    fn = later["data"].pop("fn")
    ns["data"].pop("fn")
    assert later["data"] == ns["data"] and later["data"] is not ns["data"]
    assert fn(-5) == 0


def test_collection_is_back_on_after_a_failed_pickle(store):
    import gc
    import threading

    assert gc.isenabled()
    with pytest.raises(TypeError):
        codecs.dumps([threading.Lock()], {})
    assert gc.isenabled()


def test_the_round_trip_refuses_defs_that_would_come_back_sharing_less(monkeypatch):
    """A net under the grouping: were two defs holding one array pickled apart (a sharing the look-ahead did
    not reach), the store is refused, since a later cell reading both would key them differently."""
    import numpy as np

    from ipy_lazycache.core import pickles, verify
    from ipy_lazycache.core.run import NotStored

    arr = np.arange(3)
    values = {"d1": {"a": arr}, "d2": [arr]}
    verify.verify(pickles._encode(values, {}), values, {}, (), {}, "")  # grouped: they come back sharing
    monkeypatch.setattr(pickles._Pickles, "_guess_links", lambda self: None)
    blobs = pickles._encode(values, {})
    assert len(blobs) == 2
    with pytest.raises(NotStored, match="d1, d2 come back sharing other objects"):
        verify.verify(blobs, values, {}, (), {}, "")
