"""A node's Ed25519 identity: the key pair that signs its envelopes.

Deliberately small for now; the node-id text form, storage and passphrase encryption come later.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.errors import IdentityError

SEED_BYTES = 32


class Identity:
    """An Ed25519 private key with its 32-byte public key (the envelope ``author``)."""

    __slots__ = ("_key", "_public_key")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public_key = private_key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> Identity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """The identity of a 32-byte RFC 8032 seed (the same seed always gives the same keys)."""
        if not isinstance(seed, (bytes, bytearray, memoryview)) or len(bytes(seed)) != SEED_BYTES:
            raise IdentityError(f"an Ed25519 seed is {SEED_BYTES} bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def seed(self) -> bytes:
        return self._key.private_bytes_raw()

    def sign(self, data: bytes) -> bytes:
        """The 64-byte pure Ed25519 signature of ``data`` (deterministic, RFC 8032)."""
        return self._key.sign(bytes(data))

    def __repr__(self) -> str:  # never shows the seed
        return f"Identity({self._public_key.hex()})"
