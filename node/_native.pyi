"""Private native core (Rust, pyo3). Public code goes through node.envelope / node.verify.

Every function here has a pure-Python twin in node.reference with the same contract; the tests run
both. Errors are node.errors classes (EnvelopeError with a Reason), never native ones, and no input
can make this module panic.
"""

from collections.abc import Iterable, Sequence
from typing import Any

PROTOCOL_VERSION: int  # 1
SIGNING_PREFIX: bytes  # b"vrm-envelope-v1\x00"
MAX_ENVELOPE_BYTES: int  # 65536
MAX_DEPTH: int  # 16
MAX_CLOCK_SKEW_MS: int  # 300_000
KINDS: tuple[str, ...]  # sorted
MAX_INTENT_CHARS: int  # 1000
MAX_INTENT_NAME_CHARS: int  # 64
INTENT_UNICODE_VERSION: str  # "14.0.0": the Unicode data the tokenizer's tables were made from

# -- canonical MessagePack subset (PROTOCOL.md section 1) --------------------------------------

def encode(value: Any) -> bytes:
    """Canonical encoding of None/bool/int/str/bytes/list/tuple/dict (str keys only).

    Raises EnvelopeError: FLOAT_FORBIDDEN for a float, WRONG_TYPE for any other type, a non-str
    key, or an int outside -2**63 .. 2**64-1; TOO_DEEP beyond MAX_DEPTH. Dict keys are sorted by
    their UTF-8 bytes whatever the dict's order. No size cap (callers cap envelopes).
    """

def decode(data: bytes) -> Any:
    """Strict canonical decode (maps -> dict, arrays -> list, bin -> bytes).

    Raises EnvelopeError with the first reason met, in PROTOCOL.md's order (TOO_LARGE first when
    len(data) > MAX_ENVELOPE_BYTES).
    """

# -- envelopes (PROTOCOL.md section 2) ---------------------------------------------------------

def signed_bytes(author: bytes, body: Any, created: int, expires: int, kind: str) -> bytes:
    """SIGNING_PREFIX + canonical(map without "sig", with v = PROTOCOL_VERSION)."""

def encode_envelope(
    author: bytes, body: Any, created: int, expires: int, kind: str, sig: bytes
) -> bytes:
    """The full canonical envelope. Raises EnvelopeError when the fields break section 2's rules
    (wrong lengths -> WRONG_TYPE, unknown kind -> UNKNOWN_KIND, expires <= created -> BAD_EXPIRY,
    result over MAX_ENVELOPE_BYTES -> TOO_LARGE)."""

def decode_envelope(
    data: bytes,
) -> tuple[int, str, bytes, int, int, Any, bytes, bytes, bytes]:
    """Decode and check structure (no time, no signature).

    Returns (v, kind, author, created, expires, body, sig, signed_bytes, id). Raises EnvelopeError.
    """

class Verifier:
    """Envelope verification with a bounded cache of decoded author keys (shared by all calls)."""

    def __init__(self, key_cache_size: int = 4096) -> None: ...
    # now_ms is the receiver's clock in ms; outside the int64 range -> OverflowError.
    def verify_batch(self, envelopes: Sequence[bytes], now_ms: int) -> tuple[bytes, bytes]:
        """One call per batch, GIL released. Returns (codes, ids): codes[i] is the Reason of item i
        (0 = ok); ids[32*i:32*i+32] is its id, or 32 zero bytes when it did not decode. Signatures of
        all structurally valid, live items are checked in one ZIP-215 batch; if that fails the batch is
        bisected so exactly the bad items get BAD_SIGNATURE."""
    def verify_one(self, envelope: bytes, now_ms: int) -> tuple[int, bytes]:
        """(code, id) for one envelope, by the single (non-batch) ZIP-215 check."""
    def cache_len(self) -> int: ...

# -- raw Ed25519, ZIP-215 (for test suites and benchmarks) -------------------------------------

def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Single ZIP-215 check. Wrong lengths -> False (never an exception)."""

def ed25519_verify_batch(items: Sequence[tuple[bytes, bytes, bytes]]) -> bytes:
    """items are (public_key, message, signature). One byte per item, 1 = valid. Batch check with
    bisection fallback; must equal ed25519_verify item by item. GIL released."""

def ed25519_batch_check(items: Sequence[tuple[bytes, bytes, bytes]]) -> bool:
    """Only the combined batch equation (no fallback): True iff it holds. Items with a wrong
    length, an undecodable point or S >= l make it False. Empty -> True."""

# -- intents (PROTOCOL.md section 5) ---------------------------------------------------------------

def parse_intent(text: str) -> dict[str, Any]:
    """Tokenize an intent's text: {"text", "tokens", "tags", "handles", "constraints", "words"}.

    tokens/tags/handles are lower-cased names without their sigil, deduplicated in first-occurrence
    order; constraints maps each key (in order of appearance) to its typed value ({"money": minor,
    "cur": "USD"}, {"date": ...}, {"int": n}, {"range": [lo, hi]} (+ "cur" for money), {"geohash": ...},
    {"place": ...}, {"text": ...}); words are the free words, punctuation stripped. Raises
    node.errors.IntentSyntaxError(message, word, offset) — offset in characters (code points) — and
    TypeError when text is not a str. Never panics.
    """

# -- the subscription matcher (node/subscriptions.py compiles; node/reference/matcher.py is the twin) ----

MATCH_OK: int  # 0: the item was read and matched (possibly against nothing)
MATCH_MALFORMED: int  # 1: not a canonical body/envelope with the matcher's view of an intent body
MATCH_NOT_INTENT: int  # 2 (envelopes only): a well-formed envelope of another kind
MATCH_OPS: tuple[str, ...]  # ("=", "<", "<=", ">", ">="): a bound's op code is its position
MATCH_KINDS: tuple[str, ...]  # ("money", "int", "date"): a bound's kind code is its position

class MatchIndex:
    """A vendor's compiled subscriptions, matched against batches of intents and changed in place by
    ``add`` / ``remove`` (each costs what it changes, never a rebuild; safe while other threads match:
    matching holds a read lock per item, an update the write lock, all with the GIL released).

    Each subscription is the tuple ``(id, tokens, tags, handles, equals, near, bounds)`` (see
    node/reference/matcher.py for the meaning): id an int64, tokens (at least one), tags and handles
    sequences of str, equals a sequence of ``(key, value)`` (value any canonical value), near a str or
    None, bounds a sequence of ``(key, op, kind, value, currency)`` with op/kind codes (MATCH_OPS /
    MATCH_KINDS positions) and an int64 value. Raises TypeError/OverflowError for ill-typed input,
    ValueError for a subscription without a token or an unknown code, EnvelopeError for an equality
    value that is not a canonical value.
    """

    def __init__(self, subscriptions: Iterable[tuple]) -> None: ...
    def __len__(self) -> int: ...
    def add(self, subscriptions: Iterable[tuple]) -> None:
        """Adds subscriptions of the constructor's form (ids may repeat); all or nothing: on the
        constructor's errors nothing is added."""
    def remove(self, ids: Iterable[int]) -> int:
        """Removes every subscription with one of these ids (absent ones are skipped); returns how
        many were removed. TypeError for a non-int (bool included), OverflowError outside int64."""
    def heap_bytes(self) -> int:
        """An estimate of the memory the index holds, in bytes (the reference's is rough)."""
    def match_bodies(self, bodies: Sequence[bytes]) -> tuple[bytes, bytes, bytes]:
        """One call per batch of canonical intent bodies, GIL released: (flags, offsets, ids).

        flags[i] is MATCH_OK or MATCH_MALFORMED (also for an item over MAX_ENVELOPE_BYTES); item i's
        matching subscription ids, ascending and distinct, are ids[offsets[i]:offsets[i+1]] with offsets
        uint64 and ids int64 in native byte order (memoryview(offsets).cast("Q"), .cast("q")). Never
        raises for the bytes' content; TypeError for an item that is not bytes-like."""
    def match_envelopes(self, envelopes: Sequence[bytes]) -> tuple[bytes, bytes, bytes]:
        """The same for envelopes: each is decoded (structure only, no time or signature check) and,
        when of kind ``intent``, its body matched; another kind gets MATCH_NOT_INTENT."""
