"""A team's shared cache on S3-compatible object storage, end to end.

A real S3 server (moto's ``ThreadedMotoServer``) listens on 127.0.0.1. Each
"machine" is its own process running a real InteractiveShell, with its own
working directory and local cache folder (``tests/_machine.py``). A hit is
proven by a side effect no cache restores: the body appends to a file whose
path is a string constant in the cell.
"""

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "_machine.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto's S3 server in a thread on 127.0.0.1 (its data lives in this
    process, so a server restarted on the same port sees the same buckets)."""

    def __init__(self, port=None):
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self.port = port or free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self._server.stop()

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    def bucket(self, name):
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket):
        listing = self.client().list_objects_v2(Bucket=bucket)
        return sorted(o["Key"] for o in listing.get("Contents", []))


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    yield server
    server.stop()


_buckets = iter(range(10**6))


@pytest.fixture
def bucket(s3, request):
    return s3.bucket(f"team-{next(_buckets)}-{request.node.name[:30].replace('_', '-').lower()}")


class Machine:
    """A process with a real InteractiveShell, its own folders, one cell at a time."""

    def __init__(self, home: Path, endpoint: str, store: str, **env):
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.cache = home / "local-cache"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IPY_LAZYCACHE_"))}
        base.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=endpoint,
            AWS_CONFIG_FILE=str(home / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            IPYTHONDIR=str(home / "ipython"),
            IPY_LAZYCACHE_DIR=str(self.cache),
            IPY_LAZYCACHE_STORE=store,
            IPY_LAZYCACHE_STORE_TIMEOUT="3",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        base.update(env)
        self._stderr = open(home / "stderr.txt", "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER)], cwd=home, env=base, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def run(self, cell, values=(), timeout=120):
        self.proc.stdin.write(json.dumps({"cell": cell, "values": list(values)}) + "\n")
        self.proc.stdin.flush()
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the cell did not finish within {timeout} s (a hang)") from None
        assert line is not None, (self.home / "stderr.txt").read_text()
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._stderr.close()


@pytest.fixture
def machines():
    started = []

    def start(*args, **kwargs):
        m = Machine(*args, **kwargs)
        started.append(m)
        return m

    yield start
    for m in started:
        m.close()


def runs_of(path) -> int:
    try:
        return len(Path(path).read_text().splitlines())
    except FileNotFoundError:
        return 0


def user_lines(out: str):
    """What the cell showed, without lazycache's own status lines."""
    return [line for line in out.splitlines() if not line.startswith("lazycache:")]


def status(out: str):
    return [line for line in out.splitlines() if line.startswith("lazycache:")]


def big_cell(runs):
    return (
        "%%lazycache\n"
        "import numpy as np\n"
        f"open({str(runs)!r}, 'a').write('run\\n')\n"
        "big = np.arange(3_000_000, dtype=np.float64) * 2\n"
        "meta = {'n': len(big), 'label': 'team', 'first': big[:3].tolist()}\n"
        "print('computed', big.sum())\n"
        "from IPython.display import HTML, display\n"
        "display(HTML('<b>shared</b>'))\n"
        "meta['n']\n"
    )


def test_second_machine_hits_the_first_machines_entry(s3, bucket, machines, tmp_path):
    runs = tmp_path / "runs.txt"
    url = f"s3://{bucket}/team-cache"
    cell = big_cell(runs)

    first = machines(tmp_path / "alice", s3.endpoint, url)
    a = first.run(cell, values=["big", "meta"])
    assert a["success"], a["out"]
    assert runs_of(runs) == 1
    assert any(line.startswith("lazycache: stored") for line in status(a["out"])), a["out"]
    remote = s3.objects(bucket)
    manifests = [k for k in remote if k.endswith("/manifest.json")]
    assert len(manifests) == 1, remote
    key = manifests[0].split("/")[1]
    remote_blobs = sorted(k.split("/", 2)[2] for k in remote if k.split("/")[1] == key and not k.endswith(".json"))
    assert any(b.endswith(".npy") for b in remote_blobs), remote_blobs

    second = machines(tmp_path / "bob", s3.endpoint, url)
    assert not (second.cache / key).exists()
    b = second.run(cell, values=["big", "meta"])
    assert b["success"], b["out"]
    assert runs_of(runs) == 1, "the second machine must hit, not run the body"
    assert [l for l in status(b["out"]) if l.startswith("lazycache: restored")], b["out"]
    assert user_lines(b["out"]) == user_lines(a["out"])
    assert "computed 8999997000000.0" in b["out"] and "<IPython.core.display.HTML object>" in b["out"]
    for name in ("big", "meta"):
        assert b["values"][name]["hash"] == a["values"][name]["hash"], name
        assert b["values"][name]["repr"] == a["values"][name]["repr"], name
    # The large array was streamed into the local folder and mapped from there.
    assert b["values"]["big"]["type"] == "ndarray" and b["values"]["big"]["mapped"]

    # Bob's local tier now holds the whole entry, manifest included.
    local = sorted(p.name for p in (second.cache / key).iterdir() if not p.name.startswith((".", "used")))
    assert "manifest.json" in local
    assert set(remote_blobs) <= set(local), (remote_blobs, local)

    # ... and serves it with no remote at all, in a new session.
    second.close()
    offline = machines(tmp_path / "bob", s3.endpoint, "none")
    c = offline.run(cell, values=["big"])
    assert c["success"] and runs_of(runs) == 1, c["out"]
    assert c["values"]["big"]["hash"] == a["values"]["big"]["hash"]


def test_read_only_remote_is_read_but_never_written(s3, bucket, machines, tmp_path):
    runs = tmp_path / "runs.txt"
    url = f"s3://{bucket}/ro"
    writer = machines(tmp_path / "writer", s3.endpoint, url)
    assert writer.run(f"%%lazycache\nopen({str(runs)!r}, 'a').write('run\\n')\nx = 41 + 1\n")["success"]
    before = s3.objects(bucket)

    reader = machines(tmp_path / "reader", s3.endpoint, url, IPY_LAZYCACHE_STORE_READONLY="1")
    hit = reader.run(f"%%lazycache\nopen({str(runs)!r}, 'a').write('run\\n')\nx = 41 + 1\n", values=["x"])
    assert hit["values"]["x"]["repr"] == "42" and runs_of(runs) == 1
    miss = reader.run(f"%%lazycache --store-readonly\nopen({str(runs)!r}, 'a').write('run\\n')\ny = 7\n", values=["y"])
    assert miss["success"] and runs_of(runs) == 2
    assert any(l.startswith("lazycache: stored") for l in status(miss["out"]))
    assert s3.objects(bucket) == before, "a read-only remote must not be written"
    assert len(list(reader.cache.glob("*/manifest.json"))) == 2  # both entries are local


def test_server_stopped_mid_session_falls_back_without_hanging(bucket, machines, tmp_path, s3):
    server = S3Server()  # our own, to stop
    server.bucket(bucket)
    runs = tmp_path / "runs.txt"
    url = f"s3://{bucket}/c"
    m = machines(tmp_path / "m", server.endpoint, url)

    def cell(n):
        return f"%%lazycache\nopen({str(runs)!r}, 'a').write('run\\n')\nv{n} = {n} * 10\nprint('v{n} =', v{n})\n"

    first = m.run(cell(1))
    assert first["success"] and runs_of(runs) == 1
    server.stop()
    try:
        after = m.run(cell(2), timeout=60)
        again = m.run(cell(3), timeout=60)
        hit = m.run(cell(1), values=["v1"], timeout=60)
    finally:
        restarted = S3Server(server.port)  # same process, same buckets
    assert after["success"] and "v2 = 20" in after["out"]
    warnings = [l for l in status(after["out"] + again["out"] + hit["out"]) if "shared store" in l]
    assert len(warnings) == 1, warnings
    assert "is unavailable" in warnings[0] and "local cache only" in warnings[0]
    assert after["seconds"] < 15 and again["seconds"] < 2 and hit["seconds"] < 2
    assert runs_of(runs) == 3 and hit["values"]["v1"]["repr"] == "10", "the local tier still hits"
    # Nothing half-written reached the bucket: only the first entry is there, whole.
    try:
        manifests = [k for k in restarted.objects(bucket) if k.endswith("manifest.json")]
    finally:
        restarted.stop()
    assert len(manifests) == 1


def test_slow_server_is_bounded_by_the_timeout(bucket, machines, tmp_path):
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    runs = tmp_path / "runs.txt"
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        m = machines(tmp_path / "m", endpoint, f"s3://{bucket}/slow", IPY_LAZYCACHE_STORE_TIMEOUT="2")
        slow = m.run(f"%%lazycache\nopen({str(runs)!r}, 'a').write('run\\n')\nz = 5\n", timeout=60)
        then = m.run(f"%%lazycache\nopen({str(runs)!r}, 'a').write('run\\n')\nw = 6\n", timeout=60)
    finally:
        listener.close()
        for conn in held:
            conn.close()
    assert slow["success"] and then["success"] and runs_of(runs) == 2
    warnings = [l for l in status(slow["out"] + then["out"]) if "shared store" in l]
    assert warnings == [f"lazycache: the shared store s3://{bucket}/slow did not answer within 2 s; "
                        "using the local cache only for now."]
    assert slow["seconds"] < 6, slow["seconds"]
    assert then["seconds"] < 1, then["seconds"]


def test_wrong_credentials_give_one_clear_line(s3, bucket, machines, tmp_path):
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    runs = tmp_path / "runs.txt"
    previous = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # moto checks credentials from now on
    ActionAuthenticatorMixin.request_count = 0
    try:
        m = machines(tmp_path / "m", s3.endpoint, f"s3://{bucket}/x", AWS_ACCESS_KEY_ID="AKIAWRONGWRONGWRONG0")
        one = m.run(f"%%lazycache\nopen({str(runs)!r}, 'a').write('run\\n')\nq = 1\n")
        two = m.run(f"%%lazycache\nopen({str(runs)!r}, 'a').write('run\\n')\nr = 2\n")
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = previous
    assert one["success"] and two["success"] and runs_of(runs) == 2
    lines = [l for l in status(one["out"] + two["out"]) if "shared store" in l]
    assert len(lines) == 1, lines
    assert "refused access" in lines[0] and "check your credentials" in lines[0], lines[0]
    assert "InvalidAccessKeyId" in lines[0] or "Access Key" in lines[0], lines[0]
    assert one["seconds"] < 10


def test_tampered_object_is_refused_when_signing_is_on(s3, bucket, machines, tmp_path):
    """Someone with write access to the bucket but not the team's key swaps
    a pickle for a malicious one and fixes up the (unkeyed) digests."""
    import hashlib

    import xxhash

    runs, pwned = tmp_path / "runs.txt", tmp_path / "pwned"
    url = f"s3://{bucket}/signed"
    cell = f"%%lazycache\nopen({str(runs)!r}, 'a').write('run\\n')\nsettings = {{'lr': 0.1, 'name': 'team'}}\n"
    alice = machines(tmp_path / "alice", s3.endpoint, url, IPY_LAZYCACHE_KEY="team-secret")
    assert alice.run(cell)["success"] and runs_of(runs) == 1

    client = s3.client()
    [mkey] = [k for k in s3.objects(bucket) if k.endswith("manifest.json")]
    manifest = json.loads(client.get_object(Bucket=bucket, Key=mkey)["Body"].read())
    assert manifest.get("signature")
    [(blob_name, blob)] = [(n, b) for n, b in manifest["blobs"].items() if b["codec"] == "pickle"]
    import pickle

    class Evil:
        def __reduce__(self):
            return (open, (str(pwned), "w"))

    evil = pickle.dumps(Evil())
    blob.update(size=len(evil), digest=xxhash.xxh3_128(evil).hexdigest(), sha256=hashlib.sha256(evil).hexdigest())
    client.put_object(Bucket=bucket, Key=mkey.rsplit("/", 1)[0] + "/" + blob_name, Body=evil)
    client.put_object(Bucket=bucket, Key=mkey, Body=json.dumps(manifest).encode())

    bob = machines(tmp_path / "bob", s3.endpoint, url, IPY_LAZYCACHE_KEY="team-secret")
    b = bob.run(cell, values=["settings"])
    assert b["success"], b["out"]
    assert not pwned.exists(), "a tampered pickle was loaded"
    assert runs_of(runs) == 2, "the tampered entry must be a miss"
    assert any("not trusted" in l and "signature does not match" in l for l in status(b["out"])), b["out"]
    assert b["values"]["settings"]["repr"] == "{'lr': 0.1, 'name': 'team'}"
    key = mkey.split("/")[1]
    local = json.loads((bob.cache / key / "manifest.json").read_text())
    assert local["blobs"] != manifest["blobs"], "the tampered manifest must not reach the local folder"
