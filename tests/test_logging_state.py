"""Logging configuration is process state (issue 21 #4): a cached run that configures logging cannot be replayed
by a hit (a handler holds this kernel's stream; a logger pickles as ``getLogger(name)``, a bare logger in a new
kernel), so it is not stored and says so; loggers a library sets up when the run imports it are no change."""

import pytest

from tests._fresh import RUN, session

CONFIGURE = ("%%lazycache\n" + RUN + "import logging\nlog = logging.getLogger('nb')\n"
             "handler = logging.FileHandler('log.txt', 'w')\n"
             "handler.setFormatter(logging.Formatter('NB %(message)s'))\n"
             "log.addHandler(handler)\nlog.setLevel(logging.INFO)\nlog.propagate = False\nn = 3")
USE = "log.info('rows: %d', n)\nlogging.shutdown()\nlogged = open('log.txt').read()"


@pytest.mark.slow
@pytest.mark.parametrize("configure", [CONFIGURE, CONFIGURE.replace(
    "log.addHandler(handler)\nlog.setLevel(logging.INFO)\nlog.propagate = False",
    "logging.basicConfig(level=logging.INFO, filename='log.txt', filemode='w', format='NB %(message)s')")],
    ids=["a notebook logger", "basicConfig"])
def test_a_cell_that_configures_logging_runs_in_every_kernel_and_logs_as_plain(tmp_path, configure):
    cells = [configure, USE]
    (tmp_path / "plain").mkdir()
    (tmp_path / "work").mkdir()
    plain = session(tmp_path / "plain", cells, ["n", "logged"], magic=False)
    assert plain["values"]["logged"] == repr("NB rows: 3\n")
    for runs in (1, 2):  # the configuring cell is never stored, so it runs again after the restart
        got = session(tmp_path / "work", cells, ["n", "logged"])
        assert "not stored: it configures logging" in got["cells"][0]["out"]
        assert got["values"] == plain["values"]
        assert got["runs"] == runs


@pytest.mark.slow
def test_a_cell_importing_libraries_that_set_up_their_loggers_hits_after_a_restart(tmp_path):
    cells = ["%%lazycache\n" + RUN + "import logging, concurrent.futures, asyncio\n"
             "log = logging.getLogger('nb')\nk = 1"]
    (tmp_path / "work").mkdir()
    first = session(tmp_path / "work", cells, ["k", "log.name"])
    again = session(tmp_path / "work", cells, ["k", "log.name"])
    assert "stored" in first["cells"][0]["out"] and "not stored" not in first["cells"][0]["out"]
    assert again["values"] == first["values"] == {"k": "1", "log.name": "'nb'"}
    assert again["runs"] == 1
