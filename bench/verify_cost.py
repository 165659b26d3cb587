"""What the store's round-trip check (core/verify.py) costs: core.save.save
of one def with the check on and off, best of 3 each, into a FileStore.

    python bench/verify_cost.py [trees]
"""

import gc
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

from ipy_lazycache import core
from ipy_lazycache.stores.file import FileStore


def values(trees):
    rng = np.random.default_rng(0)
    X = rng.random((20000, 20))
    y = X @ rng.random(20) + rng.random(20000)
    return {
        "model": RandomForestRegressor(n_estimators=trees, n_jobs=2, random_state=0).fit(X, y),
        "records": [{"a": i, "b": str(i), "c": [float(i)] * 5} for i in range(200_000)],
        "small": [{"a": i, "b": str(i), "c": [float(i)] * 5} for i in range(1000)],
        "frame": pd.DataFrame({"x": rng.random(2_000_000), "s": rng.integers(0, 9, 2_000_000).astype(str)}),
    }


def timed(store, name, value, on):
    core.verify.checking = on
    ns = {"__name__": "__main__", "src": 1}
    plan = core.plan.plan(f"{name} = make(src)\n", ns)
    plan.before = dict(ns)
    ns[name] = value  # as if the body ran
    gc.collect()
    t = time.perf_counter()
    core.save.save(store, plan, ns, core.run.Outcome([], None))
    s = time.perf_counter() - t
    core.save.evict(store, plan.key)
    return s


def main():
    store = FileStore(tempfile.mkdtemp(dir="/var/tmp"))
    for name, value in values(int(sys.argv[1]) if len(sys.argv) > 1 else 30).items():
        res = {on: min(timed(store, name, value, on) for _ in range(3)) for on in (True, False)}
        print(f"{name:8} store with check {res[True] * 1000:7.0f} ms, without {res[False] * 1000:7.0f} ms,"
              f" ratio {res[True] / res[False]:.2f}")


if __name__ == "__main__":
    main()
