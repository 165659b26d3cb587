"""A hit changes what the run changed, also where the cell reaches it through another name (DESIGN §9).

Each case was found by writing notebooks the differential tester's grammar did not yet cover: a cached
cell changes an object that a *different* name holds (a bound method's object, a nested item, a list a
callback appends to, a closure's counter, a value a local module holds). After a restart the hit must
leave every name as the run did, compared with the same cells run without the magic, each session in a
new process.
"""

import pytest

from tests._fresh import RUN, session

pytestmark = pytest.mark.slow  # every test starts three Python processes

CACHED = "%%lazycache\n" + RUN


def run_three(tmp_path, cells, names, files=None):
    """The plain run, the first run with the magic and a hit after a restart: (plain, first, hit)."""
    out = []
    for side in ("plain", "magic"):
        folder = tmp_path / side
        folder.mkdir()
        for path, text in (files or {}).items():
            (folder / path).write_text(text)
        if side == "plain":
            out.append(session(folder, cells, names, magic=False))
        else:
            out += [session(folder, cells, names), session(folder, cells, names)]
    return out


@pytest.mark.parametrize(
    "setup, body",
    [
        ("lst = [0]\npush = lst.append", "push(1)"),  # a builtin bound method: its object is another name
        ("lst = [0]\npush = functools.partial(lst.append)", "push(1)"),
        ("lst = []\ndef note(x):\n    lst.append(x)\ncbs = {'n': note}", "cbs['n'](1)"),  # a callback in a dict
        ("lst = [0]\nouter = {'a': {'b': lst}}", "outer['a']['b'].append(1)"),  # two levels down
        ("class Acc:\n    def __init__(self, items):\n        self.items = items\n    def add(self, x):\n"
         "        self.items.append(x)\nlst = [0]\nadd = Acc(lst).add", "add(1)"),
    ],
    ids=["method", "partial", "callback", "nested", "notebook-method"],
)
def test_an_object_changed_through_another_name_is_changed_by_a_hit(tmp_path, setup, body):
    cells = ["import functools\n" + setup, CACHED + body + "\nk = 1", "seen = list(lst)"]
    plain, first, hit = run_three(tmp_path, cells, ["seen", "lst"])
    assert plain["values"]["seen"] == ("[0, 1]" if "[0]" in setup else "[1]")
    assert hit["runs"] == 1, "the second session hits"
    assert first["values"] == hit["values"] == plain["values"]


def test_a_callback_held_by_a_changed_dict_stays_the_notebook_function(tmp_path):
    setup = "log = []\ndef note(x):\n    log.append(x)\nnote.calls = 0\ncbs = {'n': note}"
    cells = [setup, CACHED + "cbs['n'](1)\ncbs['n'].calls += 1\ncbs['m'] = 2",
             "seen = (cbs['n'] is note, note.calls, log)"]
    plain, first, hit = run_three(tmp_path, cells, ["seen"])
    assert hit["runs"] == 1 and plain["values"]["seen"] == "(True, 1, [1])"
    assert first["values"] == hit["values"] == plain["values"]


def test_a_class_attribute_a_method_changes_is_changed_by_a_hit(tmp_path):
    setup = "class Counter:\n    count = 0\n    def bump(self):\n        type(self).count += 1\nc = Counter()"
    cells = [setup, CACHED + "c.bump()\nk = 1", "seen = Counter.count"]
    plain, first, hit = run_three(tmp_path, cells, ["seen"])
    assert hit["runs"] == 1 and plain["values"]["seen"] == "1"
    assert first["values"] == hit["values"] == plain["values"]


def test_a_nested_item_changed_in_place_keeps_its_other_name(tmp_path):
    """``box.child.n += 1`` changes ``child`` too: the hit's ``child`` has n == 2, not an emptied object."""
    setup = ("class Node:\n    def __init__(self):\n        self.n = 1\nclass Box:\n    def __init__(self, c):\n"
             "        self.child = c\nchild = Node()\nbox = Box(child)")
    cells = [setup, CACHED + "box.child.n += 1\nk = 1", "seen = (child.n, box.child is child)"]
    plain, first, hit = run_three(tmp_path, cells, ["seen"])
    assert hit["runs"] == 1 and plain["values"]["seen"] == "(2, True)"
    assert first["values"] == hit["values"] == plain["values"]


def test_a_closure_counter_advanced_by_the_cell_is_advanced_by_a_hit(tmp_path):
    setup = ("def counter():\n    n = 0\n    def inc():\n        nonlocal n\n        n += 1\n        return n\n"
             "    return inc\ninc = counter()")
    cells = [setup, CACHED + "k = inc()", "after = inc()"]
    plain, first, hit = run_three(tmp_path, cells, ["k", "after"])
    assert hit["runs"] == 1 and plain["values"] == {"k": "1", "after": "2"}
    assert first["values"] == hit["values"] == plain["values"]


@pytest.mark.parametrize("body", ["regmod.REG.append(1)", "regmod.register(1)", "go()"])
def test_a_cell_that_changes_what_a_local_module_holds_is_not_stored(tmp_path, body):
    """A hit cannot append to the module's list again, so the cell runs every time, and says so once."""
    files = {"regmod.py": "REG = []\n\ndef register(x):\n    REG.append(x)\n"}
    cells = ["import regmod\ndef go():\n    regmod.register(1)", CACHED + body + "\nk = 1", "seen = list(regmod.REG)"]
    plain, first, second = run_three(tmp_path, cells, ["seen"], files)
    assert second["runs"] == 2, "not stored: the second session runs the cell again"
    assert "not stored: it changed what regmod holds" in first["cells"][1]["out"]
    assert first["values"] == second["values"] == plain["values"] == {"seen": "[1]"}


def test_a_local_module_only_read_is_still_cached(tmp_path):
    files = {"cfgmod.py": "LIMIT = 3\nITEMS = [1, 2]\n\ndef total():\n    return sum(ITEMS) * LIMIT\n"}
    cells = ["import cfgmod\ncfgmod.LIMIT = 4", CACHED + "t = cfgmod.total() + len(cfgmod.ITEMS)"]
    plain, first, hit = run_three(tmp_path, cells, ["t"], files)
    assert hit["runs"] == 1 and first["values"] == hit["values"] == plain["values"] == {"t": "14"}


def edited_after_restart(tmp_path, cells_of, names):
    """Version 1 (stored), version 1 again (a hit), then version 2 after a restart, with the magic; and
    version 2 without it. Returns (hit, edited, plain)."""
    folder, plain_folder = tmp_path / "magic", tmp_path / "plain"
    folder.mkdir()
    plain_folder.mkdir()
    session(folder, cells_of(1), names)
    hit = session(folder, cells_of(1), names)
    edited = session(folder, cells_of(2), names)
    return hit, edited, session(plain_folder, cells_of(2), names, magic=False)


@pytest.mark.parametrize("helper", ["return globals()['hidden'] * 2", "return eval('hidden * 2')"])
def test_a_helper_reading_globals_by_string_never_gives_a_stale_hit(tmp_path, helper):
    """Which notebook variables ``globals()['x']`` or ``eval`` reads inside a function is unknown: the cell
    runs uncached, with one line, rather than hitting with the old ``hidden``."""
    def cells(v):
        return [f"hidden = {v}", f"def get():\n    {helper}", CACHED + "r = get()"]

    hit, edited, plain = edited_after_restart(tmp_path, cells, ["r"])
    assert edited["values"] == plain["values"] == {"r": "4"}
    assert "get reads notebook variables through globals(), eval or exec" in edited["cells"][2]["out"]


@pytest.mark.parametrize("body", ["r = LIMIT * 2", "r = twice()"])
def test_a_value_put_into_builtins_is_in_the_key(tmp_path, body):
    def cells(v):
        return [f"import builtins\nbuiltins.LIMIT = {v}\ndef twice():\n    return LIMIT * 2", CACHED + body]

    hit, edited, plain = edited_after_restart(tmp_path, cells, ["r"])
    assert hit["runs"] == 1 and hit["values"] == {"r": "2"}, "an unchanged value still hits"
    assert edited["runs"] == 2 and edited["values"] == plain["values"] == {"r": "4"}


@pytest.mark.parametrize("line", ["%run helpers.py", "%run -i helpers", "%run -m helpers"])
def test_a_script_run_by_the_cell_is_in_the_key(tmp_path, line):
    """``%run`` executes a file: editing it must make the cell run again, not restore the old ``helper``."""
    def cells(v):
        (tmp_path / "magic" / "helpers.py").write_text(f"def helper(x):\n    return x * {v}\n")
        (tmp_path / "plain" / "helpers.py").write_text(f"def helper(x):\n    return x * {v}\n")
        return [CACHED + f"{line}\nr = helper(2)"]

    (tmp_path / "magic").mkdir()
    (tmp_path / "plain").mkdir()
    folder = tmp_path / "magic"
    session(folder, cells(2), ["r"])
    hit = session(folder, cells(2), ["r"])
    edited = session(folder, cells(3), ["r"])
    plain = session(tmp_path / "plain", cells(3), ["r"], magic=False)
    assert hit["runs"] == 1 and hit["values"] == {"r": "4"}
    assert edited["runs"] == 2 and edited["values"] == plain["values"] == {"r": "6"}


def test_a_local_module_function_reading_the_notebook_never_gives_a_stale_hit(tmp_path):
    def cells(v):
        for side in ("magic", "plain"):
            (tmp_path / side).mkdir(exist_ok=True)
            (tmp_path / side / "reader.py").write_text("def getg():\n    import __main__\n    return __main__.g * 2\n")
        return [f"g = {v}\nfrom reader import getg", CACHED + "r = getg()"]

    folder = tmp_path / "magic"
    session(folder, cells(1), ["r"])
    edited = session(folder, cells(2), ["r"])
    plain = session(tmp_path / "plain", cells(2), ["r"], magic=False)
    assert edited["values"] == plain["values"] == {"r": "4"}


@pytest.mark.parametrize(
    "setup, body, seen",
    [
        ("class Sl:\n    __slots__ = ('n',)\n    def __init__(self):\n        self.n = 0\nsl = Sl()\nholder = [sl]",
         "sl.n += 1", "holder[0].n"),
        ("dq = collections.deque([1], maxlen=3)\nholder = {'d': dq}", "dq.append(2)", "list(holder['d'])"),
        ("rr = random.Random(1)\nholder = [rr]", "x = rr.random()", "holder[0].random()"),
        ("rng = np.random.default_rng(0)\nclass M:\n    def __init__(self, r):\n        self.r = r\nmm = M(rng)",
         "x = rng.normal()", "mm.r.normal()"),
        ("rs = np.random.RandomState(0)\nholder = [rs]", "x = rs.rand()", "holder[0].rand()"),
    ],
    ids=["slots", "deque", "random.Random", "numpy-Generator", "numpy-RandomState"],
)
def test_objects_changed_in_place_keep_their_other_holders(tmp_path, setup, body, seen):
    """A generator drawn from, a deque appended to, a __slots__ instance: other names holding the object see
    the run's state after a hit (they draw the numbers a run would give next), not a copy's."""
    cells = ["import collections, random\nimport numpy as np\n" + setup, CACHED + body + "\nk = 1", "seen = " + seen]
    plain, first, hit = run_three(tmp_path, cells, ["seen"])
    assert hit["runs"] == 1, "the second session hits"
    assert first["values"] == hit["values"] == plain["values"]
