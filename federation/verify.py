"""Stage 1 of ingest: decode, verify, check intent bodies and match, in ONE native call per batch.

``decode_and_verify`` is the only code that looks at a batch's raw bytes before the pipeline judges
them. It makes one ``Verifier.ingest`` call (node/_native.pyi; its pure-Python twin is
node/reference/ingest.py): with the GIL released the native core decodes every item, computes its id
before any signature check (so an id it remembers as committed, or a repeat inside the batch, is a
``duplicate`` without being verified), checks lifetimes and clocks, verifies the survivors' ZIP-215
signatures in batches spread over the cores, re-tokenizes each intent's text against its body, and
matches the accepted intents against the vendor's index. Python builds one ``Envelope`` per accepted
item from the packed fields: no decode, no re-tokenize, no re-validation.

Contract. In: the batch's raw envelopes, ``now`` (ms) and the native index (None: no matching). Out:
one ``Verified`` per item, in order:

- ``reason``: ``Reason.OK`` or the refusal (a verify reason, ``DUPLICATE`` for a remembered or
  repeated id, or ``INVALID_BODY`` for an intent whose body the tokenizer rejects);
- ``id``: the envelope's 32-byte id whenever it decoded, else None;
- ``env``: the decoded ``Envelope`` for OK items, else None;
- ``matches``: the subscription ids an accepted intent matched (empty otherwise).

``remember_committed`` tells the verifier which ids the store now holds, once their transaction
committed: only then may a later copy skip verification.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from node.backends import Backend, VerifierLike
from node.envelope import Envelope
from node.reasons import Reason

# The last 67 bytes of a canonical envelope are ``"sig": bin8(64)`` then ``"v": 1`` (keys sort
# ``sig`` < ``v``; PROTOCOL.md section 2): the signature is read there instead of decoding again.
_SIG_END = -3
_SIG_START = _SIG_END - 64


class Verified(NamedTuple):
    reason: int
    id: bytes | None
    env: Envelope | None
    matches: list[int]


def decode_and_verify(
    verifier: VerifierLike, backend: Backend, raws: Sequence[bytes], now: int, index: Any = None
) -> list[Verified]:
    """Verify ``raws`` in one native pass (see the module docstring for the contract)."""
    result = verifier.ingest(raws, now, index)
    codes, ids, kinds, authors = result.codes, result.ids, result.kinds, result.authors
    created = memoryview(result.created).cast("q")
    expires = memoryview(result.expires).cast("q")
    offsets = memoryview(result.match_offsets).cast("Q")
    match_ids = memoryview(result.match_ids).cast("q")
    bodies = result.bodies
    names = backend.KINDS
    out: list[Verified] = []
    for i, code in enumerate(codes):
        env_id = ids[32 * i : 32 * i + 32] if kinds[i] < len(names) else None
        if code != Reason.OK:
            out.append(Verified(code, env_id, None, []))
            continue
        raw = bytes(raws[i])
        at = 32 * i
        # Positional (the field order of Envelope, as node.envelope.decode builds it): half the cost
        # of keywords, once per accepted item.
        env = Envelope(1, names[kinds[i]], authors[at : at + 32], created[i], expires[i], bodies[i],
                       raw[_SIG_START:_SIG_END], env_id, raw)  # type: ignore[arg-type]  # fmt: skip
        start, end = offsets[i], offsets[i + 1]
        out.append(Verified(Reason.OK, env_id, env, match_ids[start:end].tolist() if end > start else []))
    return out


def remember_committed(verifier: VerifierLike, ids: Iterable[bytes]) -> None:
    """Tell ``verifier`` these ids are held now (their transaction committed): one call."""
    packed = b"".join(ids)
    if packed:
        verifier.remember(packed)
