"""A hit replays what its run changed, on a machine that may lack what the run
had (a browser's Pyodide without numpy): importing a library is not a change,
and a change that cannot matter there is skipped without a word (the demo's
plot cell said "could not re-apply ... numpy / warnings" in every browser)."""

import subprocess
import sys
import warnings

from ipy_lazycache import ambient_libraries as lib


def test_importing_numpy_or_decimal_during_a_run_is_not_a_change():
    code = ("import numpy, decimal\n"
            "from ipy_lazycache import ambient_libraries as lib\n"
            "n, d = lib._NumpyOptions(), lib._Decimal()\n"
            "print(n.effect(None, n.snapshot()), d.effect(None, d.snapshot()))\n"
            "numpy.set_printoptions(precision=3); decimal.getcontext().prec = 5\n"
            "print(n.effect(None, n.snapshot()), d.effect(None, d.snapshot()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    first, second = out.splitlines()
    assert first == "None None"
    assert second == "{'print': {'precision': 3}} {'prec': 5}"  # what the run set still counts


def test_a_filter_on_a_warning_class_this_python_lacks_is_skipped():
    effect = {"add": [["always", None, "numpy_not_here_at_all.exceptions:RankWarning", None, 0],
                      ["ignore", "from a hit", "builtins:UserWarning", None, 0]]}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        lib._Warnings().apply(effect)  # no exception: the registry would report "could not re-apply"
        warnings.warn("from a hit, silenced", UserWarning, stacklevel=1)
        warnings.warn("still shown", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["still shown"]


def test_numpy_options_without_numpy_change_nothing(monkeypatch):
    import numpy

    before = numpy.get_printoptions()["precision"]
    monkeypatch.setattr(lib, "_available", lambda name: name != "numpy")
    lib._NumpyOptions().apply({"print": {"precision": before + 1}})  # no ImportError, and nothing done
    assert numpy.get_printoptions()["precision"] == before
