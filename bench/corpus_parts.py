"""Which part of a ref keys differently in two kernels (a corpus cell that misses warm).

    PYTHONPATH=$PWD .venv/bin/python bench/corpus_parts.py statsmodels_glm 13 res [--mode auto] [--depth 4]

Runs the notebook cold, then warm, in new kernels on one cache folder (as ``bench/corpus.py`` does), with a
probe cell before code cell N that writes the content digest (:func:`ipy_lazycache.hashing.value_hash`) of
each named value and of its attributes and dict items down to ``--depth``; prints the paths whose digests
differ. The probe reads ``globals()``, so it is never cached and runs in both kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import nbformat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus_nb import execute, variant  # noqa: E402  (bench/corpus_nb.py, beside this file)

NOTEBOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "notebooks")

PROBE = r'''
def _lazycache_parts(names, depth, out_path):
    import json
    from ipy_lazycache.hashing import value_hash

    def digest(x):
        try:
            return value_hash(x)[:12]
        except Exception as exc:  # an unhashable part: its kind
            return type(exc).__name__

    def walk(obj, path, left, out):
        out[path] = digest(obj)
        if left == 0:
            return
        own = getattr(obj, "__dict__", None)
        items = own.items() if isinstance(own, dict) else obj.items() if isinstance(obj, dict) else ()
        for k, v in list(items):
            walk(v, f"{path}.{k}" if own is not None else f"{path}[{k!r}]", left - 1, out)

    out = {}
    for name in names:
        walk(globals()[name], name, depth, out)
    with open(out_path, "w") as f:
        json.dump(out, f)
_lazycache_parts(%r, %d, %r)
'''


def run(name: str, cell: int, names: list, mode: str, depth: int) -> dict:
    nb = nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    digests = {}
    with tempfile.TemporaryDirectory(prefix="corpus-parts-") as cache:
        os.environ["IPY_LAZYCACHE_DIR"] = cache
        for phase in ("cold", "warm"):
            out = os.path.join(cache, f"{phase}.json")
            probed = nbformat.from_dict(json.loads(json.dumps(nb)))
            probed.cells.insert(code[cell], nbformat.v4.new_code_cell(PROBE % (names, depth, out)))
            execute(variant(probed, mode), 300)
            with open(out) as f:
                digests[phase] = json.load(f)
    return digests


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook")
    parser.add_argument("cell", type=int, help="code cell index (as in the corpus's reports)")
    parser.add_argument("names", nargs="+", help="the cell's refs to describe")
    parser.add_argument("--mode", default="auto", choices=("auto", "magic"))
    parser.add_argument("--depth", type=int, default=4)
    args = parser.parse_args()
    digests = run(args.notebook, args.cell, args.names, args.mode, args.depth)
    cold, warm = digests["cold"], digests["warm"]
    for path in sorted(set(cold) | set(warm)):
        if cold.get(path) != warm.get(path):
            print(f"{path}: cold {cold.get(path)} warm {warm.get(path)}")


if __name__ == "__main__":
    main()
