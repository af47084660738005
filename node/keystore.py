"""The key file: the node's Ed25519 seed at rest, encrypted under a passphrase when one is set.

Layout (JSON, version 2)::

    {"version": 2, "public_key": hex, "node_id": "vrm1…",
     "encryption": null | {"kdf": "argon2id", "t", "m", "p", "salt": hex,
                           "aead": "chacha20poly1305", "nonce": hex},
     "secret": hex,            # the seed; ChaCha20-Poly1305 ciphertext (AAD = public key) if encrypted
     "vault": null | {"kdf": "argon2id", "t", "m", "p", "salt": hex,
                      "nonce": hex, "wrapped": hex}}

The passphrase goes through Argon2id (RFC 9106) with OWASP's parameters (t=2 passes, m=19 MiB, p=1;
``t`` and ``m`` as argon2 names them, ``m`` in KiB). The vault's 32-byte key is random and stored
``wrapped``: sealed under a key derived from the same passphrase with its own salt (AAD
``vrm-vault-key-v1``), so knowing the vault key reveals nothing about the identity key, and changing
the passphrase re-wraps the vault key without re-encrypting a single vault value.

Version 1 files (scrypt N=2^15, below OWASP's minimum; a vault key derived directly from the passphrase
and proved by ``check``, an empty AEAD message) still open; ``load_identity`` rewrites them as version 2
on their next unlock, wrapping the same vault key, so the vault's values stay readable.
"""

from __future__ import annotations

import json
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from node.errors import HomeError, IdentityError, PassphraseError
from node.identity import Identity
from node.nodeid import encode_node_id

KEY_FILE_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_SCRYPT_N_RANGE = (2**10, 2**20)  # version 1 files: refuse one that asks for absurd work
_ARGON2_LIMITS = {"t": (1, 16), "m": (8, 2**20), "p": (1, 16)}  # m up to 1 GiB
_SALT_BYTES = 16
_NONCE_BYTES = 12
_KEY_BYTES = 32
_VAULT_CHECK_AAD = b"vrm-vault-check-v1"  # version 1
_VAULT_WRAP_AAD = b"vrm-vault-key-v1"


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost: ``t`` passes over ``m`` KiB of memory in ``p`` lanes."""

    t: int = 2
    m: int = 19 * 1024
    p: int = 1

    def fields(self) -> dict[str, Any]:
        return {"kdf": "argon2id", "t": self.t, "m": self.m, "p": self.p}


OWASP_ARGON2 = Argon2Params()  # OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1


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


def _argon2id(passphrase: str, salt: bytes, params: Argon2Params) -> bytes:
    return hash_secret_raw(
        encode_passphrase(passphrase), salt, time_cost=params.t, memory_cost=params.m,
        parallelism=params.p, hash_len=_KEY_BYTES, type=Type.ID,
    )  # fmt: skip


def _document(
    seed: bytes, vault_key: bytes | None, passphrase: str | None, kdf: Argon2Params, *, vault: bool = True
) -> dict[str, Any]:
    """A version 2 key file for ``seed``: plain without a passphrase, else seed and vault key sealed
    (``vault=False``: no vault section, as in an identity backup)."""
    public_key = Identity.from_seed(seed).public_key
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
        return doc
    encode_passphrase(passphrase)  # refuse an empty one before any work
    salt, nonce = secrets.token_bytes(_SALT_BYTES), secrets.token_bytes(_NONCE_BYTES)
    key = _argon2id(passphrase, salt, kdf)
    doc["encryption"] = {**kdf.fields(), "salt": salt.hex(), "aead": "chacha20poly1305", "nonce": nonce.hex()}
    doc["secret"] = ChaCha20Poly1305(key).encrypt(nonce, bytes(seed), public_key).hex()
    if not vault:
        return doc
    vault_salt, vault_nonce = secrets.token_bytes(_SALT_BYTES), secrets.token_bytes(_NONCE_BYTES)
    wrapping_key = _argon2id(passphrase, vault_salt, kdf)
    vault_key = secrets.token_bytes(_KEY_BYTES) if vault_key is None else vault_key
    doc["vault"] = {
        **kdf.fields(),
        "salt": vault_salt.hex(),
        "nonce": vault_nonce.hex(),
        "wrapped": ChaCha20Poly1305(wrapping_key).encrypt(vault_nonce, vault_key, _VAULT_WRAP_AAD).hex(),
    }
    return doc


def _encode(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def save_identity(
    path: Path, seed: bytes, passphrase: str | None, *, kdf: Argon2Params = OWASP_ARGON2
) -> KeyFileInfo:
    """Create the key file for ``seed``; encrypted when ``passphrase`` is given. Never overwrites.
    ``kdf`` is the Argon2id cost (tests pass a cheap one)."""
    doc = _document(seed, None, passphrase, kdf)
    write_new_file(Path(path), _encode(doc))
    return KeyFileInfo(
        public_key=bytes.fromhex(doc["public_key"]), node_id=doc["node_id"], encrypted=passphrase is not None
    )


def replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably: a crash leaves the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def change_passphrase(
    path: Path, old: str, new: str, *, kdf: Argon2Params = OWASP_ARGON2
) -> KeyFileInfo:
    """Re-seal the key file under ``new`` (PassphraseError when ``old`` is wrong). The seed and the vault
    key stay the same, so the node id and every vault value survive; the file is replaced atomically."""
    encode_passphrase(new)
    doc = _read(path)
    if doc.get("encryption") is None:
        raise PassphraseError("this node has no passphrase to change (its key and vault are stored plain)")
    seed = _unseal_seed(doc, path, old)
    vault_key = vault_key_from_kdf(doc.get("vault"), old)
    replace_file(Path(path), _encode(_document(seed, vault_key, new, kdf)))
    return read_public(path)


def backup_document(seed: bytes, passphrase: str, *, kdf: Argon2Params = OWASP_ARGON2) -> dict[str, Any]:
    """An identity backup: a version 2 key file of ``seed`` sealed under ``passphrase``, no vault."""
    return _document(seed, None, passphrase, kdf, vault=False)


def seed_from_backup(doc: Any, passphrase: str) -> bytes:
    """The seed of an identity backup (PassphraseError when the passphrase is wrong)."""
    if not isinstance(doc, dict) or doc.get("version") != KEY_FILE_VERSION or doc.get("encryption") is None:
        raise IdentityError("an identity backup is a sealed version 2 key file")
    seed = _unseal(doc, _public_of(doc), passphrase)
    if Identity.from_seed(seed).public_key != _public_of(doc):
        raise IdentityError("the backup's secret does not belong to its public key")
    return seed


def needs_upgrade(path: Path) -> bool:
    """An encrypted key file of version 1 (scrypt), which its next unlock rewrites."""
    doc = _read(path)
    return doc.get("encryption") is not None and doc.get("version") == 1


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise HomeError(f"no key file at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IdentityError(f"key file {path} is unreadable: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") not in _READABLE_VERSIONS:
        raise IdentityError(f"key file {path} is not a version 1 or {KEY_FILE_VERSION} vrm key file")
    return doc


def _hex(section: dict[str, Any], field: str, size: int | None = None) -> bytes:
    try:
        value = bytes.fromhex(section[field])
    except (KeyError, TypeError, ValueError):
        raise IdentityError(f"key file field {field!r} is missing or not hex") from None
    if size is not None and len(value) != size:
        raise IdentityError(f"key file field {field!r} must be {size} bytes")
    return value


def _int_params(params: dict[str, Any], names: tuple[str, ...]) -> list[int]:
    values = [params.get(name) for name in names]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise IdentityError(f"key file {params.get('kdf')} parameters are not integers")
    return values


def _derive(params: Any, passphrase: str) -> bytes:
    """Run the KDF a key file section describes, after checking its parameters are sane."""
    kdf = params.get("kdf") if isinstance(params, dict) else None
    if kdf == "argon2id":
        t, m, p = _int_params(params, ("t", "m", "p"))
        if not all(lo <= v <= hi for v, (lo, hi) in zip((t, m, p), _ARGON2_LIMITS.values())) or m < 8 * p:
            raise IdentityError("key file argon2id parameters are out of range")
        return _argon2id(passphrase, _hex(params, "salt"), Argon2Params(t=t, m=m, p=p))
    if kdf == "scrypt":
        n, r, p = _int_params(params, ("n", "r", "p"))
        if not (
            _SCRYPT_N_RANGE[0] <= n <= _SCRYPT_N_RANGE[1] and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16
        ):
            raise IdentityError("key file scrypt parameters are out of range")
        return _scrypt(passphrase, _hex(params, "salt"), n, r, p)
    raise IdentityError("key file names an unknown key derivation")


def _public_of(doc: dict[str, Any]) -> bytes:
    public_key = _hex(doc, "public_key", 32)
    if doc.get("node_id") != encode_node_id(public_key):
        raise IdentityError("key file node id does not match its public key")
    return public_key


def read_public(path: Path) -> KeyFileInfo:
    """The public key and node id, no passphrase needed (what ``vrm id`` prints)."""
    doc = _read(path)
    public_key = _public_of(doc)
    return KeyFileInfo(
        public_key=public_key, node_id=doc["node_id"], encrypted=doc.get("encryption") is not None
    )


def _unseal_seed(doc: dict[str, Any], path: Path, passphrase: str | None) -> bytes:
    public_key = read_public(path).public_key
    if doc.get("encryption") is None:
        return _hex(doc, "secret", 32)
    return _unseal(doc, public_key, passphrase)


def _unseal(doc: dict[str, Any], public_key: bytes, passphrase: str | None) -> bytes:
    enc = doc.get("encryption")
    if passphrase is None:
        raise PassphraseError("this node's key is encrypted: a passphrase is needed")
    if not isinstance(enc, dict) or enc.get("aead") != "chacha20poly1305":
        raise IdentityError("key file names an unknown cipher")
    key = _derive(enc, passphrase)
    try:
        return ChaCha20Poly1305(key).decrypt(_hex(enc, "nonce", _NONCE_BYTES), _hex(doc, "secret"), public_key)
    except InvalidTag:
        raise PassphraseError("wrong passphrase") from None


def load_identity(path: Path, passphrase: str | None, *, upgrade_kdf: Argon2Params = OWASP_ARGON2) -> Identity:
    """The node's Identity. PassphraseError when the passphrase is wrong, or needed and missing.

    Unlocking a version 1 (scrypt) key file rewrites it as version 2 under Argon2id ``upgrade_kdf``,
    same passphrase, same seed, same vault key."""
    doc = _read(path)
    seed = _unseal_seed(doc, path, passphrase)
    identity = Identity.from_seed(seed)
    if identity.public_key != read_public(path).public_key:
        raise IdentityError("key file secret does not belong to its public key")
    if passphrase is not None and doc.get("version") == 1:
        vault_key = vault_key_from_kdf(doc.get("vault"), passphrase)
        replace_file(Path(path), _encode(_document(seed, vault_key, passphrase, upgrade_kdf)))
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
    """The vault section (KDF parameters, salt, the vault key sealed under the passphrase; nothing in
    the clear), for an export to carry along."""
    vault = _read(path).get("vault")
    return dict(vault) if vault is not None else None


def vault_key_from_kdf(params: Any, passphrase: str) -> bytes:
    """The vault key from a vault section (a key file's, or an export's copy): unwrapped (version 2) or
    derived and checked (version 1). PassphraseError when the passphrase is wrong."""
    if not isinstance(params, dict):
        raise IdentityError("key file is encrypted but has no vault section")
    key = _derive(params, passphrase)
    try:
        if "wrapped" in params:
            vault_key = ChaCha20Poly1305(key).decrypt(
                _hex(params, "nonce", _NONCE_BYTES), _hex(params, "wrapped"), _VAULT_WRAP_AAD
            )
            if len(vault_key) != _KEY_BYTES:
                raise IdentityError(f"the wrapped vault key is not {_KEY_BYTES} bytes")
            return vault_key
        ChaCha20Poly1305(key).decrypt(
            _hex(params, "check_nonce", _NONCE_BYTES), _hex(params, "check"), _VAULT_CHECK_AAD
        )
    except InvalidTag:
        raise PassphraseError("wrong passphrase") from None
    return key
