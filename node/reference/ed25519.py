"""Ed25519 with ZIP-215 verification rules, in plain Python integers.

The reference the native core is checked against, and the arithmetic the vector generator uses to
build edge cases (small-order points, non-canonical encodings). Points are extended twisted Edwards
coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z on -x^2 + y^2 = 1 + d*x^2*y^2 over GF(p).

ZIP-215 (PROTOCOL.md section 2): A and R are decoded accepting non-canonical encodings, S < l is
required, k is hashed over the bytes as received, and the check is cofactored:
[8]([S]B - R - [k]A) = identity, the same criterion for one signature and for a batch.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # order of the prime subgroup
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]
IDENTITY: Point = (0, 1, 1, 0)


# -- field and point arithmetic ----------------------------------------------------------------


def _recover_x(y: int, sign: int) -> int | None:
    """The x with x^2 = (y^2 - 1) / (d y^2 + 1) and x mod 2 = sign, or None if there is no root.

    x = 0 with sign 1 is accepted and gives x = 0 (ZIP-215; RFC 8032 would refuse it).
    """
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P  # never 0: -1/d is not a square
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    if v * x * x % P != u:
        return None
    if x & 1 != sign:
        x = (-x) % P
    return x


def point(x: int, y: int) -> Point:
    """The extended form of the affine point (x, y) (assumed on the curve)."""
    return (x % P, y % P, 1, x * y % P)


def decode_point(data: bytes) -> Point | None:
    """ZIP-215 decoding: the low 255 bits are y, reduced mod p (so y >= p is accepted), the top bit
    is the sign of x. None when the length is not 32 or no x exists for y."""
    if len(data) != 32:
        return None
    n = int.from_bytes(data, "little")
    y = (n & (2**255 - 1)) % P
    x = _recover_x(y, n >> 255)
    return None if x is None else point(x, y)


def encode_point(p: Point) -> bytes:
    """The canonical 32-byte encoding (y < p, sign bit = x mod 2)."""
    x, y = affine(p)
    return (y | (x & 1) << 255).to_bytes(32, "little")


def affine(p: Point) -> tuple[int, int]:
    X, Y, Z, _ = p
    z_inv = pow(Z, -1, P)
    return X * z_inv % P, Y * z_inv % P


def add(p: Point, q: Point) -> Point:
    """Complete addition (add-2008-hwcd-3 for a = -1): correct for every pair, doubling included."""
    X1, Y1, Z1, T1 = p
    X2, Y2, Z2, T2 = q
    a = (Y1 - X1) * (Y2 - X2) % P
    b = (Y1 + X1) * (Y2 + X2) % P
    c = 2 * D * T1 * T2 % P
    d = 2 * Z1 * Z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def double(p: Point) -> Point:
    """dbl-2008-hwcd for a = -1: cheaper than add(p, p), same result."""
    X1, Y1, Z1, _ = p
    a = X1 * X1 % P
    b = Y1 * Y1 % P
    c = 2 * Z1 * Z1 % P
    h = a + b
    e = h - (X1 + Y1) ** 2
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def negate(p: Point) -> Point:
    X, Y, Z, T = p
    return ((-X) % P, Y, Z, (-T) % P)


def multiply(k: int, p: Point) -> Point:
    """[k]p for k >= 0 by double-and-add from the top bit."""
    result = IDENTITY
    for bit in bin(k)[2:]:
        result = double(result)
        if bit == "1":
            result = add(result, p)
    return result


def multi_multiply(terms: Iterable[tuple[int, Point]]) -> Point:
    """sum of [k_i]P_i (k_i >= 0), sharing one chain of doublings between all terms (Straus)."""
    terms = list(terms)
    result = IDENTITY
    for bit in reversed(range(max((k.bit_length() for k, _ in terms), default=0))):
        result = double(result)
        for k, p in terms:
            if k >> bit & 1:
                result = add(result, p)
    return result


def is_identity(p: Point) -> bool:
    X, Y, Z, _ = p
    return X % P == 0 and (Y - Z) % P == 0


def equal(p: Point, q: Point) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % P == 0 and (p[1] * q[2] - q[1] * p[2]) % P == 0


def mul_by_cofactor(p: Point) -> Point:
    return double(double(double(p)))


_BASE_Y = 4 * pow(5, -1, P) % P
BASE: Point = point(_recover_x(_BASE_Y, 0), _BASE_Y)  # type: ignore[arg-type]


def _torsion_generator() -> Point:
    """A point of order 8, found deterministically: [l]Q lies in the 8-torsion subgroup for every
    curve point Q; take the first Q (by y = 2, 3, ...) whose [l]Q has order exactly 8."""
    y = 2
    while True:
        q = decode_point(y.to_bytes(32, "little"))
        if q is not None:
            t = multiply(L, q)
            if not is_identity(multiply(4, t)):
                return t
        y += 1


_T8 = _torsion_generator()
TORSION: tuple[Point, ...] = tuple(multiply(i, _T8) for i in range(8))  # [i]T8, order 8/gcd(i, 8)


# -- signatures --------------------------------------------------------------------------------


def hash_to_scalar(*parts: bytes) -> int:
    """SHA-512 of the concatenated parts, little-endian, mod l (RFC 8032's r and k)."""
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little") % L


def public_key(seed: bytes) -> bytes:
    """RFC 8032 key generation from a 32-byte seed."""
    return encode_point(multiply(secret_scalar(seed)[0], BASE))


def secret_scalar(seed: bytes) -> tuple[int, bytes]:
    """RFC 8032: the clamped secret scalar a and the nonce prefix of a 32-byte seed."""
    if len(seed) != 32:
        raise ValueError("an Ed25519 seed is 32 bytes")
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8  # clear the 3 low bits and bit 255
    a |= 1 << 254
    return a, h[32:]


def sign(seed: bytes, message: bytes) -> bytes:
    """RFC 8032 pure Ed25519 signature (deterministic), for cross-checking other signers."""
    a, prefix = secret_scalar(seed)
    a_bytes = encode_point(multiply(a, BASE))
    r = hash_to_scalar(prefix, message)
    r_bytes = encode_point(multiply(r, BASE))
    s = (r + hash_to_scalar(r_bytes, a_bytes, message) * a) % L
    return r_bytes + s.to_bytes(32, "little")


@dataclass(frozen=True)
class Prepared:
    """A signature with everything decoded: the check needs only these four values."""

    A: Point
    R: Point
    S: int
    k: int


def _as_bytes(data: bytes) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, bytearray or memoryview, not {type(data).__name__}")
    return bytes(data)


def prepare(public_key: bytes, message: bytes, signature: bytes, A: Point | None = None) -> Prepared | None:
    """Decode one (key, message, signature); None when it cannot be valid under ZIP-215 whatever
    the equation says (a wrong length, a key or R with no point, S >= l). A is the already decoded
    key, when the caller has it (a key cache)."""
    public_key, message, signature = _as_bytes(public_key), _as_bytes(message), _as_bytes(signature)
    if len(public_key) != 32 or len(signature) != 64:
        return None
    if A is None:
        A = decode_point(public_key)
    R = decode_point(signature[:32])
    S = int.from_bytes(signature[32:], "little")
    if A is None or R is None or S >= L:
        return None
    return Prepared(A, R, S, hash_to_scalar(signature[:32], public_key, message))


def check_one(item: Prepared) -> bool:
    """The single cofactored check: [8]([S]B - R - [k]A) = identity."""
    q = multi_multiply([(item.S, BASE), (item.k, negate(item.A)), (1, negate(item.R))])
    return is_identity(mul_by_cofactor(q))


def check_many(items: Sequence[Prepared]) -> bool:
    """The combined check [8]([sum z_i S_i]B - sum [z_i]R_i - sum [z_i k_i]A_i) = identity with
    fresh random 128-bit z_i != 0. Reducing the scalars mod l is safe: multiples of l only move
    the torsion part, which [8] removes."""
    s_total = 0
    terms = []
    for item in items:
        z = 1 + secrets.randbelow(2**128 - 1)
        s_total += z * item.S
        terms += [(z, negate(item.R)), (z * item.k % L, negate(item.A))]
    q = multi_multiply([(s_total % L, BASE), *terms])
    return is_identity(mul_by_cofactor(q))


def settle(items: Sequence[Prepared | None]) -> list[bool]:
    """The verdict of every item: one combined check over all that can be valid, and when it
    fails, bisection until each bad item is found (a single item gets the single check)."""
    verdicts = [False] * len(items)
    live = [i for i, item in enumerate(items) if item is not None]

    def bisect(indexes: list[int]) -> None:
        if len(indexes) == 1:
            verdicts[indexes[0]] = check_one(items[indexes[0]])  # type: ignore[arg-type]
        elif check_many([items[i] for i in indexes]):  # type: ignore[misc]
            for i in indexes:
                verdicts[i] = True
        else:
            mid = len(indexes) // 2
            bisect(indexes[:mid])
            bisect(indexes[mid:])

    if live:
        bisect(live)
    return verdicts


# -- the _native.pyi functions -----------------------------------------------------------------


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Single ZIP-215 check. Wrong lengths -> False (never an exception)."""
    item = prepare(public_key, message, signature)
    return item is not None and check_one(item)


def _prepare_all(items: Iterable[tuple[bytes, bytes, bytes]]) -> list[Prepared | None]:
    prepared = []
    for item in items:
        # The same exceptions as the native core's argument conversion.
        if not isinstance(item, tuple):
            raise TypeError("items are (public_key, message, signature) tuples")
        if len(item) != 3:
            raise ValueError(f"expected a tuple of 3 items, not {len(item)}")
        prepared.append(prepare(*item))
    return prepared


def verify_batch(items: Iterable[tuple[bytes, bytes, bytes]]) -> bytes:
    """One byte per item, 1 = valid: the combined check with bisection fallback."""
    return bytes(settle(_prepare_all(items)))


def batch_check(items: Iterable[tuple[bytes, bytes, bytes]]) -> bool:
    """Only the combined equation (no fallback). Any item that cannot be valid makes it False;
    empty -> True."""
    prepared = _prepare_all(items)
    if any(item is None for item in prepared):
        return False
    return check_many(prepared)  # type: ignore[arg-type]
