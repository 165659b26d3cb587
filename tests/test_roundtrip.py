"""Every store is verified by a round trip (issue 21 #1), and the tool's own
introspection never reaches the user's cell (issue 21 #2): real shells, a new
process per session, a body-run counter."""

import pytest

from tests._fresh import RUN, session, twice

slow = pytest.mark.slow


@slow
def test_a_value_that_would_come_back_different_is_not_stored_and_the_cell_runs_again(tmp_path):
    """A class whose ``__getstate__`` leaves out an attribute comes back without it: the store says
    so in its line, and after a restart the cell runs (a hit is a run). (Its first example, a dict
    whose ``__dict__`` is itself, is now stored exactly: tests/test_self_dict.py.)"""
    cells = ["class Model:\n    def __init__(self):\n        self.w, self._cache = [1, 2], {'k': 1}\n"
             "    def __getstate__(self):\n        return {'w': self.w}",
             "%%lazycache\n" + RUN + "data = Model()"]
    names = ["data.w", "hasattr(data, '_cache')"]
    expected, first, again = twice(tmp_path, cells, names)
    assert "not stored" in first["cells"][1]["out"] and "data comes back" in first["cells"][1]["out"], first
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2


@slow
def test_a_generator_made_by_a_cached_cell_is_a_generator_after_a_restart(tmp_path):
    """Cython's fake module ``_cython_3_2_4`` was listed as a module the blob needs: a stand-in came back."""
    cells = ["%%lazycache\n" + RUN + "import numpy as np\ng = np.random.default_rng(5)"]
    names = ["type(g).__name__", "g.random()"]
    expected, first, again = twice(tmp_path, cells, names)
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 1


@slow
def test_a_library_closure_stored_by_value_keeps_its_key_so_later_cells_hit(tmp_path):
    """A local module's decorator returns a closure pickled by value: its code came back named
    ``<dynamic-code>``, without source, and every cell reading it missed after a restart."""
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "mydeco.py").write_text(
        "import functools\n\ndef twice(fn):\n    @functools.wraps(fn)\n    def wrapper(*a):\n"
        "        return 2 * fn(*a)\n    return wrapper\n")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "mydeco.py").write_text((tmp_path / "work" / "mydeco.py").read_text())
    cells = ["import sys; sys.path.insert(0, '.')",
             "%%lazycache\n" + RUN + "from mydeco import twice\n@twice\ndef f(x):\n    return x + 1",
             "%%lazycache\n" + RUN + "y = f(3)"]
    plain = session(tmp_path / "plain", cells, ["y"], magic=False)["values"]
    first = session(tmp_path / "work", cells, ["y"])
    again = session(tmp_path / "work", cells, ["y"])
    assert first["values"] == again["values"] == plain == {"y": "8"}
    assert again["runs"] == 2, again


@slow
def test_looking_up_names_of_a_notebook_function_prints_no_numpy_warning(tmp_path):
    """D1: the first run showed numpy's ``np.str`` FutureWarning (the tool looked up every name the
    function's code uses on numpy, through numpy's deprecation ``__getattr__``)."""
    cells = ["import numpy as np\ndef f(x):\n    return str(np.sum(x))",
             "%%lazycache\n" + RUN + "z = f([1, 2])"]
    (tmp_path / "w").mkdir()
    first = session(tmp_path / "w", cells, ["z"])
    assert first["values"] == {"z": "'3'"}
    assert first["cells"][1]["err"] == "", first
    assert "Warning" not in first["cells"][1]["out"], first


@slow
def test_lazycache_above_another_cell_magic_runs_the_cell_as_that_magic_does(tmp_path):
    """Issue 21 #5: ``%%lazycache`` above ``%%time``, ``%%capture``, ``%%writefile`` failed with
    ``UsageError: Line magic function %%time not found``; now the inner magic runs the cell, with one line."""
    cells = ["%%lazycache\n%%time\nx = 1 + 1",
             "%%lazycache\n%%capture cap\nprint('hidden')\ny = 3",
             "%%lazycache\n%%writefile out.txt\nhello"]
    names = ["x", "y", "cap.stdout", "open('out.txt').read()"]
    expected, first, again = twice(tmp_path, cells, names)
    assert expected == {"x": "2", "y": "3", "cap.stdout": "'hidden\\n'", "open('out.txt').read()": "'hello\\n'"}
    for run in (first, again):
        assert run["values"] == expected, run
        assert all(c["ok"] for c in run["cells"]), run
        assert "Wall time" in run["cells"][0]["out"]
        for cell, magic in zip(run["cells"], ["time", "capture", "writefile"]):
            assert cell["out"].count("lazycache:") == 1 and f"%%{magic} runs this cell" in cell["out"], cell


@slow
def test_a_hit_shows_the_value_as_the_run_showed_it(tmp_path):
    """D2: a value whose state changes after the run's display (the inline backend lays a label out after
    the cell: ``Text(24.3, 0.5, 'label')`` on a hit where the run showed ``Text(0, 0.5, 'label')``) was
    formatted again from the restored object; the hit shows the run's recorded display."""
    cells = ["class Seen:\n    times = 0\n    def __repr__(self):\n        self.times += 1\n"
             "        return f'shown {self.times}'",
             "%%lazycache\n" + RUN + "s = Seen()\ns"]
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    assert session(plain_dir, cells, [], magic=False)["cells"][1]["out"] == "Out[2]: shown 1\n"
    (tmp_path / "w").mkdir()
    first = session(tmp_path / "w", cells, ["s.times"])
    again = session(tmp_path / "w", cells, ["s.times"])
    assert again["runs"] == 1
    for run in (first, again):
        assert "Out[2]: shown 1\n" in run["cells"][1]["out"], run
        assert run["values"] == {"s.times": "1"}


@slow
def test_a_restored_wrapper_and_flag_combination_are_the_runs_so_later_cells_hit(tmp_path):
    """restored-wrapper: a ``functools.wraps`` wrapper made in one cell from a decorator defined in another came
    back without source and with its own ``__annotations__`` (the run's is the wrapped function's): it keyed
    differently, so the cell calling it ran again. A ``Flag`` combination grew the class's value map, so the
    class was stored as changed and restored as a copy: ``Perm.W in p`` raised after a restart."""
    cells = ["import functools, enum\ndef deco(k):\n    def wrap(func):\n        @functools.wraps(func)\n"
             "        def inner(*args):\n            return func(*args) + k * 3\n"
             "        return inner\n    return wrap\n"
             "def raw(x):\n    return x * 3\nclass Perm(enum.Flag):\n    R = 1\n    W = 2\n    X = 4",
             "%%lazycache\n" + RUN + "fn = deco(3)(raw)",
             "%%lazycache\n" + RUN + "res = fn(3)",
             "%%lazycache\n" + RUN + "p = Perm.R | Perm.W",
             "%%lazycache\n" + RUN + "q = Perm.W in p"]
    names = ["res", "fn.__annotations__ is raw.__annotations__", "q", "Perm.W in p", "type(p) is Perm"]
    expected, first, again = twice(tmp_path, cells, names)
    assert first["values"] == again["values"] == expected
    assert first["runs"] == 4 and again["runs"] == 4, again


@slow
def test_pickling_leaves_no_slotnames_on_notebook_classes(tmp_path):
    """Pickling an instance made copyreg cache ``__slotnames__`` on the notebook's class (seen in ``vars(C)``)."""
    cells = ["class C:\n    def __init__(self):\n        self.v = 1", "%%lazycache\n" + RUN + "c = C()"]
    expected, first, again = twice(tmp_path, cells, ["sorted(vars(C))", "c.v"])
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 1


@slow
def test_a_library_function_keys_the_same_in_every_process(tmp_path):
    """scikit-learn's ``cross_val_score`` is a ``validate_params`` wrapper whose closure holds sets of strings
    (iterated in a per-process order): a cell reading it keyed differently in every process and never hit."""
    pytest.importorskip("sklearn")
    cells = ["from sklearn.model_selection import cross_val_score, learning_curve",
             "%%lazycache\n" + RUN + "fns = [cross_val_score.__name__, learning_curve.__name__]\nf = cross_val_score"]
    expected, first, again = twice(tmp_path, cells, ["fns", "f is cross_val_score"])
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 1, again


@slow
def test_hashing_leaves_an_xarray_dataset_as_found(tmp_path):
    """Keying a cell set a Dataset's ``_attrs`` from None to {}: the time-zone provider asked whether the ref
    was ``datetime`` with ``in`` (``ds == datetime``: xarray's comparison reads ``attrs``, which fills them),
    and read ``__name__`` through xarray's ``__getattr__``; the cell then stored ``ds`` as a def it changed."""
    pytest.importorskip("xarray")
    cells = ["import numpy as np, xarray as xr\nds = xr.Dataset({'a': ('x', np.arange(3))})",
             "%%lazycache\n" + RUN + "n = int(ds['a'].sum())"]
    expected, first, again = twice(tmp_path, cells, ["ds._attrs", "n"])
    assert expected == {"ds._attrs": "None", "n": "3"}
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 1


def test_keying_never_compares_a_ref_with_anything(tmp_path):
    """A ref's ``__eq__`` is the user's code: keying a cell that reads ``r.value`` called it (``r in (datetime,
    date)``), so the first run left ``r.calls`` longer than a plain run does."""
    cells = ["class R:\n    def __init__(self):\n        self.calls, self.value = [], 5\n"
             "    def __eq__(self, other):\n        self.calls.append(repr(other))\n        return False\n"
             "    __hash__ = object.__hash__\nr = R()",
             "%%lazycache\n" + RUN + "v = r.value + 1"]
    expected, first, again = twice(tmp_path, cells, ["r.calls", "v"])
    assert expected == {"r.calls": "[]", "v": "6"}
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 1


@slow
def test_closures_sharing_one_cell_share_it_after_a_restart(tmp_path):
    """``inc, get = counter()``: two closures over one ``nonlocal``. cloudpickle gave each function its own
    new cell, so after a hit ``inc()`` no longer moved what ``get()`` reads (plain: 2, hit: 1). Recursive
    closures (a function in its own cell) and functions sharing a default list stay as the run made them."""
    cells = ["%%lazycache\n" + RUN + "def counter():\n    c = 0\n    def inc():\n        nonlocal c\n        c += 1\n"
             "    def get():\n        return c\n    return inc, get\ninc, get = counter()\ninc()\n"
             "def outer():\n    def rec(n):\n        return 0 if n == 0 else 1 + rec(n - 1)\n    return rec\n"
             "rec = outer()\nbag = []\ndef put(x, into=bag):\n    into.append(x)\n"
             "def peek(at=bag):\n    return list(at)",
             "inc()\nv = get()\nput(1)\nw = (peek(), rec(4), rec.__closure__[0].cell_contents is rec)"]
    expected, first, again = twice(tmp_path, cells, ["v", "w"])
    assert expected == {"v": "2", "w": "([1], 4, True)"}
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 1  # the second session hit



@slow
def test_a_restored_subclass_does_not_run_the_notebooks_init_subclass_hook_again(tmp_path):
    """A notebook ``__init_subclass__`` appends to a registry: rebuilding the class on a hit ran it again, so
    the registry held the class twice (the run's append is restored as a changed ref already). What the
    hook did to the class itself comes back with the class's attributes."""
    base = ("REG = []\nclass Base:\n    registry = []\n    def __init_subclass__(cls, **kw):\n"
            "        super().__init_subclass__(**kw)\n        Base.registry.append(cls.__name__)\n"
            "        REG.append(cls.__name__)\n        cls.tag = cls.__name__.lower()")
    cells = ["%%lazycache\n" + RUN + base, "%%lazycache\n" + RUN + "class Plugin(Base):\n    pass",
             "seen = (list(Base.registry), REG, Plugin.tag, issubclass(Plugin, Base))"]
    expected, first, again = twice(tmp_path, cells, ["seen"])
    assert expected == {"seen": "(['Plugin'], ['Plugin'], 'plugin', True)"}
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2  # both cells hit after the restart


@slow
def test_builtins_the_round_trip_does_not_decode_come_back_equal_and_sharing(tmp_path):
    """A pickle of builtin containers and atoms only is exact by construction, so the store's round
    trip skips decoding it (what made a list of 3600 dicts store 4x slower): shared lists, a list
    holding itself, dict order, a set of strings and bytes still come back as the
    run left them, and a later cell reading them hits after a restart."""
    cells = ["%%lazycache\n" + RUN + "row = [1.5, 'x']\nloop = [1]\nloop.append(loop)\n"
             "data = {'z': [row, row, loop], 'a': ({'s', 't'}, b'b', 'u', float('nan'), -0.0)}\n"
             "del row, loop",
             "%%lazycache\n" + RUN + "n = len(data['z']) + len(data['a'])"]
    names = ["data['z']", "data['a'][1:]", "list(data)", "data['z'][0] is data['z'][1]",
             "data['z'][2][1] is data['z'][2]", "sorted(data['a'][0])", "n"]
    expected, first, again = twice(tmp_path, cells, names)
    assert expected["data['z'][0] is data['z'][1]"] == expected["data['z'][2][1] is data['z'][2]"] == "True"
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, "both cells hit in the new process"


ASKING = '''asked = []
class Ask:
    def __getattr__(self, name):
        asked.append((type(self).__name__, name))
        raise AttributeError(name)
class Lazy(Ask):
    def __init__(self):
        self.x = [1, 2]
    def total(self):
        return sum(self.x)
class Slotted(Ask):
    __slots__ = ("v",)
    def __init__(self):
        self.v = 3
class Call(Ask):
    def __init__(self):
        self.k = 2
    def __call__(self, a):
        return a * self.k
class Meta(type):
    def __getattr__(cls, name):
        asked.append((cls.__name__, name))
        raise AttributeError(name)
class WithMeta(metaclass=Meta):
    q = 1
obj, sl, call = Lazy(), Slotted(), Call()
box = {"o": obj, "s": [sl]}
def f(o):
    return o.total() + len(o.x)
'''


@slow
@pytest.mark.parametrize("mode", ["magic", "auto"])
def test_the_tool_never_asks_a_notebook_objects_getattr(tmp_path, mode):
    """Keying, storing and restoring look at the user's objects without their class's ``__getattr__`` (nor a
    metaclass's): one that records what it is asked sees nothing the plain run did not ask (auto mode's cost
    estimate asked every ref for ``nbytes``; xarray's fills attributes when asked)."""
    body = ["y = f(obj) + obj.total() + sl.v + call(2) + WithMeta.q\nz = (obj, sl, call, box)",
            "import copy\nb2 = copy.copy(box)\nc2 = call\nm = WithMeta"]
    if mode == "magic":
        cells = [ASKING] + ["%%lazycache\n" + b for b in body]
    else:
        cells = [ASKING, "%lazycache auto on --min-time 0"] + body
    names = ["asked", "y", "b2['s'][0].v", "c2(5)", "m.q"]
    plain = tmp_path / "plain"
    plain.mkdir()
    expected = session(plain, [c for c in cells if not c.startswith("%lazycache")], names, magic=False)["values"]
    assert expected["asked"] == "[]"
    work = tmp_path / "work"
    work.mkdir()
    for _ in range(2):  # stores, then restores after a restart
        assert session(work, cells + body, names)["values"] == expected


@slow
def test_a_drawn_figure_restored_keys_as_the_run_left_it(tmp_path):
    """Drawing a figure (the inline backend after the cell, ``savefig``, ``canvas.draw``) makes its transforms'
    matrices and its artists' renderings current; ``Figure.__setstate__`` marks them stale again. Those flags
    were in the key, so a restored figure never hashed like the one the run drew and the next cell reading it
    ran again after every restart."""
    pytest.importorskip("matplotlib")
    cells = ["import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt",
             "%%lazycache\n" + RUN + "fig, ax = plt.subplots()\nax.plot([1, 3])\nax.set_title('t')\n"
             "fig.canvas.draw()",
             "%%lazycache\n" + RUN + "title = fig.axes[0].get_title()"]
    hashing = "__import__('ipy_lazycache.hashing', fromlist=['value_hash'])"
    names = ["title", f"{hashing}.value_hash(fig)", f"{hashing}.value_hash(ax)"]
    expected, first, again = twice(tmp_path, cells, names)
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, again  # both cells hit after the restart


@slow
def test_a_restored_class_lists_its_attributes_in_the_runs_order(tmp_path):
    """cloudpickle made a class from its module name alone and set the rest after, so ``vars(C)`` of a restored
    class put ``__doc__`` and the descriptors before every method (restored-class-dict-order)."""
    cells = ["import abc, collections, dataclasses",
             "%%lazycache\n" + RUN + "K = collections.namedtuple('K', 'x y')\n"
             "class Slots:\n    __slots__ = ('a', 'b')\n    def __init__(self, a):\n        self.a, self.b = a, [a]\n"
             "class Eq:\n    def __eq__(self, other):\n        return True\n"
             "class Base(abc.ABC):\n    @abc.abstractmethod\n    def f(self): ...\n    x = 1\n"
             "class Impl(Base):\n    __slots__ = ()\n    def f(self):\n        return 2\n"
             "@dataclasses.dataclass\nclass D:\n    u: int = 1\n"
             "Slots.extra = 5"]
    classes = ("K", "Slots", "Eq", "Base", "Impl", "D")
    names = [f"list(vars({c}))" for c in classes] + ["Slots(3).b", "Eq.__hash__", "Impl().f()", "D()",
                                                      "sorted(Base.__abstractmethods__)"]
    expected, first, again = twice(tmp_path, cells, names)
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 1, again


@slow
def test_storing_an_xarray_dataset_leaves_it_as_found_and_it_hits_after_a_restart(tmp_path):
    """Pickling a Dataset reaches xarray's ``__getattr__`` (the reduce reads unset slots), which filled its
    ``_attrs`` (None -> {}) while the store ran: the user's object changed, the round trip then refused the
    def, and every reader missed after a restart. The pickler now reduces such objects as hashing does."""
    pytest.importorskip("xarray")
    cells = ["%%lazycache\n" + RUN + "import numpy as np, xarray as xr\nds = xr.Dataset({'a': ('x', np.arange(3))})",
             "%%lazycache\n" + RUN + "n = int(ds['a'].sum())"]
    expected, first, again = twice(tmp_path, cells, ["ds._attrs", "n", "ds.attrs"])
    assert expected["ds._attrs"] == "None"
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, "both cells hit in the new process"


@slow
def test_a_notebook_class_with_a_cached_property_is_stored_and_hits_after_a_restart(tmp_path):
    """``functools.cached_property`` holds a lock on Python 3.11, which pickle refuses: the class became a
    stand-in, the next kernel's load failed and the cell ran (and stored again) after every restart; the class
    could not be keyed either, and once it could, its property's and cached property's functions came back
    with private globals (a reader of the class missed: the decorator's ``functools`` was not found)."""
    cells = ["SCALE = 10",
             "%%lazycache\n" + RUN + "import functools\nclass Area:\n    def __init__(self, r):\n        self.r = r\n"
             "    @functools.cached_property\n    def area(self):\n        return 3 * self.r ** 2\n"
             "    @property\n    def scaled(self):\n        return self.r * SCALE\n"
             "a = Area(2)\nv = a.area",
             "%%lazycache\n" + RUN + "w = a.area + Area(3).area + a.scaled"]
    expected, first, again = twice(tmp_path, cells, ["v", "w", "vars(a)", "Area.area.attrname"])
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, "both cells hit in the new process"


@slow
def test_defs_whose_pickles_need_each_other_only_through_a_group_are_one_blob(tmp_path):
    """``T``, ``Box(Generic[T])``, ``IntBox = Box[int]``: ``T`` and ``IntBox`` share an object (one group), the
    group needs ``Box`` and ``Box`` needs ``T``; the cycle shows only once the group is pickled, and was missed,
    so the entry was "damaged (references itself)" in every new kernel and the cell ran again."""
    cells = ["%%lazycache\n" + RUN + "from typing import TypeVar, Generic\nT = TypeVar('T')\nclass Box(Generic[T]):\n"
             "    def __init__(self, v: T):\n        self.v = v\nIntBox = Box[int]\nb = IntBox(3)",
             "r = (b.v, isinstance(b, Box), IntBox.__args__ == (int,), Box.__parameters__ == (T,),\n"
             "     IntBox.__origin__ is Box)"]
    expected, first, again = twice(tmp_path, cells, ["r"])
    assert expected["r"] == "(3, True, True, True, True)"
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 1 and "damaged" not in again["cells"][0]["out"]
