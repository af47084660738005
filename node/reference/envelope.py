"""Envelopes (PROTOCOL.md section 2) on top of the reference codec and ZIP-215 verification.

Every check sits in the order PROTOCOL.md gives, because the first failure decides the reason code
and the native core must give the same one.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from node.errors import EnvelopeError
from node.reasons import Reason
from node.reference import codec, ed25519

PROTOCOL_VERSION = 1
SIGNING_PREFIX = b"vrm-envelope-v1\x00"
MAX_CLOCK_SKEW_MS = 300_000
KINDS = ("accept", "decline", "deletion", "grant", "intent", "offer", "receipt", "request", "revoke", "withdraw")

_FIELDS = ("author", "body", "created", "expires", "kind", "sig")  # every key but "v", in checking order
_TIME_LIMIT = 2**63  # created and expires are uint < 2^63
_ZERO_ID = bytes(32)

EnvelopeTuple = tuple[int, str, bytes, int, int, Any, bytes, bytes, bytes]


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def encode_envelope(author: bytes, body: Any, created: int, expires: int, kind: str, sig: bytes) -> bytes:
    """The full canonical envelope. Refuses exactly what decode_envelope would refuse on the result,
    so a built envelope always decodes: the fields are encoded first (in key order, so author's
    problems before body's), then the result goes through decode_envelope's checks (TOO_LARGE, then
    section 2's field checks)."""
    fields = {"author": author, "body": body, "created": created, "expires": expires, "kind": kind, "sig": sig}
    raw = codec.encode({**fields, "v": PROTOCOL_VERSION})
    decode_envelope(raw)
    return raw


def signed_bytes(author: bytes, body: Any, created: int, expires: int, kind: str) -> bytes:
    """SIGNING_PREFIX + canonical(map without "sig", with v = PROTOCOL_VERSION).

    Refuses what encode_envelope would refuse for these fields with a 64-byte signature (too large
    included), so nothing gets signed that could not travel.
    """
    return decode_envelope(encode_envelope(author, body, created, expires, kind, bytes(64)))[7]


def decode_envelope(data: bytes) -> EnvelopeTuple:
    """Decode and check structure (no time, no signature).

    Returns (v, kind, author, created, expires, body, sig, signed_bytes, id). Raises EnvelopeError.
    """
    value = codec.decode(data)
    if not isinstance(value, dict):
        raise EnvelopeError(Reason.WRONG_TYPE, "an envelope is a map")
    if "v" not in value:
        raise EnvelopeError(Reason.MISSING_FIELD, "v")
    if not _is_uint(value["v"]):
        raise EnvelopeError(Reason.WRONG_TYPE, "v must be a uint")
    if value["v"] != PROTOCOL_VERSION:
        raise EnvelopeError(Reason.UNSUPPORTED_VERSION, f"v = {value['v']}")
    for name in _FIELDS:
        if name not in value:
            raise EnvelopeError(Reason.MISSING_FIELD, name)
    for name in value:
        if name != "v" and name not in _FIELDS:
            raise EnvelopeError(Reason.UNKNOWN_FIELD, name)
    author, body, created, expires, kind, sig = (value[name] for name in _FIELDS)
    if not (isinstance(author, bytes) and len(author) == 32):
        raise EnvelopeError(Reason.WRONG_TYPE, "author must be 32 bytes")
    for name, stamp in (("created", created), ("expires", expires)):
        if not (_is_uint(stamp) and stamp < _TIME_LIMIT):
            raise EnvelopeError(Reason.WRONG_TYPE, f"{name} must be a uint < 2**63")
    if not isinstance(kind, str):
        raise EnvelopeError(Reason.WRONG_TYPE, "kind must be text")
    if not (isinstance(sig, bytes) and len(sig) == 64):
        raise EnvelopeError(Reason.WRONG_TYPE, "sig must be 64 bytes")
    if kind not in KINDS:
        raise EnvelopeError(Reason.UNKNOWN_KIND, f"kind {kind!r}")
    if expires <= created:
        raise EnvelopeError(Reason.BAD_EXPIRY, f"expires {expires} <= created {created}")
    # The input is canonical, so re-encoding the map without "sig" gives exactly the received bytes.
    unsigned = {name: item for name, item in value.items() if name != "sig"}
    signed = SIGNING_PREFIX + codec.encode(unsigned)
    return PROTOCOL_VERSION, kind, author, created, expires, body, sig, signed, hashlib.sha256(signed).digest()


class Verifier:
    """Envelope verification with a bounded cache of decoded author keys (shared by all calls).

    The cache keeps only keys that decoded to a point, least recently used out first.
    """

    def __init__(self, key_cache_size: int = 4096) -> None:
        if key_cache_size < 0:  # what the native core's unsigned argument raises too
            raise OverflowError("key_cache_size must be >= 0")
        self._cache_size = key_cache_size
        self._keys: OrderedDict[bytes, ed25519.Point] = OrderedDict()

    def cache_len(self) -> int:
        return len(self._keys)

    def verify_batch(self, envelopes: Iterable[bytes], now_ms: int) -> tuple[bytes, bytes]:
        """(codes, ids): codes[i] is the Reason of item i (0 = ok); ids[32*i:32*i+32] its id, or 32
        zero bytes when it did not decode. The signatures of every item that passed the earlier
        checks go through one combined ZIP-215 check, bisected when it fails."""
        _check_clock(now_ms)
        envelopes = list(envelopes)
        codes = bytearray(len(envelopes))
        ids = bytearray()
        pending: list[tuple[int, ed25519.Prepared | None]] = []
        for index, raw in enumerate(envelopes):
            code, envelope_id, prepared = self._precheck(raw, now_ms)
            codes[index] = code
            ids += envelope_id
            if code == Reason.OK:
                pending.append((index, prepared))
        verdicts = ed25519.settle([prepared for _, prepared in pending])
        for (index, _), valid in zip(pending, verdicts):
            if not valid:
                codes[index] = Reason.BAD_SIGNATURE
        return bytes(codes), bytes(ids)

    def verify_one(self, envelope: bytes, now_ms: int) -> tuple[int, bytes]:
        """(code, id) for one envelope, by the single (non-batch) ZIP-215 check."""
        _check_clock(now_ms)
        code, envelope_id, prepared = self._precheck(envelope, now_ms)
        if code == Reason.OK and (prepared is None or not ed25519.check_one(prepared)):
            code = Reason.BAD_SIGNATURE
        return int(code), envelope_id

    def _precheck(self, raw: bytes, now_ms: int) -> tuple[Reason, bytes, ed25519.Prepared | None]:
        """Everything before the signature equation: decode, time, key. OK means 'check the
        signature' (prepared is None when R or S already make it invalid)."""
        try:
            _, _, author, created, expires, _, sig, signed, envelope_id = decode_envelope(raw)
        except EnvelopeError as error:
            return error.reason, _ZERO_ID, None
        if created > now_ms + MAX_CLOCK_SKEW_MS:
            return Reason.NOT_YET_VALID, envelope_id, None
        if expires <= now_ms:
            return Reason.EXPIRED, envelope_id, None
        key = self._author_point(author)
        if key is None:
            return Reason.BAD_KEY, envelope_id, None
        return Reason.OK, envelope_id, ed25519.prepare(author, signed, sig, A=key)

    def _author_point(self, author: bytes) -> ed25519.Point | None:
        key = self._keys.get(author)
        if key is not None:
            self._keys.move_to_end(author)
            return key
        key = ed25519.decode_point(author)
        if key is not None and self._cache_size > 0:
            self._keys[author] = key
            if len(self._keys) > self._cache_size:
                self._keys.popitem(last=False)
        return key


def _check_clock(now_ms: int) -> None:
    """The clock is an int64 of milliseconds, as the native core takes it."""
    if not -(2**63) <= now_ms < 2**63:
        raise OverflowError("now_ms must fit in a signed 64-bit integer")
