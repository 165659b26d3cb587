"""Golden keys under the other CPython versions on this machine (3.10-3.14).

Each interpreter gets a fresh venv with this project and numpy installed
from PyPI, and recomputes the checked-in vectors. An interpreter is found on
``PATH`` (``python3.X``, as Debian's or Homebrew's packages install it), then
under pyenv (``$PYENV_ROOT/versions``), then through ``uv python find``.
Versions found nowhere are skipped, by name and with where it looked.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import golden

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DATA = json.loads(Path(golden.VECTORS).read_text())
PYENV = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))


def _version(python: str) -> tuple:
    proc = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                          capture_output=True, text=True, timeout=60)
    return tuple(int(x) for x in proc.stdout.split()) if proc.returncode == 0 else ()


def interpreter(minor):
    """A CPython 3.minor: the package manager's (PATH), pyenv's or uv's; None if none runs."""
    candidates = [shutil.which(f"python3.{minor}")]
    candidates += sorted(glob.glob(f"{PYENV}/versions/3.{minor}.*/bin/python3"), reverse=True)
    uv = shutil.which("uv")
    if uv:
        proc = subprocess.run([uv, "python", "find", f"3.{minor}"], capture_output=True, text=True, timeout=60)
        candidates.append(proc.stdout.strip() if proc.returncode == 0 else None)
    for python in filter(None, candidates):
        if _version(python) == (3, minor):  # a pyenv shim with that version not installed answers otherwise
            return python
    return None


@pytest.mark.parametrize("minor", [10, 12, 13, 14])
def test_golden_keys_under_cpython_3_x(minor, tmp_path):
    if sys.version_info[:2] == (3, minor):
        pytest.skip("this is the interpreter running the suite (test_golden_keys)")
    python = interpreter(minor)
    if python is None:
        pytest.skip(f"CPython 3.{minor} was not found on PATH, under {PYENV} or by uv")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    proc = subprocess.run([*pip, str(ROOT), "numpy"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import golden; "
        "cases = [tuple(c) for c in json.load(open(golden.VECTORS))['cases']]; "
        "print(json.dumps(golden.keys(cases)))"
    )
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, str(ROOT / "tests")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    keys = json.loads(proc.stdout.strip().splitlines()[-1])
    assert keys == DATA["keys"]  # numpy vectors included
