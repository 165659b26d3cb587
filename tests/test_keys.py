"""Complete keys (DESIGN §9): every kind of value a cell can read is in its
key, so a change misses with the new value, and an unchanged value still hits
after a restart (no spurious miss)."""

from ipy_lazycache.analysis import analyze


def test_surely_is_what_every_path_binds():
    a = analyze(
        "import os\n"
        "x = 1\n"
        "y: int\n"
        "if x:\n    a = b = 1\nelse:\n    a = 2\n"
        "for i in range(3):\n    loop = i\n"
        "try:\n    t = 1\nexcept ValueError:\n    t = 2\n    e_only = 1\n"
        "with open('f') as fh:\n    w = 1\n"
        "gone = 1\ndel gone\n"
        "z = [(k := n) for n in range(2)]\n"
        "def f():\n    global g\n    g = 1\n"
    )
    assert a.surely == {"os", "x", "a", "t", "fh", "w", "z", "f"}
    assert {"b", "i", "loop", "e_only", "gone", "k", "g", "y"}.isdisjoint(a.surely)
