"""Proof of work on an envelope id (PROTOCOL.md, open-network defences): leading zero bits.

A node under pressure may ask authors it has never seen for envelopes whose id (the SHA-256 of the
signed bytes) starts with ``bits`` zero bits. The author varies nothing but ``created`` (milliseconds,
going back from now) and signs again until the id qualifies: about ``2 ** bits`` signatures, so 12
bits cost a few hundred milliseconds once per intent and a flood of fresh identities the same per
envelope. Verifying is one look at the id the node computes anyway.
"""

from __future__ import annotations

from typing import Any

from node import envelope as envelopes
from node.backends import NATIVE, Backend
from node.errors import ValidationError
from node.identity import Identity

MAX_BITS = 32  # more would take an author hours


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def meets(envelope_id: bytes, bits: int) -> bool:
    return bits <= 0 or leading_zero_bits(envelope_id) >= bits


def create_with_work(
    identity: Identity,
    kind: str,
    body: Any,
    *,
    ttl_ms: int,
    bits: int,
    now_ms: int | None = None,
    backend: Backend = NATIVE,
    max_tries: int = 1 << 24,
) -> envelopes.Envelope:
    """An envelope like ``envelope.create(…, ttl_ms=…)`` whose id has ``bits`` leading zero bits:
    ``created`` steps back a millisecond per try (``expires`` keeps ``created + ttl_ms``)."""
    if not 0 <= bits <= MAX_BITS:
        raise ValidationError("bits", f"must be 0..{MAX_BITS}")
    start = envelopes.now_ms() if now_ms is None else now_ms
    for step in range(max_tries):
        env = envelopes.create(identity, kind, body, created=start - step, ttl_ms=ttl_ms, backend=backend)
        if meets(env.id, bits):
            return env
    raise ValidationError("bits", f"no envelope met {bits} bits in {max_tries} tries")
