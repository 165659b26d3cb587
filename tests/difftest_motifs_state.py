"""Motifs of the differential tester (tests/difftest.py): process state, outputs, dynamic names, first runs and plots.
Each is a function of a :class:`Gen` returning one :class:`Motif` with fresh names."""

from __future__ import annotations

from difftest_model import PREV, Gen, Motif, _add


def m_seed_draw(g: Gen) -> Motif:
    lib = g.rng.choice(["np", "random"])
    m = Motif("seed-draw", lib, seeds={lib})
    s1, s2 = g.lit(0, 5)
    e, f = g.name("draw"), g.name("after")
    if lib == "np":
        _add(m, g, f"np.random.seed({s1})", f"np.random.seed({s2})")
        size = g.rng.randint(1, 3)
        _add(m, g, f"{e} = np.random.normal(size={size})", cached=True)
        if g.maybe(0.6):
            _add(m, g, f"{f} = np.random.rand()")
    else:
        _add(m, g, f"random.seed({s1})", f"random.seed({s2})")
        _add(m, g, f"{e} = [random.randint(0, 10**6) for _ in range({g.rng.randint(1, 3)})]", cached=True)
        if g.maybe(0.6):
            _add(m, g, f"{f} = random.random()")
    return m


def m_history(g: Gen) -> Motif:
    variant = g.rng.choice(["_", "Out[n]", "__"])
    m = Motif("history", variant)
    a, b = g.lit(10, 50)
    y = g.name("hist")
    _add(m, g, f"{a}", f"{b}", cached=False)
    if variant == "__":
        _add(m, g, f"{a + 100}", cached=False)
        _add(m, g, f"{y} = __ * 2", cached=True)
    elif variant == "_":
        _add(m, g, f"{y} = _ * 2", cached=True)
    else:
        _add(m, g, f"{y} = Out[{PREV}] + 1", cached=True)
    return m


def m_effect(g: Gen) -> Motif:
    """A cached cell with a side effect on process state, observed by a later plain cell."""
    variant = g.rng.choice(
        [
            "np-seed",
            "random-seed",
            "environ",
            "%env",
            "chdir",
            "%cd",
            "rcParams",
            "plt.rc",
            "style",
            "global",
            "mutate-via-helper",
            "draw-advances",
            "pd-option",
            "sys.path",
        ]
    )
    m = Motif("effect-on-hit", variant)
    k, obs = g.name("k"), g.name("seen")
    a, b = g.lit()
    var = f"DT_{g.name('V')}"
    if variant == "np-seed":
        m.seeds.add("np")
        _add(m, g, f"np.random.seed({a})\n{k} = 1", f"np.random.seed({b})\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = np.random.rand()", cached=False)
    elif variant == "random-seed":
        m.seeds.add("random")
        _add(m, g, f"random.seed({a})\n{k} = 1", f"random.seed({b})\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = random.random()", cached=False)
    elif variant == "draw-advances":
        m.seeds.add("np")
        _add(m, g, f"np.random.seed({a})", f"np.random.seed({b})", cached=False)
        _add(m, g, f"{k} = np.random.randint(100)", cached=True)
        _add(m, g, f"{obs} = np.random.randint(100)", cached=False)
    elif variant == "environ":
        _add(m, g, f"os.environ['{var}'] = 'v{a}'\n{k} = 1", f"os.environ['{var}'] = 'v{b}'\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = os.environ.get('{var}')", cached=False)
    elif variant == "%env":
        _add(m, g, f"%env {var}=v{a}\n{k} = 1", f"%env {var}=v{b}\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = os.environ.get('{var}')", cached=False)
    elif variant in ("chdir", "%cd"):
        go = "os.chdir('sub')" if variant == "chdir" else "%cd -q sub"
        _add(m, g, f"{go}\n{k} = {a}", f"{go}\n{k} = {b}", cached=True)
        _add(m, g, f"{obs} = os.path.basename(os.getcwd())", cached=False)
        _add(m, g, "os.chdir(os.environ['DT_NB'])", cached=False)  # back, so later motifs see the notebook folder
    elif variant in ("rcParams", "plt.rc", "style"):
        m.needs.add("plt")
        w1, w2 = a + 0.5, b + 0.5
        if variant == "rcParams":
            v1, v2 = f"plt.rcParams['lines.linewidth'] = {w1}", f"plt.rcParams['lines.linewidth'] = {w2}"
        elif variant == "plt.rc":
            v1, v2 = f"plt.rc('lines', linewidth={w1})", f"plt.rc('lines', linewidth={w2})"
        else:
            s1, s2 = ("ggplot", "bmh") if g.edit() else ("ggplot", "ggplot")
            v1, v2 = f"plt.style.use('{s1}')", f"plt.style.use('{s2}')"
        _add(m, g, f"{v1}\n{k} = 1", f"{v2}\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = (plt.rcParams['lines.linewidth'], plt.rcParams['axes.facecolor'])", cached=False)
        _add(m, g, "mpl.rcdefaults()", cached=False)  # so later motifs start from the defaults
    elif variant == "pd-option":
        m.needs.add("pd")
        _add(
            m,
            g,
            f"pd.set_option('display.max_rows', {a + 10})\n{k} = 1",
            f"pd.set_option('display.max_rows', {b + 10})\n{k} = 1",
            cached=True,
        )
        _add(m, g, f"{obs} = pd.get_option('display.max_rows')", cached=False)
        _add(m, g, "pd.reset_option('display.max_rows')", cached=False)
    elif variant == "sys.path":
        _add(m, g, f"sys.path.append('extra{a}')\n{k} = 1", f"sys.path.append('extra{b}')\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = [p for p in sys.path if p.startswith('extra')]", cached=False)
    elif variant == "global":
        cnt, bump = g.name("counter"), g.name("bump")
        _add(
            m,
            g,
            f"{cnt} = {a}\ndef {bump}():\n    global {cnt}\n    {cnt} += 1\n    return {cnt}",
            f"{cnt} = {b}\ndef {bump}():\n    global {cnt}\n    {cnt} += 1\n    return {cnt}",
            cached=False,
        )
        _add(m, g, f"{k} = {bump}() * 10", cached=True)
        _add(m, g, f"{obs} = {cnt}", cached=False)
    else:
        items, add = g.name("items"), g.name("add")
        _add(m, g, f"{items} = [0]\ndef {add}(v):\n    {items}.append(v)", cached=False)
        _add(m, g, f"{add}({a})\n{k} = len({items})", f"{add}({b})\n{k} = len({items})", cached=True)
        _add(m, g, f"{obs} = list({items})", cached=False)
    return m


def m_output(g: Gen) -> Motif:
    variant = g.rng.choice(
        ["semicolon", "print", "display", "last-value", "stderr", "print-and-value", "logging", "display-update"]
    )
    m = Motif("output", variant)
    v = g.name("shown")
    a, b = g.lit()
    body = {
        "semicolon": f"{v} = {{k}}\n[{v}, {v} + 1];",
        "print": f"{v} = {{k}}\nprint('value', {v})",
        "display": f"from IPython.display import display\n{v} = {{k}}\ndisplay({{'v': {v}}})",
        "last-value": f"{v} = {{k}}\n{v} * 2",
        "stderr": f"{v} = {{k}}\nprint('warn', {v}, file=sys.stderr)",
        "print-and-value": f"{v} = {{k}}\nprint({v})\n({v}, 'x')",
        "logging": f"import logging\n{v} = {{k}}\nlogging.getLogger('dt').warning('logged %s', {v})",
        "display-update": f"from IPython.display import display, update_display\n{v} = {{k}}\n"
        f"display('first', display_id='{v}')\nupdate_display({v}, display_id='{v}')",
    }[variant]
    _add(m, g, body.replace("{k}", str(a)), body.replace("{k}", str(b)), cached=True)
    if variant in ("semicolon", "last-value") and g.maybe(0.5):
        _add(m, g, f"{g.name('after')} = _", cached=False)
    return m


#: why a cell reading names by string may run every time: analysis cannot see them (DESIGN §2), so it is not cached
UNSEEN = "it reads names through globals()/vars()/locals()/eval, which analysis cannot see: not cached"


def m_dynamic(g: Gen) -> Motif:
    """Names reached through globals()/vars()/eval are refs nobody can see: the cell must not hit stale."""
    variant = g.rng.choice(["globals", "vars", "eval", "locals", "helper-globals", "builtins", "%run"])
    m = Motif("dynamic", variant)
    x, r = g.name("hidden"), g.name("dyn")
    a, b = g.lit()
    if variant == "%run":  # the script a cell runs is code too: an edit to it must be seen
        script = g.name("script")
        m.files1[f"{script}.py"] = f"{x} = {a}\n"
        m.files2[f"{script}.py"] = f"{x} = {b}\n"
        _add(m, g, f"%run {script}.py\n{r} = {x} * 2", cached=True)
        return m
    if variant == "builtins":  # a value put into builtins is read by a bare name no namespace shows
        # (auto mode would cache the setting cell too, and a hit does not set it again: a known limit, reported)
        off = "# lazycache: off\nimport builtins\nbuiltins"
        _add(m, g, f"{off}.{x} = {a}", f"{off}.{x} = {b}", cached=False)
        _add(m, g, f"{r} = {x} * 2", cached=True)
        _add(m, g, f"del builtins.{x}", cached=False)  # later motifs' names never meet it
        return m
    _add(m, g, f"{x} = {a}", f"{x} = {b}", cached=False)
    if variant == "helper-globals":  # a helper reads a global by a string
        fn = g.name("get")
        _add(m, g, f"def {fn}(name):\n    return globals()[name] * 2", cached=False)
        _add(m, g, f"{r} = {fn}('{x}')", cached=True, misses=UNSEEN)
        return m
    body = {
        "globals": f"{r} = globals()['{x}'] * 2",
        "vars": f"{r} = vars()['{x}'] * 2",
        "eval": f"{r} = eval('{x} * 2')",
        "locals": f"{r} = locals()['{x}'] * 2",
    }[variant]
    _add(m, g, body, cached=True, misses=UNSEEN)
    return m


def m_hidden_defs(g: Gen) -> Motif:
    """Bindings analysis cannot see (exec, star imports) are defs too."""
    variant = g.rng.choice(["exec-deps", "star-import"])
    m = Motif("hidden-defs", variant)
    r = g.name("hd")
    a, b = g.lit()
    if variant == "exec-deps":
        base, z = g.name("base"), g.name("z")
        _add(m, g, f"{base} = {a}", f"{base} = {b}", cached=False)
        _add(m, g, f"exec('{z} = {base} + 1')", cached=True, opts=f"--deps {base}",
             auto_misses="exec of a string with no --deps (auto mode has no options): not cached")
        _add(m, g, f"{r} = {z} * 2", cached=False)
    else:
        _add(m, g, "from math import *", cached=True)
        _add(m, g, f"{r} = sqrt({a * a})", f"{r} = sqrt({b * b})", cached=False)
    return m


def m_first_run(g: Gen) -> Motif:
    """The first run with the magic is a plain run: names visible to called code, await, errors."""
    variant = g.rng.choice(["helper-reads-def", "await", "raises", "warning"])
    m = Motif("first-run", variant)
    x, r = g.name("df"), g.name("fr")
    a, b = g.lit()
    if variant == "helper-reads-def":
        f = g.name("add_col")
        _add(
            m,
            g,
            f"{x} = [1, {a}]\ndef {f}():\n    return {x} + [3]",
            f"{x} = [1, {b}]\ndef {f}():\n    return {x} + [3]",
            cached=False,
        )
        _add(m, g, f"{x} = {f}()", cached=True)
    elif variant == "await":
        _add(
            m,
            g,
            f"import asyncio\nawait asyncio.sleep(0)\n{r} = {a}",
            f"import asyncio\nawait asyncio.sleep(0)\n{r} = {b}",
            cached=True,
        )
    elif variant == "raises":
        _add(m, g, f"{r} = {a}\n{r} / 0", f"{r} = {b}\n{r} / 0", cached=True, raises=True,
             misses="it raises: a failing cell is never stored")
    else:
        _add(
            m,
            g,
            f"import warnings\n{r} = {a}\nwarnings.warn('careful {a}')",
            f"import warnings\n{r} = {b}\nwarnings.warn('careful {b}')",
            cached=True,
        )
    return m


def m_plot(g: Gen) -> Motif:
    """A cached cell that plots: the figure, its artists and pyplot's open figures are as after a run."""
    variant = g.rng.choice(["subplots", "pyplot-state", "legend;"])
    m = Motif("plot", variant)
    m.needs.add("plt")
    fig, ax, obs = g.name("fig"), g.name("ax"), g.name("seen")
    a, b = g.lit()
    if variant == "subplots":
        _add(
            m,
            g,
            f"{fig}, {ax} = plt.subplots()\n{ax}.plot([1, {a}])\n{ax}.set_title('t{a}')",
            f"{fig}, {ax} = plt.subplots()\n{ax}.plot([1, {b}])\n{ax}.set_title('t{b}')",
            cached=True,
        )
        _add(m, g, f"{obs} = ({ax}.get_title(), len({ax}.lines), list({ax}.lines[0].get_ydata()))", cached=False)
    elif variant == "pyplot-state":
        _add(
            m,
            g,
            f"plt.figure()\nplt.plot([0, {a}])\n{fig} = 1",
            f"plt.figure()\nplt.plot([0, {b}])\n{fig} = 1",
            cached=True,
        )
        _add(m, g, f"{obs} = (plt.get_fignums(), [list(l.get_ydata()) for l in plt.gca().lines])", cached=False)
    else:
        _add(
            m,
            g,
            f"plt.figure()\nplt.plot([0, {a}], label='x')\nplt.legend(loc='best');",
            f"plt.figure()\nplt.plot([0, {b}], label='x')\nplt.legend(loc='best');",
            cached=True,
        )
        _add(m, g, f"{obs} = len(plt.get_fignums())", cached=False)
    _add(m, g, "plt.close('all')", cached=False)
    return m
