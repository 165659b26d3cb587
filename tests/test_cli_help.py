"""What ``ipy-lazycache`` says about itself: its version, and each command's
(and alias's) own usage, as a user at a shell sees them."""

import os
import subprocess
import sys

import ipy_lazycache

EXE = os.path.join(os.path.dirname(sys.executable), "ipy-lazycache")


def cli(*argv, cwd=None):
    return subprocess.run([EXE, *argv], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_version():
    p = cli("--version")
    assert p.returncode == 0 and p.stdout == f"ipy_lazycache {ipy_lazycache.__version__}\n", p


def test_an_alias_shows_its_own_usage(tmp_path):
    p = cli("ls", "--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: ipy-lazycache ls "), p.stdout
    assert cli("info", "--help").stdout.startswith("usage: ipy-lazycache info ")
    # Listed once, under its name; and the alias still runs the command.
    top = cli("--help").stdout
    assert "(or: ls)" in top and "\n    ls " not in top, top
    (tmp_path / "__lazycache__").mkdir()
    assert cli("ls", cwd=tmp_path).stdout == cli("info", cwd=tmp_path).stdout
