"""Nothing the cache does can kill the kernel (issue 20 #7, DESIGN §11).

A notebook that raised the recursion limit (``sys.setrecursionlimit(10**6)``)
and builds a very deep structure in a cached cell: pickling it let the C
pickler overflow the C stack, a segfault on the cell's first run. The tool
now recurses only a bounded depth: the deep def is not stored (one line), a
cell reading it runs uncached (one line), the user's limit is left as set.
"""

from tests._fresh import RUN, session

DEEP = "x = []\ncur = x\nfor _ in range(200_000):\n    nxt = []\n    cur.append(nxt)\n    cur = nxt\ndel cur, nxt"
DEPTH = "def depth(v):\n    n = 0\n    while v:\n        v = v[0]\n        n += 1\n    return n\n"


def test_a_deep_structure_under_a_raised_limit_does_not_kill_the_kernel(tmp_path):
    cells = ["import sys\nsys.setrecursionlimit(10**6)", "%%lazycache\n" + RUN + DEEP,
             "%%lazycache\n" + RUN + DEPTH + "n = depth(x)", "limit = sys.getrecursionlimit()"]
    got = session(tmp_path, cells, ["n", "limit"])  # raises if the process died
    assert all(c["ok"] for c in got["cells"]), got
    assert got["values"] == {"n": "200000", "limit": "1000000"}
    assert "x could not be stored" in got["cells"][1]["out"]
    assert "nested too deeply" in got["cells"][2]["out"]
    assert got["runs"] == 2
