"""Differential tester: a hit must be indistinguishable from a run (DESIGN §9), and a re-run must hit.

Generates small notebooks from a grammar with a seeded RNG (motifs: difftest_motifs_*.py), runs each one with
``%%lazycache`` (or in auto mode) and without it, each session in a fresh Python process with a real
``InteractiveShell`` (difftest_session.py), and compares what a user could notice (difftest_describe.py).

A scenario is ten sessions: the notebook's version 1 (populates the cache), version 1 again after a restart,
version 2 (an edited notebook), then version 1 and version 2 again; each with the magic (one cache folder per
scenario) and without. Session k with the magic is compared to session k without. The notebook is made of
independent *motifs* (a few cells exercising one feature, with unique names), so a difference can be attributed to
the motif whose cell or name differs, and confirmed by running that motif alone.

Oracles (each a failure, never information only):

- the extension loaded (``%load_ext`` succeeded; in auto mode, auto is on);
- **hits**: on a re-run of a version already run (sessions 2, 4, 5) every cached cell hits, unless its motif says
  why it may run (``Cell.misses``); a hit is proven by what ran (the tree IPython executes holds none of the
  cell's own statements), not by the extension's message;
- per cell: stdout, stderr, errors, displays (data, metadata, transient, update) and process state after the cell
  (the whole environment, working directory, ``sys.path``, both global generators' states, warnings filters,
  decimal context, numpy print/error options, pandas options, changed rcParams, backend and open figures,
  logging levels, locale, recursion limit, the shell's precision/formatters/interactivity);
- at the end: every name described as deep as it reaches with one identity memo (type, content, attributes and
  slots, which objects are shared and where, class dicts with their dunders, functions' code, defaults, closure
  cells, ``__globals__`` and ``__self__``, ``lru_cache`` state, generators' frames, pandas dtypes, index names and
  exact values, array dtype, order, strides and which arrays share memory, library-owned objects as that
  library's object), and each name's content hash by the extension's own hasher (a restored def must hash like
  the value a run made);
- with the magic: the namespace is described before and after the extension's key step and store step and must be
  equal (keying and storing never change the user's objects); a step never reached is a failure;
- a description that fails (``<cannot describe``) is a difference even when both sides fail alike.

Allow-list, what is normalised and why (nothing else is):

- memory addresses (``0x...``) and the hash in ``<ipython-input-N-hash>`` (of the raw cell, which holds the magic
  line); the notebook folder's path (each chain has its own folder) becomes ``<NB>``;
- line numbers inside a cell in tracebacks, and functions' line numbers and file names: a ``%%lazycache`` cell has
  one line more than the plain cell it is compared with;
- lines starting with ``lazycache:`` (the extension's own status);
- identity of immutable atoms and of tuples/frozensets of them (interning, small ints and folded constants are
  interpreter details);
- an array's ``.base`` chain and whether it owns its data (pickling legitimately changes the owner); which arrays
  share memory is compared instead;
- matplotlib objects by what the plot shows (titles, limits, line data, labels, legend, pyplot management), not
  their whole artist tree;
- ``IPY_LAZYCACHE_*`` environment variables (the tester's configuration of the extension), ``sys.modules`` (the
  extension imports its own modules) and loggers at their default level (libraries make them on import);
- objects another library owns are described by the ``module.attr`` that holds them (the extension's and the
  tester's own modules are not owners).

Both chains start with the global generators seeded alike, so unseeded draws are compared too.

Run as a script::

    python tests/difftest.py run [--n N] [--seed S] [--confirm] [--auto]  # a batch, prints reports
    python tests/difftest.py session SPEC OUT                            # one session (internal)

``IPY_LAZYCACHE_DIFF_PKG`` is the folder whose ``ipy_lazycache`` the sessions import (default: the repository
holding this file), so the tester can be pointed at another checkout.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the tester's modules, in this process and in each session's

import difftest_describe as dd  # noqa: E402
import difftest_motifs_state as ms  # noqa: E402
import difftest_motifs_values as mv  # noqa: E402
from difftest_model import MAGIC, Cell, Gen, Motif, Notebook  # noqa: E402,F401

REPO = os.path.dirname(HERE)
STATUS = "lazycache:"
SESSIONS = ("v1 first run", "v1 after restart", "v2 (edited) after restart", "v1 again", "v2 again")
VERSIONS = (1, 1, 2, 1, 2)
#: sessions that re-run a version an earlier session ran: every cached cell must hit
RERUNS = tuple(s for s, v in enumerate(VERSIONS) if v in VERSIONS[:s])
MUTANTS = ("never-hit", "stale-dunder")


def package_dir() -> str:
    return os.environ.get("IPY_LAZYCACHE_DIFF_PKG") or REPO


MOTIFS = {
    "seed-draw": ms.m_seed_draw,
    "history": ms.m_history,
    "set-order": mv.m_set_order,
    "builtin-subclass": mv.m_builtin_subclass,
    "function-change": mv.m_function_change,
    "local-module": mv.m_local_module,
    "effect-on-hit": ms.m_effect,
    "relation": mv.m_relation,
    "output": ms.m_output,
    "mutate": mv.m_mutate,
    "delete": mv.m_delete,
    "values": mv.m_values,
    "hash-memo": mv.m_memo,
    "dynamic": ms.m_dynamic,
    "hidden-defs": ms.m_hidden_defs,
    "first-run": ms.m_first_run,
    "chain": mv.m_chain,
    "plot": ms.m_plot,
    "reach": mv.m_reach,
}


def generate(seed: int, index: int, n_motifs: tuple = (2, 5), tags=None, exact=None) -> Notebook:
    """Scenario ``index`` of a batch with ``seed``: a notebook of a few random motifs (``exact``: these, in order)."""
    rng = random.Random(f"{seed}:{index}")
    g = Gen(rng)
    pool = sorted(tags or MOTIFS)
    chosen = list(exact) if exact else [rng.choice(pool) for _ in range(rng.randint(*n_motifs))]
    motifs = [MOTIFS[t](g) for t in chosen]
    return Notebook(motifs, setup_cached=rng.random() < 0.2, seed=seed, index=index)


def covering(seed: int, per: int = 4) -> list:
    """Notebooks in which every motif occurs once (``per`` motifs each), in an order drawn from ``seed``."""
    tags = sorted(MOTIFS)
    random.Random(f"cover:{seed}").shuffle(tags)
    return [generate(seed, 10_000 + i, exact=tags[i:i + per]) for i in range(0, len(tags), per)]


def run_session(spec_path: str, out_path: str) -> None:
    import difftest_session

    difftest_session.run_session(spec_path, out_path)


# ---------------------------------------------------------------------------------------------------------------------
# Running a scenario (parent process)


def _write_files(folder: str, files: dict) -> None:
    os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
    for path, text in files.items():
        with open(os.path.join(folder, path), "w") as f:
            f.write(text)


def run_chain(nb: Notebook, magic: bool, root: str, timeout: float = 180, side: str = "", auto: bool = False,
              mutant: str = "") -> list:
    """The sessions (``VERSIONS``) with or without the magic, each in a fresh process. ``auto``: the extension in
    auto mode (every eligible cell cached, whatever it takes), no ``%%lazycache`` lines. ``mutant``: a deliberately
    broken cache (``MUTANTS``), for testing the tester."""
    folder = os.path.join(root, side or ("magic" if magic else "plain"), "nb")
    cache = os.path.join(root, "cache")
    os.makedirs(folder, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IPY_LAZYCACHE", "DT_", "PYTHONPATH"))}
    env.update(PYTHONPATH=package_dir(), PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
               IPY_LAZYCACHE_DIR=cache, DT_NB=folder)
    if auto:
        env.update(IPY_LAZYCACHE_AUTO="1", IPY_LAZYCACHE_AUTO_MIN_TIME="0")
    results = []
    for k, version in enumerate(VERSIONS):
        if mutant == "never-hit" and magic:
            shutil.rmtree(cache, ignore_errors=True)  # a cache that forgets everything: nothing can hit
        _write_files(folder, nb.files(version))
        spec = {"cells": nb.sources(version, magic and not auto), "cwd": folder, "magic": magic, "auto": auto,
                "mutant": mutant if magic else ""}
        spec_path = os.path.join(root, f"spec-{side or ('m' if magic else 'p')}{k}.json")
        out_path = spec_path.replace("spec-", "out-")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "session", spec_path, out_path],
                              check=False, env=env, cwd=folder, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not os.path.exists(out_path):
            tail = proc.stderr.strip().splitlines()[-6:]
            results.append({"crash": f"exit {proc.returncode}: " + " | ".join(tail)})
            break
        with open(out_path) as f:
            text = f.read().replace(folder, "<NB>")  # the two chains use different folders
        results.append(json.loads(text))
    return results


@dataclass
class Difference:
    session: int
    where: str  # "cell 4 stdout", "name x", "state cwd", ...
    plain: object
    magic: object
    motif: Motif | None = None

    def line(self) -> str:
        who = f" [{self.motif.label}]" if self.motif else ""
        a, b = (x if isinstance(x, str) else json.dumps(x, default=repr) for x in (self.plain, self.magic))
        start = next((i for i, (p, q) in enumerate(zip(a, b)) if p != q), min(len(a), len(b)))
        start = max(0, start - 150)  # long descriptions: show where they part
        return (
            f"session {self.session + 1} ({SESSIONS[self.session]}): {self.where}{who}\n"
            f"      plain: {_short(a, start)}\n      magic: {_short(b, start)}"
        )


def _short(s: str, start: int = 0, n=400) -> str:
    s = ("..." + s[start:]) if start else s
    return s if len(s) <= n else s[:n] + "..."


_LINE_NUMBERS = [
    (re.compile(r"(Cell In\[\d+\], line )\d+"), r"\1?"),
    (re.compile(r"(<ipython-input-\d+-\?>):\d+:"), r"\1:?:"),
    (re.compile(r"^(---->|      ) ?\d+( |$)", re.M), r"\1 ?\2"),  # a traceback's context lines
]


def _same_lines(x):
    """Line numbers inside a cell are not compared: a ``%%lazycache`` cell has one more line than the plain
    cell it is compared with, and either way of counting is defensible. The cell number still is."""
    if isinstance(x, str):
        for pattern, repl in _LINE_NUMBERS:
            x = pattern.sub(repl, x)
    return x


def _owners(nb: Notebook) -> dict:
    owner = {}
    for m, c in nb.cells():
        for name in re.findall(r"[A-Za-z_]\w*", c.v1 + c.v2):
            owner.setdefault(name, m)
    return owner


def _compare_cells(s: int, cells: list, p: dict, q: dict, reported: set) -> list:
    diffs = []
    for i, (a, b) in enumerate(zip(p["cells"], q["cells"])):
        for key in ("error", "stdout", "stderr", "displays"):
            if _same_lines(a[key]) != _same_lines(b[key]):
                diffs.append(Difference(s, f"cell [{i + 1}] {key}", a[key], b[key], cells[i][0]))
        for key in sorted(set(a["state"]) | set(b["state"])):
            x, y = a["state"].get(key, "<absent>"), b["state"].get(key, "<absent>")
            if x != y and key not in reported:  # the first cell after which it differs; later cells repeat it
                reported.add(key)
                diffs.append(Difference(s, f"state {key} after cell [{i + 1}]", x, y, cells[i][0]))
    return diffs


def _compare_names(s: int, cells: list, owner: dict, p: dict, q: dict) -> list:
    diffs = []
    for part, label in (("namespace", "name"), ("hashes", "hash of")):
        pn, qn = p[part], q[part]
        for name in sorted(set(pn) | set(qn)):
            x, y = pn.get(name, "<unbound>"), qn.get(name, "<unbound>")
            failed = dd.CANNOT in json.dumps(x) or dd.CANNOT in json.dumps(y)  # failing alike is not equal
            if x == y and not failed:
                continue
            if name == "history Out" and not failed:
                for n in sorted(set(x) | set(y), key=int):
                    if x.get(n) != y.get(n):
                        m = cells[int(n) - 1][0] if 0 < int(n) <= len(cells) else None
                        diffs.append(Difference(s, f"Out[{n}]", x.get(n, "<none>"), y.get(n, "<none>"), m))
                continue
            m = owner.get(name.split()[-1]) or next(
                (owner.get(w) for w in re.findall(r"\w+", json.dumps([x, y])) if owner.get(w)), None)
            diffs.append(Difference(s, f"{label} {name}" + (" (cannot be described)" if failed else ""), x, y, m))
    return diffs


def _compare_magic_side(s: int, nb: Notebook, q: dict, control: bool, auto: bool) -> list:
    """What only the magic side must show: the extension loaded, re-runs hit, key and store leave the names be."""
    if control:
        return []
    cells, diffs = nb.cells(), []
    if not q.get("loaded"):
        diffs.append(Difference(s, "%load_ext ipy_lazycache" + (" (auto mode)" if auto else ""), "loaded", "failed"))
    if s in RERUNS:
        for i, ((m, c), r) in enumerate(zip(cells, q["cells"])):
            text = c.v1 if VERSIONS[s] == 1 else c.v2
            may = c.misses or (auto and (c.auto_misses or _only_setup(text)))
            if c.cached and r["ran"] and not may:
                diffs.append(Difference(s, f"cell [{i + 1}] ran again: a miss on an unedited re-run", "a hit",
                                        "ran: " + " | ".join(r["status"])[:300], m))
    for ch in q["oracles"]["changes"]:
        m = cells[ch["cell"] - 1][0] if 0 < ch["cell"] <= len(cells) else None
        diffs.append(Difference(s, f"the {ch['step']} step of cell [{ch['cell']}] changed {ch['name']}",
                                ch["before"], ch["after"], m))
    return diffs


def _only_setup(text: str) -> bool:
    """Imports and line magics only: auto mode always runs such a cell (DESIGN §10), so it may not hit."""
    import ast

    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("%")]
    try:
        return all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.parse("\n".join(lines)).body)
    except SyntaxError:
        return False


def _oracles_reached(nb: Notebook, magic: list, control: bool) -> list:
    """A chain that stored and looked up entries must have passed through both watched steps."""
    done = [q for q in magic if "crash" not in q]
    if control or not done or not any(c.cached for _, c in nb.cells()):
        return []
    reached = {step: sum(q["oracles"]["reached"].get(step, 0) for q in done) for step in ("key", "store")}
    found = done[0]["oracles"]["found"]
    return [Difference(0, f"oracle: the extension's {step} step was never reached", f"{step} step watched",
                       f"hooked {found}, calls {reached}") for step, n in reached.items() if n == 0]


def compare(nb: Notebook, plain: list, magic: list, control: bool = False, auto: bool = False) -> list:
    """Every difference, session by session, each attributed to the motif owning the cell or name."""
    cells, owner, diffs = nb.cells(), _owners(nb), []
    for s in range(len(VERSIONS)):
        p = plain[s] if s < len(plain) else {"crash": "no session"}
        q = magic[s] if s < len(magic) else {"crash": "no session"}
        if "crash" in p or "crash" in q:  # a crash is never "the same" (a plain crash is also a grammar error)
            diffs.append(Difference(s, "session crashed", p.get("crash"), q.get("crash")))
            break
        diffs += _compare_cells(s, cells, p, q, set())
        diffs += _compare_names(s, cells, owner, p, q)
        diffs += _compare_magic_side(s, nb, q, control, auto)
    return diffs + _oracles_reached(nb, magic, control)


def plain_errors(nb: Notebook, plain: list) -> list:
    """Errors in the plain run are the grammar's bugs, not the cache's (but for cells meant to raise)."""
    raises = [c.raises for _, c in nb.cells()]
    out = []
    for s, r in enumerate(plain):
        if "crash" in r:
            out.append(f"session {s + 1} crashed: {r['crash']}")
            continue
        out += [
            f"session {s + 1} cell [{i + 1}]: {c['error']}"
            for i, c in enumerate(r["cells"])
            if c["error"] and not raises[i]
        ]
    return out


@dataclass
class Outcome:
    nb: Notebook
    diffs: list
    grammar_errors: list
    seconds: float
    auto: bool = False

    def report(self, limit: int = 8) -> str:
        head = (f"scenario seed={self.nb.seed} index={self.nb.index} {'auto mode ' if self.auto else ''}"
                f"motifs={[m.label for m in self.nb.motifs]}")
        rows = [head]
        if self.grammar_errors:
            rows += ["  GRAMMAR BUG (the plain run failed):"] + ["    " + e for e in self.grammar_errors]
        if self.diffs:
            rows.append(f"  {len(self.diffs)} difference(s), first {min(limit, len(self.diffs))}:")
            rows += ["    " + d.line() for d in self.diffs[:limit]]
        if self.grammar_errors or self.diffs:
            rows += ["  notebook:", self.nb.render()]
        return "\n".join(rows)


def run_scenario(nb: Notebook, pool: concurrent.futures.Executor | None = None, control: bool = False,
                 auto: bool = False, mutant: str = "") -> Outcome:
    """Both chains of a scenario; ``control`` runs the second one without the magic too (the tester's own
    noise, which must be none); ``auto`` runs it in auto mode instead of with ``%%lazycache`` lines;
    ``mutant`` breaks the cache on purpose (the tester must then fail)."""
    start = time.monotonic()
    root = tempfile.mkdtemp(prefix="lazycache-diff-")
    try:
        pool = pool or concurrent.futures.ThreadPoolExecutor(1)
        fp = pool.submit(run_chain, nb, False, root)
        fm = pool.submit(run_chain, nb, not control, root, side="magic", auto=auto, mutant=mutant)
        plain, magic = fp.result(), fm.result()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    diffs = compare(nb, plain, magic, control=control, auto=auto)
    return Outcome(nb, diffs, plain_errors(nb, plain), time.monotonic() - start, auto)


def run_batch(seed: int, n: int, workers: int = 2, on_done=None) -> list:
    """``n`` scenarios of a batch; two chains run at once per scenario, scenarios in sequence."""
    outcomes = []
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for i in range(n):
            o = run_scenario(generate(seed, i), pool)
            outcomes.append(o)
            if on_done:
                on_done(o)
    return outcomes


def confirm(o: Outcome, pool, skip=()) -> dict:
    """Each motif a difference was attributed to, run alone: ``{label: (Notebook, [Difference])}`` where it
    reproduces, so each finding has a minimal repro. Labels in ``skip`` are not run again."""
    found = {}
    for m in {d.motif.label: d.motif for d in o.diffs if d.motif and d.motif.label not in skip}.values():
        alone = Notebook([m], setup_cached=o.nb.setup_cached, seed=o.nb.seed, index=o.nb.index)
        r = run_scenario(alone, pool, auto=o.auto)
        if r.diffs and not r.grammar_errors:
            found[m.label] = (alone, r.diffs)
    return found


def _git_head(folder: str) -> str:
    proc = subprocess.run(
        ["git", "-C", folder, "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "?"


def write_findings(path: str, args, outcomes: list, findings: dict) -> None:
    """A readable list of what still differs, one minimal repro per motif class (DIFF_FINDINGS.md)."""
    seen = sorted({m.label for o in outcomes for m in o.nb.motifs})
    implicated = sorted({d.motif.label for o in outcomes for d in o.diffs if d.motif})
    unattributed = sorted({d.where for o in outcomes for d in o.diffs if not d.motif})
    failing = [o for o in outcomes if o.diffs or o.grammar_errors]
    rows = [
        "# Differential tester findings",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} by `python tests/difftest.py run "
        f"--n {args.n} --seed {args.seed} --confirm --findings ...` (tests/difftest.py).",
        f"Package under test: `{package_dir()}` at `{_git_head(package_dir())}`.",
        "",
        f"**{len(failing)} of {len(outcomes)} scenarios differ.** Motif classes run: {len(seen)}; implicated in a "
        f"difference: {len(implicated)}; confirmed alone (minimal repro below): {len(findings)}.",
        "",
        "Each repro is the setup cell plus one motif; `-- v2:` shows the edit before session 3. Sessions: "
        + "; ".join(f"{i + 1} = {s}" for i, s in enumerate(SESSIONS))
        + ". `plain` is IPython without the magic.",
        "",
    ]
    for label, (nb, diffs) in sorted(findings.items()):
        rows += [f"## {label}", "", "```", nb.render(), "```", ""]
        rows += ["```"] + [d.line() for d in diffs[:3]] + ["```", ""]
    rest = sorted(set(implicated) - set(findings))
    if rest:
        rows += ["## Implicated, but not reproduced by the motif alone (interaction or flaky)", ""]
        rows += [f"- {label}" for label in rest] + [""]
    if unattributed:
        more = f" (and {len(unattributed) - 8} more)" if len(unattributed) > 8 else ""
        rows += ["## Differences not attributed to one motif", "", ", ".join(unattributed[:8]) + more, ""]
    clean = sorted(set(seen) - set(implicated))
    rows += ["## Motif classes with no difference in this run", "", ", ".join(clean) or "(none)", ""]
    with open(path, "w") as f:
        f.write("\n".join(rows))


def _label_of(nb: Notebook, count: int) -> str:
    m = nb.cells()[count - 1][0]
    return m.label if m else "setup"


def main(argv: list) -> int:
    if argv and argv[0] == "session":
        run_session(argv[1], argv[2])
        return 0
    import argparse

    ap = argparse.ArgumentParser(prog="difftest.py")
    ap.add_argument("cmd", choices=["run"])
    ap.add_argument("--n", type=int, default=int(os.environ.get("IPY_LAZYCACHE_DIFF_N", "20")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("IPY_LAZYCACHE_DIFF_SEED", "0")))
    ap.add_argument("--confirm", action="store_true", help="re-run each implicated motif alone (minimal repro)")
    ap.add_argument("--json", help="write a summary of confirmed findings here")
    ap.add_argument("--tags", help="only these motifs, comma-separated (see MOTIFS)")
    ap.add_argument("--auto", action="store_true", help="auto mode instead of %%%%lazycache lines")
    ap.add_argument("--findings", help="write a markdown summary (implies --confirm)")
    args = ap.parse_args(argv)
    args.confirm = args.confirm or bool(args.findings)
    outcomes = []
    print(f"package: {package_dir()}  seed={args.seed} n={args.n}", flush=True)
    failing, findings, tried = 0, {}, set()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for i in range(args.n):
            tags = args.tags.split(",") if args.tags else None
            o = run_scenario(generate(args.seed, i, tags=tags), pool, auto=args.auto)
            outcomes.append(o)
            failing += bool(o.diffs or o.grammar_errors)
            print(
                o.report()
                if (o.diffs or o.grammar_errors)
                else f"scenario seed={args.seed} index={i} ok ({o.seconds:.0f} s) {[m.label for m in o.nb.motifs]}",
                flush=True,
            )
            if args.confirm and o.diffs:
                for label, (alone, diffs) in confirm(o, pool, skip=set(findings) | tried).items():
                    findings[label] = (alone, diffs)
                    print(f"  CONFIRMED alone: {label}: {diffs[0].line()}", flush=True)
                tried |= {d.motif.label for d in o.diffs if d.motif}
    print(f"\n{failing} of {args.n} scenarios differ")
    if args.confirm:
        print(f"confirmed classes ({len(findings)}): {sorted(findings)}")
    if args.findings:
        write_findings(args.findings, args, outcomes, findings)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    label: {"notebook": nb.render(), "differences": [d.line() for d in diffs[:4]]}
                    for label, (nb, diffs) in sorted(findings.items())
                },
                f,
                indent=1,
            )
    return 1 if failing else 0




if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
