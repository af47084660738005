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

DAY_MS = 86_400_000
# The longest lifetime (expires - created) of each kind (PROTOCOL.md section 2, "Lifetimes"); at least
# what the node's own signing paths give it (node.envelope.create refuses more).
MAX_LIFETIME_MS = {
    "accept": 365 * DAY_MS,  # lives until its offer expires
    "decline": 365 * DAY_MS,
    "deletion": 30 * DAY_MS,
    "grant": 365 * DAY_MS,
    "intent": 365 * DAY_MS,
    "offer": 365 * DAY_MS,  # at most its intent's remaining life
    "receipt": 10 * 365 * DAY_MS,  # the person's audit trail
    "request": 30 * DAY_MS,
    "revoke": 30 * DAY_MS,
    "withdraw": 365 * DAY_MS,  # lives until its intent expires
}
NO_KIND = 255  # ingest's kind code for an item that did not decode
MAX_KEY_CACHE = 131_072
MAX_HOT_KEYS = 1024  # the native Verifier's bound on fixed-base tables (native/src/hotkeys.rs)
DEFAULT_HOT_KEYS = 128
DEFAULT_HOT_KEY_USES = 64
MAX_HOT_KEY_USES = 1 << 20
MAX_RECENT_IDS = 1 << 20
MAX_THREADS = 64
DEFAULT_RECENT_IDS = 262_144

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

    def __init__(
        self,
        key_cache_size: int = 4096,
        *,
        threads: int | None = None,
        recent_ids: int = DEFAULT_RECENT_IDS,
        hot_keys: int = DEFAULT_HOT_KEYS,
        hot_key_uses: int = DEFAULT_HOT_KEY_USES,
    ) -> None:
        # The same refusals as the native constructor: TypeError, OverflowError (negative or beyond
        # 64 bits), ValueError (outside the bounds).
        self._cache_size = _bounded("key_cache_size", key_cache_size, 0, MAX_KEY_CACHE)
        self._recent_cap = _bounded("recent_ids", recent_ids, 0, MAX_RECENT_IDS)
        # The native core checks a frequent signer's signatures with a fixed-base table of its key:
        # the same group element, so the same verdict; the reference computes it one way only.
        _bounded("hot_keys", hot_keys, 0, MAX_HOT_KEYS)
        _bounded("hot_key_uses", hot_key_uses, 1, MAX_HOT_KEY_USES)
        # The reference runs on one thread whatever it is given; it only checks the argument.
        self.threads = 1 if threads is None else _bounded("threads", threads, 1, MAX_THREADS)
        self._keys: OrderedDict[bytes, ed25519.Point] = OrderedDict()
        self._recent: OrderedDict[bytes, None] = OrderedDict()

    def remember(self, ids: bytes) -> None:
        """Adds committed ids (32 bytes each, concatenated) to the recent-id set, oldest out first."""
        if not isinstance(ids, (bytes, bytearray, memoryview)):
            raise TypeError("ids must be bytes, bytearray or memoryview")
        ids = bytes(ids)
        if len(ids) % 32:
            raise ValueError(f"ids must be a concatenation of 32-byte ids, not {len(ids)} bytes")
        for at in range(0, len(ids), 32):
            if self._recent_cap == 0 or ids[at : at + 32] in self._recent:
                continue
            self._recent[ids[at : at + 32]] = None
            if len(self._recent) > self._recent_cap:
                self._recent.popitem(last=False)

    def recent_len(self) -> int:
        return len(self._recent)

    def is_recent(self, envelope_id: bytes) -> bool:
        return envelope_id in self._recent

    def ingest(self, envelopes: Iterable[bytes], now_ms: int, index: Any = None) -> Any:
        """The one pass over a received batch (node/reference/ingest.py)."""
        from node.reference.ingest import ingest

        return ingest(self, envelopes, now_ms, index)

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

    def precheck(self, raw: bytes, now_ms: int) -> tuple[Reason, bytes, ed25519.Prepared | None]:
        return self._precheck(raw, now_ms)

    def _precheck(self, raw: bytes, now_ms: int) -> tuple[Reason, bytes, ed25519.Prepared | None]:
        """Everything before the signature equation: decode, lifetime, time, key. OK means 'check the
        signature' (prepared is None when R or S already make it invalid)."""
        try:
            _, kind, author, created, expires, _, sig, signed, envelope_id = decode_envelope(raw)
        except EnvelopeError as error:
            return error.reason, _ZERO_ID, None
        if expires - created > MAX_LIFETIME_MS[kind]:
            return Reason.TOO_LONG_LIVED, envelope_id, None
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


def _bounded(name: str, value: Any, lo: int, hi: int) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int")
    if not 0 <= value < 2**64:
        raise OverflowError(f"{name} must be a non-negative 64-bit integer")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value}")
    return value


def _check_clock(now_ms: int) -> None:
    """The clock is an int64 of milliseconds, as the native core takes it."""
    if not -(2**63) <= now_ms < 2**63:
        raise OverflowError("now_ms must fit in a signed 64-bit integer")
