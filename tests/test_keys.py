"""Complete keys (DESIGN §9): every kind of value a cell can read is in its
key, so a change misses with the new value, and an unchanged value still hits
after a restart (no spurious miss).

Each case runs real InteractiveShells in fresh processes (a restart, for
real: new ids, new string hash seed): version 1, version 1 again (must hit),
version 2 (must miss and give what a plain run of version 2 gives).
"""

import sys

import pytest

from ipy_lazycache.analysis import analyze
from tests._fresh import RUN, session


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
    # A with body may not complete (contextlib.suppress swallows its exception): w is maybe-bound.
    assert a.surely == {"os", "x", "a", "t", "fh", "z", "f"}
    assert {"b", "i", "loop", "e_only", "gone", "k", "g", "y", "w"}.isdisjoint(a.surely)


def test_what_analysis_records_for_the_key():
    a = analyze("y = _ * 2 + Out[3] + In[2] + len(_i)\nz = cfg.THRESHOLD + np.random.rand()\nimport mymod\n")
    assert {"_", "Out", "In", "_i"} <= a.reads and a.subscripts == {"Out": {3}, "In": {2}} and not a.whole
    assert {("cfg", "THRESHOLD"), ("np", "random", "rand")} <= a.chains and a.imports == {"mymod"}
    assert analyze("n = len(Out)").whole == {"Out"}
    from IPython.core.inputtransformer2 import TransformerManager

    for dynamic in ("y = eval('a')", "d = dir()", "v = vars()", "g = globals()", "%who", "get_ipython().user_ns"):
        assert analyze(TransformerManager().transform_cell(dynamic)).has_dynamic, dynamic
    for static in ("y = eval('a', {'a': 1})", "d = dir(obj)", "v = vars(obj)", "from m import *"):
        assert not analyze(static).has_dynamic, static


def lazy(body, options=""):
    return f"%%lazycache {options}\n" + RUN + body


def check(tmp_path, v1, v2, cell, names, files1=None, files2=None):
    """v1 then ``cell`` (a miss); the same after a restart (a hit, same
    values); v2 then ``cell`` after a restart (a miss, values of a plain run)."""
    work, plain = tmp_path / "nb", tmp_path / "plain"
    work.mkdir(parents=True)
    plain.mkdir(parents=True)

    def write(files):
        for name, text in (files or {}).items():
            for folder in (work, plain):
                (folder / name).write_text(text)

    write(files1)
    first = session(work, [*v1, cell], names)
    assert all(c["ok"] for c in first["cells"]), first
    assert first["runs"] == 1 and "not cached" not in first["cells"][-1]["out"], first
    again = session(work, [*v1, cell], names)
    assert again["runs"] == 1, f"spurious miss after a restart: {again}"
    assert again["values"] == first["values"]
    write(files2)
    changed = session(work, [*v2, cell], names)
    expected = session(plain, [*v2, cell], names, magic=False)
    assert changed["runs"] == 2, f"wrong hit: {changed}"
    assert changed["values"] == expected["values"] != first["values"]
    return changed


def test_history_names_are_refs(tmp_path):
    check(tmp_path, ["10"], ["20"], lazy("y = _ * 2"), ["y"])


def test_out_entry_read_by_a_constant_subscript(tmp_path):
    # Out grows with every cell; only entry 1 is keyed, so the cell still hits.
    check(tmp_path, ["10", "'other'"], ["11", "'other'"], lazy("y = Out[1] * 2"), ["y"])


def test_sets_key_in_iteration_order(tmp_path):
    check(tmp_path, ["s = {1, 9}"], ["s = {9, 1}"], lazy("order = list(s)"), ["order"])


@pytest.mark.parametrize(
    "v1, v2",
    [
        ("t = Tag('x')\nt.note = 'a'", "t = Tag('y')\nt.note = 'a'"),  # base content
        ("t = Tag('x')\nt.note = 'a'", "t = Tag('x')\nt.note = 'b'"),  # attributes
    ],
)
def test_builtin_subclass_by_content_and_attributes(tmp_path, v1, v2):
    define = "class Tag(str):\n    pass\n"
    check(tmp_path, [define + v1], [define + v2], lazy("out = (str(t), t.note)"), ["out"])


def test_list_dict_and_ndarray_subclasses(tmp_path):
    define = (
        "import numpy as np\nclass L(list):\n    pass\nclass D(dict):\n    pass\nclass A(np.ndarray):\n    pass\n"
        "l = L([1, 2])\nd = D(a=1)\na = np.arange(3).view(A)\n"
    )
    check(tmp_path, [define + "a.unit = 'm'"], [define + "a.unit = 'km'"], lazy("out = (list(l), dict(d), a.unit)"),
          ["out"])
    check(tmp_path / "2", [define], [define + "l.append(3)"], lazy("out = list(l)"), ["out"])


def test_array_memory_order(tmp_path):
    check(tmp_path, ["import numpy as np\na = np.ones((2, 3))"], ["import numpy as np\na = np.ones((2, 3), order='F')"],
          lazy("f = a.flags['F_CONTIGUOUS']"), ["f"])


@pytest.mark.parametrize(
    "v1, v2",
    [
        ("def f(x, k=2):\n    return x * k", "def f(x, k=2):\n    return x * k\nf.__defaults__ = (3,)"),
        ("def f(x, *, k=2):\n    return x * k", "def f(x, *, k=2):\n    return x * k\nf.__kwdefaults__ = {'k': 3}"),
        ("def f(x):\n    return x * f.k\nf.k = 2", "def f(x):\n    return x * f.k\nf.k = 3"),
        ("def make(k):\n    return lambda x: x * k\nf = make(2)",
         "def make(k):\n    return lambda x: x * k\nf = make(3)"),
        # Which of two lambdas on one line: the line is the same, the lambda is not.
        ("fs = [lambda x: x * 2, lambda x: x * 3]\nf = fs[0]", "fs = [lambda x: x * 2, lambda x: x * 3]\nf = fs[1]"),
    ],
    ids=["defaults", "kwdefaults", "attributes", "closure", "lambdas-on-one-line"],
)
def test_functions_by_everything_that_decides_what_they_do(tmp_path, v1, v2):
    check(tmp_path, [v1], [v2], lazy("y = f(5)"), ["y"])


METHOD = "class C:\n    def __init__(self, k):\n        self.k = k\n    def m(self, x):\n        return x * self.k\n"
DECO = (
    "import functools\ndef deco(fn):\n    @functools.wraps(fn)\n"
    "    def w(x):\n        return fn(x) * {}\n    return w\n"
)


@pytest.mark.parametrize(
    "v1, v2",
    [
        # The wrapper changes, the wrapped function does not (and its source does not name the decorator).
        (DECO.format(2) + "def base(x):\n    return x + 1\nf = deco(base)",
         DECO.format(3) + "def base(x):\n    return x + 1\nf = deco(base)"),
        # The wrapped function changes, the wrapper does not.
        (DECO.format(2) + "@deco\ndef f(x):\n    return x + 1",
         DECO.format(2) + "@deco\ndef f(x):\n    return x + 2"),
        ("import functools\ndef g(a, b):\n    return a - b\nf = functools.partial(g, 10)",
         "import functools\ndef g(a, b):\n    return a - b\nf = functools.partial(g, 20)"),
        ("import functools\n@functools.lru_cache\ndef f(x):\n    return x + 1",
         "import functools\n@functools.lru_cache\ndef f(x):\n    return x + 2"),
        (METHOD + "f = C(2).m", METHOD + "f = C(3).m"),
        # A library's wrapper (functools' own code) around the notebook's function.
        ("import functools\n@functools.singledispatch\ndef f(x):\n    return x + 1",
         "import functools\n@functools.singledispatch\ndef f(x):\n    return x + 2"),
    ],
    ids=["wrapper", "wrapped", "partial", "lru_cache", "bound-method", "singledispatch"],
)
def test_wrappers_and_what_they_wrap(tmp_path, v1, v2):
    check(tmp_path, [v1], [v2], lazy("y = f(5)"), ["y"])


@pytest.mark.parametrize(
    "define, v1, v2",
    [
        ("import dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int\n"
         "    y: list = dataclasses.field(default_factory=list)\n", "p = P(1, [2])", "p = P(1, [3])"),
        ("import collections\nP = collections.namedtuple('P', 'x y')\n", "p = P(1, 2)", "p = P(1, 3)"),
        ("class P:\n    __slots__ = ('x', 'y')\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n",
         "p = P(1, 2)", "p = P(1, 3)"),
        ("class P:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n",
         "p = P(1, {'a'})", "p = P(1, {'b'})"),
        ("from fractions import Fraction as P\n", "p = P(1, 3)", "p = P(1, 4)"),
    ],
    ids=["dataclass", "namedtuple", "slots", "plain-instance", "library-object"],
)
def test_instances_hash_stably_across_processes(tmp_path, define, v1, v2):
    fields = "out = [getattr(p, a) for a in ('x', 'y', 'numerator', 'denominator') if hasattr(p, a)]"
    check(tmp_path, [define + v1], [define + v2], lazy(fields), ["out"])


MOD = "THRESHOLD = {}\ndef above(x):\n    return x > THRESHOLD\n"


def test_local_module_edited_on_disk(tmp_path):
    check(tmp_path, ["import mymod"], ["import mymod"], lazy("y = (mymod.THRESHOLD, mymod.above(5))"), ["y"],
          files1={"mymod.py": MOD.format(3)}, files2={"mymod.py": MOD.format(7)})


def test_local_module_changed_at_runtime(tmp_path):
    check(tmp_path, ["import mymod"], ["import mymod\nmymod.THRESHOLD = 7"], lazy("y = mymod.above(5)"), ["y"],
          files1={"mymod.py": MOD.format(3)})


def test_local_module_imported_by_the_cell(tmp_path):
    check(tmp_path, [], [], lazy("from mymod import THRESHOLD\ny = THRESHOLD"), ["y"],
          files1={"mymod.py": MOD.format(3)}, files2={"mymod.py": MOD.format(7)})


def test_attribute_read_through_an_installed_module(tmp_path):
    check(tmp_path, ["import json\njson.extra = 1"], ["import json\njson.extra = 2"], lazy("y = json.extra"), ["y"])


def test_dynamic_cell_runs_uncached_unless_deps_name_its_reads(tmp_path):
    work = tmp_path / "nb"
    work.mkdir()
    r = session(work, ["a = 1", lazy("y = eval('a + 1')"), lazy("y = eval('a + 1')")], ["y"])
    assert r["runs"] == 2 and r["values"]["y"] == "2"
    lines = [line for line in r["cells"][1]["out"].splitlines() if "not cached" in line]
    assert len(lines) == 1 and "--deps" in lines[0] and "eval" in lines[0]
    check(tmp_path / "deps", ["a = 1"], ["a = 2"], lazy("y = eval('a + 1')", "--deps a"), ["y"])


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 has no column positions")
def test_nested_lambdas_on_one_line_are_told_apart(tmp_path):
    check(tmp_path, ["f = (lambda k: lambda x: x * k)(2)"], ["f = (lambda k: lambda x: x * k)(3)"], lazy("y = f(5)"),
          ["y"])


def test_local_module_edited_but_not_reloaded_runs_uncached(run, shell, runs, tmp_path, monkeypatch):
    import os
    import time

    monkeypatch.syspath_prepend(str(tmp_path))  # a kernel imports from its folder
    monkeypatch.delitem(sys.modules, "stale_mod", raising=False)
    (tmp_path / "stale_mod.py").write_text(MOD.format(3))
    run("import stale_mod")
    cell = lazy("y = stale_mod.above(5)")
    run(cell)
    time.sleep(0.01)
    (tmp_path / "stale_mod.py").write_text(MOD.format(7))  # the kernel still runs THRESHOLD = 3
    os.utime(tmp_path / "stale_mod.py", ns=(time.time_ns(), time.time_ns() + 10**9))
    r = run(cell)
    lines = [line for line in r.out.splitlines() if "not cached" in line]
    assert runs() == 2 and shell.user_ns["y"] is True
    assert len(lines) == 1 and "stale_mod changed on disk" in lines[0] and "reload" in lines[0]
    run("import importlib\nimportlib.reload(stale_mod)")
    run(cell)
    assert runs() == 3 and shell.user_ns["y"] is False
    run(cell)
    assert runs() == 3  # reloaded: keyed by the new source again, and a hit


def test_restored_functions_and_instances_key_like_the_originals(tmp_path):
    """A chain of cached cells: after a restart the first restores functions,
    lambdas and instances, and the second must still hit on them."""
    define = lazy(
        "import functools, dataclasses\n"
        "def deco(fn):\n    @functools.wraps(fn)\n    def w(x):\n        return fn(x) * 2\n    return w\n"
        "@deco\ndef f(x):\n    return x + 1\n"
        "add, mul = (lambda x: x + 1), (lambda x: x * 3)\n"
        "@dataclasses.dataclass\nclass P:\n    v: int\n"
        "p = P(4)\n"
        "s = {3, 1, 2}\n"
    )
    use = lazy("y = (f(1), add(1), mul(2), p.v, list(s))")
    first = session(tmp_path, [define, use], ["y"])
    assert first["runs"] == 2 and first["values"]["y"] == "(4, 2, 6, 4, [1, 2, 3])", first
    again = session(tmp_path, [define, use], ["y"])
    assert again["runs"] == 2, f"a restored value keys differently: {again}"
    assert again["values"] == first["values"]


def test_methods_of_module_generators_are_not_keyed_by_the_generator_state(tmp_path):
    # The unseeded global generators differ in every process; their state is
    # ambient (keyed only when seeded), so a ref to their methods still hits.
    cells = ["import random, numpy as np\nfrom random import uniform, seed\nfrom numpy.random import normal",
             lazy("ok = callable(uniform) and callable(normal) and callable(seed) and callable(np.random.rand)")]
    assert session(tmp_path, cells, ["ok"])["runs"] == 1
    again = session(tmp_path, cells, ["ok"])
    assert again["runs"] == 1 and again["values"]["ok"] == "True", again


def test_module_imported_inside_a_called_function(tmp_path):
    define = "def threshold():\n    import mymod\n    return mymod.THRESHOLD\n"
    check(tmp_path, [define], [define], lazy("y = threshold()"), ["y"],
          files1={"mymod.py": MOD.format(3)}, files2={"mymod.py": MOD.format(7)})


def test_notebook_function_set_on_a_library_class(tmp_path):
    patch = "import fractions\ndef half(self):\n    return self / {}\nfractions.Fraction.half = half\n"
    patch += "q = fractions.Fraction(1, 3)"
    check(tmp_path, [patch.format(2)], [patch.format(4)], lazy("y = str(q.half())"), ["y"])


def test_function_of_a_local_module_edited_but_not_reloaded_runs_uncached(run, shell, runs, tmp_path, monkeypatch):
    import os
    import time

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "stale_fn_mod", raising=False)
    (tmp_path / "stale_fn_mod.py").write_text("def f(x):\n    return x + 1\n")
    run("from stale_fn_mod import f")
    cell = lazy("y = f(1)")
    run(cell)
    (tmp_path / "stale_fn_mod.py").write_text("def f(x):\n    return x + 2\n")  # same line, new body
    os.utime(tmp_path / "stale_fn_mod.py", ns=(time.time_ns(), time.time_ns() + 10**9))
    r = run(cell)  # the kernel still runs x + 1: keying it by the new source would be a wrong hit later
    assert runs() == 2 and shell.user_ns["y"] == 2
    assert any("stale_fn_mod changed on disk" in line for line in r.out.splitlines())


def test_module_of_the_project_next_to_the_notebook_folder(tmp_path):
    # notebooks/ and src/ side by side, sys.path.append('..'): src's modules are the notebook's own.
    nb = tmp_path / "proj" / "notebooks"
    nb.mkdir(parents=True)
    src = tmp_path / "proj" / "helpers_src.py"
    setup = ["import sys\nsys.path.insert(0, '..')\nimport helpers_src"]
    src.write_text(MOD.format(3))
    cell = lazy("y = helpers_src.above(5)")
    assert session(nb, [*setup, cell], ["y"])["runs"] == 1
    assert session(nb, [*setup, cell], ["y"])["runs"] == 1
    src.write_text(MOD.format(7))
    changed = session(nb, [*setup, cell], ["y"])
    assert changed["runs"] == 2 and changed["values"]["y"] == "False", changed


def test_local_module_changed_at_runtime_then_imported_by_the_cell(tmp_path):
    # The cell's own import gives the changed value; the key must say so.
    check(tmp_path, ["import mymod"], ["import mymod\nmymod.THRESHOLD = 7"],
          lazy("from mymod import THRESHOLD\ny = THRESHOLD"), ["y"], files1={"mymod.py": MOD.format(3)})


def test_a_cell_that_imports_a_local_module_hits_on_its_second_run(tmp_path):
    (tmp_path / "mymod.py").write_text(MOD.format(3))
    cell = lazy("import mymod\ny = mymod.THRESHOLD")
    assert session(tmp_path, [cell, cell], ["y"])["runs"] == 1
