"""Loading helpers for the test vectors (in the spirit of pyca/cryptography's load_vectors_from_file).

Two kinds of vectors:

* the public Ed25519 suites copied unchanged into ``tests/vectors/public/`` with their licences and
  provenance (CCTV, speccheck, Wycheproof, RFC 8032; see its README.md): ``load_cctv()``, ``load_speccheck()``, ``load_wycheproof()``, ``load_rfc8032()``
  each return a list of :class:`SigVector`;
* the project's own vectors in ``tests/vectors/`` (``protocol.json``, ``edge.json``), written by
  ``tests/vectors/generate.py``: ``load_protocol()``, ``load_edge()``.

It also holds :func:`zip215_verify`, a deliberately small, slow, textbook ZIP-215 check written from the
ZIP (not from our code), used as an independent oracle for per-item verdicts.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).resolve().parent.parent
PROJECT_DIR = TESTS_DIR.parent
PROJECT_VECTORS_DIR = TESTS_DIR / "vectors"


PUBLIC_VECTORS_DIR = PROJECT_VECTORS_DIR / "public"


def load_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_vectors_from_file(relative: str, loader, *, base: Path = PUBLIC_VECTORS_DIR):
    """``loader(parsed_json)`` applied to ``base/relative`` (default: the public suites in the repository)."""
    return loader(load_json(base / relative))


@dataclass(frozen=True)
class SigVector:
    """One Ed25519 verification case."""

    suite: str
    name: str  # stable, human-readable id (used as pytest id)
    public_key: bytes
    message: bytes
    signature: bytes
    expected: bool | None  # the suite's own verdict under ZIP-215 where it has one
    flags: tuple[str, ...] = field(default=())

    @property
    def item(self) -> tuple[bytes, bytes, bytes]:
        return (self.public_key, self.message, self.signature)


# -- public suites ----------------------------------------------------------------------------------

CCTV_ACCEPTED = 826
SPECCHECK_ACCEPTED_CASES = frozenset({0, 1, 2, 3, 4, 5, 9, 10, 11})
WYCHEPROOF_ACCEPTED = 89
# Wycheproof marks tcId 151 invalid; it is valid under ZIP-215 (documented in tests/vectors/public/README.md).
WYCHEPROOF_ZIP215_DEVIATIONS = frozenset({151})
RFC8032_ACCEPTED = 5


def _cctv(data) -> list[SigVector]:
    return [
        SigVector(
            suite="cctv",
            name=f"cctv-{entry['number']}",
            public_key=bytes.fromhex(entry["key"]),
            message=entry["msg"].encode("utf-8"),
            signature=bytes.fromhex(entry["sig"]),
            expected=None,  # CCTV gives flags, not verdicts
            flags=tuple(entry.get("flags") or ()),
        )
        for entry in data
    ]


def _speccheck(data) -> list[SigVector]:
    return [
        SigVector(
            suite="speccheck",
            name=f"speccheck-{i}",
            public_key=bytes.fromhex(entry["pub_key"]),
            message=bytes.fromhex(entry["message"]),
            signature=bytes.fromhex(entry["signature"]),
            expected=i in SPECCHECK_ACCEPTED_CASES,
        )
        for i, entry in enumerate(data)
    ]


def _wycheproof(data) -> list[SigVector]:
    out = []
    for group in data["testGroups"]:
        pk = bytes.fromhex(group["publicKey"]["pk"])
        for test in group["tests"]:
            valid = test["result"] == "valid"
            if test["tcId"] in WYCHEPROOF_ZIP215_DEVIATIONS:
                valid = True
            out.append(
                SigVector(
                    suite="wycheproof",
                    name=f"wycheproof-{test['tcId']}",
                    public_key=pk,
                    message=bytes.fromhex(test["msg"]),
                    signature=bytes.fromhex(test["sig"]),
                    expected=valid,
                    flags=tuple(test.get("flags") or ()),
                )
            )
    return out


def _rfc8032(data) -> list[SigVector]:
    return [
        SigVector(
            suite="rfc8032",
            name=f"rfc8032-{entry['name']}",
            public_key=bytes.fromhex(entry["public_key"]),
            message=bytes.fromhex(entry["message"]),
            signature=bytes.fromhex(entry["signature"]),
            expected=bool(entry.get("valid", True)),
        )
        for entry in data["vectors"]
    ]


def load_cctv() -> list[SigVector]:
    return load_vectors_from_file("cctv/ed25519vectors.json", _cctv)


def load_speccheck() -> list[SigVector]:
    return load_vectors_from_file("speccheck/cases.json", _speccheck)


def load_wycheproof() -> list[SigVector]:
    return load_vectors_from_file("wycheproof/ed25519_test.json", _wycheproof)


def load_rfc8032() -> list[SigVector]:
    return load_vectors_from_file("rfc8032/rfc8032_7_1_ed25519.json", _rfc8032)


PUBLIC_SUITES = {
    # suite: (loader, number of cases, number accepted under ZIP-215)
    "cctv": (load_cctv, 914, CCTV_ACCEPTED),
    "speccheck": (load_speccheck, 12, len(SPECCHECK_ACCEPTED_CASES)),
    "wycheproof": (load_wycheproof, 151, WYCHEPROOF_ACCEPTED),
    "rfc8032": (load_rfc8032, 5, RFC8032_ACCEPTED),
}


# -- the project's own vectors ----------------------------------------------------------------------


def unhex_value(value: Any) -> Any:
    """JSON form of a canonical value -> Python: ``{"hex": ".."}`` is bytes, lists/dicts recurse."""
    if isinstance(value, dict):
        if set(value) == {"hex"} and isinstance(value["hex"], str):
            return bytes.fromhex(value["hex"])
        return {k: unhex_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unhex_value(v) for v in value]
    return value


def load_protocol() -> dict[str, Any]:
    """tests/vectors/protocol.json: "envelopes" (complete), "refused", "accepted_edge_cases"."""
    return load_json(PROJECT_VECTORS_DIR / "protocol.json")


def load_edge() -> list[SigVector]:
    """tests/vectors/edge.json as SigVectors; ``expected`` is the ZIP-215 verdict, and the flags say
    what a cofactorless check gives ("cofactorless:true"/"cofactorless:false")."""
    data = load_json(PROJECT_VECTORS_DIR / "edge.json")
    return [
        SigVector(
            suite="edge",
            name=v["name"],
            public_key=bytes.fromhex(v["public_key"]),
            message=bytes.fromhex(v["message"]),
            signature=bytes.fromhex(v["signature"]),
            expected=bool(v["zip215"]),
            flags=(f"cofactorless:{str(bool(v['cofactorless'])).lower()}",),
        )
        for v in data["vectors"]
    ]


def refused_bytes(vector: dict[str, Any]) -> bytes:
    """A refused vector's bytes: "hex", or "hex_parts" (each part's hex repeated "repeat" times)."""
    if "hex" in vector:
        return bytes.fromhex(vector["hex"])
    return b"".join(bytes.fromhex(part["hex"]) * int(part.get("repeat", 1)) for part in vector["hex_parts"])


# -- independent ZIP-215 oracle ---------------------------------------------------------------------

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


# -- an independent envelope builder ----------------------------------------------------------------
# Built on msgpack + pyca/cryptography, not on our code, so tests can make any envelope, including the
# ones our encoder refuses to make (wrong types, missing or extra fields, bad signatures).

SIGNING_PREFIX = b"vrm-envelope-v1\x00"
# A fixed "receiver clock" for everything that is not about time itself.
NOW_MS = 1_750_000_000_000
FIELD_ORDER = ("author", "body", "created", "expires", "kind", "sig", "v")
KINDS = (
    "accept",
    "decline",
    "deletion",
    "grant",
    "intent",
    "offer",
    "receipt",
    "request",
    "revoke",
    "withdraw",
)


def _sorted_maps(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _sorted_maps(value[k])
            for k in sorted(value, key=lambda k: k.encode("utf-8") if isinstance(k, str) else b"")
        }
    if isinstance(value, (list, tuple)):
        return [_sorted_maps(v) for v in value]
    return value


def canonical(value: Any) -> bytes:
    """The canonical encoding by msgpack-python (shortest forms, bin type for bytes, sorted keys)."""
    import msgpack

    return msgpack.packb(_sorted_maps(value), use_bin_type=True)


class Author:
    """An Ed25519 key pair from pyca/cryptography."""

    def __init__(self, seed: bytes):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.seed = seed
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def numbered(cls, n: int) -> Author:
        return cls(hashlib.sha256(b"vrm-test-author-%d" % n).digest())

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def sign_with_torsion(self, data: bytes, torsion_multiple: int = 1) -> bytes:
        return sign_with_torsion(self.seed, data, torsion_multiple)


_MISSING = object()


def envelope_map(
    author: Author | None,
    *,
    kind: Any = "intent",
    body: Any = _MISSING,
    created: Any = 1_750_000_000_000,
    expires: Any = _MISSING,
    v: Any = 1,
    public_key: Any = _MISSING,
    drop: tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
    sig: Any = _MISSING,
) -> dict[str, Any]:
    """The envelope as a dict; sig (unless given) signs the canonical map without "sig"."""
    if body is _MISSING:
        body = {"text": "hello", "n": 1, "blob": b"\x00\x01"}
    if expires is _MISSING:
        expires = created + 3_600_000 if isinstance(created, int) else 1_750_003_600_000
    if public_key is _MISSING:
        public_key = author.public_key if author is not None else bytes(32)
    fields: dict[str, Any] = {
        "author": public_key,
        "body": body,
        "created": created,
        "expires": expires,
        "kind": kind,
        "v": v,
    }
    fields.update(extra or {})
    for name in drop:
        fields.pop(name, None)
    if sig is _MISSING and "sig" not in drop:
        unsigned = {k: val for k, val in fields.items() if k != "sig"}
        sig = author.sign(SIGNING_PREFIX + canonical(unsigned)) if author is not None else bytes(64)
    if "sig" not in drop:
        fields["sig"] = sig
    return fields


def build_envelope(author: Author | None, **kwargs: Any) -> bytes:
    """Canonical bytes of :func:`envelope_map`."""
    return canonical(envelope_map(author, **kwargs))


def expected_signed_bytes(raw: bytes) -> bytes:
    import msgpack

    fields = msgpack.unpackb(raw, raw=False)
    return SIGNING_PREFIX + canonical({k: v for k, v in fields.items() if k != "sig"})


def expected_id(raw: bytes) -> bytes:
    return hashlib.sha256(expected_signed_bytes(raw)).digest()


# -- comparing outcomes across backends -------------------------------------------------------------


def outcome(fn, *args: Any) -> tuple[str, Any]:
    """("ok", result) or ("err", Reason) or ("exc", exception class name): comparable across backends."""
    from node.errors import EnvelopeError
    from node.reasons import Reason

    try:
        return ("ok", fn(*args))
    except EnvelopeError as exc:
        return ("err", Reason(exc.reason))
    except Exception as exc:  # noqa: BLE001 - the class name is what we compare
        return ("exc", type(exc).__name__)


def reason_of(fn, *args: Any) -> Reason:
    """The Reason of the EnvelopeError that ``fn(*args)`` raises (fails the test if it returns)."""
    from node.errors import EnvelopeError
    from node.reasons import Reason

    try:
        result = fn(*args)
    except EnvelopeError as exc:
        assert isinstance(exc.reason, Reason), exc.reason
        return exc.reason
    raise AssertionError(f"expected an EnvelopeError, got {result!r}")


def tagged(value: Any) -> Any:
    """A type-strict, comparable form of a decoded value (so True != 1 and b"" != "" and [] != ())."""
    if value is None or isinstance(value, bool):
        return (type(value).__name__, value)
    if isinstance(value, int):
        return ("int", int(value))
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, bytes):
        return ("bytes", value)
    if isinstance(value, list):
        return ("list", tuple(tagged(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((tagged(k), tagged(v)) for k, v in value.items()), key=repr)))
    return ("other", type(value).__name__, repr(value))


# -- mutation for differential fuzzing ---------------------------------------------------------------


def mutate(raw: bytes, rng: random.Random) -> bytes:
    """1-3 random edits of ``raw``: bit flip, byte replacement, insertion, deletion, truncation,
    slice duplication."""
    data = bytearray(raw)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(6)
        pos = rng.randrange(len(data) + 1) if data else 0
        if op == 0 and data:  # flip one bit
            pos = min(pos, len(data) - 1)
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and data:  # replace a byte
            pos = min(pos, len(data) - 1)
            data[pos] = rng.choice((0x00, 0x7F, 0x80, 0xC0, 0xC1, 0xCA, 0xCC, 0xD0, 0xD9, 0xDC, 0xDE, 0xFF, rng.randrange(256)))
        elif op == 2:  # insert a byte
            data.insert(pos, rng.randrange(256))
        elif op == 3 and data:  # delete a byte
            del data[min(pos, len(data) - 1)]
        elif op == 4:  # truncate
            del data[pos:]
        else:  # duplicate a slice (makes trailing bytes, repeated keys)
            end = rng.randrange(pos, len(data) + 1)
            data[pos:pos] = data[pos:end]
    return bytes(data)
