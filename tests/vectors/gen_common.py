"""What the vector generators share: the fixed times and the Ed25519 helpers (see generate.py)."""

from __future__ import annotations

import hashlib

from node.identity import Identity
from node.reference import ed25519
from node.reference.ed25519 import L

CREATED = 1_700_000_000_000  # 2023-11-14T22:13:20Z
DAY_MS = 86_400_000


def sign(seed: bytes, message: bytes) -> bytes:
    """cryptography's signature, checked against the reference signer (two implementations)."""
    signature = Identity.from_seed(seed).sign(message)
    assert signature == ed25519.sign(seed, message), "cryptography and the reference signer differ"
    return signature


def no_point_encoding() -> bytes:
    """The smallest y (canonical, sign 0) with no curve point."""
    y = 0
    while ed25519.decode_point(y.to_bytes(32, "little")) is not None:
        y += 1
    return y.to_bytes(32, "little")


def scalar_of(label: str) -> int:
    """A fixed nonce for a hand-built signature, derived from its label."""
    return int.from_bytes(hashlib.sha512(label.encode()).digest(), "little") % L


def keypair(seed: bytes) -> tuple[int, bytes]:
    """(secret scalar a, public key bytes) of an RFC 8032 seed."""
    a = ed25519.secret_scalar(seed)[0]
    public = ed25519.public_key(seed)
    assert public == Identity.from_seed(seed).public_key
    return a, public


def challenge(r_bytes: bytes, a_bytes: bytes, message: bytes) -> int:
    return ed25519.hash_to_scalar(r_bytes, a_bytes, message)


def with_s(r_bytes: bytes, s: int) -> bytes:
    return r_bytes + s.to_bytes(32, "little")
