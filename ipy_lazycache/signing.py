"""Signed manifests: HMAC-SHA256 over a canonical, domain-separated encoding.

Unpickling is code execution, so a cache folder shared between people is only
as trustworthy as everyone who can write to it. With a key (the
``IPY_LAZYCACHE_KEY`` environment variable or ``%config
LazyCache.signing_key``) every manifest written gets a ``signature`` field,
and every blob gets a SHA-256 digest next to its fast xxh3 digest (xxh3 is
not collision-resistant, so under a signature it is not enough on its own).

Modes (``IPY_LAZYCACHE_SIGNING`` or ``%config LazyCache.signing``):

- ``off``: signatures are written when a key is set but not checked. The
  default without a key: a private local folder.
- ``on``: an entry whose signature does not verify is a miss and the cell
  re-runs. The default when a key is set.
- ``strict``: such an entry is an error (:class:`UntrustedEntry`).

Checking happens before any blob is fetched or unpickled.
"""

from __future__ import annotations

import json
import os
import re

#: Domain separation: a MAC over a manifest is never valid for anything else.
DOMAIN = b"ipy_lazycache manifest signature v1\x00"
ALGORITHM = "hmac-sha256"
MODES = ("off", "on", "strict")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

KEY_ENV = "IPY_LAZYCACHE_KEY"
MODE_ENV = "IPY_LAZYCACHE_SIGNING"


class SigningError(ValueError):
    """A bad signing configuration (unknown mode, or a mode without a key)."""


class Unverified(Exception):
    """An entry whose signature or SHA-256 digests do not verify."""


class UntrustedEntry(Unverified):
    """Raised under ``strict``: an unverifiable entry is an error, not a miss."""


def canonical(manifest: dict) -> bytes:
    """The signed bytes: the domain tag, then the manifest without its
    signature as sorted, compact, ASCII-only JSON."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return DOMAIN + text.encode("ascii")


def _mac(key: bytes, manifest: dict) -> str:
    import hashlib  # only where a key is set: OpenSSL takes milliseconds to load
    import hmac

    return hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()


class Signer:
    """What to do with signatures: write them (with a key) and check them (mode)."""

    def __init__(self, key: bytes | str | None = None, mode: str | None = None):
        if isinstance(key, str):
            key = key.encode()
        self.key = key or None
        if mode in (None, ""):
            mode = "on" if self.key else "off"
        if mode not in MODES:
            raise SigningError(f"signing mode must be one of {', '.join(MODES)}, not {mode!r}")
        if mode != "off" and not self.key:
            raise SigningError(
                f"signing mode {mode!r} needs a key: set ${KEY_ENV} or %config LazyCache.signing_key"
            )
        self.mode = mode

    @property
    def checks(self) -> bool:
        return self.mode != "off"

    def __repr__(self):
        return f"Signer(mode={self.mode!r}, key={'set' if self.key else 'unset'})"

    # -- writing -------------------------------------------------------------
    def sign(self, manifest: dict) -> dict:
        """Add the signature (in place) when a key is set; the blobs must
        already carry their ``sha256``."""
        manifest.pop("signature", None)
        if self.key:
            manifest["signature"] = {"alg": ALGORITHM, "mac": _mac(self.key, manifest)}
        return manifest

    # -- checking ------------------------------------------------------------
    def problem(self, manifest: dict) -> str | None:
        """Why ``manifest`` is not verifiable with this key, or None if it is."""
        if not self.key:
            return "no signing key is set"
        sig = manifest.get("signature")
        if not isinstance(sig, dict) or sig.get("alg") != ALGORITHM or not isinstance(sig.get("mac"), str):
            return "it is not signed"
        mac = sig["mac"]
        # compare_digest refuses non-ASCII str: compare bytes, and a MAC that
        # is not 64 hex digits is simply wrong.
        import hmac

        if not _HEX64.match(mac) or not hmac.compare_digest(mac.encode(), _mac(self.key, manifest).encode()):
            return "its signature does not match"
        blobs = manifest.get("blobs", {})
        for name, blob in blobs.items() if isinstance(blobs, dict) else ():
            if not isinstance(blob, dict) or not isinstance(blob.get("sha256"), str):
                return f"blob {name} has no SHA-256 digest"
        return None

    def check(self, manifest: dict) -> None:
        """Raise :class:`Unverified` (``on``) or :class:`UntrustedEntry`
        (``strict``) for an entry that does not verify; nothing under ``off``."""
        if not self.checks:
            return
        why = self.problem(manifest)
        if why is not None:
            cls = UntrustedEntry if self.mode == "strict" else Unverified
            raise cls(f"entry {str(manifest.get('key'))[:10]} is not trusted: {why}")


def from_config(key=None, mode=None, environ=None) -> Signer:
    """A :class:`Signer` from explicit settings, falling back to the environment."""
    env = os.environ if environ is None else environ
    return Signer(key or env.get(KEY_ENV) or None, mode or env.get(MODE_ENV) or None)
