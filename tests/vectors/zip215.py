"""An independent ZIP-215 oracle: a deliberately small, slow, textbook check written from the ZIP (not
from our code), used for per-item verdicts, plus signatures whose R carries a torsion component."""

from __future__ import annotations

import hashlib

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_IDENTITY = (0, 1, 1, 0)


def _add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % _P
    bb = (y1 + x1) * (y2 + x2) % _P
    cc = 2 * t1 * t2 * _D % _P
    dd = 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, point):
    acc = _IDENTITY
    while s:
        if s & 1:
            acc = _add(acc, point)
        point = _add(point, point)
        s >>= 1
    return acc


def _neg(point):
    x, y, z, t = point
    return ((-x) % _P, y, z, (-t) % _P)


def zip215_decode_point(data: bytes):
    """ZIP-215 point decoding: y >= p is reduced, x = 0 with the sign bit set is accepted."""
    if len(data) != 32:
        return None
    v = int.from_bytes(data, "little")
    sign = v >> 255
    y = (v & ((1 << 255) - 1)) % _P
    u = (y * y - 1) % _P
    w = (_D * y * y + 1) % _P
    x2 = u * pow(w, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    if x & 1 != sign:
        x = (-x) % _P
    return (x, y, 1, x * y % _P)


_B = zip215_decode_point((4 * pow(5, _P - 2, _P) % _P).to_bytes(32, "little"))
ED25519_L = _L


def zip215_encode_point(point) -> bytes:
    x, y, z, _ = point
    zi = pow(z, _P - 2, _P)
    x, y = x * zi % _P, y * zi % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


# A point of order 8 (from the speccheck cases): a torsion component to add to R.
TORSION_8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")


def secret_scalar(seed: bytes) -> int:
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a


def sign_with_torsion(seed: bytes, message: bytes, torsion_multiple: int = 1) -> bytes:
    """An Ed25519 signature whose R carries a small-order component T (R = rB + [m]T8): valid under
    ZIP-215's cofactored equation, refused by a cofactorless check when [m]T8 is not the identity."""
    a = secret_scalar(seed)
    public = zip215_encode_point(_mul(a, _B))
    r = int.from_bytes(hashlib.sha512(b"torsion-nonce" + seed + message).digest(), "little") % _L
    t = _mul(torsion_multiple, zip215_decode_point(TORSION_8))
    r_bytes = zip215_encode_point(_add(_mul(r, _B), t))
    k = int.from_bytes(hashlib.sha512(r_bytes + public + message).digest(), "little") % _L
    return r_bytes + ((r + k * a) % _L).to_bytes(32, "little")


def cofactorless_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """[S]B = R + [k]A exactly (what a non-ZIP-215 verifier checks); for contrast in tests."""
    a = zip215_decode_point(public_key)
    r = zip215_decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % _L
    x, y, z, _ = _add(_add(_mul(s, _B), _neg(r)), _neg(_mul(k, a)))
    return x % _P == 0 and (y - z) % _P == 0


def zip215_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """valid iff [8]([S]B - R - [k]A) is the identity, k over the bytes as received."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = zip215_decode_point(public_key)
    r = zip215_decode_point(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % _L
    e = _add(_add(_mul(s, _B), _neg(r)), _neg(_mul(k, a)))
    x, y, z, _ = _mul(8, e)
    return x % _P == 0 and (y - z) % _P == 0
