"""Signed manifests: a tampered pickle is never unpickled under on/strict."""

import hashlib
import json
import os
import pickle

import pytest
import xxhash
from IPython.core.error import UsageError

from ipy_lazycache import cli, signing

BODY = 'open("runs.txt", "a").write("run\\n")\n'
CELL = "%%lazycache\n" + BODY + "obj = {'a': list(range(100))}\nimport numpy as np\narr = np.arange(10)\n"


class Payload:
    """Unpickling this runs a shell command with a visible side effect."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def entry():
    (d,) = [os.path.join("__lazycache__", n) for n in os.listdir("__lazycache__") if len(n) == 32]
    return d


def tamper(d, marker):
    """What an attacker with write access but no key can do: swap a pickle
    for a payload and fix every unkeyed digest in the manifest to match."""
    payload = pickle.dumps(Payload(marker))
    path = os.path.join(d, "manifest.json")
    with open(path) as fh:
        m = json.load(fh)
    (name,) = [n for n in m["blobs"] if n.startswith("obj.")]
    with open(os.path.join(d, name), "wb") as fh:
        fh.write(payload)
    b = m["blobs"][name]
    b["size"] = len(payload)
    b["digest"] = xxhash.xxh3_128(payload).hexdigest()
    if "sha256" in b:
        b["sha256"] = hashlib.sha256(payload).hexdigest()
    with open(path, "w") as fh:
        json.dump(m, fh)


def test_signed_entry_is_a_hit(run, shell, runs, monkeypatch):
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", "team secret")
    run(CELL)
    run(CELL)
    assert runs() == 1 and shell.user_ns["obj"] == {"a": list(range(100))}
    with open(os.path.join(entry(), "manifest.json")) as fh:
        m = json.load(fh)
    assert m["signature"]["alg"] == "hmac-sha256"
    assert all(len(b["sha256"]) == 64 for b in m["blobs"].values())
    assert cli.main(["verify"]) == 0


def test_payload_runs_without_signing(run, shell, runs, tmp_path):
    """The control: with signing off, matching digests are all a tampered
    entry needs (this is why shared folders should be signed)."""
    marker = tmp_path / "PWNED-off"
    run(CELL)
    tamper(entry(), marker)
    run(CELL)
    assert marker.exists(), "the test payload should be live"


@pytest.mark.parametrize("how", ["env", "config"])
def test_tampered_pickle_is_refused_under_on(run, shell, runs, tmp_path, monkeypatch, how):
    marker = tmp_path / "PWNED-on"
    if how == "env":
        monkeypatch.setenv("IPY_LAZYCACHE_KEY", "team secret")
    else:
        run('%config LazyCache.signing_key = "team secret"')
    run(CELL)
    tamper(entry(), marker)
    r = run(CELL)
    assert not marker.exists(), "the payload ran"
    assert r.success and runs() == 2
    assert shell.user_ns["obj"] == {"a": list(range(100))}
    lines = [line for line in r.out.splitlines() if "not trusted" in line]
    assert len(lines) == 1 and "signature does not match" in lines[0], r.out
    run(CELL)  # re-stored, signed: a hit again
    assert runs() == 2 and not marker.exists()


def test_tampered_pickle_is_an_error_under_strict(run, shell, runs, tmp_path, monkeypatch):
    marker = tmp_path / "PWNED-strict"
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", "team secret")
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "strict")
    run(CELL)
    tamper(entry(), marker)
    r = run(CELL)
    assert not marker.exists(), "the payload ran"
    assert isinstance(r.error_in_exec, UsageError) and "not trusted" in str(r.error_in_exec)
    assert runs() == 1, "strict: the cell neither restores nor runs"
    # verify reports it; verify --fix removes it; then the cell stores afresh.
    assert cli.main(["verify"]) == 1
    assert not marker.exists()
    assert cli.main(["verify", "--fix"]) == 0
    run(CELL)
    assert runs() == 2 and not marker.exists()


def test_unsigned_entry_under_on_is_a_miss_and_under_strict_an_error(run, shell, runs, monkeypatch):
    run(CELL)  # written without a key: unsigned
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", "k")
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "strict")
    r = run(CELL)
    assert isinstance(r.error_in_exec, UsageError) and "not signed" in str(r.error_in_exec)
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "on")
    r = run(CELL)
    assert runs() == 2 and "not signed" in r.out
    run(CELL)
    assert runs() == 2


def test_wrong_key_is_a_miss(run, runs, monkeypatch):
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", "alice")
    run(CELL)
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", "mallory")
    r = run(CELL)
    assert runs() == 2 and "signature does not match" in r.out


def test_mode_without_key_and_bad_mode_are_usage_lines_and_the_cell_runs(run, monkeypatch, runs):
    """DESIGN §8: one clear line, and the cell still runs (uncached: nothing
    is written or read without a usable signing setting)."""
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "on")
    r = run(CELL)
    assert r.success and runs() == 1
    assert [line for line in r.out.splitlines() if line.startswith("UsageError")] == [
        line for line in r.out.splitlines() if "needs a key" in line
    ] != []
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "sometimes")
    r = run(CELL)
    assert r.success and runs() == 2 and "must be one of" in r.out
    assert not os.path.exists("__lazycache__") or not [n for n in os.listdir("__lazycache__") if len(n) == 32]


def test_canonical_encoding_is_domain_separated_and_order_free():
    m1 = {"key": "k", "b": 1, "a": [1, 2]}
    m2 = {"a": [1, 2], "b": 1, "key": "k", "signature": {"mac": "x"}}
    assert signing.canonical(m1) == signing.canonical(m2)
    assert signing.canonical(m1).startswith(signing.DOMAIN)
    s = signing.Signer(b"key", "on")
    signed = s.sign(dict(m1))
    assert s.problem(signed) is None
    signed["b"] = 2
    assert s.problem(signed) == "its signature does not match"
