"""The personal data vault: named fields a person keeps once (name, email, shipping address, sizes …).

With a passphrase every value is sealed with ChaCha20-Poly1305 under the vault key (node.keystore),
a fresh random nonce per write, and the field name as associated data: a ciphertext moved to another
field (say ``email`` into ``shipping_address``) fails to open instead of being read as the wrong field.
Without a passphrase values are stored as plain UTF-8 (the CLI warns about that at init).

``list()`` returns names and times only; a value leaves the vault only through ``get(name)``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from node.errors import NotFoundError, PassphraseError, ValidationError, VaultError
from node.store import Clock, Store, wall_clock_ms

FIELD_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
WELL_KNOWN_FIELDS = ("name", "email", "phone", "shipping_address", "billing_address", "sizes", "preferences")
MAX_VALUE_BYTES = 64 * 1024
SCHEME_PLAIN = "plain"
SCHEME_SEALED = "chacha20poly1305"
_NONCE_BYTES = 12


@dataclass(frozen=True)
class VaultEntry:
    """One field's metadata; never its value."""

    name: str
    encrypted: bool
    created_at: int
    updated_at: int


def validate_field_name(name: object) -> str:
    """``name`` if it is a valid field name (lowercase ``[a-z0-9_.-]``, 1–64, starting alphanumeric)."""
    if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
        raise ValidationError(
            "name", f"{name!r} is not a field name: use 1-64 of a-z 0-9 _ . - starting with a letter or digit"
        )
    return name


def seal(key: bytes, name: str, value: str) -> tuple[bytes, bytes]:
    """(nonce, ciphertext) of ``value`` for field ``name``."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce, ChaCha20Poly1305(key).encrypt(nonce, value.encode("utf-8"), name.encode("ascii"))


def unseal(key: bytes, name: str, nonce: bytes, ciphertext: bytes) -> str:
    """The value sealed for ``name``; VaultError if the key is wrong or the bytes were altered or moved."""
    try:
        return (
            ChaCha20Poly1305(key)
            .decrypt(bytes(nonce), bytes(ciphertext), name.encode("ascii"))
            .decode("utf-8")
        )
    except (InvalidTag, UnicodeDecodeError, ValueError):
        raise VaultError(
            f"vault field {name!r} cannot be opened: wrong key, or the stored bytes were altered"
        ) from None


def _validate_value(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError("value", "a vault value is text")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise ValidationError("value", f"longer than {MAX_VALUE_BYTES} bytes")
    return value


class Vault:
    """The vault of one store. ``key`` is the 32-byte vault key, or None for a home without a passphrase."""

    def __init__(self, store: Store, key: bytes | None, *, clock: Clock = wall_clock_ms) -> None:
        if key is not None and len(key) != 32:
            raise VaultError("a vault key is 32 bytes")
        self._store = store
        self._key = key
        self._clock = clock

    @property
    def encrypted(self) -> bool:
        return self._key is not None

    def set(self, name: str, value: str) -> VaultEntry:
        """Store ``value`` under ``name`` (creating or replacing it)."""
        name = validate_field_name(name)
        value = _validate_value(value)
        now = self._clock()
        if self._key is None:
            scheme, nonce, stored = SCHEME_PLAIN, None, value.encode("utf-8")
        else:
            scheme = SCHEME_SEALED
            nonce, stored = seal(self._key, name, value)
        with self._store.transaction():
            if self._key is None and self._store.query_one(
                "SELECT 1 FROM vault WHERE scheme != ? LIMIT 1", [SCHEME_PLAIN]
            ):
                raise VaultError("this vault is encrypted; open it with the passphrase to write")
            self._store.execute(
                "INSERT INTO vault (name, scheme, nonce, value, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET scheme = excluded.scheme, "
                "nonce = excluded.nonce, value = excluded.value, updated_at = excluded.updated_at",
                [name, scheme, nonce, stored, now, now],
            )
        return self.entry(name)

    def get(self, name: str) -> str:
        """The value of ``name``; NotFoundError if there is none."""
        row = self._row(validate_field_name(name))
        if row["scheme"] == SCHEME_PLAIN:
            return bytes(row["value"]).decode("utf-8")
        if self._key is None:
            raise PassphraseError(f"vault field {name!r} is encrypted: a passphrase is needed")
        return unseal(self._key, name, row["nonce"], row["value"])

    def entry(self, name: str) -> VaultEntry:
        return _entry(self._row(validate_field_name(name)))

    def list(self) -> list[VaultEntry]:
        """Every field's name and times, sorted by name; never a value."""
        rows = self._store.query("SELECT name, scheme, created_at, updated_at FROM vault ORDER BY name")
        return [_entry(r) for r in rows]

    def delete(self, name: str) -> None:
        """Remove ``name``; NotFoundError if there is none."""
        name = validate_field_name(name)
        with self._store.transaction():
            if not self._store.execute("DELETE FROM vault WHERE name = ?", [name]):
                raise NotFoundError("vault field", name)

    def _row(self, name: str) -> dict:
        row = self._store.query_one("SELECT * FROM vault WHERE name = ?", [name])
        if row is None:
            raise NotFoundError("vault field", name)
        return row


def _entry(row: dict) -> VaultEntry:
    return VaultEntry(
        name=row["name"],
        encrypted=row["scheme"] != SCHEME_PLAIN,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
