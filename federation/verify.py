"""Stage 1 of ingest: decode and verify a batch, in one place with a narrow contract.

``decode_and_verify`` is the only code that looks at a batch's raw bytes before the pipeline judges
them. Its body is today three calls (the native ``verify_batch``: structure, clock, ZIP-215 batch;
``envelope.decode`` of each item that verified; ``intents.check_body`` for intents, the tokenizer
re-run); it is meant to become ONE native call that also matches, so keep its contract, not its body.

Contract. In: the batch's raw envelopes and their ttls as received (same length; the ttls are for the
native pass, today's checks do not read them) and ``now`` (ms). Out: one ``Verified`` per item, in
order:

- ``reason``: ``Reason.OK`` or the refusal (a verify reason, or ``INVALID_BODY`` for an intent whose
  body the tokenizer rejects);
- ``id``: the envelope's 32-byte id whenever the envelope itself verified (also when only its intent
  body was refused, so a later copy in the batch is still a duplicate), else None;
- ``env``: the decoded ``Envelope`` for OK items, else None.

Nothing raised by bad input escapes: it becomes a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from node import envelope as envelopes
from node.backends import Backend, VerifierLike
from node.envelope import Envelope
from node.errors import ValidationError
from node.intents import check_body
from node.reasons import Reason


class Verified(NamedTuple):
    reason: int
    id: bytes | None
    env: Envelope | None


def decode_and_verify(
    verifier: VerifierLike, backend: Backend, raws: Sequence[bytes], ttls: Sequence[int], now: int
) -> list[Verified]:
    """Verify ``raws`` (see the module docstring for the contract)."""
    assert len(raws) == len(ttls)
    codes, ids = verifier.verify_batch(raws, now)
    out: list[Verified] = []
    for i, code in enumerate(codes):
        if code != Reason.OK:
            out.append(Verified(code, None, None))
            continue
        env_id = ids[32 * i : 32 * i + 32]
        env = envelopes.decode(raws[i], backend)
        if env.kind == "intent":
            try:
                check_body(env.body, backend=backend)
            except ValidationError:
                out.append(Verified(Reason.INVALID_BODY, env_id, None))
                continue
        out.append(Verified(Reason.OK, env_id, env))
    return out
