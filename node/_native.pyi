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
MAX_LIFETIME_MS: dict[str, int]  # kind -> longest expires - created (PROTOCOL.md section 2, "Lifetimes")
NO_KIND: int  # 255: Verifier.ingest's kind code for an item that did not decode
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

class IngestResult:
    """What Verifier.ingest returns for a batch of n items; fixed-width fields packed in bytes.

    codes          n bytes: item i's Reason (0 = ok; 17 duplicate, 19 invalid_body, 30 too_long_lived
                   and the envelope codes 1..16)
    ids            32*n bytes: item i's id (SHA-256 of its signed bytes), 32 zero bytes if it did not decode
    kinds          n bytes: the position of item i's kind in KINDS, NO_KIND if it did not decode
    authors        32*n bytes: item i's author key (zeros if it did not decode)
    created        8*n bytes, int64 native order (memoryview(...).cast("q")); 0 if it did not decode
    expires        likewise
    bodies         list of n: item i's decoded body (as decode gives it) when its code is 0, else None
    match_offsets  8*(n+1) bytes, uint64 native order ("Q")
    match_ids      int64 native order ("q"): item i's matching subscription ids, ascending and distinct,
                   are match_ids[match_offsets[i]:match_offsets[i+1]] (empty unless an accepted intent
                   and an index was given)

    Everything but the bodies is built with the GIL released; the bodies are decoded only when
    read (``bodies`` decodes them all once, ``body(i)`` one).
    """

    codes: bytes
    ids: bytes
    kinds: bytes
    authors: bytes
    created: bytes
    expires: bytes
    bodies: list[Any]
    match_offsets: bytes
    match_ids: bytes
    def __len__(self) -> int: ...
    def body(self, i: int) -> Any:
        """Item i's body, as ``bodies[i]`` (IndexError outside 0..n-1)."""
    def intents_json(self, indexes: Sequence[int]) -> list[tuple[str, str]]:
        """(text, body as JSON text) of each accepted intent at ``indexes``, the JSON exactly as
        ``json.dumps(body, ensure_ascii=False, sort_keys=True)``: one call per batch, the GIL released.
        IndexError outside 0..n-1, ValueError for an index that is no accepted intent."""
    def matched(self, i: int) -> list[int]:
        """Item i's matching subscription ids as a list (IndexError outside 0..n-1)."""

class Verifier:
    """Envelope verification with a bounded cache of decoded author keys, a bounded set of recently
    committed ids (for ingest's duplicates) and the threads large batches are split over, all shared by
    every call.

    key_cache_size: 0 ..= 131_072 decoded keys (0: no cache; its index table is allocated up front).
    threads: 1 ..= 64; None = the machine's available parallelism (at most 64). Batches of 256 or more
      are split into chunks (one batch equation each) verified on that many threads, with the GIL
      released; threads change no verdict.
    recent_ids: 0 ..= 1_048_576 ids remembered (oldest out first; memory grows with use).
    Each outside its range -> ValueError naming it; negative or >= 2**64 -> OverflowError; not an int ->
    TypeError. No argument can abort the interpreter or raise PanicException.
    """

    threads: int
    def __init__(
        self,
        key_cache_size: int = 4096,
        *,
        threads: int | None = None,
        recent_ids: int = 262_144,
        hot_keys: int = 128,
        hot_key_uses: int = 64,
    ) -> None:
        """``hot_keys``: at most this many fixed-base tables (30 KB each) for the keys that sign most
        often; a key gets one after ``hot_key_uses`` single verifications, and ``verify_one`` then
        checks its signatures in ~0.6 of the time, with the same verdicts."""
    # now_ms is the receiver's clock in ms; outside the int64 range -> OverflowError.
    def verify_batch(self, envelopes: Sequence[bytes], now_ms: int) -> tuple[bytes, bytes]:
        """One call per batch, GIL released. Returns (codes, ids): codes[i] is the Reason of item i
        (0 = ok); ids[32*i:32*i+32] is its id, or 32 zero bytes when it did not decode. Checks in
        PROTOCOL.md's order: structure, the kind's lifetime (TOO_LONG_LIVED), clock, key, then the
        signatures of all survivors in one ZIP-215 batch per chunk; if that fails it is bisected so
        exactly the bad items get BAD_SIGNATURE."""
    def verify_one(self, envelope: bytes, now_ms: int) -> tuple[int, bytes]:
        """(code, id) for one envelope, by the single (non-batch) ZIP-215 check."""
    def ingest(self, envelopes: Sequence[bytes], now_ms: int, index: MatchIndex | None = None) -> IngestResult:
        """The one pass over a received batch (PROTOCOL.md section 7), one call, GIL released.

        Per item: size cap, decode and field checks, id; then duplicates skip verification: an id in
        the recent-id set (see remember), or an id an earlier item of this batch is accepted under, gives
        DUPLICATE (a forged copy before the genuine one does not make the genuine one a duplicate;
        identical items are verified once and share the verdict); the rest get verify_batch's checks
        (lifetime, clock, key, ZIP-215 batch with bisection), and an ``intent`` must have exactly the
        body section 5 gives for its text and terms (node.intents.check_body's rule, compared as
        canonical bytes, so True is not 1) -> else INVALID_BODY; an accepted intent is matched against
        ``index`` when given. Other kinds' bodies are the caller's to judge. For items that are not
        duplicates the code equals verify_batch's, but for INVALID_BODY. Ingest remembers nothing by
        itself. TypeError for an item that is not bytes-like or an index that is not a MatchIndex."""
    def remember(self, ids: bytes) -> None:
        """Adds ids (32 bytes each, concatenated) to the recent-id set: call it once the transaction
        storing them committed, so only committed ids count as held. ValueError when len(ids) is not a
        multiple of 32."""
    def recent_len(self) -> int: ...
    def cache_len(self) -> int: ...
    def hot_keys_len(self) -> int:
        """How many keys have a fixed-base table."""

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

# -- a pushed gossip batch (PROTOCOL.md section 7; node/reference/batch.py is the twin) --------------

def scan_batch(body: bytes, max_items: int, max_ttl: int) -> tuple[bytes, list[bytes]] | None:
    """The items of a ``POST /v1/gossip`` body by column: (one ttl byte per item, clamped to
    ``max_ttl``; the envelopes' bytes), in one pass with no value built per item. Accepts exactly what
    ``federation.wire.decode_batch`` accepts (an array of at most ``max_items`` ``[ttl, envelope]``
    pairs in any MessagePack encoding of those types, nothing after); None for anything else (the
    caller's decoder then says why). Never panics; reserves no more than the body can hold."""

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
