"""A marimo notebook whose one cell caches a 1 GiB array with
``mo.persistent_cache``; bench/run.py runs it as an App, in its own process."""

import marimo

app = marimo.App()


@app.cell
def _():
    import os
    import time

    import marimo as mo
    import numpy as np

    return mo, np, os, time


@app.cell
def _(mo, np, os, time):
    src = os.environ["BENCH_BIG_SRC"]
    marker = os.path.join(os.environ["BENCH_MARIMO_DIR"], "runs.txt")
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    before = os.path.getsize(marker) if os.path.exists(marker) else 0
    t0 = time.perf_counter()
    with mo.persistent_cache("big", save_path=os.environ["BENCH_MARIMO_DIR"]):
        open(marker, "a").write("run\n")  # a side effect no cache restores
        big = np.load(src)
    if os.environ.get("BENCH_READ"):
        float(big.sum())
    elapsed = time.perf_counter() - t0
    ran = os.path.getsize(marker) != before
    return big, elapsed, ran


if __name__ == "__main__":
    app.run()
