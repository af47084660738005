"""Reason codes: the gossip and access codes appended after the envelope verifier's, never renumbered."""

from __future__ import annotations

import pytest

from node.errors import EnvelopeError
from node.reasons import ENVELOPE_REASONS, Reason

GOSSIP = {
    17: "duplicate",
    18: "rate_limited",
    19: "invalid_body",
    20: "unknown_intent",
    21: "withdrawn",
    22: "blocked",
    23: "wrong_author",
    24: "not_for_role",
}
ACCESS = {
    25: "no_grant",
    26: "not_grantee",
    27: "revoked",
    28: "out_of_scope",
    29: "budget_spent",
}
ADMISSION = {31: "busy", 32: "pow_required"}
OFFERS = {33: "terms_not_agreed"}


def test_codes_are_append_only_and_one_byte():
    assert [int(r) for r in Reason] == list(range(len(Reason)))
    assert max(Reason) < 256
    assert {code: Reason(code).label for code in GOSSIP} == GOSSIP
    assert {code: Reason(code).label for code in ACCESS} == ACCESS
    assert {code: Reason(code).label for code in ADMISSION} == ADMISSION
    assert {code: Reason(code).label for code in OFFERS} == OFFERS
    assert {r for r in Reason if r.retryable} == {Reason.RATE_LIMITED, Reason.BUSY, Reason.POW_REQUIRED}
    assert Reason.BAD_SIGNATURE == 16 and Reason.OK == 0


def test_the_verifier_codes_are_the_first_seventeen_and_thirty():
    assert ENVELOPE_REASONS == frozenset(Reason(code) for code in [*range(17), 30])
    assert Reason.TOO_LONG_LIVED == 30 and Reason(30).label == "too_long_lived"


@pytest.mark.parametrize("code, label", sorted({**GOSSIP, **ACCESS, **ADMISSION, **OFFERS}.items()))
def test_parse_by_code_and_label(code, label):
    assert Reason.parse(code) == Reason.parse(label) == Reason.parse(Reason(code)) == code
    assert EnvelopeError(label).reason == code


def test_held_means_the_sender_can_stop():
    assert {r for r in Reason if r.held} == {Reason.OK, Reason.DUPLICATE}


def test_unknown_codes_are_refused():
    with pytest.raises(ValueError):
        Reason.parse(len(Reason))
    with pytest.raises(KeyError):
        Reason.parse("held")
