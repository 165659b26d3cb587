"""Real Pyodide (Node) starts offline and has what ipy_lazycache needs."""

import pytest

pytestmark = [pytest.mark.pyodide, pytest.mark.slow]

CODE = """
import sys, xxhash, cloudpickle, IPython, pyodide_http
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell("x = 6 * 7")
print(sys.platform)
RESULT = {
    "platform": sys.platform,
    "python": list(sys.version_info[:2]),
    "xxh64": xxhash.xxh64(b"a").hexdigest(),
    "roundtrip": cloudpickle.loads(cloudpickle.dumps(lambda v: v + 1))(1),
    "x": shell.user_ns["x"],
}
"""


def test_pyodide_runs_python_with_deps(run_in_pyodide):
    out = run_in_pyodide(CODE)
    assert out.stdout.strip().splitlines()[-1] == "emscripten"
    assert out.result == {
        "platform": "emscripten",
        "python": [3, 14],
        "xxh64": "d24ec4f1a98c6e5b",  # same digest as CPython's xxhash
        "roundtrip": 2,
        "x": 42,
    }
