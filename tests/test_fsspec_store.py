"""FsspecStore, the guarded remote tier and the tiered composition, on
in-process filesystems (memory://, file://); and the configuration of a
shared store through a real InteractiveShell. The S3 server tests are in
``test_s3.py``."""

import uuid

import pytest

from ipy_lazycache import platform
from ipy_lazycache.stores import FileStore, InvalidKey, TieredStore
from ipy_lazycache.stores.base import StoreUnavailable
from ipy_lazycache.stores.fsspec_store import FsspecStore, Guarded, remote_tier, settings

BODY = 'open("runs.txt", "a").write("run\\n")\n'


@pytest.fixture(params=["memory", "file"])
def url(request, tmp_path):
    if request.param == "memory":
        return f"memory://lazycache-{uuid.uuid4().hex}/prefix"
    # A shared folder must exist (issue 22: a store URL is never created, so
    # a missing mount is not silently replaced by a new local folder).
    (tmp_path / "remote").mkdir()
    return (tmp_path / "remote").as_uri()


def test_store_contract(url):
    s = FsspecStore(url)
    assert s.get("k/a.pkl") is None and not s.has("k/a.pkl")
    s.put("k/a.pkl", b"hello")
    s.put("k/b.npy", [b"ab", memoryview(b"cd")])
    assert s.get("k/a.pkl") == b"hello" and s.get("k/b.npy") == b"abcd" and s.has("k/b.npy")
    assert s.get_many(["k/a.pkl", "k/nope", "k/b.npy"]) == {"k/a.pkl": b"hello", "k/nope": None, "k/b.npy": b"abcd"}
    assert sorted(s.keys("k/")) == ["k/a.pkl", "k/b.npy"] and list(s.keys("zz/")) == []
    s.delete("k/a.pkl")
    s.delete("k/a.pkl")  # absent: no error
    assert not s.has("k/a.pkl")


@pytest.mark.parametrize("key", ["../x", "/abs", "a\\b", "a//b", "a/./b", ""])
def test_hostile_keys_are_refused(url, key):
    s = FsspecStore(url)
    for op in (lambda: s.get(key), lambda: s.put(key, b"x"), lambda: s.has(key), lambda: s.delete(key)):
        with pytest.raises(InvalidKey):
            op()
    g = remote_tier(url)
    with pytest.raises(InvalidKey):
        g.get(key)


def test_read_only_store_refuses_writes(url):
    s = FsspecStore(url, readonly=True)
    assert not s.writable
    with pytest.raises(PermissionError):
        s.put("k/a", b"x")


def test_tiered_write_through_streams_and_holds_the_manifest(url, tmp_path):
    remote = FsspecStore(url)
    local = FileStore(tmp_path / "local")
    t = TieredStore([local, remote], write_through=True, hold=lambda k: k.endswith("/manifest.json"))
    t.put("e/big.npy", [b"x" * 1000])
    t.put("e/manifest.json", b"{}")
    assert remote.get("e/big.npy") == b"x" * 1000 and remote.get("e/manifest.json") == b"{}"

    other = FileStore(tmp_path / "other")
    t2 = TieredStore([other, remote], write_through=True, hold=lambda k: k.endswith("/manifest.json"))
    assert t2.get("e/manifest.json") == b"{}"
    assert not other.has("e/manifest.json"), "a manifest reaches the local folder only once its entry does"
    paths = t2.fetch_paths(["e/big.npy", "e/missing.npy"])
    assert list(paths) == ["e/big.npy"] and paths["e/big.npy"].read_bytes() == b"x" * 1000
    assert not [p for p in (tmp_path / "other" / "e").iterdir() if p.name.startswith(".tmp-")]
    t2.settle("e/manifest.json")
    assert other.get("e/manifest.json") == b"{}"


def test_a_newer_put_drops_a_held_manifest(url, tmp_path):
    remote = FsspecStore(url)
    remote.put("e/manifest.json", b"old")
    local = FileStore(tmp_path / "local")
    t = TieredStore([local, remote], write_through=True, hold=lambda k: k.endswith("/manifest.json"))
    assert t.get("e/manifest.json") == b"old"
    t.put("e/manifest.json", b"new")
    t.settle("e/manifest.json")
    assert local.get("e/manifest.json") == b"new" and remote.get("e/manifest.json") == b"new"


class Broken:
    """A remote that fails every call, counting them."""

    writable = True

    def __init__(self, exc):
        self.exc, self.calls = exc, 0

    def __getattr__(self, name):
        def fail(*a, **k):
            self.calls += 1
            raise self.exc

        return fail


def test_guard_warns_once_then_leaves_the_remote_alone():
    said = []
    broken = Broken(ConnectionError("connection refused"))
    g = Guarded("s3://b/p", lambda: broken, say=said.append, retry_after=60)
    assert g.get("k/manifest.json") is None
    assert g.get("k2/manifest.json") is None
    g.put("k/a.pkl", b"x")
    assert not g.has("k/a.pkl") and list(g.keys()) == []
    with pytest.raises(StoreUnavailable):
        g.get_many(["k/a.pkl"])
    assert broken.calls == 1, "a down remote is not asked again within retry_after"
    assert said == ["lazycache: the shared store s3://b/p is unavailable (ConnectionError: connection refused); "
                    "using the local cache only for now."]


def test_guard_never_writes_a_manifest_after_a_lost_blob():
    class Flaky:
        writable = True

        def __init__(self):
            self.data, self.fail_next = {}, True

        def put(self, key, data):
            if self.fail_next:
                self.fail_next = False
                raise TimeoutError("slow")
            self.data[key] = data

    flaky = Flaky()
    g = Guarded("s3://flaky-" + uuid.uuid4().hex, lambda: flaky, say=lambda s: None, retry_after=0)
    g.put("e/a.pkl", b"a")  # lost
    g.put("e/manifest.json", b"{}")  # the remote answers again, but this entry is incomplete there
    g.put("f/manifest.json", b"{}")  # other entries are fine
    assert flaky.data == {"f/manifest.json": b"{}"}


def test_guard_reports_a_missing_fsspec_as_one_line(monkeypatch):
    said = []

    def factory():
        raise ImportError("No module named 's3fs'", name="s3fs")

    g = Guarded("s3://nofs", factory, say=said.append)
    assert g.get("k/manifest.json") is None
    assert said == ["lazycache: the shared store s3://nofs needs s3fs: pip install 'ipy_lazycache[remote]'; "
                    "using the local cache only for now."]


def test_settings_from_the_environment(monkeypatch):
    for name in ("STORE", "STORE_READONLY", "STORE_OPTIONS", "STORE_TIMEOUT"):
        monkeypatch.delenv(f"IPY_LAZYCACHE_{name}", raising=False)
    assert settings() is None
    monkeypatch.setenv("IPY_LAZYCACHE_STORE", "s3://b/p")
    monkeypatch.setenv("IPY_LAZYCACHE_STORE_READONLY", "1")
    monkeypatch.setenv("IPY_LAZYCACHE_STORE_OPTIONS", '{"anon": true}')
    monkeypatch.setenv("IPY_LAZYCACHE_STORE_TIMEOUT", "4")
    assert settings() == {"url": "s3://b/p", "readonly": True, "options": {"anon": True}, "timeout": 4.0}
    assert settings("none") is None  # an explicit choice beats the environment
    assert settings("gs://x", readonly=False)["readonly"] is False


def test_endpoint_from_the_environment(monkeypatch):
    pytest.importorskip("s3fs")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    s = FsspecStore("s3://bucket/p", timeout=3)
    assert s.fs.endpoint_url == "http://127.0.0.1:9"
    assert s.fs.config_kwargs["connect_timeout"] == 3 and s.fs.config_kwargs["read_timeout"] == 3
    assert FsspecStore("s3://bucket/p", endpoint="http://127.0.0.1:8").fs.endpoint_url == "http://127.0.0.1:8"


def test_store_option_and_config_through_the_shell(run, shell, runs, url, monkeypatch, tmp_path):
    monkeypatch.delenv("IPY_LAZYCACHE_STORE", raising=False)
    cell = f"%%lazycache --store {url}\n" + BODY + "x = 6 * 7\n"
    first = run(cell)
    assert first.success and runs() == 1
    remote = FsspecStore(url)
    assert any(k.endswith("/manifest.json") for k in remote.keys())

    # A fresh local folder: the entry comes from the remote, and is copied locally.
    shell.run_cell(f"%config LazyCache.dir = {str(tmp_path / 'fresh')!r}")
    shell.user_ns.pop("x")
    second = run(cell)
    assert runs() == 1 and shell.user_ns["x"] == 42, second.out
    assert list((tmp_path / "fresh").glob("*/manifest.json"))

    # %config LazyCache.store, read-only: a miss is stored locally only.
    before = sorted(remote.keys())
    shell.run_cell(f"%config LazyCache.store = {url!r}")
    shell.run_cell("%config LazyCache.store_readonly = True")
    third = run("%%lazycache\n" + BODY + "y = 1\n")
    assert third.success and runs() == 2
    assert sorted(remote.keys()) == before
    assert len(list((tmp_path / "fresh").glob("*/manifest.json"))) == 2


def test_platform_builds_one_tiered_store_per_configuration(tmp_path, url):
    a = platform.store_for(str(tmp_path / "c"), remote=url)
    assert a is platform.store_for(str(tmp_path / "c"), remote=url)
    assert isinstance(a, TieredStore) and isinstance(a.tiers[0], FileStore) and a.write_through
    ro = platform.store_for(str(tmp_path / "c"), remote=url, remote_readonly=True)
    assert ro is not a and not ro.write_through and not ro.tiers[1].writable
    assert ro.tiers[0] is a.tiers[0]
    assert platform.store_for(str(tmp_path / "c"), remote="none") is a.tiers[0]


def test_max_size_prunes_the_local_folder_never_the_shared_store(run, shell, runs, url, monkeypatch, tmp_path):
    """LazyCache.max_size bounds this machine's folder; the team's entries stay."""
    monkeypatch.delenv("IPY_LAZYCACHE_STORE", raising=False)
    run('%config LazyCache.max_size = "500K"')
    for n in (1, 2):
        assert run(f"%%lazycache --store {url}\n" + BODY + f"blob{n} = bytes(400_000)\n").success
    remote_manifests = [k for k in FsspecStore(url).keys() if k.endswith("/manifest.json")]
    local_manifests = list((tmp_path / "__lazycache__").glob("*/manifest.json"))
    assert runs() == 2
    assert len(remote_manifests) == 2, "the shared store must not be pruned"
    assert len(local_manifests) == 1, "the local folder is pruned to max_size"
