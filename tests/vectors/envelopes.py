"""An independent envelope builder, and helpers to compare outcomes across backends and to mutate
encodings for differential fuzzing."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from tests.vectors.zip215 import sign_with_torsion

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
