"""Benchmarks: %%lazycache against np.save/np.load, joblib.Memory, marimo's
persistent_cache, ipycache's mechanism (pickle), pd.read_parquet and pickle.

    python bench/run.py [--reps 5] [--dir /var/tmp/ipy_lazycache_bench] [--no-cold]

One process per tool (each a worker fed commands over a pipe), timed
round-robin in one run: repetition 1 of every tool, then repetition 2, ...
Prints one table (medians) with ratios, peak memory, and the page-cache state.
Needs the ``bench`` extra (joblib, marimo, polars) and ``data`` (numpy,
pandas, pyarrow).
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import statistics
import subprocess
import sys
import time

GIB = 1 << 30
N_BIG = GIB // 8
DF_ROWS = 1_000_000
HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------
# Helpers used in workers


def mem():
    """(peak RSS, current anonymous RSS) in bytes, from /proc/self/status."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "RssAnon", "RssFile"):
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out


def plan_of(source, ns):
    """core.plan.plan of a cell body, as the magic keys it (a parsed tree)."""
    import ast

    from ipy_lazycache import core

    return core.plan.plan(ast.parse(source), ns, source=source)


def read_all(arr):
    """A full read of an array: touches every page."""
    return float(arr.sum())


def read_frame(df):
    import numpy as np

    num = df.select_dtypes("number").to_numpy()
    total = float(np.nansum(num))
    for c in df.columns:
        if df[c].dtype.kind not in "biufc":
            total += float(df[c].str.len().sum())
    return total


def make_frame():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    cols = {f"f{i}": rng.random(DF_ROWS) for i in range(4)}
    cols |= {f"i{i}": rng.integers(0, 1 << 40, DF_ROWS) for i in range(3)}
    words = np.array([f"word-{i:06d}" for i in range(50_000)], dtype=object)
    cols |= {f"s{i}": pd.Series(words[rng.integers(0, len(words), DF_ROWS)], dtype="str") for i in range(3)}
    return pd.DataFrame(cols)


# ----------------------------------------------------------------------------
# Workers: one class per tool; each method is one timed operation


class Worker:
    def __init__(self, d):
        self.d = d
        self.big_src = os.path.join(d, "big.npy")
        self.df_src = os.path.join(d, "df.parquet")


class Ours(Worker):
    """%%lazycache through a real InteractiveShell."""

    def __init__(self, d):
        super().__init__(d)
        from IPython.core.interactiveshell import InteractiveShell

        os.chdir(d)
        os.environ["IPY_LAZYCACHE_DIR"] = os.path.join(d, "lazycache")
        self.sh = InteractiveShell.instance()
        self.sh.run_cell("%load_ext ipy_lazycache\nimport numpy as np, pandas as pd", store_history=False)
        self.big_cell = f"%%lazycache\nbig = np.load({self.big_src!r})\n"
        self.df_cell = f"%%lazycache\ndf = pd.read_parquet({self.df_src!r})\n"
        self.sh.run_cell("x = 0", store_history=False)

    def run(self, cell):
        r = self.sh.run_cell(cell, store_history=False)
        if not r.success:
            raise RuntimeError(f"cell failed: {r.error_in_exec or r.error_before_exec}")

    def prepare(self):
        for cell in (self.big_cell, self.df_cell, "%%lazycache\nx = 1\n"):
            self.run(cell)  # a miss: stores the entry
        self.drop()

    def drop(self):
        for name in ("big", "df"):
            self.sh.user_ns.pop(name, None)
        import gc

        gc.collect()

    def _hit(self, cell, name, read):
        self.drop()
        before = mem()
        t = time.perf_counter()
        self.run(cell)
        t1 = time.perf_counter() - t
        value = self.sh.user_ns[name]
        out = {"s": t1}
        if read:
            read(value)
            out["s"] = time.perf_counter() - t
        out |= mem()
        out["anon_delta"] = out.get("RssAnon", 0) - before.get("RssAnon", 0)
        assert type(value).__name__ in ("ndarray", "memmap", "DataFrame")
        return out

    def hit(self):
        return self._hit(self.big_cell, "big", None)

    def plain_map(self):
        """The floor under a hit: a plain run_cell that maps the same array
        file (what IPython itself costs, in the same process and state)."""
        return self._hit(f"big = np.load({self.big_src!r}, mmap_mode='c')\n", "big", None)

    def restore(self):
        """core.restore.restore + core.apply.apply alone: what a hit does besides IPython
        and bookkeeping (keying, recency record, status line)."""
        from ipy_lazycache import core, platform

        self.drop()
        ns = self.sh.user_ns
        body = self.big_cell.split("\n", 1)[1]
        plan = plan_of(self.sh.transform_cell(body), ns)
        store = platform.store_for(platform.cache_dir())
        t = time.perf_counter()
        restored = core.restore.restore(store, plan.key, ns)
        core.apply.apply(restored, ns)
        s = time.perf_counter() - t
        assert type(ns["big"]).__name__ == "ndarray"
        return {"s": s}

    def hit_read(self):
        return self._hit(self.big_cell, "big", read_all)

    def df_hit(self):
        return self._hit(self.df_cell, "df", None)

    def df_hit_read(self):
        return self._hit(self.df_cell, "df", read_frame)

    def trivial(self, n=300):
        hit, plain = [], []
        for _ in range(n):  # alternate, so drift hits both alike
            t = time.perf_counter()
            self.sh.run_cell("%%lazycache\nx = 1\n", store_history=False)
            hit.append(time.perf_counter() - t)
            t = time.perf_counter()
            self.sh.run_cell("x = 1\n", store_history=False)
            plain.append(time.perf_counter() - t)
        return {"hit": statistics.median(hit), "plain": statistics.median(plain)}


class OursKeys(Ours):
    """What keying costs, through the magic: a cell whose ref is a 1 GiB array
    in memory (hashed in full: a plain cell ran before it, so no hash is
    known), and a chain: a cached cell reading the array another cached cell
    restored (a mapped cache file: its hash is known and provably current)."""

    def __init__(self, d):
        super().__init__(d)
        self.run(f"big0 = np.load({self.big_src!r})")  # a plain cell: in memory, not mapped
        self.key_cell = "%%lazycache\nhead0 = float(big0[:4].sum())\n"
        self.chain_cell = "%%lazycache\nhead = float(big[:4].sum())\n"

    def prepare(self):
        for cell in (self.key_cell, self.big_cell, self.chain_cell):
            self.run(cell)
        self.drop()

    def key_plain(self):
        """The cell after a plain one (its 1 GiB ref hashed in full), and the
        bound: xxh3 over the same buffer in the same process. Whichever runs
        second finds the buffer hot in the TLB and caches, so the order
        alternates between calls and the medians share that luck."""
        import numpy as np
        import xxhash

        def raw():
            self.run("pass")
            t = time.perf_counter()
            xxhash.xxh3_128(self.sh.user_ns["big0"].reshape(-1).view(np.uint8)).hexdigest()
            return time.perf_counter() - t

        def cell():
            self.run("pass")  # any code that runs makes known hashes stale
            t = time.perf_counter()
            self.run(self.key_cell)  # a hit: the time is the key (1 GiB hashed) plus a tiny restore
            return time.perf_counter() - t

        self._flip = not getattr(self, "_flip", False)
        if self._flip:
            r, s = raw(), cell()
        else:
            s, r = cell(), raw()
        return {"s": s, "raw": r}

    def chain(self, read=False, plain=False):
        self.drop()
        self.run(self.big_cell)  # a hit: big is a mapping of the cache file
        if read:
            read_all(self.sh.user_ns["big"])  # every page resident: the memo's page check has the most to look at
        t = time.perf_counter()
        self.run(self.chain_cell.split("\n", 1)[1] if plain else self.chain_cell)
        return {"s": time.perf_counter() - t}

    def chain_read(self):
        return self.chain(read=True)

    def chain_read_plain(self):
        """The same cell without the magic, after the same full read: the
        first cell after reading 1 GiB runs slower whatever it is (here ~10 ms
        for ``x = 1`` against 0.5 ms warm), so that is the floor."""
        return self.chain(read=True, plain=True)

    def auto_cheap(self, n=100):
        """Auto mode (DESIGN §10) on a cheap plain cell that reads the 1 GiB
        ``big0``: what auto mode adds to it (its inputs are too big to hash
        before a run that may be cheap, so the cell is only timed), against
        the same cell with auto mode off; alternated."""
        import ipy_lazycache

        ext = ipy_lazycache._magics
        cell = "head1 = float(big0[:4].sum())\n"
        on, off = [], []
        for _ in range(n):
            for flag, out in ((True, on), (False, off)):
                ext.auto = flag
                t = time.perf_counter()
                self.run(cell)
                out.append(time.perf_counter() - t)
        ext.auto = False
        return {"on": statistics.median(on), "off": statistics.median(off)}


class Objects(Worker):
    """Stores and restores of big pickled objects, through the magic, against
    pickle of the same objects: a matplotlib figure with 64 subplots
    (``fig, ax``) and a fitted scikit-learn random forest (``model``)."""

    def __init__(self, d):
        super().__init__(d)
        from IPython.core.interactiveshell import InteractiveShell

        os.chdir(d)
        os.environ["IPY_LAZYCACHE_DIR"] = os.path.join(d, "lazycache-objects")
        self.sh = InteractiveShell.instance()
        self.run("%load_ext ipy_lazycache")
        self.run(OBJECTS_SETUP)
        self.bodies = {"fig": "fig, ax = make_fig()\n", "model": "model = make_model()\n",
                       "records": "records = make_records()\n", "points": "points = make_points()\n"}
        self.names = {"fig": ("fig", "ax"), "model": ("model",), "records": ("records",), "points": ("points",)}

    run = Ours.run

    def prepare(self):
        for kind in self.bodies:
            self.run("%%lazycache --quiet\n" + self.bodies[kind])
        return {}

    def _store(self, kind, checked=True):
        """A miss (--force: the body runs and is stored) and a plain run of
        the same body right after, so the difference is what the magic adds.
        Every timed step starts after a full collection: the store pauses the
        cyclic GC while pickling, and the garbage it leaves must not land in
        the next step's (pickle's) time. ``checked=False`` turns off the
        store's round-trip check (core/verify.py), to show what it costs."""
        from ipy_lazycache import core

        gc.collect()
        core.verify.checking = checked
        t = time.perf_counter()
        try:
            self.run("%%lazycache --force --quiet\n" + self.bodies[kind])
        finally:
            core.verify.checking = True
        miss = time.perf_counter() - t
        gc.collect()
        t = time.perf_counter()
        self.run(self.bodies[kind])
        plain_run = time.perf_counter() - t
        return {"s": miss - plain_run, "miss": miss, "plain_run": plain_run}

    def _pickle(self, kind):
        """pickle.dumps + write (+ fsync, as the store does) of what the
        plain body just made, and pickle.load of it."""
        import pickle

        value = tuple(self.sh.user_ns[n] for n in self.names[kind])
        path = os.path.join(self.d, f"objects-{kind}.pkl")
        gc.collect()
        t = time.perf_counter()
        data = pickle.dumps(value, protocol=5)
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        dump = time.perf_counter() - t
        gc.collect()
        t = time.perf_counter()
        with open(path, "rb") as f:
            pickle.load(f)
        return {"s": dump, "load": time.perf_counter() - t, "bytes": len(data)}

    def _hit(self, kind):
        for n in self.names[kind]:
            self.sh.user_ns.pop(n, None)
        gc.collect()
        t = time.perf_counter()
        self.run("%%lazycache --quiet\n" + self.bodies[kind])
        return {"s": time.perf_counter() - t}

    def store_fig(self):
        return self._store("fig")

    def store_records(self):
        return self._store("records")

    def store_records_unchecked(self):
        return self._store("records", checked=False)

    def store_points(self):
        return self._store("points")

    def store_points_unchecked(self):
        return self._store("points", checked=False)

    def pickle_fig(self):
        return self._pickle("fig")

    def hit_fig(self):
        return self._hit("fig")

    def store_model(self):
        return self._store("model")

    def pickle_model(self):
        return self._pickle("model")

    def hit_model(self):
        return self._hit("model")


#: Plain cells that define the objects' makers (what the cached cells call).
OBJECTS_SETUP = """
import pickle
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.ensemble import RandomForestRegressor

def make_fig():
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(8, 8, figsize=(16, 16))
    for a in ax.flat:
        a.plot(rng.standard_normal(2000).cumsum(), lw=0.5)
        a.scatter(rng.random(200), rng.random(200), s=2)
        a.set_title("panel")
    plt.close(fig)
    return fig, ax

_rng = np.random.default_rng(0)
_X = _rng.random((20000, 20))
_y = _X @ _rng.random(20) + _rng.random(20000)
_forest = pickle.dumps(RandomForestRegressor(n_estimators=60, n_jobs=2, random_state=0).fit(_X, _y))

def make_model():
    return pickle.loads(_forest)  # a fitted forest (~100 MiB), quickly

def make_records():
    # builtins only: the store's round trip knows them exact and does not decode them
    return [{"a": i, "b": str(i), "c": [float(i)] * 5} for i in range(3600)]

class Point:
    def __init__(self, i):
        self.a, self.b, self.c = i, str(i), [float(i)] * 5

def make_points():
    # notebook objects, ~200 KiB pickled: near the most the round trip decodes (core.verify.CHECKED_BYTES)
    return [Point(i) for i in range(3000)]
"""


class OursStore(Worker):
    """The miss side: core.save.save of a 1 GiB def into a FileStore (fsynced)."""

    def __init__(self, d):
        super().__init__(d)
        import numpy as np

        from ipy_lazycache.stores.file import FileStore

        self.big = np.load(self.big_src)
        self.store = FileStore(os.path.join(d, "lazycache-miss"))
        self.n = 0

    def store_big(self):
        from ipy_lazycache import core

        self.n += 1
        import numpy as np

        # As if the cell loaded it: the array is no ref's (a def that is a
        # ref, or a view of one, is stored as a reference, not written).
        ns = {"np": np, "src": self.big_src}
        plan = plan_of(f"big = np.load(src)\n_rep = {self.n}\n", ns)
        plan.before = dict(ns)
        ns["big"], ns["_rep"] = self.big, self.n  # as if the body ran
        t = time.perf_counter()
        core.save.save(self.store, plan, ns, core.run.Outcome([], None))
        s = time.perf_counter() - t
        core.save.evict(self.store, plan.key)
        return {"s": s}

    def raw_xxh3(self):
        """The bound on keying: xxh3-128 over the same buffer, nothing else."""
        import numpy as np
        import xxhash

        t = time.perf_counter()
        xxhash.xxh3_128(self.big.reshape(-1).view(np.uint8)).hexdigest()
        return {"s": time.perf_counter() - t}

    def key_big(self):
        """Key of a cell whose ref is the 1 GiB array (not a restored one),
        and raw xxh3 of the same buffer right after: both with the pages hot
        (one untimed pass first), so the ratio is the keying overhead."""
        self.raw_xxh3()
        t = time.perf_counter()
        plan_of("y = big.sum()", {"big": self.big})
        key = time.perf_counter() - t
        return {"s": key, "raw": self.raw_xxh3()["s"]}


class Numpy(Worker):
    def __init__(self, d):
        super().__init__(d)
        self.out = os.path.join(d, "np-save.npy")

    def load(self):
        import numpy as np

        t = time.perf_counter()
        arr = np.load(self.big_src)
        return {"s": time.perf_counter() - t} | mem() | {"_": arr[:1].tolist()}

    def load_read(self):
        import numpy as np

        before = mem()
        t = time.perf_counter()
        arr = np.load(self.big_src)
        read_all(arr)
        out = {"s": time.perf_counter() - t} | mem()
        out["anon_delta"] = out.get("RssAnon", 0) - before.get("RssAnon", 0)
        return out

    def save(self):
        import numpy as np

        if not hasattr(self, "big"):
            self.big = np.load(self.big_src)
        t = time.perf_counter()
        with open(self.out, "wb") as f:
            np.save(f, self.big)
            f.flush()
            os.fsync(f.fileno())
        s = time.perf_counter() - t
        os.unlink(self.out)
        return {"s": s}


class Pickle(Worker):
    """Raw pickle, which is also all ipycache does on a hit (pickle.load of
    the saved variables), since ipycache 0.1.4 itself no longer imports."""

    def prepare(self):
        import pickle

        import numpy as np
        import pandas as pd

        makers = (("big.pkl", lambda: np.load(self.big_src)), ("df.pkl", lambda: pd.read_parquet(self.df_src)))
        for name, make in makers:
            path = os.path.join(self.d, name)
            if not os.path.exists(path):
                with open(path, "wb") as f:
                    pickle.dump(make(), f, protocol=5)

    def _load(self, name, read):
        import pickle

        t = time.perf_counter()
        with open(os.path.join(self.d, name), "rb") as f:
            value = pickle.load(f)
        if read:
            read(value)
        return {"s": time.perf_counter() - t} | mem()

    def load(self):
        return self._load("big.pkl", None)

    def load_read(self):
        return self._load("big.pkl", read_all)

    def df_load(self):
        return self._load("df.pkl", None)

    def df_load_read(self):
        return self._load("df.pkl", read_frame)


class Parquet(Worker):
    def df_load(self):
        import pandas as pd

        t = time.perf_counter()
        df = pd.read_parquet(self.df_src)
        return {"s": time.perf_counter() - t, "_": len(df)}

    def df_load_read(self):
        import pandas as pd

        t = time.perf_counter()
        read_frame(pd.read_parquet(self.df_src))
        return {"s": time.perf_counter() - t}


class Joblib(Worker):
    def __init__(self, d):
        super().__init__(d)
        import joblib
        import numpy as np

        def load_big(path):
            return np.load(path)

        self.plain = joblib.Memory(os.path.join(d, "joblib"), verbose=0).cache(load_big)
        self.mapped = joblib.Memory(os.path.join(d, "joblib"), verbose=0, mmap_mode="r").cache(load_big)

    def prepare(self):
        self.plain(self.big_src)

    def _hit(self, fn, read):
        t = time.perf_counter()
        arr = fn(self.big_src)
        if read:
            read(arr)
        return {"s": time.perf_counter() - t} | mem()

    def hit(self):
        return self._hit(self.plain, None)

    def hit_read(self):
        return self._hit(self.plain, read_all)

    def hit_mmap(self):
        return self._hit(self.mapped, None)

    def hit_mmap_read(self):
        return self._hit(self.mapped, read_all)


class JoblibHash(Worker):
    def __init__(self, d):
        super().__init__(d)
        import numpy as np

        self.big = np.load(self.big_src)

    def hash(self):
        import joblib

        t = time.perf_counter()
        joblib.hash(self.big)
        return {"s": time.perf_counter() - t}


class Marimo(Worker):
    """marimo's persistent_cache, inside a real marimo App run as a script."""

    def __init__(self, d):
        super().__init__(d)
        sys.path.insert(0, HERE)
        os.environ["BENCH_BIG_SRC"] = self.big_src
        os.environ["BENCH_MARIMO_DIR"] = os.path.join(d, "marimo")
        import marimo_app

        self.app = marimo_app.app

    def _run(self, read):
        os.environ["BENCH_READ"] = "1" if read else ""
        _, defs = self.app.run()
        return {"s": defs["elapsed"], "ran": defs["ran"]} | mem()

    def prepare(self):
        self._run(False)

    def hit(self):
        return self._run(False)

    def hit_read(self):
        return self._run(True)


class Ipycache(Worker):
    def check(self):
        try:
            import ipycache  # noqa: F401
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        return {"error": ""}


WORKERS = {
    "ours": Ours,
    "ours-keys": OursKeys,
    "objects": Objects,
    "ours-store": OursStore,
    "numpy": Numpy,
    "pickle": Pickle,
    "parquet": Parquet,
    "joblib": Joblib,
    "joblib-hash": JoblibHash,
    "marimo": Marimo,
    "ipycache": Ipycache,
}


def worker_main(name, d):
    out = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = open(os.devnull, "w")
    os.dup2(devnull.fileno(), 1)  # tools' own prints (status lines) go nowhere
    sys.stdout = devnull
    w = WORKERS[name](d)
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        op = line.strip()
        try:
            result = getattr(w, op)() if hasattr(w, op) else {}
        except Exception as exc:
            import traceback

            traceback.print_exc(file=sys.stderr)
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result = {k: v for k, v in (result or {}).items() if k != "_"}
        out.write(json.dumps(result) + "\n")


# ----------------------------------------------------------------------------
# The parent: data, workers, round-robin, table


class Proc:
    def __init__(self, name, d):
        self.name = name
        self.p = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", name, "--dir", d],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        ready = self.p.stdout.readline()
        if not ready:
            raise RuntimeError(f"worker {name} did not start")

    def __call__(self, op):
        self.p.stdin.write(op + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} died during {op}")
        return json.loads(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)


def drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def make_data(d):
    import numpy as np

    os.makedirs(d, exist_ok=True)
    big = os.path.join(d, "big.npy")
    if not os.path.exists(big):
        print("bench: writing 1 GiB of random float64 ...", file=sys.stderr)
        np.save(big + ".tmp.npy", np.random.default_rng(0).random(N_BIG))
        os.replace(big + ".tmp.npy", big)
    df = os.path.join(d, "df.parquet")
    if not os.path.exists(df):
        print("bench: writing the 1e6 x 10 DataFrame ...", file=sys.stderr)
        make_frame().to_parquet(df + ".tmp")
        os.replace(df + ".tmp", df)


#: One kernel restart: a new process, the cell's own import (numpy) done
#: first and not counted, then ``%load_ext`` and the cell, timed.
FIRST_HIT = """
import json, os, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell("import numpy as np")
cell = os.environ["BENCH_CELL"]
# main-thread CPU: numpy's OpenBLAS worker spins for a while after the
# import, and process_time() counted its spinning as ours (CPU > wall)
t, c = time.perf_counter(), time.thread_time()
if os.environ.get("BENCH_PLAIN"):
    ok = shell.run_cell(cell.split(chr(10), 1)[1]).success
    load = 0.0
else:
    shell.run_cell("%load_ext ipy_lazycache")
    load = time.perf_counter() - t
    ok = shell.run_cell(cell).success
print(json.dumps({"s": time.perf_counter() - t, "cpu": time.thread_time() - c, "load_ext": load, "ok": ok}))
"""


def first_hits(d, reps):
    """First hit after a restart against the first plain run of the same cell,
    each in a new process, alternating. Bytecode caches are on (as for a user;
    this machine's environment turns them off) and warmed by one untimed round."""
    where = os.path.join(d, "first-hit")
    os.makedirs(where, exist_ok=True)
    env = dict(os.environ, IPY_LAZYCACHE_DIR=os.path.join(where, "cache"))
    env["PYTHONPYCACHEPREFIX"] = os.path.join(where, "pyc")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("IPY_LAZYCACHE_STORE", None)
    env["BENCH_CELL"] = "%%lazycache\nsmall = np.arange(1e6)\n"
    out: dict[str, list] = {"ours": [], "plain": []}
    for rep in range(reps + 1):  # the first round stores the entry and compiles
        for kind in ("ours", "plain") if rep % 2 == 0 else ("plain", "ours"):
            e = dict(env, BENCH_PLAIN="1") if kind == "plain" else env
            proc = subprocess.run([sys.executable, "-c", FIRST_HIT], env=e, cwd=where, capture_output=True, text=True)
            ok = proc.returncode == 0
            r = json.loads(proc.stdout.strip().splitlines()[-1]) if ok else {"error": proc.stderr[-300:]}
            if rep:
                out[kind].append(r)
    return out


def machine_note() -> str:
    """Memory available now: with other work running, no timing here is an idle machine's."""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return f"{int(info['MemAvailable'].split()[0]) // 1024} MiB available"
    except (OSError, KeyError, ValueError):
        return "memory unknown"


def med(results, key="s"):
    vals = [r[key] for r in results if key in r]
    return statistics.median(vals) if vals else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.environ.get("IPY_LAZYCACHE_BENCH_DIR", "/var/tmp/ipy_lazycache_bench"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--store-reps", type=int, default=2, help="repetitions of the fsynced 1 GiB writes")
    ap.add_argument("--no-cold", action="store_true", help="skip the dropped-page-cache rows")
    ap.add_argument("--quick", action="store_true", help="2 repetitions, 1 fsynced write each, no cold rows")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    d = os.path.abspath(args.dir)
    if args.worker:
        return worker_main(args.worker, d)
    if args.quick:
        args.reps, args.store_reps, args.no_cold = min(args.reps, 2), 1, True

    started, load_start = time.time(), os.getloadavg()[0]
    make_data(d)
    import shutil

    for sub in ("lazycache", "lazycache-miss", "lazycache-objects", "joblib", "marimo", "first-hit"):  # all start empty
        shutil.rmtree(os.path.join(d, sub), ignore_errors=True)
    print("bench: starting one process per tool and filling their caches ...", file=sys.stderr)
    procs = {}
    for name in WORKERS:
        try:
            procs[name] = Proc(name, d)
        except RuntimeError as exc:  # a tool that is not installed: its rows say n/a
            if name.startswith("ours"):
                raise
            print(f"bench: {exc}; skipping it", file=sys.stderr)
    for name in ("ours", "ours-keys", "objects", "pickle", "joblib", "marimo"):
        if name not in procs:
            continue
        r = procs[name]("prepare")
        if "error" in r:
            raise SystemExit(f"{name} prepare failed: {r['error']}")
    ipycache_error = procs["ipycache"]("check").get("error") if "ipycache" in procs else "not run"

    res: dict[tuple, list] = collections.defaultdict(list)

    def rr(schedule, reps):
        """Round-robin: every (worker, op) once per repetition, in turn."""
        for rep in range(reps):
            order = schedule if rep % 2 == 0 else schedule[::-1]
            for proc, op in order:
                if proc not in procs:
                    continue
                r = procs[proc](op)
                if "error" in r:
                    print(f"bench: {proc}.{op}: {r['error']}", file=sys.stderr)
                res.setdefault((proc, op), []).append(r)

    print("bench: warm page cache, hot memory ...", file=sys.stderr)
    rr(
        [
            ("ours", "hit"),
            ("ours", "plain_map"),
            ("ours", "hit_read"),
            ("numpy", "load"),
            ("numpy", "load_read"),
            ("joblib", "hit"),
            ("joblib", "hit_read"),
            ("joblib", "hit_mmap"),
            ("joblib", "hit_mmap_read"),
            ("marimo", "hit"),
            ("marimo", "hit_read"),
            ("pickle", "load"),
            ("pickle", "load_read"),
            ("ours", "restore"),
            ("ours-store", "key_big"),
            ("joblib-hash", "hash"),
            ("ours", "df_hit"),
            ("ours", "df_hit_read"),
            ("parquet", "df_load"),
            ("parquet", "df_load_read"),
            ("pickle", "df_load"),
            ("pickle", "df_load_read"),
        ],
        args.reps,
    )
    trivial = [procs["ours"]("trivial") for _ in range(3)]
    auto = [procs["ours-keys"]("auto_cheap") for _ in range(3)]
    print("bench: keying, chains and big objects ...", file=sys.stderr)
    rr(
        [
            ("ours-keys", "key_plain"),
            ("ours-keys", "chain"),
            ("ours-keys", "chain_read"),
            ("ours-keys", "chain_read_plain"),
            ("objects", "store_fig"),
            ("objects", "pickle_fig"),
            ("objects", "hit_fig"),
            ("objects", "store_model"),
            ("objects", "store_records"),
            ("objects", "store_records_unchecked"),
            ("objects", "store_points"),
            ("objects", "store_points_unchecked"),
            ("objects", "pickle_model"),
            ("objects", "hit_model"),
        ],
        args.reps,
    )
    print("bench: first hit after a restart (new processes) ...", file=sys.stderr)
    first = first_hits(d, args.reps)
    print("bench: fsynced 1 GiB writes ...", file=sys.stderr)
    rr([("ours-store", "store_big"), ("numpy", "save")], args.store_reps)
    cold = {}
    if not args.no_cold:
        print("bench: cold page cache ...", file=sys.stderr)
        for _ in range(2):
            for proc, op in (("ours", "hit_read"), ("numpy", "load_read")):
                if not drop_caches():
                    cold = None
                    break
                cold.setdefault((proc, op), []).append(procs[proc](op))
            if cold is None:
                break
    for p in procs.values():
        p.close()

    # -- the table ----------------------------------------------------------
    def ms(x):
        return f"{x * 1000:.1f} ms" if x < 10 else f"{x:.2f} s"

    rows = []

    def row(what, ours, peer, peer_name, target=""):
        ratio = ours / peer if peer and peer == peer else float("nan")
        rows.append((what, ms(ours), peer_name, ms(peer) if peer == peer else "n/a", f"{ratio:.3f}x", target))

    hit, hit_read = med(res["ours", "hit"]), med(res["ours", "hit_read"])
    np_load, np_read = med(res["numpy", "load"]), med(res["numpy", "load_read"])
    restore = med(res["ours", "restore"])
    row("1 GiB def: restore alone (core.restore.restore+apply)", restore, np_load, "np.load", "≤ 2 ms, O(1)")
    row("1 GiB def: hit (whole %%lazycache run_cell)", hit, np_load, "np.load", "≤ 1.5 ms, O(1)")
    row("1 GiB def: hit (whole %%lazycache run_cell)", hit, med(res["ours", "plain_map"]),
        "plain run_cell of np.load(mmap_mode='c')", "floor")
    row("1 GiB def: hit + full read", hit_read, np_read, "np.load + read", "≤ 0.5x")
    row("1 GiB def: hit", hit, med(res["joblib", "hit"]), "joblib.Memory hit", "< 1x")
    row("1 GiB def: hit + full read", hit_read, med(res["joblib", "hit_read"]), "joblib.Memory hit + read")
    row("1 GiB def: hit", hit, med(res["joblib", "hit_mmap"]), "joblib.Memory(mmap_mode='r') hit", "< 1x")
    row("1 GiB def: hit + full read", hit_read, med(res["joblib", "hit_mmap_read"]), "joblib mmap hit + read")
    row("1 GiB def: hit", hit, med(res["marimo", "hit"]), "marimo persistent_cache hit", "< 1x")
    row("1 GiB def: hit + full read", hit_read, med(res["marimo", "hit_read"]), "marimo hit + read")
    row("1 GiB def: hit", hit, med(res["pickle", "load"]), "pickle.load (= ipycache's hit)", "< 1x")
    row("1 GiB def: hit + full read", hit_read, med(res["pickle", "load_read"]), "pickle.load + read")
    store, save = med(res["ours-store", "store_big"]), med(res["numpy", "save"])
    row("1 GiB def: miss (store, fsync)", store, save, "np.save + fsync", "≤ 1.15x")
    key, jh = med(res["ours-store", "key_big"]), med(res["joblib-hash", "hash"])
    row(f"1 GiB ref: key ({GIB / key / 1e9:.1f} GB/s)", key, jh,
        f"joblib.hash ({GIB / jh / 1e9:.2f} GB/s)", "≥ 15 GB/s")
    raw = med(res["ours-store", "key_big"], "raw")
    row(f"1 GiB ref: key ({GIB / key / 1e9:.1f} GB/s)", key, raw, f"raw xxh3-128 ({GIB / raw / 1e9:.1f} GB/s)", "bound")
    dfh, dfr = med(res["ours", "df_hit"]), med(res["ours", "df_hit_read"])
    row("1e6x10 DataFrame: hit", dfh, med(res["parquet", "df_load"]), "pd.read_parquet")
    row("1e6x10 DataFrame: hit", dfh, med(res["pickle", "df_load"]), "pickle.load")
    row("1e6x10 DataFrame: hit + full read", dfr, med(res["parquet", "df_load_read"]), "pd.read_parquet + read")
    row("1e6x10 DataFrame: hit + full read", dfr, med(res["pickle", "df_load_read"]), "pickle.load + read")
    t_hit = statistics.median(t["hit"] for t in trivial)
    t_plain = statistics.median(t["plain"] for t in trivial)
    rows.append(
        (
            "trivial cell: hit overhead", f"{(t_hit - t_plain) * 1000:.2f} ms", "plain run_cell", ms(t_plain),
            f"{t_hit / t_plain:.2f}x", "≤ 0.5 ms added",
        )
    )
    a_on = statistics.median(a["on"] for a in auto if "on" in a) if any("on" in a for a in auto) else float("nan")
    a_off = statistics.median(a["off"] for a in auto if "off" in a) if any("off" in a for a in auto) else float("nan")
    rows.append(
        (
            "auto mode: cheap plain cell reading a 1 GiB array", f"+{(a_on - a_off) * 1000:.2f} ms",
            "same cell, auto mode off", ms(a_off), f"{a_on / a_off:.2f}x", "≤ 0.5 ms added",
        )
    )
    kp, raw = med(res["ours-keys", "key_plain"]), med(res["ours-keys", "key_plain"], "raw")
    row(f"1 GiB ref: whole cell after a plain cell ({GIB / kp / 1e9:.1f} GB/s)", kp, raw,
        f"raw xxh3-128 ({GIB / raw / 1e9:.1f} GB/s)", "≥ 15 GB/s")
    row("chain: cached cell reading a restored 1 GiB def", med(res["ours-keys", "chain"]), t_plain, "plain run_cell",
        "≤ 5 ms, O(1)")
    row("chain, the restored 1 GiB read in full before", med(res["ours-keys", "chain_read"]), t_plain,
        "plain run_cell", "≤ 5 ms")
    row("chain, the restored 1 GiB read in full before", med(res["ours-keys", "chain_read"]),
        med(res["ours-keys", "chain_read_plain"]), "same cell, plain, after the same read", "floor")
    for key, what in (("s", "wall"), ("cpu", "CPU")):
        fo, fp = med(first["ours"], key), med(first["plain"], key)
        rows.append(
            (
                f"first hit after a restart (%load_ext + hit), {what}", ms(fo), "first plain run_cell", ms(fp),
                f"+{(fo - fp) * 1000:.0f} ms", "≤ 20 ms beyond the cell's imports",
            )
        )
    for kind, what in (("fig", "`fig, ax`, 8x8 subplots"), ("model", "fitted random forest")):
        pk = res["objects", f"pickle_{kind}"]
        size = max(r.get("bytes", 0) for r in pk)
        row(f"{what} ({size / 2**20:.0f} MiB pickled): store", med(res["objects", f"store_{kind}"]), med(pk),
            "pickle.dumps + write + fsync", "≤ 2x (≥ 0.5x speed)")
        row(f"{what}: hit", med(res["objects", f"hit_{kind}"]), med(pk, "load"), "pickle.load")
    # The fig and the forest are not decoded by the check (a figure registers with pyplot; the forest pickles over
    # CHECKED_BYTES), nor builtins (exact by construction); notebook objects near CHECKED_BYTES are its worst case.
    for kind, what in (("records", "3600 dicts (builtins)"), ("points", "3000 notebook objects, 200 KiB")):
        row(f"{what}: miss (run + store)", med(res["objects", f"store_{kind}"], "miss"),
            med(res["objects", f"store_{kind}_unchecked"], "miss"), "same miss, round-trip check off", "≤ 1.25x")
    if cold:
        ch, cn = med(cold["ours", "hit_read"]), med(cold["numpy", "load_read"])
        row("1 GiB def, COLD cache: hit + full read", ch, cn, "np.load + read (cold)", "≤ 1.1x")

    head = ("what", "ipy_lazycache", "vs", "their time", "ratio", "target")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(6)]
    fmt = "| " + " | ".join(f"{{:{w}}}" for w in widths) + " |"
    print(fmt.format(*head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(fmt.format(*r))
    peak_ours = max(r.get("anon_delta", 0) for r in res["ours", "hit_read"])
    peak_np = max(r.get("anon_delta", 0) for r in res["numpy", "load_read"])
    print()
    print(
        f"Memory: anonymous RSS added by a 1 GiB hit + full read: ipy_lazycache {peak_ours / 2**20:.0f} MiB "
        f"(the pages are the file's, shared with the page cache), np.load + read {peak_np / 2**20:.0f} MiB "
        "(max over repetitions)."
    )
    print(
        f"Medians of {args.reps} round-robin repetitions ({args.store_reps} for the fsynced writes), "
        "one process per tool; "
        f"hot memory; page cache warm"
        + (
            ", and dropped (echo 3 > /proc/sys/vm/drop_caches) before each COLD row."
            if cold
            else (" (dropping it was not allowed here, so no cold row)." if cold is None else "; cold rows skipped.")
        )
    )
    ran = [r.get("ran") for r in res["marimo", "hit"]]
    print(f"marimo: body ran on {sum(bool(x) for x in ran)} of {len(ran)} timed hits (0 means all were real hits).")
    print(
        f"ipycache 0.1.4: does not import on this Python ({ipycache_error}); "
        "its hit is a pickle.load, measured as such."
    )
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; load average {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end ({machine_note()}); total {time.time() - started:.0f} s."
    )


if __name__ == "__main__":
    main()
