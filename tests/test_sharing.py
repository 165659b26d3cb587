"""The refs are one graph: what they share is part of the key (issue 20 #1, DESIGN §11).

Whether ``y`` is ``x``, holds ``x``'s items, or views ``x``'s memory decides
what the cell's ``y.append(2)`` or ``y += 1`` does to ``x``; equal contents
with other sharing must not hit. Each scenario runs the same cached cell in
two kernels sharing one cache (a restart between), the first with ``y``
sharing with ``x``, the second with an equal copy (or the other way round),
and compares every value with plain IPython.
"""

import pytest

from tests._fresh import RUN, session

pytestmark = pytest.mark.slow

_COUNTER = ("x = 0\ndef counter():\n    c = 0\n    def inc():\n        nonlocal c\n        c += 1\n"
            "    def get():\n        return c\n    return inc, get\n")

SCENARIOS = {
    "alias": ("x = [1]\ny = x", "x = [1]\ny = list(x)", "y.append(2)\nn = len(x)"),
    "shared-item": ("x = [[1]]\ny = [x[0]]", "x = [[1]]\ny = [[1]]", "y[0].append(2)\nn = len(x[0])"),
    "bytearray-alias": ("x = bytearray(b'a')\ny = x", "x = bytearray(b'a')\ny = bytearray(x)",
                        "y += b'!'\nn = len(x)"),
    "numpy-view": ("import numpy as np\nx = np.zeros(4)\ny = x[:2]",
                   "import numpy as np\nx = np.zeros(4)\ny = x[:2].copy()", "y += 1\nn = float(x.sum())"),
    "numpy-offset": ("import numpy as np\nx = np.zeros(4)\ny = x[2:]", "import numpy as np\nx = np.zeros(4)\ny = x[:2]",
                     "y += 1\nn = float(x[:2].sum())"),
    "frombuffer": ("import numpy as np\nx = bytearray(4)\ny = np.frombuffer(x, 'u1')",
                   "import numpy as np\nx = bytearray(4)\ny = np.frombuffer(bytes(x), 'u1')",
                   "x[0] = 7\nn = int(y[0])"),
    # two closures over one cell (one counter() call) or over two cells: inc() moves what get() reads or not
    "closure-cell": (_COUNTER + "inc, get = counter()", _COUNTER + "inc, _ = counter()\n_, get = counter()",
                     "inc()\nn = get()"),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("order", ["shared-first", "copy-first"])
def test_equal_values_with_other_sharing_do_not_hit(tmp_path, name, order):
    shared, copied, body = SCENARIOS[name]
    setups = [shared, copied] if order == "shared-first" else [copied, shared]
    cell = "%%lazycache\n" + RUN + body
    work = tmp_path / "work"
    work.mkdir()
    for i, setup in enumerate(setups):
        plain = tmp_path / f"plain{i}"
        plain.mkdir()
        expected = session(plain, [setup, cell], ["n", "x"], magic=False)["values"]
        got = session(work, [setup, cell], ["n", "x"])
        assert all(c["ok"] for c in got["cells"]), got
        assert got["values"] == expected, f"session {i + 1}: {got}"
    assert got["runs"] == 2, "the second kernel's cell hit on the first one's entry"


@pytest.mark.parametrize("name", ["numpy-view", "closure-cell"])
def test_the_same_sharing_still_hits(tmp_path, name):
    shared, _, body = SCENARIOS[name]
    cells = [shared, "%%lazycache\n" + RUN + body]
    session(tmp_path, cells)
    assert session(tmp_path, cells, ["n"])["runs"] == 1
