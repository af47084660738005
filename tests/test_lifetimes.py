"""Each kind's maximum lifetime (PROTOCOL.md section 2, "Lifetimes"): the node never signs beyond it,
receivers refuse beyond it with too_long_lived, and the node's own signing paths stay within it."""

from __future__ import annotations

import pytest

from node import envelope, grants, intents, offers, receipts
from node.errors import ValidationError
from node.identity import Identity
from node.reasons import Reason
from tests.vectors.loaders import KINDS, NOW_MS, Author, canonical, envelope_map

DAY = 86_400_000
LIMITS = {
    "accept": 365 * DAY, "decline": 365 * DAY, "deletion": 30 * DAY, "grant": 365 * DAY, "intent": 365 * DAY,
    "offer": 365 * DAY, "receipt": 3650 * DAY, "request": 30 * DAY, "revoke": 30 * DAY, "withdraw": 365 * DAY,
}  # fmt: skip
AUTHOR = Author.numbered(501)


def test_both_implementations_have_the_documented_table(backend):
    assert backend.MAX_LIFETIME_MS == LIMITS
    assert sorted(LIMITS) == list(KINDS)


def test_the_signing_paths_stay_within_the_limits():
    assert intents.MAX_TTL_MS <= LIMITS["intent"]
    assert offers.MAX_TTL_MS <= LIMITS["offer"]  # accept/decline/withdraw live until their offer/intent expires
    assert grants.MAX_DURATION_MS <= LIMITS["grant"]
    assert grants.REQUEST_TTL_MS <= LIMITS["request"]
    assert grants.REVOKE_TTL_MS <= LIMITS["revoke"] and grants.DELETION_TTL_MS <= LIMITS["deletion"]
    assert receipts.RECEIPT_TTL_MS <= LIMITS["receipt"]
    assert max(LIMITS[k] for k in ("accept", "decline", "withdraw")) >= max(offers.MAX_TTL_MS, intents.MAX_TTL_MS)


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_at_the_limit_accepted_one_past_refused(backend, kind):
    created = NOW_MS - 1000
    at = canonical(envelope_map(AUTHOR, kind=kind, body={}, created=created, expires=created + LIMITS[kind]))
    past = canonical(envelope_map(AUTHOR, kind=kind, body={}, created=created, expires=created + LIMITS[kind] + 1))
    verifier = backend.Verifier()
    assert verifier.verify_one(at, NOW_MS)[0] == Reason.OK
    assert verifier.verify_one(past, NOW_MS)[0] == Reason.TOO_LONG_LIVED
    assert list(verifier.verify_batch([at, past], NOW_MS)[0]) == [Reason.OK, Reason.TOO_LONG_LIVED]
    assert verifier.ingest([past], NOW_MS).codes[0] == Reason.TOO_LONG_LIVED
    # decoding alone does not judge the lifetime (an exporter still reads what it holds)
    assert backend.decode_envelope(past)[8] == verifier.verify_one(past, NOW_MS)[1]


def test_created_zero_expires_max_is_refused(backend):
    forever = canonical(envelope_map(AUTHOR, kind="receipt", body={}, created=0, expires=2**63 - 1))
    assert backend.Verifier().verify_one(forever, NOW_MS)[0] == Reason.TOO_LONG_LIVED
    assert backend.Verifier().verify_one(forever, 1)[0] == Reason.TOO_LONG_LIVED


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_the_node_refuses_to_sign_beyond_the_limit(backend, kind):
    me = Identity.from_seed(bytes(range(32)))
    made = envelope.create(me, kind, {}, created=NOW_MS, ttl_ms=LIMITS[kind], backend=backend)
    assert made.expires - made.created == LIMITS[kind]
    with pytest.raises(ValidationError, match="expires"):
        envelope.create(me, kind, {}, created=NOW_MS, ttl_ms=LIMITS[kind] + 1, backend=backend)
    with pytest.raises(ValidationError):
        envelope.create(me, kind, {}, created=0, expires=2**63 - 1, backend=backend)
