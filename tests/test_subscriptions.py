"""Subscriptions as a vendor writes, stores and lists them, and the index the node matches intents with."""

from __future__ import annotations

import pytest

from node import envelope
from node.errors import ConflictError, IntentSyntaxError, NotFoundError, ValidationError
from node.identity import Identity
from node.intents import parse_intent
from node.subscriptions import (
    Comparison,
    ParsedSubscription,
    Subscriptions,
    parse_subscription,
)
from tests.conftest import vendor_engines

T0 = 1_700_000_000_000
EXAMPLE = "?flight to:JFK near:dr5 max>=200USD"


@pytest.fixture
def store(vendor_store):
    """The store a vendor's node uses: SQLite, and PostgreSQL too for tests marked ``@vendor_engines``."""
    return vendor_store


@pytest.fixture
def subs(store, backend):
    return Subscriptions(store, clock=lambda: T0, backend=backend)


def intent_envelope(text: str, backend) -> bytes:
    identity = Identity.from_seed(bytes(32))
    body = parse_intent(text, backend=backend).body(["no-resale"])
    return envelope.create(identity, "intent", body, created=T0, expires=T0 + 60_000, backend=backend).raw


# -- parsing -------------------------------------------------------------------------------------------


def test_parse_the_example(backend):
    parsed = parse_subscription(EXAMPLE, backend=backend)
    assert parsed == ParsedSubscription(
        text=EXAMPLE,
        tokens=("flight",),
        tags=(),
        handles=(),
        constraints={"to": {"place": "JFK"}, "near": {"geohash": "dr5"}},
        comparisons=(Comparison("max", ">=", {"money": 20000, "cur": "USD"}),),
    )


def test_parse_every_form(backend):
    parsed = parse_subscription(
        "(?Hotel) #Eco @Zed.Shop nights:2..4 before<2026-12-20, after>=2026-06-01 guests>2 min<=12.5EUR color:blue",
        backend=backend,
    )
    assert parsed.tokens == ("hotel",) and parsed.tags == ("eco",) and parsed.handles == ("zed.shop",)
    assert parsed.constraints == {"nights": {"range": [2, 4]}, "color": {"text": "blue"}}
    assert parsed.comparisons == (
        Comparison("before", "<", {"date": "2026-12-20"}),
        Comparison("after", ">=", {"date": "2026-06-01"}),
        Comparison("guests", ">", {"int": 2}),
        Comparison("min", "<=", {"money": 1250, "cur": "EUR"}),
    )


@pytest.mark.parametrize(
    ("text", "message", "word", "offset"),
    [
        ("max>=200USD", "no ?token: say what you want with at least one, such as ?flight", "", 0),
        ("   ", "text is empty", "", 0),
        ("?flight cheap", "'cheap' is not a ?token, #tag, @handle, key:value or comparison such as max>=200USD",
         "cheap", 8),  # fmt: skip
        ("?flight to>=JFK", "to: only amounts (max, min, budget), dates (before, after, on) and whole numbers"
         " (qty, size, nights, seats, guests) can be compared", "to>=JFK", 8),  # fmt: skip
        ("?flight  max>=", "max: give a value to compare with, such as max>=200USD", "max>=", 9),
        ("?flight max>=12.345USD", "max: USD allows at most 2 decimal digits", "max>=12.345USD", 8),
        ("?flight max<1..5USD", "max: a comparison takes one value, not a range", "max<1..5USD", 8),
        ("?flight before<2026-02-30", "before: not a calendar date", "before<2026-02-30", 8),
        ("?flight nights>three", "nights: expected a whole number such as 3, or a range such as 2..4",
         "nights>three", 8),  # fmt: skip
        ("?flight max:400", "max: expected an amount with its currency, such as 400USD or 12.50EUR", "max:400", 8),
        ("?flight #", "empty name after '#'", "#", 8),
        ("?flight to:JFK SFO->LAX", "constraint 'to' given twice", "SFO->LAX", 15),
        ("?f " + "x" * 1000, "text is longer than 1000 characters", "", 0),
    ],
)
def test_parse_errors_point_at_the_word(backend, text, message, word, offset):
    with pytest.raises(IntentSyntaxError) as caught:
        parse_subscription(text, backend=backend)
    assert (caught.value.message, caught.value.word, caught.value.offset) == (message, word, offset)
    assert isinstance(caught.value, ValidationError)


def test_parse_refuses_non_text(backend):
    with pytest.raises(IntentSyntaxError):
        parse_subscription(b"?flight", backend=backend)  # type: ignore[arg-type]


def test_parse_same_on_both_backends(native, reference):
    texts = [EXAMPLE, "?a ?b #c @d qty>=2 qty<=9 on:2026-01-01..2026-02-01 budget>1JPY from:ams", "?x (max<3KWD)."]
    for text in texts:
        assert parse_subscription(text, backend=native) == parse_subscription(text, backend=reference)


# -- the store -------------------------------------------------------------------------------------------


@vendor_engines
def test_add_list_get_remove(subs, store):
    first = subs.add(EXAMPLE)
    second = subs.add("?hotel near:u09 nights>=2")
    assert [s.id for s in subs.list()] == [first.id, second.id]
    assert subs.get(first.id) == first
    assert first.text == EXAMPLE and first.created_at == T0
    assert first.to_json() == {
        "id": first.id,
        "text": EXAMPLE,
        "created_at": T0,
        "tokens": ["flight"],
        "tags": [],
        "handles": [],
        "constraints": {"near": {"geohash": "dr5"}, "to": {"place": "JFK"}},
        "comparisons": [["max", ">=", {"money": 20000, "cur": "USD"}]],
    }
    assert list(first.to_json()["constraints"]) == ["near", "to"]  # canonical order
    assert subs.remove(first.id) == first
    assert [s.id for s in subs.list()] == [second.id]
    with pytest.raises(NotFoundError):
        subs.get(first.id)
    with pytest.raises(NotFoundError):
        subs.remove(first.id)
    assert store.count("subscriptions") == 1


@vendor_engines
def test_refusals_change_nothing(subs, store):
    subs.add(EXAMPLE)
    with pytest.raises(IntentSyntaxError):
        subs.add("?flight window")
    # the same meaning, written differently
    with pytest.raises(ConflictError):
        subs.add("  (?FLIGHT)  max>=200usd near:DR5 to:jfk max>=200.00USD")
    subs.add("?b ?a #y #x nights>1 nights<5 on:2026-01-01")
    with pytest.raises(ConflictError):
        subs.add("#x nights<5 ?a on:2026-01-01 #y nights>1 ?b")
    with pytest.raises(ValidationError):
        subs.get("1")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        subs.remove(True)  # type: ignore[arg-type]
    assert store.count("subscriptions") == 2


@vendor_engines
def test_index_returns_table_ids(subs, backend):
    ids = [subs.add(t).id for t in ("?hotel", EXAMPLE, "?flight #work", "?flight from:SFO before<2026-12-20")]
    subs.remove(ids[0])
    index = subs.index()
    assert len(index) == 3
    raws = [
        intent_envelope("?flight SFO->JFK near:dr5ru max:400USD", backend),
        intent_envelope("?flight SFO->JFK near:dr5ru max:400USD #work before:2026-12-01", backend),
        intent_envelope("?hotel", backend),
    ]
    assert index.match_envelopes(raws + [b"\x00"]) == [[ids[1]], [ids[1], ids[2], ids[3]], [], []]
    bodies = [envelope.decode(r, backend=backend).body for r in raws]
    assert index.match_bodies([backend.encode(b) for b in bodies]) == [[ids[1]], [ids[1], ids[2], ids[3]], []]


@vendor_engines
def test_empty_index(subs, backend):
    index = subs.index()
    assert len(index) == 0
    assert index.match_envelopes([intent_envelope("?flight", backend)]) == [[]]
