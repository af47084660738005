"""Pure-Python twin of ``Verifier.ingest``: one pass over a received batch (PROTOCOL.md section 7).

For every item, in order: the size cap and decode (their reason), the id; an id the verifier
remembers (``Verifier.remember``: ids the node committed) or that an earlier item of the batch with
the same id was accepted under is ``duplicate``, and is not verified; then the kind's lifetime, the
clock, the key and the signature (one combined ZIP-215 check over all, bisected when it fails); for
an ``intent``, the body must be exactly what section 5 gives for its text and terms
(``invalid_body`` otherwise; the check of ``node.intents.check_body``, with types compared strictly
through the canonical encoding); an accepted intent is matched against ``index`` when given.
Identical items are verified once: the later ones take the first one's verdict.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from node.errors import EnvelopeError, IntentSyntaxError
from node.reasons import Reason
from node.reference import codec, ed25519
from node.reference.codec import MAX_ENVELOPE_BYTES
from node.reference.envelope import KINDS, NO_KIND, _check_clock, decode_envelope
from node.reference.intent import parse_intent
from node.reference.matcher import MatchIndex

KNOWN_TERMS = ("contact-only-about-this", "no-resale", "delete-after-use", "no-profiling", "no-third-parties")
BODY_KEYS = ("constraints", "handles", "tags", "terms", "text", "tokens", "words")
_ZERO_ID = bytes(32)


@dataclass(frozen=True)
class IngestResult:
    """Per item: ``codes[i]`` its Reason; ``ids[32i:32i+32]`` its id and ``authors[32i:32i+32]`` its
    author (zeros when it did not decode); ``kinds[i]`` its kind's position in KINDS (NO_KIND when it
    did not decode); ``created``/``expires`` int64 in native byte order (0 when it did not decode);
    ``bodies[i]`` the decoded body of an accepted item, else None; its matched subscription ids are
    ``match_ids[offsets[i]:offsets[i+1]]`` (uint64 offsets, int64 ids, native byte order)."""

    codes: bytes
    ids: bytes
    kinds: bytes
    authors: bytes
    created: bytes
    expires: bytes
    bodies: list[Any]
    match_offsets: bytes
    match_ids: bytes

    def __len__(self) -> int:
        return len(self.codes)

    def body(self, i: int) -> Any:
        """Item i's body (None unless accepted); the native core decodes it only now."""
        if not 0 <= i < len(self.codes):
            raise IndexError("item index out of range")
        return self.bodies[i]

    def intents_json(self, indexes: Sequence[int]) -> list[tuple[str, str]]:
        """(text, body as JSON text) of each accepted intent at ``indexes`` (the JSON as
        ``json.dumps(body, ensure_ascii=False, sort_keys=True)``: the leads' rows). IndexError outside
        0..n-1, ValueError for an index that is no accepted intent."""
        out = []
        for i in indexes:
            body = self.body(i)
            if self.kinds[i] != KINDS.index("intent") or not isinstance(body, dict) or not isinstance(body.get("text"), str):
                raise ValueError(f"item {i} is not an accepted intent")
            try:
                out.append((body["text"], json.dumps(body, ensure_ascii=False, sort_keys=True)))
            except TypeError:  # bytes: JSON has none (no checked intent body holds any)
                raise ValueError(f"item {i} is not an accepted intent") from None
        return out

    def matched(self, i: int) -> list[int]:
        if not 0 <= i < len(self.codes):
            raise IndexError("item index out of range")
        lo, hi = struct.unpack_from("=2Q", self.match_offsets, 8 * i)
        return list(struct.unpack_from(f"={hi - lo}q", self.match_ids, 8 * lo))


def intent_body_ok(body: Any) -> bool:
    """Whether an intent body is exactly what its text and terms give (section 5)."""
    if not isinstance(body, dict) or sorted(body) != list(BODY_KEYS):
        return False
    text, terms = body["text"], body["terms"]
    if not isinstance(text, str) or not isinstance(terms, list):
        return False
    if not all(isinstance(t, str) and t in KNOWN_TERMS for t in terms) or len(set(terms)) != len(terms):
        return False
    try:
        parsed = parse_intent(text)
    except IntentSyntaxError:
        return False
    return codec.encode({**parsed, "terms": terms}) == codec.encode(body)


def _bytes(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    raise TypeError("envelopes must be bytes, bytearray or memoryview")


def ingest(verifier: Any, envelopes: Any, now_ms: int, index: MatchIndex | None = None) -> IngestResult:
    """The verdicts on a batch (see the module docstring); ``verifier`` is a reference Verifier."""
    _check_clock(now_ms)
    if index is not None and not isinstance(index, MatchIndex):
        raise TypeError("index must be a MatchIndex")
    raws = [_bytes(item) for item in envelopes]
    n = len(raws)
    codes = [int(Reason.OK)] * n
    decoded: list[tuple | None] = [None] * n
    for i, raw in enumerate(raws):
        if len(raw) > MAX_ENVELOPE_BYTES:
            codes[i] = Reason.TOO_LARGE
            continue
        try:
            decoded[i] = decode_envelope(raw)
        except EnvelopeError as error:
            codes[i] = error.reason

    groups: dict[bytes, list[int]] = {}
    for i, env in enumerate(decoded):
        if env is None:
            continue
        if verifier.is_recent(env[8]):
            codes[i] = Reason.DUPLICATE
        else:
            groups.setdefault(env[8], []).append(i)
    todo: list[int] = []
    same_as: dict[int, int] = {}
    for members in groups.values():
        first_of_sig: dict[bytes, int] = {}
        for i in members:
            sig = decoded[i][6]  # type: ignore[index]
            if sig in first_of_sig:
                same_as[i] = first_of_sig[sig]
            else:
                first_of_sig[sig] = i
                todo.append(i)
    todo.sort()

    pending: list[tuple[int, ed25519.Prepared | None]] = []
    for i in todo:
        code, _, prepared = verifier.precheck(raws[i], now_ms)
        codes[i] = code
        if code == Reason.OK:
            pending.append((i, prepared))
    matched: dict[int, list[int]] = {}
    for (i, _), valid in zip(pending, ed25519.settle([p for _, p in pending])):
        env = decoded[i]
        assert env is not None
        if not valid:
            codes[i] = Reason.BAD_SIGNATURE
        elif env[1] == "intent":
            if not intent_body_ok(env[5]):
                codes[i] = Reason.INVALID_BODY
            elif index is not None:
                matched[i] = index.match_value(env[5]) or []
    for i, first in same_as.items():
        codes[i] = codes[first]
    for members in groups.values():
        accepted = False
        for i in members:
            if accepted:
                codes[i] = Reason.DUPLICATE
                matched.pop(i, None)
            elif codes[i] == Reason.OK:
                accepted = True

    offsets, ids_out, total = [0], [], 0
    kinds, authors, ids, created, expires, bodies = bytearray(), bytearray(), bytearray(), [], [], []
    for i, env in enumerate(decoded):
        if env is None:
            kinds.append(NO_KIND)
            authors += _ZERO_ID
            ids += _ZERO_ID
            created.append(0)
            expires.append(0)
        else:
            kinds.append(KINDS.index(env[1]))
            authors += env[2]
            ids += env[8]
            created.append(env[3])
            expires.append(env[4])
        bodies.append(env[5] if env is not None and codes[i] == Reason.OK else None)
        found = matched.get(i, []) if codes[i] == Reason.OK else []
        ids_out += found
        total += len(found)
        offsets.append(total)
    return IngestResult(
        codes=bytes(codes),
        ids=bytes(ids),
        kinds=bytes(kinds),
        authors=bytes(authors),
        created=struct.pack(f"={n}q", *created),
        expires=struct.pack(f"={n}q", *expires),
        bodies=bodies,
        match_offsets=struct.pack(f"={n + 1}Q", *offsets),
        match_ids=struct.pack(f"={len(ids_out)}q", *ids_out),
    )
