"""A pre-forked pool for crash and concurrency tests.

Run as a script, this process imports IPython, numpy and ipy_lazycache once,
then forks a child per request, so each child is a fresh session started in
milliseconds. Protocol, one JSON object per line on stdin, one reply per
line on stdout:

- ``{"op": "fork", "role": ..., "cwd": ..., "out": ..., ...}`` -> ``{"pid": N}``.
  The child runs ``role`` in a new real InteractiveShell (see :func:`child`)
  and writes its findings as JSON to ``out``.
- ``{"op": "wait", "pid": N}`` -> ``{"pid": N, "signal": S, "code": C}``.
- ``{"op": "quit"}``.

The cached cell stores about 20 MB in five defs (two ``.npy`` blobs, three
pickles). Every def carries one random ``token`` chosen by the run, so a
restore that mixes two runs, or any torn blob, shows up as inconsistent
values.
"""

import json
import os
import sys
import traceback

N_FLOAT = 1_500_000  # 12 MB
N_INT = 750_000  # 6 MB
N_BYTES = 2_000_000  # 2 MB pickle

CELL = """%%lazycache OPTIONS
import os
import numpy as np
open("runs-%d.txt" % os.getpid(), "a").write("run\\n")
token = int.from_bytes(os.urandom(4), "little")
floats = np.full(N_FLOAT, float(token))
ints = np.arange(N_INT, dtype=np.int64) + token
raw = token.to_bytes(4, "little") * (N_BYTES // 4)
table = {"token": token, "items": [token + i for i in range(20000)]}
""".replace("N_FLOAT", str(N_FLOAT)).replace("N_INT", str(N_INT)).replace("N_BYTES", str(N_BYTES))


def cell(force=False):
    return CELL.replace("OPTIONS", "--force" if force else "").replace("%%lazycache \n", "%%lazycache\n")


def check_values(ns):
    """None if the namespace holds one whole run's values, else what is wrong."""
    import numpy as np

    try:
        token = ns["token"]
        if not isinstance(token, int):
            return f"token is {type(token)}"
        f, i, raw, table = ns["floats"], ns["ints"], ns["raw"], ns["table"]
        if f.shape != (N_FLOAT,) or not np.all(f == float(token)):
            return "floats do not match the token"
        if i.shape != (N_INT,) or not np.array_equal(i, np.arange(N_INT, dtype=np.int64) + token):
            return "ints do not match the token"
        if raw != token.to_bytes(4, "little") * (N_BYTES // 4):
            return "raw does not match the token"
        if table != {"token": token, "items": [token + k for k in range(20000)]}:
            return "table does not match the token"
    except Exception as exc:  # noqa: BLE001 - report anything
        return f"{type(exc).__name__}: {exc}"
    return None


def _runs():
    try:
        with open(f"runs-{os.getpid()}.txt") as fh:
            return len(fh.read().splitlines())
    except FileNotFoundError:
        return 0


def run_cell(shell, force=False):
    """Run the cached cell once; return what happened."""
    import io
    from contextlib import redirect_stdout

    before = _runs()
    for name in ("token", "floats", "ints", "raw", "table"):
        shell.user_ns.pop(name, None)
    buf = io.StringIO()
    with redirect_stdout(buf):
        result = shell.run_cell(cell(force), store_history=False)
    out = buf.getvalue()
    return {
        "success": bool(result.success),
        "error": repr(result.error_in_exec or result.error_before_exec) if not result.success else None,
        "ran": _runs() > before,
        "problem": check_values(shell.user_ns),
        "status": [line for line in out.splitlines() if line.startswith("lazycache:")],
    }


def new_shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.enabled = False
    shell = InteractiveShell(config=cfg)
    shell.run_cell("%load_ext ipy_lazycache", store_history=False)
    return shell


def child(req):
    os.chdir(req["cwd"])
    if req.get("env"):
        os.environ.update(req["env"])
    shell = new_shell()
    role = req["role"]
    results = []
    if role == "writer":  # killed somewhere in here
        open(req["out"] + ".started", "w").close()
        results.append(run_cell(shell, force=req.get("force", False)))
    elif role == "checker":  # a next session: run the cell, then again
        results.append(run_cell(shell))
        results.append(run_cell(shell))
    elif role == "mixed":  # concurrency: random reads and forced writes
        import random

        rng = random.Random(os.getpid())
        for _ in range(req["rounds"]):
            results.append(run_cell(shell, force=rng.random() < req.get("write_share", 0.5)))
    with open(req["out"] + ".tmp", "w") as fh:
        json.dump(results, fh)
    os.replace(req["out"] + ".tmp", req["out"])


def main():
    import IPython.core.interactiveshell  # noqa: F401
    import numpy  # noqa: F401 - imported once, before forking

    import ipy_lazycache.magics  # noqa: F401

    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            break
        if req["op"] == "fork":
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    child(req)
                except BaseException:
                    traceback.print_exc()
                    code = 1
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            reply = {"pid": pid}
        elif req["op"] == "wait":
            _, status = os.waitpid(req["pid"], 0)
            reply = {
                "pid": req["pid"],
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            }
        else:
            reply = {"error": f"unknown op {req['op']!r}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


class Pool:
    """The test side: talks to one zygote process."""

    def __init__(self):
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def _ask(self, req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the zygote died")
        return json.loads(line)

    def fork(self, **req):
        return self._ask({"op": "fork", **req})["pid"]

    def wait(self, pid):
        return self._ask({"op": "wait", "pid": pid})

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=30)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
