"""Keys must not depend on the platform: checked-in vectors, recomputed under
this CPython and under real Pyodide (Python 3.14, wasm32) in Node."""

import json
from pathlib import Path

import pytest

from tests import golden

DATA = json.loads(Path(golden.VECTORS).read_text())
CASES = [tuple(c) for c in DATA["cases"]]


def test_golden_keys_under_cpython():
    assert golden.keys(CASES) == DATA["keys"]


def test_format_and_comments_do_not_change_the_key():
    assert DATA["keys"]["int"] == DATA["keys"]["comments-and-format"]
    assert len(set(DATA["keys"].values())) == len(DATA["keys"]) - 1


@pytest.mark.pyodide
@pytest.mark.slow
def test_golden_keys_under_pyodide(run_in_pyodide, project_wheel):
    code = Path(golden.__file__).read_text() + f"\nRESULT = keys({CASES!r})\n"
    out = run_in_pyodide(code, [project_wheel])
    expected = {k: v for k, v in DATA["keys"].items() if not k.startswith("numpy")}
    assert {k: v for k, v in out.result.items() if not k.startswith("numpy")} == expected
