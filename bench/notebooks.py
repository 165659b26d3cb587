"""Benchmark: whole notebooks, Run All in a new kernel, plain against cached.

    .venv/bin/python bench/notebooks.py [--quick] [--reps 2] [--dir /var/tmp/ipy_lazycache_nb]

Generates a few real-looking notebooks (numpy, pandas, matplotlib and
scikit-learn work on generated data; no network), then runs each through
nbclient in a new kernel every time:

- **plain**: the notebook without ``%%lazycache`` and without the extension;
- **cold**: with every cell but the imports wrapped in ``%%lazycache``, on an
  empty cache (each cached cell runs, then is stored);
- **warm**: the same, again, in a new kernel: every cached cell is a hit.

Runs are round-robin (plain, warm, plain, warm, ...) after one cold run per
notebook. For warm runs the time is split into kernel start (launch to first
cell), imports (the imports cell and ``%load_ext``), restores (the cached cells,
each a hit: key, read, replay) and the rest (plain cells and the client's own
turns). Cell times are measured in the client, from the execute request to its
reply; a run ends with the last cell's reply (the kernel's shutdown is not
counted). Needs the ``bench`` extra (scikit-learn, matplotlib, pandas).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time

import nbformat
from nbclient import NotebookClient
from run import machine_note  # bench/run.py, beside this file

IMPORTS = "imports"
LOAD = "%load_ext ipy_lazycache"

# Each notebook: (name, imports cell, [cells]). ``{n}`` scales the data:
# ``--quick`` runs them smaller. The cells are the kind of work people cache:
# a simulation, a data preparation, a figure, a model fit.
NOTEBOOKS = {
    "simulation": (
        "import numpy as np\nimport matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt",
        [
            "rng = np.random.default_rng(0)\nsteps = rng.standard_normal(({n} // 40, 2000))\n"
            "walks = steps.cumsum(axis=1)",
            "final = walks[:, -1]\nstats = {{'mean': float(final.mean()), 'std': float(final.std())}}\nstats",
            "ranked = np.sort(walks, axis=0)\n"
            "quantiles = ranked[[len(ranked) // 20, len(ranked) // 2, -len(ranked) // 20]]",
            "fig, ax = plt.subplots(figsize=(8, 4))\nfor q in quantiles:\n    ax.plot(q)\nax.set_title('quantiles')",
        ],
    ),
    "dataframes": (
        "import numpy as np\nimport pandas as pd",
        [
            "rng = np.random.default_rng(1)\nN = {n} * 4\n"
            "sales = pd.DataFrame({{'store': rng.integers(0, 500, N), 'item': rng.integers(0, 2000, N),\n"
            "    'qty': rng.poisson(3, N), 'price': rng.gamma(2.0, 10.0, N).round(2),\n"
            "    'day': pd.to_datetime('2024-01-01') + pd.to_timedelta(rng.integers(0, 365, N), unit='D')}})",
            "sales['revenue'] = sales.qty * sales.price\n"
            "daily = sales.groupby(['store', 'day'], as_index=False).revenue.sum()",
            "items = pd.DataFrame({{'item': np.arange(2000), 'category': [f'c{{i % 37}}' for i in range(2000)]}})\n"
            "merged = sales.merge(items, on='item')\n"
            "pivot = merged.pivot_table(index='store', columns='category', values='revenue', aggfunc='sum')",
            "top = pivot.sum(axis=1).nlargest(10)\ntop",
        ],
    ),
    "figures": (
        "import numpy as np\nimport matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt",
        [
            "rng = np.random.default_rng(2)\nseries = rng.standard_normal((64, {n} // 100)).cumsum(axis=1)",
            "fig, ax = plt.subplots(8, 8, figsize=(16, 16))\n"
            "for a, s in zip(ax.flat, series):\n    a.plot(s, lw=0.5)\n    a.set_xticks([])\nfig.tight_layout()",
            "spectra = np.abs(np.fft.rfft(series, axis=1)) ** 2",
        ],
    ),
    "model": (
        "import numpy as np\nfrom sklearn.datasets import make_regression\n"
        "from sklearn.ensemble import RandomForestRegressor\nfrom sklearn.model_selection import train_test_split",
        [
            "X, y = make_regression(n_samples={n} // 20, n_features=30, noise=5.0, random_state=0)\n"
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
            "model = RandomForestRegressor(n_estimators=40, random_state=0, n_jobs=1).fit(X_train, y_train)",
            "score = model.score(X_test, y_test)\nimportance = np.argsort(model.feature_importances_)[::-1]\nscore",
        ],
    ),
}


def build(d, name, cached: bool, n: int) -> str:
    imports, cells = NOTEBOOKS[name]
    sources = [imports]
    if cached:
        sources.append(LOAD)
    for c in cells:
        body = c.format(n=n)
        sources.append(f"%%lazycache\n{body}" if cached else body)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = os.path.join(d, f"{name}-{'cached' if cached else 'plain'}.ipynb")
    nbformat.write(nb, path)
    return path


class Timed(NotebookClient):
    """Notes when each cell's request went out and its reply came back."""

    def __init__(self, nb, **kw):
        super().__init__(nb, **kw)
        self.cell_times: dict[int, list] = {}
        self.on_cell_execute = self._sent
        self.on_cell_executed = self._replied

    def _sent(self, cell, cell_index):
        self.cell_times[cell_index] = [time.perf_counter(), None]

    def _replied(self, cell, cell_index, execute_reply):
        self.cell_times[cell_index][1] = time.perf_counter()


def run(path, workdir):
    nb = nbformat.read(path, as_version=4)
    client = Timed(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": workdir}})
    t0 = time.perf_counter()
    client.execute()
    cells = {i: b - a for i, (a, b) in client.cell_times.items()}
    first = min(a for a, _ in client.cell_times.values())
    total = max(b for _, b in client.cell_times.values()) - t0  # to the last reply: not the kernel's shutdown
    split = {"total": total, "kernel start": first - t0, IMPORTS: 0.0, "restores": 0.0, "rest": 0.0}
    hits = misses = 0
    for i, cell in enumerate(nb.cells):
        src = cell.source
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        if i == 0 or src == LOAD:
            split[IMPORTS] += cells[i]
        elif src.startswith("%%lazycache"):
            split["restores"] += cells[i]
            hits += "lazycache: restored" in text
            misses += "lazycache: stored" in text
        else:
            split["rest"] += cells[i]
    split["rest"] += total - split["kernel start"] - sum(cells.values())  # the client's own turns
    split["hits"], split["misses"] = hits, misses
    return split


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.environ.get("IPY_LAZYCACHE_NB_BENCH_DIR", "/var/tmp/ipy_lazycache_nb"))
    ap.add_argument("--reps", type=int, default=2, help="plain/warm pairs per notebook")
    ap.add_argument("--quick", action="store_true", help="smaller data, one pair per notebook")
    ap.add_argument("--only", nargs="*", choices=sorted(NOTEBOOKS), help="run only these notebooks")
    args = ap.parse_args()
    n = 20_000 if args.quick else 200_000
    reps = 1 if args.quick else args.reps
    d = os.path.abspath(args.dir)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    os.environ["IPY_LAZYCACHE_DIR"] = os.path.join(d, "__lazycache__")
    os.environ.pop("IPY_LAZYCACHE_STORE", None)  # the local folder only
    started = time.time()
    names = args.only or list(NOTEBOOKS)
    results: dict[tuple, list] = {}
    load = os.getloadavg()[0]
    for name in names:
        plain, cached = build(d, name, False, n), build(d, name, True, n)
        print(f"bench: {name}: cold run ...", file=sys.stderr)
        results[name, "cold"] = [run(cached, d)]
        for rep in range(reps):  # round-robin: plain and warm alternate
            order = [("plain", plain), ("warm", cached)]
            for kind, path in order if rep % 2 == 0 else order[::-1]:
                print(f"bench: {name}: {kind} run {rep + 1} ...", file=sys.stderr)
                results.setdefault((name, kind), []).append(run(path, d))

    def med(name, kind, key):
        return statistics.median(r[key] for r in results[name, kind])

    parts = ("kernel start", IMPORTS, "restores", "rest")
    head = ("notebook", "plain", "cold", "warm", "warm/plain", *(f"warm: {p}" for p in parts), "hits")
    rows = []
    for name in names:
        plain, cold, warm = (med(name, k, "total") for k in ("plain", "cold", "warm"))
        hits = min(r["hits"] for r in results[name, "warm"])
        cells = len(NOTEBOOKS[name][1])
        rows.append(
            (
                name, f"{plain:.2f} s", f"{cold:.2f} s", f"{warm:.2f} s", f"{warm / plain:.2f}x",
                *(f"{med(name, 'warm', p):.2f} s" for p in parts), f"{hits}/{cells}",
            )
        )
    widths = [max(len(str(r[i])) for r in [*rows, head]) for i in range(len(head))]
    fmt = "| " + " | ".join(f"{{:{w}}}" for w in widths) + " |"
    print(fmt.format(*head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(fmt.format(*r))
    print()
    print(
        f"Each run is Run All in a new kernel through nbclient; medians of {reps} plain/warm pair(s), round-robin, "
        f"after one cold run per notebook; data scale n={n}. Warm page cache (the files were just written), "
        f"hot memory ({machine_note()}); load average {load:.1f} at the start, {os.cpu_count()} cores. "
        f"'rest' = uncached cells + the client's turns between cells. Total {time.time() - started:.0f} s."
    )


if __name__ == "__main__":
    sys.exit(main())
