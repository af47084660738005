"""Relationship records, search and scorecards, driven the way a person uses them."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import ConflictError, NotFoundError, SearchQueryError, ValidationError
from node.identity import Identity
from node.nodeid import encode_node_id
from node.records import RECORD_TABLES, Records
from node.scorecard import scorecard, scorecards
from node.search import SEARCH_KINDS, search
from node.store import Store
from tests.helpers import Clock

T0 = 1_700_000_000_000
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
BELLA_NODE = encode_node_id(Identity.from_seed(bytes([7]) * 32).public_key)


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def records(store, clock):
    return Records(store, clock=clock)


def _counts(store: Store) -> dict[str, int]:
    return {t: store.count(t) for t in (*RECORD_TABLES, "search_index", "vault")}


@pytest.fixture
def scenario(records, clock):
    """Three vendors and a year's worth of dealings with known times."""
    acme = records.add_vendor(
        "Acme Air",
        handle="@acme-air",
        website="https://acme-air.example",
        notes="Regional airline, blue planes",
    )
    clock.now = T0 + MINUTE
    zephyr = records.add_vendor("Zephyr Rentals")
    bella = records.add_vendor("Bella Catering", engagement="casual", node_id=BELLA_NODE.upper())

    records.add_purchase(
        "@acme-air", "Flight SFO-JFK", price_minor=38900, currency="usd", bought_at=T0 + 10 * MINUTE
    )
    records.add_note(
        acme.id, "Friendly crew, but the boarding was chaotic", tags=["#flights", "Service"], at=T0 + HOUR
    )
    records.rate("acme-air", 4, comment="good value", at=T0 + HOUR)
    records.recommend(acme.id, True, text="cheap and punctual", at=T0 + 2 * HOUR)

    # issue 1: one vendor reply after 2 h, resolved: first contact
    i1 = records.open_issue(acme.id, "Lost luggage on flight 42", at=T0 + HOUR)
    records.add_reply(i1.id, "vendor", "We found your bag and will deliver it", at=T0 + 3 * HOUR)
    records.resolve_issue(i1.id, at=T0 + DAY)
    # issue 2: first vendor reply after 5 h, two vendor replies, resolved: not first contact
    i2 = records.open_issue(acme.id, "Refund for cancelled flight", at=T0 + 2 * DAY)
    records.add_reply(i2.id, "me", "Any news on my refund?", at=T0 + 2 * DAY + HOUR)
    records.add_reply(i2.id, "vendor", "Refund is being processed", at=T0 + 2 * DAY + 5 * HOUR)
    records.add_reply(i2.id, "me", "Still nothing", at=T0 + 3 * DAY)
    records.add_reply(i2.id, "vendor", "Refund sent", at=T0 + 3 * DAY + HOUR)
    records.resolve_issue(i2.id, at=T0 + 4 * DAY)
    # issue 3: answered after 30 min, still open; issue 4: never answered
    i3 = records.open_issue(acme.id, "Seat upgrade not honoured", at=T0 + 3 * DAY)
    records.add_reply(i3.id, "vendor", "Sorry, we will look into it", at=T0 + 3 * DAY + 30 * MINUTE)
    records.open_issue(acme.id, "Wifi did not work", at=T0 + 5 * DAY)

    clock.now = T0 + 6 * DAY
    records.set_engagement(acme.id, "engaged")
    records.add_purchase(
        zephyr.id, "Compact car, 3 days", price_minor=12000, currency="EUR", bought_at=T0 + 2 * DAY
    )
    records.add_note(zephyr.id, "Car was dirty", at=T0 + 2 * DAY)
    clock.now = T0 + 7 * DAY
    records.end_relationship("@zephyr-rentals", reason="switched to Breeze Cars")
    return {"acme": acme, "zephyr": zephyr, "bella": bella, "issues": (i1, i2, i3)}


# -- the scenario ------------------------------------------------------------------------------------------


def test_vendors_are_found_by_id_or_handle(records, scenario):
    acme = scenario["acme"]
    for ref in (acme.id, str(acme.id), "@acme-air", "acme-air", "@ACME-AIR", " @acme-air "):
        assert records.get_vendor(ref).id == acme.id
    assert scenario["zephyr"].handle == "@zephyr-rentals"  # derived from the name
    assert records.get_vendor("@bella-catering").node_id == BELLA_NODE  # stored in canonical case
    with pytest.raises(NotFoundError):
        records.get_vendor("@nobody")
    with pytest.raises(NotFoundError):
        records.get_vendor(999)


def test_purchase_note_rating_recommendation(records, scenario):
    acme = scenario["acme"].id
    [purchase] = records.list_purchases(acme)
    assert (purchase.product, purchase.price_minor, purchase.currency) == ("Flight SFO-JFK", 38900, "USD")
    [note] = records.list_notes(acme)
    assert note.tags == ("flights", "service")
    assert records.list_notes(tag="#Flights") == [note]
    assert records.list_notes(tag="nothing") == []
    assert [r.stars for r in records.list_ratings(acme)] == [4]
    assert [r.would_recommend for r in records.list_recommendations(acme)] == [True]


def test_issue_states_follow_who_owes_the_next_word(records, scenario):
    i1, i2, i3 = scenario["issues"]
    assert i1.state == "waiting_on_vendor"  # as opened
    i1 = records.get_issue(i1.id)
    assert (i1.state, i1.resolved_at) == ("resolved", T0 + DAY)
    assert [(r.author, r.at) for r in i1.replies] == [("vendor", T0 + 3 * HOUR)]
    assert records.get_issue(i3.id).state == "open"  # the vendor answered; my move
    assert (
        records.add_reply(i3.id, "me", "It is still not fixed", at=T0 + 8 * DAY).state == "waiting_on_vendor"
    )
    assert [r.author for r in records.get_issue(i2.id).replies] == ["me", "vendor", "me", "vendor"]
    assert {i.title for i in records.list_issues("@acme-air", unresolved=True)} == {
        "Seat upgrade not honoured",
        "Wifi did not work",
    }
    assert [i.id for i in records.list_issues(state="resolved")] == [i2.id, i1.id]  # newest first
    with pytest.raises(ConflictError):
        records.add_reply(i1.id, "vendor", "one more thing")
    reopened = records.reopen_issue(i1.id)
    assert (reopened.state, reopened.resolved_at) == ("waiting_on_vendor", None)
    assert records.add_reply(i1.id, "vendor", "one more thing", at=T0 + 9 * DAY).state == "open"


def test_engagement_and_the_end_of_a_relationship(records, scenario):
    assert records.get_vendor("@acme-air").engagement == "engaged"
    assert records.get_vendor("@bella-catering").engagement == "casual"
    zephyr = records.get_vendor("@zephyr-rentals")
    assert (zephyr.ended, zephyr.ended_at, zephyr.end_reason) == (
        True,
        T0 + 7 * DAY,
        "switched to Breeze Cars",
    )
    assert [v.handle for v in records.list_vendors()] == ["@acme-air", "@bella-catering"]
    assert [v.handle for v in records.list_vendors(status="ended")] == ["@zephyr-rentals"]
    assert len(records.list_vendors(status="all")) == 3
    # the history stays
    assert len(records.list_purchases(zephyr.id)) == 1 and len(records.list_notes(zephyr.id)) == 1
    kinds = [e.kind for e in records.timeline(zephyr.id)]
    assert kinds == [
        "ended",
        "note",
        "purchase",
        "started",
    ]  # same-millisecond events: latest in a lifecycle first


def test_timeline_is_newest_first_and_complete(records, scenario):
    events = records.timeline("@acme-air")
    assert [e.at for e in events] == sorted((e.at for e in events), reverse=True)
    kinds = [e.kind for e in events]
    assert kinds[0] == "engagement" and kinds[-1] == "started"
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "started": 1,
        "purchase": 1,
        "note": 1,
        "rating": 1,
        "recommendation": 1,
        "engagement": 1,
        "issue_opened": 4,
        "reply": 6,
        "issue_resolved": 2,
    }
    opened_at = next(e for e in events if e.kind == "issue_opened" and "Lost luggage" in e.summary).at
    assert opened_at == T0 + HOUR
    json.dumps([dataclasses.asdict(e) for e in events])  # the CLI's --json


def test_search_finds_every_kind_of_record(store, scenario):
    expectations = {
        "Regional": "vendor",
        "JFK": "purchase",
        "chaotic": "note",
        "flights": "note",  # a tag
        "value": "rating",
        "punctual": "recommendation",
        "luggage": "issue",
        "bag": "reply",
    }
    for query, kind in expectations.items():
        hits = search(store, query)
        assert [(h.kind, h.vendor_handle) for h in hits] == [(kind, "@acme-air")], query
    assert set(expectations.values()) == set(SEARCH_KINDS)
    [hit] = search(store, "luggage")
    assert "[luggage]" in hit.snippet.lower() and hit.vendor_name == "Acme Air"
    assert search(store, "Luggage", mark=("<b>", "</b>"))[0].snippet == "Lost <b>luggage</b> on flight 42"
    # ended relationships stay searchable, including the reason they ended
    assert [(h.kind, h.vendor_handle) for h in search(store, "Breeze")] == [("vendor", "@zephyr-rentals")]
    assert {h.kind for h in search(store, "refund*")} == {"issue", "reply"}
    assert {h.kind for h in search(store, "refund* OR luggage", kinds=("issue",))} == {"issue"}
    assert search(store, "nothinglikethis") == []


@pytest.mark.parametrize(
    "query", ['"unbalanced', "AND", "acme-air", "(flight", "NEAR(", "title:x", "   ", "^*"]
)
def test_invalid_search_syntax_is_a_typed_error(store, scenario, query):
    with pytest.raises(SearchQueryError):
        search(store, query)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("fts") / "node.db") as s:
        records = Records(s, clock=lambda: T0)
        records.add_note(records.add_vendor("Acme Air").id, 'lost luggage, "quoted" (brackets) * NEAR AND')
        yield s


@given(query=st.text(max_size=40), literal=st.booleans())
def test_any_query_gives_hits_or_a_typed_error(small_store, query, literal):
    try:
        hits = search(small_store, query, literal=literal)
    except SearchQueryError:
        return
    assert all(h.vendor_handle == "@acme-air" for h in hits)


def test_literal_search_takes_words_as_they_are(store, scenario):
    assert [h.vendor_handle for h in search(store, "acme-air", literal=True)] == ["@acme-air"]
    assert search(store, '"unbalanced AND', literal=True) == []


def test_scorecard_from_known_times(store, scenario):
    card = scorecard(store, "@acme-air")
    assert (card.issues_opened, card.issues_resolved, card.issues_open, card.issues_unanswered) == (
        4,
        2,
        2,
        1,
    )
    assert card.median_first_reply_ms == 2 * HOUR  # of 2 h, 5 h and 30 min
    assert (card.resolved_at_first_contact, card.first_contact_resolution) == (1, 0.5)
    assert (card.ratings_count, card.average_rating, card.would_recommend) == (1, 4.0, True)
    assert card.median_intent_response_ms is None
    empty = scorecard(store, "@bella-catering")
    assert (empty.issues_opened, empty.median_first_reply_ms, empty.first_contact_resolution) == (
        0,
        None,
        None,
    )
    assert [c.vendor_handle for c in scorecards(store)] == ["@acme-air", "@bella-catering", "@zephyr-rentals"]
    assert [c.vendor_handle for c in scorecards(store, status="ended")] == ["@zephyr-rentals"]
    json.dumps(dataclasses.asdict(card))


def test_scorecard_median_of_an_even_count_rounds_down(records, store):
    vendor = records.add_vendor("Even Co")
    for opened, replied in ((0, 1000), (10_000, 12_001)):
        issue = records.open_issue(vendor.id, f"issue at {opened}", at=T0 + opened)
        records.add_reply(issue.id, "vendor", "on it", at=T0 + replied)
        records.resolve_issue(issue.id, at=T0 + replied + 1)
    card = scorecard(store, vendor.id)
    assert card.median_first_reply_ms == 1500  # (1000 + 2001) / 2 = 1500.5
    assert card.first_contact_resolution == 1.0


def test_update_vendor(records, scenario):
    updated = records.update_vendor("@acme-air", name="Acme Airlines", website="", notes="now with wifi")
    assert (updated.name, updated.website, updated.notes) == ("Acme Airlines", None, "now with wifi")
    assert records.update_vendor("@acme-air").name == "Acme Airlines"  # nothing given, nothing changed


# -- bad input changes nothing ---------------------------------------------------------------------------


BAD_INPUT = [
    ("empty name", lambda r, s: r.add_vendor("   "), ValidationError, "name"),
    (
        "unknown engagement",
        lambda r, s: r.add_vendor("New Co", engagement="fanatic"),
        ValidationError,
        "engagement",
    ),
    ("duplicate handle", lambda r, s: r.add_vendor("Other", handle="@ACME-AIR"), ConflictError, None),
    ("derived duplicate", lambda r, s: r.add_vendor("Acme  Air!"), ConflictError, None),
    ("bad handle", lambda r, s: r.add_vendor("X", handle="bad handle!"), ValidationError, "handle"),
    ("no derivable handle", lambda r, s: r.add_vendor("日本"), ValidationError, "handle"),
    (
        "bad node id",
        lambda r, s: r.add_vendor("X", node_id=BELLA_NODE[:-1] + ("q" if BELLA_NODE[-1] != "q" else "p")),
        ValidationError,
        "node_id",
    ),
    (
        "spaces in website",
        lambda r, s: r.add_vendor("X", website="acme air.example"),
        ValidationError,
        "website",
    ),
    ("negative start", lambda r, s: r.add_vendor("X", started_at=-1), ValidationError, "started_at"),
    (
        "set unknown level",
        lambda r, s: r.set_engagement("@acme-air", "superfan"),
        ValidationError,
        "engagement",
    ),
    ("engagement unknown vendor", lambda r, s: r.set_engagement("@nobody", "casual"), NotFoundError, None),
    ("rating 0", lambda r, s: r.rate("@acme-air", 0), ValidationError, "stars"),
    ("rating 6", lambda r, s: r.rate("@acme-air", 6), ValidationError, "stars"),
    ("rating True", lambda r, s: r.rate("@acme-air", True), ValidationError, "stars"),
    ("rating 4.5", lambda r, s: r.rate("@acme-air", 4.5), ValidationError, "stars"),
    ("rate unknown vendor", lambda r, s: r.rate("@nobody", 3), NotFoundError, None),
    ("rate unknown id", lambda r, s: r.rate(999, 3), NotFoundError, None),
    ("huge vendor id", lambda r, s: r.rate("9" * 30, 3), NotFoundError, None),
    ("huge issue id", lambda r, s: r.add_reply(10**30, "me", "hi"), NotFoundError, None),
    ("huge time", lambda r, s: r.rate("@acme-air", 3, at=2**64), ValidationError, "at"),
    (
        "huge price",
        lambda r, s: r.add_purchase("@acme-air", "x", price_minor=2**63, currency="USD"),
        ValidationError,
        "price_minor",
    ),
    ("empty note", lambda r, s: r.add_note("@acme-air", "  "), ValidationError, "text"),
    ("bad tag", lambda r, s: r.add_note("@acme-air", "x", tags=["two words"]), ValidationError, "tags"),
    ("tags as a string", lambda r, s: r.add_note("@acme-air", "x", tags="flights"), ValidationError, "tags"),
    ("note unknown vendor", lambda r, s: r.add_note("@nobody", "hello"), NotFoundError, None),
    ("empty product", lambda r, s: r.add_purchase("@acme-air", ""), ValidationError, "product"),
    (
        "price without currency",
        lambda r, s: r.add_purchase("@acme-air", "x", price_minor=100),
        ValidationError,
        "currency",
    ),
    (
        "currency without price",
        lambda r, s: r.add_purchase("@acme-air", "x", currency="USD"),
        ValidationError,
        "price_minor",
    ),
    (
        "bad currency",
        lambda r, s: r.add_purchase("@acme-air", "x", price_minor=1, currency="US$"),
        ValidationError,
        "currency",
    ),
    (
        "negative price",
        lambda r, s: r.add_purchase("@acme-air", "x", price_minor=-1, currency="USD"),
        ValidationError,
        "price_minor",
    ),
    (
        "float price",
        lambda r, s: r.add_purchase("@acme-air", "x", price_minor=3.5, currency="USD"),
        ValidationError,
        "price_minor",
    ),
    ("recommend 'yes'", lambda r, s: r.recommend("@acme-air", "yes"), ValidationError, "would_recommend"),
    ("empty issue title", lambda r, s: r.open_issue("@acme-air", ""), ValidationError, "title"),
    ("issue unknown vendor", lambda r, s: r.open_issue("@nobody", "broken"), NotFoundError, None),
    ("reply by a bot", lambda r, s: r.add_reply(s["issues"][2].id, "bot", "beep"), ValidationError, "author"),
    ("empty reply", lambda r, s: r.add_reply(s["issues"][2].id, "me", " "), ValidationError, "text"),
    ("reply unknown issue", lambda r, s: r.add_reply(999, "me", "hello"), NotFoundError, None),
    (
        "reply before the issue",
        lambda r, s: r.add_reply(s["issues"][2].id, "me", "hi", at=T0),
        ValidationError,
        "at",
    ),
    ("reply to resolved", lambda r, s: r.add_reply(s["issues"][0].id, "me", "hello"), ConflictError, None),
    ("resolve twice", lambda r, s: r.resolve_issue(s["issues"][0].id), ConflictError, None),
    ("resolve before opened", lambda r, s: r.resolve_issue(s["issues"][2].id, at=T0), ValidationError, "at"),
    ("reopen an open issue", lambda r, s: r.reopen_issue(s["issues"][2].id), ConflictError, None),
    ("end twice", lambda r, s: r.end_relationship("@zephyr-rentals"), ConflictError, None),
    ("end before start", lambda r, s: r.end_relationship("@acme-air", at=T0 - 1), ValidationError, "at"),
    ("negative time", lambda r, s: r.rate("@acme-air", 3, at=-5), ValidationError, "at"),
    ("unknown status", lambda r, s: r.list_vendors(status="gone"), ValidationError, "status"),
    ("update unknown vendor", lambda r, s: r.update_vendor("@nobody", name="x"), NotFoundError, None),
    ("update empty name", lambda r, s: r.update_vendor("@acme-air", name=""), ValidationError, "name"),
]


@pytest.mark.parametrize("action, error, field", [b[1:] for b in BAD_INPUT], ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_a_typed_error_and_writes_nothing(store, records, scenario, action, error, field):
    before = _counts(store)
    vendors_before = records.list_vendors(status="all")
    issues_before = records.list_issues()
    with pytest.raises(error) as info:
        action(records, scenario)
    if field is not None:
        assert info.value.field == field
    assert _counts(store) == before
    assert records.list_vendors(status="all") == vendors_before
    assert records.list_issues() == issues_before
