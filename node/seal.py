"""Sealed boxes to a node's identity key: data only the addressed node can open, with no other key to
distribute (PROTOCOL.md, consented access, "Sealing").

The recipient's Ed25519 public key is mapped to its X25519 twin (the Montgomery u = (1 + y) / (1 − y)
of the Edwards point, as libsodium's ``crypto_sign_ed25519_pk_to_curve25519``, refusing invalid,
small-order and mixed-order points), and its Ed25519 seed to the X25519 scalar SHA-512(seed)[:32]
(clamped by X25519). A box is ``eph_pub (32) || ChaCha20-Poly1305(key, nonce = 12 zero bytes,
aad = eph_pub || recipient_x25519_pub)`` with ``key = HKDF-SHA256(X25519(eph, recipient), salt none,
info = b"vrm-seal-v1" || info)``. Every box has a fresh ephemeral key, so the fixed nonce is used once
per key; ``info`` binds the box to its context (the grant id for access data), so a box sealed for one
grant does not open as another's.
"""

from __future__ import annotations

import functools
import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from node.errors import VrmError
from node.identity import Identity

SEAL_INFO_PREFIX = b"vrm-seal-v1"
KEY_BYTES = 32
TAG_BYTES = 16
OVERHEAD = KEY_BYTES + TAG_BYTES  # a box is this much longer than its plaintext
MAX_INFO_BYTES = 1024
_NONCE = bytes(12)

# Curve25519 in Edwards form: p, d, the group order L, and sqrt(-1) mod p.
_P = 2**255 - 19
_D = (-121665 * pow(121666, -1, _P)) % _P
_L = 2**252 + 27742317777372353535851937790883648493
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


class SealError(VrmError):
    """A box could not be made or opened: an unusable recipient key, or a box that is truncated,
    altered, sealed to another key or for another context. Says nothing more, on purpose."""


# -- Edwards arithmetic (extended coordinates), only to validate a public key ------------------------


def _decode_point(encoded: bytes) -> tuple[int, int, int, int] | None:
    """The Edwards point of a 32-byte encoding (RFC 8032 5.1.3, requiring y < p), or None."""
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    sign = encoded[31] >> 7
    if y >= _P:
        return None
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = (u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P)) % _P
    if (v * x * x - u) % _P != 0:
        x = (x * _SQRT_M1) % _P
        if (v * x * x - u) % _P != 0:
            return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y, 1, (x * y) % _P


def _add(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa, bb = (y1 - x1) * (y2 - x2) % _P, (y1 + x1) * (y2 + x2) % _P
    cc, dd = 2 * _D * t1 * t2 % _P, 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _mul(k: int, point: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    result = (0, 1, 1, 0)
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _is_identity(point: tuple[int, int, int, int]) -> bool:
    x, y, z, _ = point
    return x % _P == 0 and (y - z) % _P == 0


@functools.lru_cache(maxsize=1024)  # a pure function of its argument; a vendor is sealed to often
def x25519_public_key(ed25519_public_key: bytes) -> bytes:
    """The X25519 public key of an Ed25519 public key; SealError for a key that is not a valid point
    of the prime-order subgroup (libsodium refuses the same ones)."""
    if not isinstance(ed25519_public_key, bytes) or len(ed25519_public_key) != KEY_BYTES:
        raise SealError("a recipient key is 32 bytes")
    point = _decode_point(ed25519_public_key)
    if point is None:
        raise SealError("the recipient key is not a curve point")
    if _is_identity(_mul(8, point)):
        raise SealError("the recipient key is a point of small order")
    if not _is_identity(_mul(_L, point)):
        raise SealError("the recipient key is not in the prime-order subgroup")
    y = point[1]  # z = 1: decoded points are affine
    u = (1 + y) * pow(1 - y, -1, _P) % _P  # y = 1 only for the identity, refused above
    return u.to_bytes(KEY_BYTES, "little")


def x25519_private_key(identity: Identity) -> X25519PrivateKey:
    """The X25519 key of an identity: SHA-512 of its Ed25519 seed, first half, clamped (X25519 would
    clamp it anyway; clamping here makes the stored bytes libsodium's ``sk_to_curve25519``)."""
    scalar = bytearray(hashlib.sha512(identity.seed()).digest()[:KEY_BYTES])
    scalar[0] &= 248
    scalar[31] = (scalar[31] & 127) | 64
    return X25519PrivateKey.from_private_bytes(bytes(scalar))


def _box_key(shared: bytes, info: bytes) -> ChaCha20Poly1305:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SEAL_INFO_PREFIX + info).derive(shared)
    return ChaCha20Poly1305(key)


def _info(info: object) -> bytes:
    if not isinstance(info, (bytes, bytearray)) or len(info) > MAX_INFO_BYTES:
        raise SealError(f"info is bytes, at most {MAX_INFO_BYTES}")
    return bytes(info)


def seal(recipient_ed25519_pub: bytes, plaintext: bytes, *, info: bytes, ephemeral: bytes | None = None) -> bytes:
    """A box of ``plaintext`` that only the holder of ``recipient_ed25519_pub``'s seed opens, for the
    context ``info``. ``ephemeral`` (a 32-byte X25519 private key) is for test vectors only: by default
    each box gets a fresh random one, which the construction's fixed nonce requires."""
    recipient = x25519_public_key(bytes(recipient_ed25519_pub))
    info = _info(info)
    if not isinstance(plaintext, (bytes, bytearray)):
        raise SealError("the plaintext is bytes")
    eph = X25519PrivateKey.generate() if ephemeral is None else X25519PrivateKey.from_private_bytes(ephemeral)
    eph_pub = eph.public_key().public_bytes_raw()
    try:
        shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient))
    except ValueError:  # an all-zero shared secret; x25519_public_key refuses such keys already
        raise SealError("no shared secret with this recipient key") from None
    return eph_pub + _box_key(shared, info).encrypt(_NONCE, bytes(plaintext), eph_pub + recipient)


def open_sealed(identity: Identity, sealed: bytes, *, info: bytes) -> bytes:
    """The plaintext of a box sealed to ``identity`` for ``info``; SealError for anything else."""
    info = _info(info)
    if not isinstance(sealed, (bytes, bytearray)) or len(sealed) < OVERHEAD:
        raise SealError("not a sealed box: too short")
    sealed = bytes(sealed)
    eph_pub, box = sealed[:KEY_BYTES], sealed[KEY_BYTES:]
    private = x25519_private_key(identity)
    mine = private.public_key().public_bytes_raw()
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
        return _box_key(shared, info).decrypt(_NONCE, box, eph_pub + mine)
    except (InvalidTag, ValueError):  # ValueError: a small-order ephemeral key (all-zero secret)
        raise SealError("the sealed box does not open: altered, truncated, or not sealed to this node") from None
