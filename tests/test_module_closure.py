"""Local modules are keyed by their import closure (issue 20, DESIGN §11).

A cached cell that calls into the notebook's own module runs the code of
every local module that one imports; an edit of any of them between kernel
restarts must make the cell run again, and nothing else may. Each scenario
runs in new processes with a real InteractiveShell, a body-run counter and
the plain value as the reference.
"""

import pytest

from tests._fresh import RUN, session

slow = pytest.mark.slow


def _write(folder, files):
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _twice(tmp_path, files, edit, cells, name):
    """Run ``cells`` in a session, apply ``edit`` to the files, run them in a new session: returns both
    sessions' ``name`` and the body runs of the second."""
    _write(tmp_path, files)
    first = session(tmp_path, cells, [name])
    ran = first["runs"]
    _write(tmp_path, edit)
    again = session(tmp_path, cells, [name])
    assert all(c["ok"] for c in first["cells"] + again["cells"]), again
    return first["values"][name], again["values"][name], again["runs"] - ran


LIB = {"mylib.py": "import myutil\n\ndef f():\n    return myutil.g()\n", "myutil.py": "def g():\n    return 1\n"}
EDITED = {"myutil.py": "def g():\n    return 2\n"}


@slow
def test_a_module_imported_by_an_imported_module_is_keyed(tmp_path):
    cells = ["%%lazycache\n" + RUN + "import mylib\nv = mylib.f()"]
    assert _twice(tmp_path, LIB, EDITED, cells, "v") == ("1", "2", 1)


@slow
def test_a_package_submodule_is_keyed(tmp_path):
    files = {"pkg/__init__.py": "from .core import h\n", "pkg/core.py": "def h():\n    return 1\n"}
    cells = ["%%lazycache\n" + RUN + "from pkg import h\nw = h()"]
    assert _twice(tmp_path, files, {"pkg/core.py": "def h():\n    return 3\n"}, cells, "w") == ("1", "3", 1)


@slow
def test_an_import_inside_a_function_of_a_module_read_through_is_keyed(tmp_path):
    files = {"mylib.py": "def f():\n    import myutil\n    return myutil.g()\n", "myutil.py": LIB["myutil.py"]}
    cells = ["import mylib", "%%lazycache\n" + RUN + "v = mylib.f()"]
    assert _twice(tmp_path, files, EDITED, cells, "v") == ("1", "2", 1)


@slow
def test_an_unchanged_closure_still_hits(tmp_path):
    cells = ["%%lazycache\n" + RUN + "import mylib\nv = mylib.f()", "%%lazycache\n" + RUN + "u = mylib.f() + 1"]
    assert _twice(tmp_path, LIB, {"unrelated.py": "X = 1\n"}, cells, "u") == ("2", "2", 0)
