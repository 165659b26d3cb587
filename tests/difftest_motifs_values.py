"""Motifs of the differential tester (tests/difftest.py): values, functions, relations, mutations and chains.
Each is a function of a :class:`Gen` returning one :class:`Motif` with fresh names."""

from __future__ import annotations

from difftest_model import Gen, Motif, _add

_COLLIDING = [(1, 9), (2, 10), (3, 11, 19), (4, 12, 20)]  # same slot mod 8: iteration order = insertion order


def m_set_order(g: Gen) -> Motif:
    variant = g.rng.choice(["list", "first", "join", "dict-keys", "array-order"])
    m = Motif("set-order", variant)
    if variant == "array-order":  # equal arrays, different memory order: tobytes/ravel('K') see it
        x, o = g.name("arr"), g.name("raw")
        c_order = "np.arange(6).reshape(2, 3)"
        _add(m, g, f"{x} = {c_order}", f"{x} = np.asfortranarray({c_order})" if g.edit() else None, cached=False)
        _add(m, g, f"{o} = {x}.ravel(order='K').tolist()", cached=True)
        return m
    if variant == "dict-keys":  # equal dicts, different order: observable, so part of the key
        d, o = g.name("d"), g.name("keys")
        swap = g.edit()
        _add(m, g, f"{d} = {{'a': 1, 'b': 2}}", f"{d} = {{'b': 2, 'a': 1}}" if swap else None, cached=False)
        _add(m, g, f"{o} = list({d})", cached=True)
        return m
    items = list(g.rng.choice(_COLLIDING))
    s, o = g.name("s"), g.name("order")
    v2 = list(reversed(items)) if g.edit() else items
    _add(m, g, f"{s} = {{{', '.join(map(str, items))}}}", f"{s} = {{{', '.join(map(str, v2))}}}", cached=False)
    body = {"list": f"{o} = list({s})", "first": f"{o} = next(iter({s}))", "join": f"{o} = '-'.join(map(str, {s}))"}
    _add(m, g, body[variant], cached=True)
    return m


def m_builtin_subclass(g: Gen) -> Motif:
    variant = g.rng.choice(["str", "list-attr", "dict-attr", "str-attr"])
    m = Motif("builtin-subclass", variant)
    cls, v, r = g.name("Tag"), g.name("tagged"), g.name("derived")
    _add(m, g, f"class {cls}({variant.split('-')[0]}):\n    pass", cached=False)
    a, b = g.lit()
    if variant == "str":
        _add(m, g, f"{v} = {cls}('ab{a}')", f"{v} = {cls}('ab{b}')", cached=False)
        _add(m, g, f"{r} = {v}.upper() + '!'", cached=True)
    elif variant == "str-attr":
        _add(m, g, f"{v} = {cls}('ab')\n{v}.unit = 'u{a}'", f"{v} = {cls}('ab')\n{v}.unit = 'u{b}'", cached=False)
        _add(m, g, f"{r} = {v} + {v}.unit", cached=True)
    elif variant == "list-attr":
        _add(m, g, f"{v} = {cls}([1, 2])\n{v}.unit = 'u{a}'", f"{v} = {cls}([1, 2])\n{v}.unit = 'u{b}'", cached=False)
        _add(m, g, f"{r} = f'{{len({v})}} {{{v}.unit}}'", cached=True)
    else:
        _add(m, g, f"{v} = {cls}(k={a})", f"{v} = {cls}(k={b})", cached=False)
        _add(m, g, f"{r} = {v}['k'] * 3", cached=True)
    return m


def m_function_change(g: Gen) -> Motif:
    variant = g.rng.choice(
        ["wraps", "lru_cache", "partial", "attribute", "two-lambdas", "closure", "default", "method", "separate-defs"]
    )
    m = Motif("function-change", variant)
    f, r = g.name("fn"), g.name("res")
    a, b = g.lit()
    call = f"{r} = {f}(3)"
    if variant == "wraps":  # the edit is in the wrapper, in what it wraps, or in the wrapper's argument
        d, raw = g.name("deco"), g.name("raw")
        deco = (
            "def {d}(k):\n    def wrap(func):\n        @functools.wraps(func)\n        def inner(*args):\n"
            "            return func(*args) + k * {k}\n        return inner\n    return wrap"
        )
        where = g.rng.choice(["wrapper", "wrapped", "argument"])
        _add(m, g, deco.format(d=d, k=a), deco.format(d=d, k=b if where == "wrapper" else a), cached=g.maybe(0.5))
        _add(
            m,
            g,
            f"def {raw}(x):\n    return x * {a}",
            f"def {raw}(x):\n    return x * {b if where == 'wrapped' else a}",
            cached=g.maybe(0.5),
        )
        _add(
            m, g, f"{f} = {d}({a})({raw})", f"{f} = {d}({b if where == 'argument' else a})({raw})", cached=g.maybe(0.5)
        )
    elif variant == "separate-defs":  # two restored functions must keep their own sources (back and forth)
        f0 = g.name("other")
        _add(m, g, f"def {f0}(x):\n    return x + 100", cached=True)
        _add(m, g, f"def {f}(x):\n    return x * {a}", f"def {f}(x):\n    return x * {b}", cached=True)
    elif variant == "lru_cache":
        _add(
            m,
            g,
            f"@functools.lru_cache\ndef {f}(x):\n    return x * {a}",
            f"@functools.lru_cache\ndef {f}(x):\n    return x * {b}",
        )
    elif variant == "partial":
        h = g.name("base")
        _add(m, g, f"def {h}(k, x):\n    return k * x", cached=False)
        _add(m, g, f"{f} = functools.partial({h}, {a})", f"{f} = functools.partial({h}, {b})")
    elif variant == "attribute":
        _add(m, g, f"def {f}(x):\n    return x * {f}.scale", cached=False)
        _add(m, g, f"{f}.scale = {a}", f"{f}.scale = {b}", cached=False)
    elif variant == "two-lambdas":
        f0 = g.name("lam")
        _add(
            m,
            g,
            f"{f0}, {f} = (lambda x: x + 1), (lambda x: x * {a})",
            f"{f0}, {f} = (lambda x: x + 1), (lambda x: x * {b})",
            cached=False,
        )
    elif variant == "closure":
        mk = g.name("make")
        _add(m, g, f"def {mk}(k):\n    def inner(x):\n        return x * k\n    return inner", cached=False)
        _add(m, g, f"{f} = {mk}({a})", f"{f} = {mk}({b})", cached=False)
    elif variant == "default":
        _add(m, g, f"def {f}(x, k={a}):\n    return x * k", f"def {f}(x, k={b}):\n    return x * k", cached=False)
    else:
        c, o = g.name("Cls"), g.name("obj")
        _add(
            m,
            g,
            f"class {c}:\n    def twice(self, x):\n        return x * {a}",
            f"class {c}:\n    def twice(self, x):\n        return x * {b}",
            cached=False,
        )
        _add(m, g, f"{o} = {c}()", cached=False)
        call = f"{r} = {o}.twice(3)"
    _add(m, g, call, cached=True)
    return m


def m_local_module(g: Gen) -> Motif:
    variant = g.rng.choice(["import-edit", "from-edit", "runtime-const", "deco-from-module"])
    m = Motif("local-module", variant)
    mod, r = g.name("nbmod"), g.name("modres")
    a, b = g.lit()
    src = "import math\nCONST = {k}\n\ndef f(x):\n    return x + CONST + math.floor(0.5)\n"
    if variant == "deco-from-module":
        src = (
            "import time, functools\nCONST = {k}\n\ndef timed(func):\n    @functools.wraps(func)\n"
            "    def inner(*a):\n        time.perf_counter()\n        return func(*a) + CONST\n    return inner\n"
        )
    edit_file = variant != "runtime-const"
    m.files1[f"{mod}.py"] = src.format(k=a)
    m.files2[f"{mod}.py"] = src.format(k=b if edit_file else a)
    if variant == "import-edit":
        _add(m, g, f"import {mod}", cached=False)
        _add(m, g, f"{r} = {mod}.f(1)", cached=True)
    elif variant == "from-edit":
        _add(m, g, f"from {mod} import f as {mod}_f", cached=False)
        _add(m, g, f"{r} = {mod}_f(1)", cached=True)
    elif variant == "runtime-const":
        _add(m, g, f"import {mod}", cached=False)
        c1, c2 = a + 10, (a + 11 if g.edit() else a + 10)
        _add(m, g, f"{mod}.CONST = {c1}", f"{mod}.CONST = {c2}", cached=False)
        _add(m, g, f"{r} = {mod}.f(1)", cached=True)
    else:
        fn = g.name("timedfn")
        _add(m, g, f"from {mod} import timed as {mod}_timed", cached=False)
        _add(m, g, f"@{mod}_timed\ndef {fn}(x):\n    return x * 2", cached=True)
        _add(m, g, f"{r} = {fn}(5)", cached=g.maybe(0.5))
    return m


def m_relation(g: Gen) -> Motif:
    variant = g.rng.choice(["alias-list", "alias-dict", "np-view", "element", "alias-frame", "instance-class", "enum"])
    m = Motif("relation", variant)
    a, b = g.name("orig"), g.name("rel")
    k1, k2 = g.lit()
    if variant == "alias-list":
        _add(m, g, f"{a} = [1, 2, {k1}]", f"{a} = [1, 2, {k2}]", cached=False)
        _add(m, g, f"{b} = {a}", cached=True)
        _add(m, g, f"{a}.append(99)", cached=False)
    elif variant == "alias-dict":
        _add(m, g, f"{a} = {{'k': {k1}}}", f"{a} = {{'k': {k2}}}", cached=False)
        _add(m, g, f"{b} = {a}\n{b}['n'] = 1", cached=True)
        _add(m, g, f"{a}['z'] = 0", cached=False)
    elif variant == "np-view":
        _add(m, g, f"{a} = np.arange(8.0) * {k1}", f"{a} = np.arange(8.0) * {k2}", cached=False)
        _add(m, g, f"{b} = {a}[::2]", cached=True)
        _add(m, g, f"{a} += 1", cached=False)
    elif variant == "element":
        _add(m, g, f"{a} = [[{k1}], [2]]", f"{a} = [[{k2}], [2]]", cached=False)
        _add(m, g, f"{b} = {a}[0]", cached=True)
        _add(m, g, f"{a}[0].append(7)", cached=False)
    elif variant == "alias-frame":
        m.needs.add("pd")
        _add(
            m,
            g,
            f"{a} = pd.DataFrame({{'x': [1.0, None, {k1}]}})",
            f"{a} = pd.DataFrame({{'x': [1.0, None, {k2}]}})",
            cached=False,
        )
        _add(m, g, f"{b} = {a}\n{a}.dropna(inplace=True)", cached=True)
    elif variant == "instance-class":
        c, mk = g.name("Pt"), g.name("make")
        _add(
            m,
            g,
            f"class {c}:\n    def __init__(self, v):\n        self.v = v\ndef {mk}(v):\n    return {c}(v)",
            cached=False,
        )
        _add(m, g, f"{b} = {mk}({k1})", f"{b} = {mk}({k2})", cached=True)
        _add(m, g, f"{a} = isinstance({b}, {c})", cached=False)
    else:
        c = g.name("Color")
        _add(m, g, f"class {c}(enum.Enum):\n    RED = 1\n    BLUE = 2", cached=False)
        member = "RED" if k1 % 2 else "BLUE"
        member2 = "RED" if k2 % 2 else "BLUE"
        _add(m, g, f"{b} = {c}.{member}", f"{b} = {c}.{member2}", cached=True)
        _add(m, g, f"{a} = ({b} == {c}.{member}, {b} is {c}.{member})", cached=False)
    return m


def m_mutate(g: Gen) -> Motif:
    variant = g.rng.choice(["list.append", "dict.update", "arr+=", "frame-col", "set.add"])
    m = Motif("mutate", variant)
    x, k = g.name("mut"), g.name("done")
    a, b = g.lit()
    init = {
        "list.append": "[1, 2]",
        "dict.update": "{'a': 1}",
        "arr+=": "np.arange(4)",
        "set.add": "{1, 2}",
        "frame-col": "pd.DataFrame({'a': [1, 2]})",
    }[variant]
    if variant == "frame-col":
        m.needs.add("pd")
    _add(m, g, f"{x} = {init}", cached=False)
    op = {
        "list.append": f"{x}.append({{}})",
        "dict.update": f"{x}.update(b={{}})",
        "arr+=": f"{x} += {{}}",
        "set.add": f"{x}.add({{}})",
        "frame-col": f"{x}['c'] = {x}['a'] * {{}}",
    }[variant]
    _add(m, g, f"{op.format(a)}\n{k} = 1", f"{op.format(b)}\n{k} = 1", cached=True)
    _add(m, g, f"{g.name('copy')} = repr({x})", cached=False)
    return m


def m_delete(g: Gen) -> Motif:
    variant = g.rng.choice(["del-ref", "del-own", "del-then-plain"])
    m = Motif("delete", variant)
    t, w = g.name("tmp"), g.name("kept")
    a, b = g.lit()
    if variant == "del-ref":
        _add(m, g, f"{t} = {a}", f"{t} = {b}", cached=False)
        _add(m, g, f"{w} = {t} * 2\ndel {t}", cached=True)
    elif variant == "del-own":
        _add(m, g, f"{t} = {a}\n{w} = {t} * 2\ndel {t}", f"{t} = {b}\n{w} = {t} * 2\ndel {t}", cached=True)
    else:
        _add(m, g, f"{t} = [{a}]\n{w} = len({t})", f"{t} = [{b}]\n{w} = len({t})", cached=True)
        _add(m, g, f"del {t}", cached=False)
    return m


_VALUES = {
    "int": ("", "{n} = {k} ** 20"),
    "float": ("", "{n} = {k} / 7"),
    "str": ("", "{n} = 'é' * {k}"),
    "bytes": ("", "{n} = bytes(range({k}))"),
    "tuple": ("", "{n} = ({k}, 'a', (1.5, None))"),
    "nested": ("", "{n} = [{k}, {{'b': [1, 2], 'a': {{3, 11}}}}, (True,)]"),
    "dict-order": ("", "{n} = {{'b': {k}, 'a': 1}}"),
    "array": ("", "{n} = np.arange(6, dtype=np.int32).reshape(2, 3) * {k}"),
    "fortran": ("", "{n} = np.asfortranarray(np.arange(6.0).reshape(2, 3)) + {k}"),
    "frame": ("pd", "{n} = pd.DataFrame({{'a': [{k}, 2], 'b': ['x', 'y']}}, index=[3, 1])"),
    "series": ("pd", "{n} = pd.Series([{k}, 2.5], name='s')"),
    "dataclass": ("@dataclasses.dataclass\nclass {C}:\n    a: int\n    b: list", "{n} = {C}({k}, [1])"),
    "namedtuple": ("{C} = collections.namedtuple('{C}', 'x y')", "{n} = {C}({k}, 'y')"),
    "slots": (
        "class {C}:\n    __slots__ = ('a', 'b')\n    def __init__(self, a):\n        self.a, self.b = a, [a]",
        "{n} = {C}({k})",
    ),
    "enum": ("class {C}(enum.Enum):\n    A = 1\n    B = 2", "{n} = [{C}.A, {C}({k} % 2 + 1)]"),
    "instance": (
        "class {C}:\n    def __init__(self, v):\n        self.v = v\n    def get(self):\n        return self.v",
        "{n} = {C}({k})",
    ),
    "str-sub": ("class {C}(str):\n    pass", "{n} = {C}('w{k}')\n{n}.note = 'n'"),
    "dict-sub": ("class {C}(dict):\n    pass", "{n} = {C}(a={k})\n{n}.meta = [1]"),
}


def m_values(g: Gen) -> Motif:
    """A cached cell making several values of assorted types; they must all come back exactly."""
    kinds = g.rng.sample(sorted(_VALUES), g.rng.randint(2, 4))
    m = Motif("values", "+".join(kinds))
    a, b = g.lit()
    classes, lines = [], []
    for kind in kinds:
        need, make = _VALUES[kind][0], _VALUES[kind][1]
        cls = g.name("K")
        if need == "pd":
            m.needs.add("pd")
        elif need:
            classes.append(need.format(C=cls))
        lines.append(make.format(n=g.name("val"), k="{k}", C=cls))
    if classes:
        _add(m, g, "\n".join(classes), cached=False)
    body = "\n".join(lines)
    _add(m, g, body.replace("{k}", str(a)), body.replace("{k}", str(b)), cached=True)
    return m


def m_memo(g: Gen) -> Motif:
    """Code that is not a plain cell changes a restored value; a later cached cell must not reuse its old hash."""
    variant = g.rng.choice(["uncacheable-cell", "silent-run"])
    m = Motif("hash-memo", variant)
    gen, lst, tot = g.name("gen"), g.name("lst"), g.name("total")
    a, b = g.lit()
    if variant == "uncacheable-cell":
        _add(m, g, f"{gen} = iter([{a}, 5])", f"{gen} = iter([{b}, 5])", cached=False)
        _add(m, g, f"{lst} = [1, 2]", cached=True)
        _add(m, g, f"{lst}.append(next({gen}))", cached=True, misses="it reads a generator: runs every time")
    else:
        _add(m, g, f"{lst} = [1, 2]", cached=True)
        _add(
            m,
            g,
            f"get_ipython().run_cell('{lst}.append({a})', silent=True)\n{gen} = 0",
            f"get_ipython().run_cell('{lst}.append({b})', silent=True)\n{gen} = 0",
            cached=True,
            misses="it runs code from a string (run_cell), which analysis cannot see: never cached",
        )
    _add(m, g, f"{tot} = sum({lst})", cached=True)
    return m


def m_chain(g: Gen) -> Motif:
    """Cached cells over each other's restored values, with changes in place in between."""
    variant = g.rng.choice(
        ["array-inplace", "list-inplace", "frame-inplace", "plain-change-between", "redefine", "restored-fn-global"]
    )
    m = Motif("chain", variant)
    x, r = g.name("ch"), g.name("use")
    a, b = g.lit()
    if variant == "array-inplace":
        _add(m, g, f"{x} = np.arange(6.0) * {a}", f"{x} = np.arange(6.0) * {b}", cached=True)
        _add(m, g, f"{x} += 1\n{x}[0] = -1", cached=True)
        _add(m, g, f"{r} = float({x}.sum())", cached=True)
    elif variant == "list-inplace":
        _add(m, g, f"{x} = [[{a}], [2]]", f"{x} = [[{b}], [2]]", cached=True)
        _add(m, g, f"{x}[0].append(5)\n{x}.append({x}[0])", cached=True)
        _add(m, g, f"{r} = repr({x})", cached=True)
    elif variant == "frame-inplace":
        m.needs.add("pd")
        _add(
            m,
            g,
            f"{x} = pd.DataFrame({{'a': [1.0, None, {a}]}})",
            f"{x} = pd.DataFrame({{'a': [1.0, None, {b}]}})",
            cached=True,
        )
        _add(m, g, f"{x}.dropna(inplace=True)\n{x}['b'] = {x}['a'] * 2", cached=True)
        _add(m, g, f"{r} = {x}.to_dict('list')", cached=True)
    elif variant == "plain-change-between":
        _add(m, g, f"{x} = np.zeros(4) + {a}", f"{x} = np.zeros(4) + {b}", cached=True)
        _add(m, g, f"{x}[1] = 7", cached=False)
        _add(m, g, f"{r} = {x}.tolist()", cached=True)
    elif variant == "redefine":
        _add(m, g, f"{x} = {a}", f"{x} = {b}", cached=True)
        _add(m, g, f"{x} = {x} * 10 + 1", cached=True)
        _add(m, g, f"{r} = {x} + 1", cached=True)
    else:
        fn, glob = g.name("reads"), g.name("G")
        _add(m, g, f"def {fn}():\n    return {glob} * 2", cached=True)
        _add(m, g, f"{glob} = {a}", f"{glob} = {b}", cached=False)
        _add(m, g, f"{r} = {fn}()", cached=True)
    return m


def m_reach(g: Gen) -> Motif:
    """A cached cell changes an object that another name holds, reached through what it calls or reads:
    a hit must change it too (or not be stored)."""
    variant = g.rng.choice(["bound-method", "partial", "callback", "nested", "closure", "local-module"])
    m = Motif("reach", variant)
    lst, k, obs = g.name("held"), g.name("k"), g.name("seen")
    a, b = g.lit()
    if variant == "local-module":
        mod = g.name("regmod")
        src = "REG = [0]\n\ndef register(x):\n    REG.append(x)\n"
        m.files1[f"{mod}.py"] = m.files2[f"{mod}.py"] = src
        _add(m, g, f"import {mod}", cached=False)
        call = g.rng.choice([f"{mod}.REG.append({{}})", f"{mod}.register({{}})"])
        _add(m, g, f"{call.format(a)}\n{k} = 1", f"{call.format(b)}\n{k} = 1", cached=True,
             misses="it changes what a module holds, which a hit could not do again: not stored")
        _add(m, g, f"{obs} = list({mod}.REG)", cached=False)
        return m
    if variant == "closure":
        mk, inc = g.name("counter"), g.name("inc")
        _add(
            m,
            g,
            f"def {mk}(n):\n    def inc():\n        nonlocal n\n        n += 1\n        return n\n    return inc\n"
            f"{inc} = {mk}({a})",
            f"def {mk}(n):\n    def inc():\n        nonlocal n\n        n += 1\n        return n\n    return inc\n"
            f"{inc} = {mk}({b})",
            cached=False,
        )
        _add(m, g, f"{k} = {inc}()", cached=True)
        _add(m, g, f"{obs} = {inc}()", cached=False)
        return m
    via = g.name("via")
    setup = {
        "bound-method": f"{lst} = [0]\n{via} = {lst}.append",
        "partial": f"{lst} = [0]\n{via} = functools.partial({lst}.append)",
        "callback": f"{lst} = [0]\ndef {via}_fn(x):\n    {lst}.append(x)\n{via} = {{'cb': {via}_fn}}",
        "nested": f"{lst} = [0]\n{via} = {{'a': {{'b': {lst}}}}}",
    }[variant]
    call = {
        "bound-method": f"{via}({{}})",
        "partial": f"{via}({{}})",
        "callback": f"{via}['cb']({{}})",
        "nested": f"{via}['a']['b'].append({{}})",
    }[variant]
    _add(m, g, setup, cached=False)
    _add(m, g, f"{call.format(a)}\n{k} = 1", f"{call.format(b)}\n{k} = 1", cached=True)
    _add(m, g, f"{obs} = list({lst})", cached=False)
    return m
