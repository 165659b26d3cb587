"""Golden cache keys: the same cell with the same refs must give the same key
on every CPython from 3.10 and under Pyodide.

Self-contained (it is also sent as source to Pyodide): ``keys(vectors)``
computes the key of every vector in a real InteractiveShell. Regenerate the
file only when the key format changes on purpose::

    python tests/golden.py --write
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else "."
VECTORS = os.path.join(HERE, "golden_keys.json")

#: (name, setup cell, cached cell). Setup cells build the refs; values are
#: pure Python or stdlib so they exist everywhere, plus numpy where present.
CASES = [
    ("int", "a = 1", "b = a + 1"),
    ("big-negative-int", "a = -(2 ** 100) + 7", "b = a * 2"),
    ("float-and-nan", "a = 1.5\nn = float('nan')\ninf = float('-inf')", "b = (a, n, inf)"),
    ("complex-bool-none", "c = 3 - 4j\nt = True\nz = None", "b = (c, t, z)"),
    ("str-unicode", "s = 'héllo wörld ✓ 𝄞'", "b = s.upper()"),
    ("bytes", "raw = bytes(range(256))\nba = bytearray(b'xyz')", "b = raw + bytes(ba)"),
    # Sets of ints only: a set of str iterates in a per-process order (hash randomisation).
    ("containers", "d = {'k': [1, 2, (3, 4)], 2: {'n': None}}\nfs = frozenset({3, 1, 2})\nst = {20, 10}",
     "b = (d, fs, st)"),
    ("set-order-1-9", "s = {1, 9}", "b = list(s)"),
    ("set-order-9-1", "s = {9, 1}", "b = list(s)"),
    ("nested-cycle", "lst = [1]\nlst.append(lst)", "b = len(lst)"),
    ("comments-and-format", "a = 1", "# comment\nb   =  ( a+1 )   # trailing\n"),
    ("unread-names-are-not-refs", "unused = 123\na = 1", "b = a"),
    ("notebook-function", "scale = 3\ndef helper(x):\n    return x * scale", "y = helper(2)"),
    ("function-chain", "k = 2\ndef inner(x):\n    return x + k\ndef outer(x):\n    return inner(x) * 2",
     "y = outer(1)"),
    ("recursive-function", "def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)", "y = fact(5)"),
    ("notebook-class", "class Model:\n    rate = 0.5\n    def fit(self, v):\n        return v * self.rate",
     "m = Model()\ny = m.fit(4)"),
    ("instance", "class P:\n    def __init__(self, v):\n        self.v = v\np = P([1, 2])", "y = p.v"),
    ("stdlib-module", "import json", "y = json.dumps([1])"),
    ("platform-patched-function", "import time", "time.sleep(0)\nt = time.monotonic"),  # Pyodide wraps time.sleep
    ("magics-in-cell", "a = 1", "%time b = a + 1\nout = !echo hi"),
    ("f-strings-and-match", "v = [1, 2]",
     "match v:\n    case [x, *rest]:\n        s = f'{x!r:>4} {rest}'\n    case _:\n        s = ''"),
    ("comprehension-scopes", "x = 10\ndata = [1, 2]", "y = [x for x in data]\nz = {k: v for k, v in zip(data, data)}"),
    ("walrus-lambda-try", "data = [3, 4]",
     "try:\n    f = lambda q: q + 1\n    y = [(w := f(i)) for i in data]\nexcept ValueError as e:\n    y = None"),
    ("numpy-arrays", "import numpy as np\narr = np.arange(12, dtype='>i4').reshape(3, 4)\nview = arr[:, ::2]\n"
     "f = np.ones((2, 2), order='F')\ns = np.float32(1.5)", "y = (arr, view, f, s)"),
    ("str-subclass", "class Tag(str):\n    pass\nt = Tag('x')\nt.note = 1", "b = t + '!'"),
    ("dataclass-instance", "import dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int = 1\n"
     "    y: list = dataclasses.field(default_factory=list)\np = P(2, [3])", "b = p.x"),
    ("namedtuple-and-slots", "import collections\nN = collections.namedtuple('N', 'a b')\nclass S:\n"
     "    __slots__ = ('a',)\n    def __init__(self, a):\n        self.a = a\nn = N(1, 2)\ns = S(3)", "b = (n, s)"),
    ("lambdas-on-one-line", "f, g = (lambda x: x + 1), (lambda y: y + 2)", "b = g(1)"),
    ("wrapper-partial-lru", "import functools\ndef deco(fn):\n    @functools.wraps(fn)\n    def w(*a):\n"
     "        return fn(*a) * 2\n    return w\n@deco\ndef h(x):\n    return x\nh.tag = 'v1'\n"
     "p = functools.partial(h, 3)\n@functools.lru_cache(maxsize=8)\ndef lc(x):\n    return x", "b = (p(), lc(2))"),
    ("history-and-module-attr", "import math", "b = (_, math.pi * 2)"),
]


def keys(cases=CASES):
    from IPython.core.interactiveshell import InteractiveShell

    from ipy_lazycache import core

    shell = InteractiveShell.instance()
    out = {}
    for name, setup, cell in cases:
        if "numpy" in setup:
            try:
                import numpy  # noqa: F401
            except ImportError:
                continue
        shell.reset(new_session=False)
        result = shell.run_cell(setup, store_history=False, silent=True)
        if not result.success:
            raise RuntimeError(f"setup of {name} failed: {result.error_in_exec!r}")
        out[name] = core.plan.plan(shell.transform_cell(cell), shell.user_ns).key
    return out


if __name__ == "__main__" and "--write" in sys.argv:
    with open(VECTORS, "w") as f:
        json.dump({"cases": [list(c) for c in CASES], "keys": keys()}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {VECTORS}")
