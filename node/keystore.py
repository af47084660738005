"""The key file: the node's Ed25519 seed at rest, encrypted under a passphrase when one is set.

Layout (JSON, version 1)::

    {"version": 1, "public_key": hex, "node_id": "vrm1…",
     "encryption": null | {"kdf": "scrypt", "n", "r", "p", "salt": hex,
                           "aead": "chacha20poly1305", "nonce": hex},
     "secret": hex,            # the seed; ChaCha20-Poly1305 ciphertext (AAD = public key) if encrypted
     "vault": null | {"kdf": "scrypt", "n", "r", "p", "salt": hex,
                      "check_nonce": hex, "check": hex}}

The vault key is derived from the same passphrase with its own salt, so knowing it reveals nothing about
the identity key. ``check`` is an empty AEAD message under the vault key: it proves a passphrase right
with one scrypt run instead of two.
"""

from __future__ import annotations

import json
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from node.errors import HomeError, IdentityError, PassphraseError
from node.identity import Identity
from node.nodeid import encode_node_id

KEY_FILE_VERSION = 1
SCRYPT_N = 2**15  # 32 MiB of memory per guess: cheap once on a Pi, costly a billion times
SCRYPT_R = 8
SCRYPT_P = 1
_SCRYPT_N_RANGE = (2**10, 2**20)  # refuse a key file that asks for absurd work
_SALT_BYTES = 16
_NONCE_BYTES = 12
_KEY_BYTES = 32
_VAULT_CHECK_AAD = b"vrm-vault-check-v1"


@dataclass(frozen=True)
class KeyFileInfo:
    """What the key file says without a passphrase."""

    public_key: bytes
    node_id: str
    encrypted: bool


def write_new_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` durably, never replacing an existing file (HomeError if it exists).

    The bytes go to a private temporary file first and are linked into place, so a crash leaves either
    no file or the whole file, never half a key.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed or widened what os.open asked for
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise HomeError(f"{path} already exists; it is never overwritten") from None
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_passphrase(passphrase: str) -> bytes:
    """The bytes a passphrase stands for; PassphraseError for an empty or non-text one."""
    if not isinstance(passphrase, str) or passphrase == "":
        raise PassphraseError("a passphrase must be a non-empty string")
    # NFC so that the same passphrase typed on two systems gives the same key.
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=_KEY_BYTES, n=n, r=r, p=p).derive(encode_passphrase(passphrase))


def _kdf_params(n: int, salt: bytes) -> dict[str, Any]:
    return {"kdf": "scrypt", "n": n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex()}


def save_identity(
    path: Path, seed: bytes, passphrase: str | None, *, scrypt_n: int = SCRYPT_N
) -> KeyFileInfo:
    """Create the key file for ``seed``; encrypted when ``passphrase`` is given. Never overwrites."""
    identity = Identity.from_seed(seed)
    public_key = identity.public_key
    doc: dict[str, Any] = {
        "version": KEY_FILE_VERSION,
        "public_key": public_key.hex(),
        "node_id": encode_node_id(public_key),
        "encryption": None,
        "secret": None,
        "vault": None,
    }
    if passphrase is None:
        doc["secret"] = bytes(seed).hex()
    else:
        salt, nonce = secrets.token_bytes(_SALT_BYTES), secrets.token_bytes(_NONCE_BYTES)
        key = _scrypt(passphrase, salt, scrypt_n, SCRYPT_R, SCRYPT_P)
        doc["encryption"] = {**_kdf_params(scrypt_n, salt), "aead": "chacha20poly1305", "nonce": nonce.hex()}
        doc["secret"] = ChaCha20Poly1305(key).encrypt(nonce, bytes(seed), public_key).hex()
        vault_salt, check_nonce = secrets.token_bytes(_SALT_BYTES), secrets.token_bytes(_NONCE_BYTES)
        vault_key = _scrypt(passphrase, vault_salt, scrypt_n, SCRYPT_R, SCRYPT_P)
        check = ChaCha20Poly1305(vault_key).encrypt(check_nonce, b"", _VAULT_CHECK_AAD)
        doc["vault"] = {
            **_kdf_params(scrypt_n, vault_salt),
            "check_nonce": check_nonce.hex(),
            "check": check.hex(),
        }
    write_new_file(Path(path), (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
    return KeyFileInfo(public_key=public_key, node_id=doc["node_id"], encrypted=passphrase is not None)


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise HomeError(f"no key file at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IdentityError(f"key file {path} is unreadable: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != KEY_FILE_VERSION:
        raise IdentityError(f"key file {path} is not a version {KEY_FILE_VERSION} vrm key file")
    return doc


def _hex(section: dict[str, Any], field: str, size: int | None = None) -> bytes:
    try:
        value = bytes.fromhex(section[field])
    except (KeyError, TypeError, ValueError):
        raise IdentityError(f"key file field {field!r} is missing or not hex") from None
    if size is not None and len(value) != size:
        raise IdentityError(f"key file field {field!r} must be {size} bytes")
    return value


def _derive(params: Any, passphrase: str) -> bytes:
    """Run the KDF a key file section describes, after checking its parameters are sane."""
    if not isinstance(params, dict) or params.get("kdf") != "scrypt":
        raise IdentityError("key file names an unknown key derivation")
    n, r, p = params.get("n"), params.get("r"), params.get("p")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n, r, p)):
        raise IdentityError("key file scrypt parameters are not integers")
    if not (
        _SCRYPT_N_RANGE[0] <= n <= _SCRYPT_N_RANGE[1] and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16
    ):
        raise IdentityError("key file scrypt parameters are out of range")
    return _scrypt(passphrase, _hex(params, "salt"), n, r, p)


def read_public(path: Path) -> KeyFileInfo:
    """The public key and node id, no passphrase needed (what ``vrm id`` prints)."""
    doc = _read(path)
    public_key = _hex(doc, "public_key", 32)
    if doc.get("node_id") != encode_node_id(public_key):
        raise IdentityError("key file node id does not match its public key")
    return KeyFileInfo(
        public_key=public_key, node_id=doc["node_id"], encrypted=doc.get("encryption") is not None
    )


def load_identity(path: Path, passphrase: str | None) -> Identity:
    """The node's Identity. PassphraseError when the passphrase is wrong, or needed and missing."""
    doc = _read(path)
    info = read_public(path)
    enc = doc.get("encryption")
    if enc is None:
        seed = _hex(doc, "secret", 32)
    else:
        if passphrase is None:
            raise PassphraseError("this node's key is encrypted: a passphrase is needed")
        if not isinstance(enc, dict) or enc.get("aead") != "chacha20poly1305":
            raise IdentityError("key file names an unknown cipher")
        key = _derive(enc, passphrase)
        try:
            seed = ChaCha20Poly1305(key).decrypt(
                _hex(enc, "nonce", _NONCE_BYTES), _hex(doc, "secret"), info.public_key
            )
        except InvalidTag:
            raise PassphraseError("wrong passphrase") from None
    identity = Identity.from_seed(seed)
    if identity.public_key != info.public_key:
        raise IdentityError("key file secret does not belong to its public key")
    return identity


def derive_vault_key(path: Path, passphrase: str | None) -> bytes | None:
    """The vault's 32-byte key, or None for a home without a passphrase (its vault is stored plain)."""
    doc = _read(path)
    vault = doc.get("vault")
    if vault is None:
        if doc.get("encryption") is not None:
            raise IdentityError("key file is encrypted but has no vault section")
        return None
    if passphrase is None:
        raise PassphraseError("this node's vault is encrypted: a passphrase is needed")
    return vault_key_from_kdf(vault, passphrase)


def vault_kdf(path: Path) -> dict[str, Any] | None:
    """The vault's KDF parameters (salt, check value; no secret), for an export to carry along."""
    vault = _read(path).get("vault")
    return dict(vault) if vault is not None else None


def vault_key_from_kdf(params: dict[str, Any], passphrase: str) -> bytes:
    """Derive and check a vault key from exported KDF parameters (PassphraseError when wrong)."""
    key = _derive(params, passphrase)
    try:
        ChaCha20Poly1305(key).decrypt(
            _hex(params, "check_nonce", _NONCE_BYTES), _hex(params, "check"), _VAULT_CHECK_AAD
        )
    except InvalidTag:
        raise PassphraseError("wrong passphrase") from None
    return key
