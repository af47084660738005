"""Envelopes: the signed, expiring messages nodes exchange (PROTOCOL.md section 2).

The public API over a backend (the native core by default, node.reference as its twin):
``create`` signs a new envelope, ``decode`` reads one's structure, ``verify`` checks one completely
against a clock and raises EnvelopeError with the reason when it is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.backends import NATIVE, Backend, VerifierLike
from node.clock import wall_clock_ms
from node.errors import EnvelopeError, ValidationError
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
    created + ttl_ms) and ``expires``. Raises ValidationError when the lifetime (expires - created) is
    beyond the kind's maximum (PROTOCOL.md section 2, "Lifetimes": receivers refuse it as
    too_long_lived), EnvelopeError when the fields break PROTOCOL.md otherwise."""
    if (ttl_ms is None) == (expires is None):
        raise TypeError("give exactly one of ttl_ms and expires")
    if created is None:
        created = now_ms()
    if expires is None:
        expires = created + ttl_ms  # type: ignore[operator]  (ttl_ms is set: checked above)
    limit = backend.MAX_LIFETIME_MS.get(kind) if isinstance(kind, str) else None
    if limit is not None and isinstance(expires, int) and isinstance(created, int) and expires - created > limit:
        raise ValidationError("expires", f"a {kind} lives at most {limit // 86_400_000} days")
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


def addressed_body(
    env: Envelope,
    kind: str,
    check: Callable[[Any], dict[str, Any]],
    me: bytes | None,
    *,
    refuse_self: bool = True,
) -> tuple[dict[str, Any] | None, Reason]:
    """The addressee's first checks of a direct message: the checked body and OK, or None and the
    refusal: ``invalid_body`` (``check`` refused it, or, with ``refuse_self``, it is addressed to its
    own author) or ``not_for_role`` (its ``to`` is not ``me``, when given). Another kind is the
    caller's mistake (ValidationError)."""
    if env.kind != kind:
        raise ValidationError("kind", f"{env.kind!r} is not a {kind}")
    try:
        body = check(env.body)
    except ValidationError:
        return None, Reason.INVALID_BODY
    if refuse_self and body["to"] == env.author:
        return None, Reason.INVALID_BODY
    if me is not None and body["to"] != bytes(me):
        return None, Reason.NOT_FOR_ROLE
    return body, Reason.OK
