"""Pure-Python twin of node._native: the same functions with the same contracts (see _native.pyi).

Slow but plain, so it can be read against PROTOCOL.md line by line; the tests run every check against
both implementations and fuzz them against each other.
"""

from node.reference.batch import scan_batch
from node.reference.codec import MAX_DEPTH, MAX_ENVELOPE_BYTES, decode, encode
from node.reference.ed25519 import batch_check as ed25519_batch_check
from node.reference.ed25519 import verify as ed25519_verify
from node.reference.ed25519 import verify_batch as ed25519_verify_batch
from node.reference.envelope import (
    KINDS,
    MAX_CLOCK_SKEW_MS,
    MAX_LIFETIME_MS,
    NO_KIND,
    PROTOCOL_VERSION,
    SIGNING_PREFIX,
    Verifier,
    decode_envelope,
    encode_envelope,
    signed_bytes,
)
from node.reference.matcher import (
    MATCH_KINDS,
    MATCH_MALFORMED,
    MATCH_NOT_INTENT,
    MATCH_OK,
    MATCH_OPS,
    MatchIndex,
)
from node.reference.intent import (
    INTENT_UNICODE_VERSION,
    MAX_INTENT_CHARS,
    MAX_INTENT_NAME_CHARS,
    parse_intent,
)

__all__ = [
    "MATCH_KINDS",
    "MATCH_MALFORMED",
    "MATCH_NOT_INTENT",
    "MATCH_OK",
    "MATCH_OPS",
    "MatchIndex",
    "INTENT_UNICODE_VERSION",
    "KINDS",
    "MAX_CLOCK_SKEW_MS",
    "MAX_DEPTH",
    "MAX_ENVELOPE_BYTES",
    "MAX_LIFETIME_MS",
    "NO_KIND",
    "MAX_INTENT_CHARS",
    "MAX_INTENT_NAME_CHARS",
    "PROTOCOL_VERSION",
    "SIGNING_PREFIX",
    "Verifier",
    "decode",
    "decode_envelope",
    "ed25519_batch_check",
    "ed25519_verify",
    "ed25519_verify_batch",
    "encode",
    "encode_envelope",
    "parse_intent",
    "scan_batch",
    "signed_bytes",
]
