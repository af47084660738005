"""Envelopes: the signed, expiring messages nodes exchange (PROTOCOL.md section 2).

The public API over a backend (the native core by default, node.reference as its twin):
``create`` signs a new envelope, ``decode`` reads one's structure, ``verify`` checks one completely
against a clock and raises EnvelopeError with the reason when it is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from node.backends import NATIVE, Backend, VerifierLike
from node.clock import wall_clock_ms
from node.errors import EnvelopeError
from node.identity import Identity
from node.reasons import Reason


@dataclass(frozen=True)
class Envelope:
    """A decoded envelope. ``raw`` is its exact wire encoding, ``id`` the SHA-256 of its signed bytes."""

    version: int
    kind: str
    author: bytes
    created: int
    expires: int
    body: Any
    sig: bytes
    id: bytes
    raw: bytes


def now_ms() -> int:
    """The current Unix time in milliseconds, the clock envelopes are stamped and checked with."""
    return wall_clock_ms()


def create(
    identity: Identity,
    kind: str,
    body: Any,
    *,
    ttl_ms: int | None = None,
    expires: int | None = None,
    created: int | None = None,
    backend: Backend = NATIVE,
) -> Envelope:
    """Sign a new envelope. ``created`` defaults to now; give exactly one of ``ttl_ms`` (expires =
    created + ttl_ms) and ``expires``. Raises EnvelopeError when the fields break PROTOCOL.md."""
    if (ttl_ms is None) == (expires is None):
        raise TypeError("give exactly one of ttl_ms and expires")
    if created is None:
        created = now_ms()
    if expires is None:
        expires = created + ttl_ms  # type: ignore[operator]  (ttl_ms is set: checked above)
    signed = backend.signed_bytes(identity.public_key, body, created, expires, kind)
    raw = backend.encode_envelope(identity.public_key, body, created, expires, kind, identity.sign(signed))
    envelope = decode(raw, backend)
    assert envelope.id == hashlib.sha256(signed).digest()  # the id covers exactly what was signed
    return envelope


def decode(raw: bytes, backend: Backend = NATIVE) -> Envelope:
    """The envelope encoded in ``raw``, checked for structure only (no clock, no signature)."""
    version, kind, author, created, expires, body, sig, _signed, envelope_id = backend.decode_envelope(raw)
    return Envelope(version, kind, author, created, expires, body, sig, envelope_id, bytes(raw))


def verify(raw: bytes, now_ms: int, verifier: VerifierLike, backend: Backend = NATIVE) -> Envelope:
    """The envelope in ``raw`` if ``verifier`` accepts it at ``now_ms`` (structure, time, key,
    ZIP-215 signature); else EnvelopeError with the first reason it failed."""
    code, envelope_id = verifier.verify_one(raw, now_ms)
    if code != Reason.OK:
        where = f"envelope {envelope_id.hex()}" if any(envelope_id) else "envelope did not decode"
        raise EnvelopeError(code, where)
    return decode(raw, backend)
