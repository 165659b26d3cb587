"""Signed manifests: HMAC-SHA256 (a shared secret) or Ed25519 (public keys).

Unpickling is code execution, so a cache folder shared between people is only
as trustworthy as everyone who can write to it. With a signing key every
manifest written gets a ``signature`` field over a canonical,
domain-separated encoding, and every blob a SHA-256 digest next to its fast
xxh3 digest (xxh3 is not collision-resistant, so under a signature it is not
enough on its own). Two schemes:

- **HMAC** (``IPY_LAZYCACHE_KEY``, ``%config LazyCache.signing_key``): one
  shared secret signs and verifies, so every reader can also forge.
- **Ed25519** (``IPY_LAZYCACHE_PRIVATE_KEY``, ``%config
  LazyCache.private_key``: a key file or its text): only the private key's
  holder signs. Readers list the fingerprints they trust
  (``IPY_LAZYCACHE_TRUSTED_KEYS``, ``%config LazyCache.trusted_keys``); a
  signer trusts its own key. Needs ``cryptography`` (the ``sign`` extra).

Modes (``IPY_LAZYCACHE_SIGNING`` or ``%config LazyCache.signing``):

- ``off``: signatures are written when a key is set but not checked. The
  default without any key: a private local folder.
- ``on`` (or ``verify``): an entry that is unsigned, signed by a key not
  trusted here, or whose signature does not verify, is a miss and the cell
  re-runs. The default when any key is set.
- ``strict``: such an entry is an error (:class:`UntrustedEntry`).

Checking happens before any blob is fetched or unpickled. A key is used
exactly as given: one that begins or ends with whitespace (a newline left
by ``echo key > file``) is refused with one line, since a machine that kept
the newline and one that did not would each call the other's entries forged.
"""

from __future__ import annotations

import json
import os
import re

#: Domain separation: a MAC over a manifest is never valid for anything else.
DOMAIN = b"ipy_lazycache manifest signature v1\x00"
ALGORITHM = "hmac-sha256"
MODES = ("off", "on", "strict")
#: Other spellings of a mode.
ALIASES = {"verify": "on"}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

KEY_ENV = "IPY_LAZYCACHE_KEY"
MODE_ENV = "IPY_LAZYCACHE_SIGNING"
PRIVATE_ENV = "IPY_LAZYCACHE_PRIVATE_KEY"
TRUSTED_ENV = "IPY_LAZYCACHE_TRUSTED_KEYS"


class SigningError(ValueError):
    """A bad signing configuration (unknown mode, a mode without a key, a bad key)."""


class Unverified(Exception):
    """An entry whose signature or SHA-256 digests do not verify."""


class UntrustedEntry(Unverified):
    """Raised under ``strict``: an unverifiable entry is an error, not a miss."""


def canonical(manifest: dict) -> bytes:
    """The signed bytes: the domain tag, then the manifest without its
    signature as sorted, compact, ASCII-only JSON."""
    return DOMAIN + _body(manifest)


def _body(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True).encode("ascii")


def _mac(key: bytes, manifest: dict) -> str:
    import hashlib  # only where a key is set: OpenSSL takes milliseconds to load
    import hmac

    return hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()


def check_secret(key, setting: str = "the signing key") -> bytes | None:
    """An HMAC key as bytes; refuses one that is only whitespace or begins
    or ends with it (:class:`SigningError` naming ``setting``)."""
    if key is None or key == b"" or key == "":
        return None
    raw = key.encode() if isinstance(key, str) else bytes(key)
    if not raw.strip():
        raise SigningError(f"{setting} is only whitespace: set a real key, or unset it to turn signing off")
    if raw != raw.strip():
        raise SigningError(f"{setting} begins or ends with whitespace (a newline from a file?): remove it, "
                           f'e.g. {KEY_ENV}="$(cat keyfile)", so every machine signs with the same key')
    return raw


class Signer:
    """What to do with signatures: write them (with a key) and check them (mode).

    ``key`` is the HMAC secret, ``private_key`` an :class:`.ed25519.PrivateKey`,
    ``trusted`` the Ed25519 fingerprints whose signatures are accepted.
    """

    def __init__(self, key: bytes | str | None = None, mode: str | None = None, private_key=None,
                 trusted=frozenset()):
        self.secret = check_secret(key)
        self.private = private_key
        self.trusted = frozenset(trusted) | ({private_key.fingerprint} if private_key else set())
        asked, mode = mode, ALIASES.get(mode, mode)
        if mode in (None, ""):
            mode = "on" if self.key else "off"
        if mode not in MODES:
            raise SigningError(f"signing mode must be one of off, on (or verify), strict, not {mode!r}")
        if mode != "off" and not self.key:
            raise SigningError(
                f"signing mode {asked!r} needs a key: set ${KEY_ENV} (a shared secret), or ${PRIVATE_ENV} "
                f"or ${TRUSTED_ENV} (Ed25519), or %config LazyCache.signing_key"
            )
        self.mode = mode

    @property
    def key(self):
        """Anything to sign or verify with (truthy when signatures are in play)."""
        return self.secret or self.private or self.trusted or None

    @property
    def signs(self) -> bool:
        return bool(self.secret or self.private)

    @property
    def checks(self) -> bool:
        return self.mode != "off"

    def __repr__(self):
        return (f"Signer(mode={self.mode!r}, hmac={'set' if self.secret else 'unset'}, "
                f"private={self.private.fingerprint if self.private else None}, trusted={len(self.trusted)})")

    # -- writing -------------------------------------------------------------
    def sign(self, manifest: dict) -> dict:
        """Add the signature (in place): Ed25519 with a private key, else HMAC
        with a secret; the blobs must already carry their ``sha256``. Checking
        without a way to sign raises :class:`SigningError`: such an entry
        would be a miss here and for every reader."""
        manifest.pop("signature", None)
        if self.private is not None:
            manifest["signature"] = self.private.sign(_body(manifest))
        elif self.secret:
            manifest["signature"] = {"alg": ALGORITHM, "mac": _mac(self.secret, manifest)}
        elif self.checks and self.key:
            raise SigningError(f"nothing to sign with: only trusted keys are set; set ${PRIVATE_ENV} to store "
                               "entries others (and this session) will trust")
        return manifest

    # -- checking ------------------------------------------------------------
    def problem(self, manifest: dict) -> str | None:
        """Why ``manifest`` is not verifiable here, or None if it is."""
        if not self.key:
            return "no signing key is set"
        sig = manifest.get("signature")
        alg = sig.get("alg") if isinstance(sig, dict) else None
        if alg == ALGORITHM and isinstance(sig.get("mac"), str):
            why = self._hmac_problem(sig["mac"], manifest)
        elif alg == "ed25519":
            why = self._ed25519_problem(sig, manifest)
        else:
            return "it is not signed"
        if why is not None:
            return why
        blobs = manifest.get("blobs", {})
        for name, blob in blobs.items() if isinstance(blobs, dict) else ():
            if not isinstance(blob, dict) or not isinstance(blob.get("sha256"), str):
                return f"blob {name} has no SHA-256 digest"
        return None

    def _hmac_problem(self, mac: str, manifest: dict) -> str | None:
        if not self.secret:
            return f"it is signed with a shared HMAC key, and ${KEY_ENV} is not set"
        # compare_digest refuses non-ASCII str: compare bytes, and a MAC that
        # is not 64 hex digits is simply wrong.
        import hmac

        if not _HEX64.match(mac) or not hmac.compare_digest(mac.encode(), _mac(self.secret, manifest).encode()):
            return "its signature does not match"
        return None

    def _ed25519_problem(self, sig: dict, manifest: dict) -> str | None:
        from . import ed25519

        by = ed25519.signed_by(sig)
        if by is None:
            return "its signature is malformed"
        if by not in self.trusted:
            return f"it is signed by {by}, which is not a trusted key (${TRUSTED_ENV})"
        try:
            ok = ed25519.verify(sig, _body(manifest))
        except ed25519.BadKey as exc:
            return str(exc)
        return None if ok else "its signature does not match"

    def check(self, manifest: dict) -> None:
        """Raise :class:`Unverified` (``on``) or :class:`UntrustedEntry`
        (``strict``) for an entry that does not verify; nothing under ``off``."""
        if not self.checks:
            return
        why = self.problem(manifest)
        if why is not None:
            cls = UntrustedEntry if self.mode == "strict" else Unverified
            raise cls(f"entry {str(manifest.get('key'))[:10]} is not trusted: {why}")


def from_config(key=None, mode=None, environ=None, private_key=None, trusted_keys=None) -> Signer:
    """A :class:`Signer` from explicit settings (``%config``), each falling
    back to its environment variable. Raises :class:`SigningError` with one
    line naming the setting that is wrong."""
    env = os.environ if environ is None else environ
    secret = _setting(key, "LazyCache.signing_key", env, KEY_ENV)
    mode_value = _setting(mode, "LazyCache.signing", env, MODE_ENV)
    private = _setting(private_key, "LazyCache.private_key", env, PRIVATE_ENV)
    trusted = _setting(trusted_keys, "LazyCache.trusted_keys", env, TRUSTED_ENV)
    if private[0] or trusted[0]:
        from . import ed25519
    try:
        sk = check_secret(secret[0], secret[1])
        pk = ed25519.load_private(private[0], private[1]) if private[0] else None
        tk = ed25519.parse_trusted(trusted[0], trusted[1]) if trusted[0] else frozenset()
    except ValueError as exc:  # ed25519.BadKey
        raise SigningError(str(exc)) from None
    try:
        return Signer(sk, mode_value[0] or None, pk, tk)
    except SigningError as exc:
        if mode_value[0] and "mode must be" in str(exc):
            raise SigningError(f"{mode_value[1]}: {exc}") from None
        raise


def _setting(value, name: str, env, env_name: str) -> tuple:
    """``(value, the name to show)``: the explicit value, else the environment's."""
    if value not in (None, ""):
        return value, name
    return env.get(env_name) or None, f"${env_name}"
