import os

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests._lite import lite_browser  # noqa: F401
from tests._pyodide import project_wheel, run_in_pyodide  # noqa: F401


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """A real InteractiveShell with the extension loaded, in a fresh folder.

    IPython keeps one shell per process; each test gets it with an empty user
    namespace and a fresh extension (new memo and statistics).
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IPY_LAZYCACHE_DIR", raising=False)
    monkeypatch.delenv("IPY_LAZYCACHE_KEY", raising=False)
    sh = InteractiveShell.instance()
    sh.config.pop("LazyCache", None)  # %config in an earlier test
    sh.reset(new_session=False)
    sh.run_cell("%reload_ext ipy_lazycache", store_history=False)
    yield sh
    sh.run_cell("%unload_ext ipy_lazycache", store_history=False)
    sh.reset(new_session=False)


class Cell:
    """Runs cells and captures what the user would see."""

    def __init__(self, shell, capfd):
        self.shell, self.capfd = shell, capfd

    def __call__(self, code, **kwargs):
        self.capfd.readouterr()
        result = self.shell.run_cell(code, **kwargs)
        out, err = self.capfd.readouterr()
        result.out, result.err = out, err
        return result


@pytest.fixture
def run(shell, capfd):
    return Cell(shell, capfd)


@pytest.fixture
def published(shell):
    """Every mime bundle the shell's display publisher is given, in order."""
    seen = []
    original = shell.display_pub.publish

    def spy(data, metadata=None, **kw):
        seen.append(data)
        return original(data, metadata, **kw)

    shell.display_pub.publish = spy
    yield seen
    del shell.display_pub.publish


def runs_of(path="runs.txt"):
    """How many times a body ran: each run appends one line to a file."""
    try:
        with open(path) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


@pytest.fixture
def runs():
    return runs_of


def pytest_collection_modifyitems(config, items):
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def pytest_configure(config):
    # issue 12's regression tests (tests/test_hardening.py): `pytest -m security`
    config.addinivalue_line("markers", "security: attacks and careless input the cache must withstand")
