"""Cache management: the same operations in ``%lazycache`` and ``ipy-lazycache``,
and one clear line for every bad argument."""

import json
import os
import subprocess
import sys
import time

import pytest
from IPython.core.error import UsageError

from ipy_lazycache import cli, manage
from ipy_lazycache.stores import FileStore

BODY = 'open("runs.txt", "a").write("run\\n")\n'


def cell(n, size=1000):
    return f"%%lazycache\n{BODY}import numpy as np\nx{n} = np.zeros({size}) + {n}\n"


def keys():
    return sorted(d for d in os.listdir("__lazycache__") if len(d) == 32)


def key_of(n):
    for k in keys():
        with open(f"__lazycache__/{k}/manifest.json") as fh:
            if f"x{n}" in json.load(fh)["defs"]:
                return k
    raise KeyError(n)


def set_used(k, t):
    with open(f"__lazycache__/{k}/used", "w") as fh:
        json.dump({"used": t}, fh)


def test_info_lists_size_age_last_hit_defs_first_line(run, capfd):
    run(cell(1))
    run(cell(1))  # a hit: last hit recorded
    run(cell(2))
    capfd.readouterr()
    assert cli.main(["info"]) == 0
    out = capfd.readouterr().out
    assert out.startswith("2 entries")
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "x1, np" in rows[key_of(1)[:10]] or "np, x1" in rows[key_of(1)[:10]]
    assert "open(\"runs.txt\"" in rows[key_of(1)[:10]]
    assert "0s ago" in rows[key_of(1)[:10]].split("KiB", 1)[1]
    assert "never" in rows[key_of(2)[:10]]
    assert cli.main(["ls"]) == 0 and capfd.readouterr().out == out
    assert cli.main(["du"]) == 0
    assert "in 2 entries" in capfd.readouterr().out


def test_hit_records_use_in_the_store(run, runs):
    run(cell(1))
    k = key_of(1)
    assert manage.last_used(FileStore("__lazycache__"), k) is None
    t0 = time.time()
    run(cell(1))
    assert runs() == 1
    assert manage.last_used(FileStore("__lazycache__"), k) >= t0 - 1


def test_prune_removes_least_recently_used_not_oldest_file(run, runs):
    for n in (1, 2, 3):
        run(cell(n, 50_000))  # 400 kB each
    now = time.time()
    # Recency by hits, deliberately the opposite of file times.
    set_used(key_of(1), now - 10)
    set_used(key_of(2), now - 3000)
    set_used(key_of(3), now - 100)
    for n, age in ((1, 9000), (2, 10), (3, 500)):
        for p, _, fs in os.walk(f"__lazycache__/{key_of(n)}"):
            for f in fs:
                os.utime(os.path.join(p, f), (now - age, now - age))
    k1, _k2, k3 = key_of(1), key_of(2), key_of(3)
    assert cli.main(["prune", "--max-size", "900K"]) == 0
    assert keys() == sorted([k1, k3])
    assert cli.main(["prune", "--older-than", "1m"]) == 0
    assert keys() == [k1]
    r = run(cell(1, 50_000))
    assert runs() == 3, r.out  # still a hit


def test_prune_cleans_stale_temps_and_orphans(run):
    run(cell(1))
    k = key_of(1)
    old = time.time() - 7200
    for path in (f"__lazycache__/{k}/.tmp-dead", f"__lazycache__/{k}/x1.deadbeef0000.npy"):
        open(path, "wb").write(b"junk")
        os.utime(path, (old, old))
    orphan = "__lazycache__/" + "f" * 32
    os.makedirs(orphan)
    open(orphan + "/x.pkl", "wb").write(b"junk")
    os.utime(orphan + "/x.pkl", (old, old))
    assert cli.main(["prune"]) == 0
    assert sorted(os.listdir(f"__lazycache__/{k}")) == sorted(
        n for n in os.listdir(f"__lazycache__/{k}") if not n.startswith(".tmp-") and "deadbeef" not in n
    )
    assert not os.path.exists(orphan)
    assert keys() == [k]


def test_clear(run, runs):
    run(cell(1))
    run(cell(2))
    assert cli.main(["clear"]) == 0
    assert keys() == []
    run(cell(1))
    assert runs() == 3


def test_max_size_prunes_after_a_store(run, shell, runs):
    run('%config LazyCache.max_size = "500K"')
    run(cell(1, 50_000))
    run(cell(2, 50_000))
    assert keys() == [key_of(2)], "the older entry is pruned, the new one kept"
    run(cell(2, 50_000))
    assert runs() == 2


def test_line_magic_renders_html_tables_in_a_notebook(run, shell, published):
    run(cell(1))
    del published[:]
    for line in ("info", "stats", "du", "verify", "prune", "ls"):
        r = run(f"%lazycache {line}")
        assert r.success, (line, r.error_in_exec)
    assert len(published) == 6
    assert all("text/plain" in d and "text/html" in d for d in published)
    assert "<table>" in published[0]["text/html"] and "x1" in published[0]["text/html"]
    assert "<table>" in published[1]["text/html"] and "hits" in published[1]["text/plain"]
    r = run("%lazycache clear")
    assert keys() == []


# ----------------------------------------------------------------------------
# Bad input: one clear line, a non-zero exit or a UsageError


BAD_CLI = [
    ["prune", "--max-size", "banana"],
    ["prune", "--max-size", "-5G"],
    ["prune", "--older-than", "3x"],
    ["prune", "--older-than", "banana"],
    ["info", "--dir", "afile.txt"],
    ["du", "--dir", "no/such/folder"],
    ["info", "--bogus"],
    ["verify", "--fix=yes"],
    ["frobnicate"],
    [],
    ["prune", "--max-size"],
]


@pytest.mark.parametrize("argv", BAD_CLI, ids=" ".join)
def test_cli_bad_input_one_line_nonzero_exit(tmp_path, argv):
    os.makedirs(tmp_path / "__lazycache__")
    (tmp_path / "afile.txt").write_text("x")
    exe = os.path.join(os.path.dirname(sys.executable), "ipy-lazycache")
    p = subprocess.run([exe, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ipy-lazycache"), p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""


def test_cli_bad_signing_mode(tmp_path, monkeypatch, capfd):
    os.makedirs(tmp_path / "c")
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "on")
    monkeypatch.delenv("IPY_LAZYCACHE_KEY", raising=False)
    assert cli.main(["verify", "--dir", str(tmp_path / "c")]) == 2
    assert "needs a key" in capfd.readouterr().err


BAD_LINE = [
    "prune --max-size banana",
    "prune --older-than 3x",
    "info --dir afile.txt",
    "du --dir no/such/folder",
    "frobnicate",
    "info --bogus",
    "verify 'unbalanced",
]


@pytest.mark.parametrize("line", BAD_LINE)
def test_line_magic_bad_input_is_a_usage_error(run, line):
    open("afile.txt", "w").write("x")
    os.makedirs("__lazycache__", exist_ok=True)
    r = run(f"%lazycache {line}")
    assert isinstance(r.error_in_exec, UsageError), r.error_in_exec
    assert "\n" not in str(r.error_in_exec)


BAD_CELL = [
    "--bogus",
    "--deps 1x",
    "--dir afile.txt",
    "--files adir",
    "--deps",
]


@pytest.mark.parametrize("options", BAD_CELL)
def test_cell_magic_bad_input_is_one_usage_line_and_the_cell_runs(run, shell, runs, options):
    """DESIGN §8: bad input is one clear line and the cell still runs (uncached)."""
    open("afile.txt", "w").write("x")
    os.makedirs("adir", exist_ok=True)
    r = run(f"%%lazycache {options}\n{BODY}y = 1\n")
    assert r.success, (options, r.error_in_exec)
    lines = [line for line in r.out.splitlines() if line.startswith("UsageError")]
    assert len(lines) == 1, (options, r.out)
    assert runs() == 1 and shell.user_ns["y"] == 1
    run(f"%%lazycache {options}\n{BODY}y = 1\n")
    assert runs() == 2, "nothing was cached"


@pytest.mark.parametrize("setting", ['max_size = "banana"', 'signing = "maybe"', "verbose = 'loud'"])
def test_bad_config_is_refused_with_one_line(run, shell, setting, caplog):
    """IPython's %config logs a bad value as one error line and keeps the old one."""
    name = setting.split()[0]
    magics = shell.magics_manager.registry["LazyCache"]
    before = getattr(magics, name)
    run(f"%config LazyCache.{setting}")
    # One message (logged once per LazyCache instance the test shell has seen).
    errors = {r.getMessage() for r in caplog.records if r.levelname == "ERROR"}
    assert len(errors) == 1 and name in errors.pop()
    assert getattr(magics, name) == before
