"""Intents as a person casts, lists, finds and withdraws them; export and import of intents."""

from __future__ import annotations

import copy
import json

import pytest

from node import envelope
from node._native import Verifier
from node.backends import NATIVE, REFERENCE
from node.errors import (
    ConflictError,
    ExchangeError,
    IntentSyntaxError,
    NotFoundError,
    ValidationError,
)
from node.exchange import export_home, import_home
from node.home import init_home, open_store
from node.identity import Identity
from node.intents import (
    BODY_KEYS,
    DEFAULT_TTL_MS,
    KNOWN_TERMS,
    IntentRecord,
    Intents,
    ParsedIntent,
    check_body,
    normalize_terms,
    parse_duration,
    parse_intent,
)
from node.keystore import load_identity
from node.store import MIGRATIONS, Store
from tests.helpers import Clock

T0 = 1_700_000_000_000
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
FLIGHT = "?flight SFO->JFK before:2026-12-20 max:400USD #work @acme-air window seat"
ALICE = Identity.from_seed(bytes([9]) * 32)
MALLORY = Identity.from_seed(bytes([10]) * 32)


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def intents(store, clock):
    return Intents(store, clock=clock)


def snapshot(store: Store) -> list[dict]:
    return store.query("SELECT * FROM intents ORDER BY id")


def verified(raw: bytes, now: int = T0) -> envelope.Envelope:
    return envelope.verify(raw, now, Verifier())


# -- parsing helpers ----------------------------------------------------------------------------------


def test_parse_intent_gives_a_frozen_parsed_intent():
    parsed = parse_intent(FLIGHT)
    assert isinstance(parsed, ParsedIntent)
    assert (parsed.tokens, parsed.tags, parsed.handles, parsed.words) == (
        ("flight",), ("work",), ("acme-air",), ("window", "seat"))  # fmt: skip
    assert parsed.constraints["max"] == {"money": 40000, "cur": "USD"}
    assert parse_intent(FLIGHT, backend=REFERENCE) == parsed
    with pytest.raises(IntentSyntaxError):
        parse_intent(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "ms"),
    [("30m", 30 * MINUTE), ("12h", 12 * HOUR), ("7d", 7 * DAY), ("2w", 14 * DAY), (" 1M ", MINUTE),
     ("365d", 365 * DAY), ("52w", 364 * DAY), ("1 d", DAY)],
)  # fmt: skip
def test_parse_duration(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-1d", "1.5d", "0m", "366d", "53w", "7d7h", "٣d", None, 7])
def test_parse_duration_refuses(text):
    with pytest.raises(ValidationError) as info:
        parse_duration(text)
    assert info.value.field == "expires"


def test_terms_are_known_names_in_order_without_repeats():
    assert normalize_terms(["No-Resale", "delete-after-use", "no-resale"]) == ("no-resale", "delete-after-use")
    assert normalize_terms("contact-only-about-this, no-profiling") == ("contact-only-about-this", "no-profiling")
    assert normalize_terms(()) == ()
    assert set(KNOWN_TERMS) >= {"contact-only-about-this", "no-resale", "delete-after-use"}
    with pytest.raises(ValidationError) as info:
        normalize_terms(["no-resale", "sell-it-all"])
    assert info.value.field == "terms" and "sell-it-all" in str(info.value)


# -- cast ------------------------------------------------------------------------------------------------


def test_cast_signs_and_stores_a_verifiable_intent(intents, store):
    record = intents.cast(ALICE, FLIGHT, terms=["contact-only-about-this", "no-resale"])
    env = verified(record.raw)
    assert env.kind == "intent" and env.author == ALICE.public_key
    assert (env.created, env.expires) == (T0, T0 + DEFAULT_TTL_MS)
    assert env.id.hex() == record.id and record.author == ALICE.public_key.hex()
    # the body of PROTOCOL.md section 5: exactly these keys, what the tokenizer gives, and the terms
    assert sorted(env.body) == sorted(BODY_KEYS)
    assert env.body == {**NATIVE.parse_intent(FLIGHT), "terms": ["contact-only-about-this", "no-resale"]}
    assert check_body(env.body) == (parse_intent(FLIGHT), ("contact-only-about-this", "no-resale"))
    # the reference decodes the same envelope to the same body
    assert envelope.decode(record.raw, REFERENCE).body == env.body
    assert record == IntentRecord(
        id=env.id.hex(), text=FLIGHT, tokens=("flight",), tags=("work",), handles=("acme-air",),
        constraints=env.body["constraints"], words=("window", "seat"),
        terms=("contact-only-about-this", "no-resale"), created=T0, expires=T0 + DEFAULT_TTL_MS,
        status="live", withdrawn_at=None, withdrawal_id=None, raw=env.raw, author=ALICE.public_key.hex(),
    )  # fmt: skip
    assert [r.id for r in intents.list()] == [record.id]
    assert store.count("intents") == 1


def test_the_reference_backend_casts_the_same_bytes(store, clock, tmp_path):
    native = Intents(store, clock=clock).cast(ALICE, FLIGHT, ttl_ms=HOUR, terms=["no-resale"])
    with Store(tmp_path / "other.db") as other:
        reference = Intents(other, clock=clock, backend=REFERENCE).cast(ALICE, FLIGHT, ttl_ms=HOUR, terms=["no-resale"])
    assert reference.raw == native.raw and reference.id == native.id  # Ed25519 is deterministic


def test_to_json_has_stable_keys_and_hex_bytes(intents):
    record = intents.cast(ALICE, "?taxi near:9q8yy qty:2..3 max:12.5EUR")
    data = record.to_json()
    assert list(data) == [
        "id", "text", "tokens", "tags", "handles", "constraints", "words", "terms", "created", "expires",
        "status", "withdrawn_at", "withdrawal_id", "author", "raw", "withdrawal_raw",
        "withdraw_reason",
    ]  # fmt: skip
    assert json.loads(json.dumps(data)) == data
    assert data["raw"] == record.raw.hex() and data["withdrawal_raw"] is None
    assert data["constraints"] == {"near": {"geohash": "9q8yy"}, "qty": {"range": [2, 3]},
                                   "max": {"money": 1250, "cur": "EUR"}}  # fmt: skip
    withdrawn = intents.withdraw(ALICE, record.id).to_json()
    assert withdrawn["status"] == "withdrawn" and bytes.fromhex(withdrawn["withdrawal_raw"])


# -- list, get -------------------------------------------------------------------------------------------


def test_list_by_status_follows_the_clock(intents, clock):
    short = intents.cast(ALICE, "?coffee", ttl_ms=HOUR)
    clock.now += 1
    long = intents.cast(ALICE, "?hotel #paris", ttl_ms=DAY)
    clock.now += 1
    gone = intents.cast(ALICE, "?taxi", ttl_ms=DAY)
    intents.withdraw(ALICE, gone.id)

    def ids(status):
        return [r.id for r in intents.list(status=status)]

    assert ids("live") == [short.id, long.id] and ids("withdrawn") == [gone.id] and ids("expired") == []
    clock.now = short.expires - 1
    assert intents.get(short.id).status == "live"
    clock.now = short.expires  # dead from the instant it expires
    assert ids("live") == [long.id] and ids("expired") == [short.id]
    assert intents.get(short.id).status == "expired"
    clock.now = T0 + 2 * DAY
    assert ids("live") == [] and ids("expired") == [short.id, long.id]
    assert ids("withdrawn") == [gone.id]  # withdrawn stays withdrawn after its expiry
    assert ids("all") == [short.id, long.id, gone.id]
    assert [r.status for r in intents.list(status="all")] == ["expired", "expired", "withdrawn"]
    with pytest.raises(ValidationError):
        intents.list(status="dead")


def test_get_by_id_or_unique_prefix(intents, store):
    record = intents.cast(ALICE, "?flight")
    assert intents.get(record.id) == record
    assert intents.get(record.id[:6]) == record
    assert intents.get("  " + record.id[:10].upper()) == record
    for bad in ("", record.id[:5], "zzzzzzzz", record.id + "0", 12345678):
        with pytest.raises(ValidationError) as info:
            intents.get(bad)
        assert info.value.field == "id"
    other = "f" * 64 if not record.id.startswith("f") else "0" * 64
    with pytest.raises(NotFoundError):
        intents.get(other[:8])
    # a second intent sharing the first 6 characters makes that prefix ambiguous
    twin = {**store.query_one("SELECT * FROM intents"), "id": record.id[:6] + "0" * 58}
    if twin["id"] == record.id:
        twin["id"] = record.id[:6] + "1" * 58
    with store.transaction():
        store.insert("intents", twin)
    with pytest.raises(ValidationError, match="more than one"):
        intents.get(record.id[:6])
    assert intents.get(record.id).id == record.id


# -- withdraw --------------------------------------------------------------------------------------------


def test_withdraw_signs_a_withdrawal_of_the_intent(intents, clock):
    record = intents.cast(ALICE, FLIGHT, ttl_ms=DAY)
    clock.now = T0 + HOUR
    withdrawn = intents.withdraw(ALICE, record.id[:8])
    assert (withdrawn.id, withdrawn.status, withdrawn.withdrawn_at) == (record.id, "withdrawn", T0 + HOUR)
    assert withdrawn.raw == record.raw  # the intent itself is unchanged
    env = verified(withdrawn.withdrawal_raw, clock.now)
    assert env.kind == "withdraw" and env.author == ALICE.public_key
    assert env.body == {"intent": bytes.fromhex(record.id)}
    assert (env.created, env.expires) == (T0 + HOUR, record.expires)  # dies with the intent
    assert env.id.hex() == withdrawn.withdrawal_id
    assert intents.list() == [] and intents.list(status="withdrawn") == [withdrawn]


def _errors(intents, clock):
    """Every refused call against a store holding a live, a withdrawn and an expired intent."""
    live = intents.cast(ALICE, "?flight", ttl_ms=DAY)
    gone = intents.cast(ALICE, "?taxi", ttl_ms=DAY)
    intents.withdraw(ALICE, gone.id)
    old = intents.cast(ALICE, "?pizza", ttl_ms=MINUTE)
    clock.now += MINUTE
    return live, gone, old


def test_errors_change_nothing(intents, store, clock):
    live, gone, old = _errors(intents, clock)
    before = snapshot(store)
    with pytest.raises(IntentSyntaxError) as info:
        intents.cast(ALICE, "need a (?fl*ght) to:JFK")
    assert (info.value.word, info.value.offset) == ("?fl*ght", 8)
    assert "invalid character '*'" in str(info.value) and "character 8" in str(info.value)
    with pytest.raises(IntentSyntaxError, match="no \\?token"):
        intents.cast(ALICE, "just words")
    with pytest.raises(IntentSyntaxError, match="not a calendar date"):
        intents.cast(ALICE, "?flight before:2026-02-29")
    with pytest.raises(ValidationError) as info:
        intents.cast(ALICE, "?flight", terms=["no-resale", "resell-freely"])
    assert info.value.field == "terms"
    for ttl in (0, MINUTE - 1, 366 * DAY, "7d", True):
        with pytest.raises(ValidationError) as info:
            intents.cast(ALICE, "?flight", ttl_ms=ttl)
        assert info.value.field == "expires"
    with pytest.raises(ConflictError, match="already withdrawn"):
        intents.withdraw(ALICE, gone.id)
    with pytest.raises(ConflictError, match="expired"):
        intents.withdraw(ALICE, old.id)
    with pytest.raises(ConflictError, match="another identity"):
        intents.withdraw(MALLORY, live.id)
    with pytest.raises(NotFoundError):
        intents.withdraw(ALICE, "abcdef" if not live.id.startswith("abcdef") else "fedcba")
    assert snapshot(store) == before
    assert intents.get(live.id).status == "live"


def test_withdrawing_twice_is_a_conflict(intents):
    record = intents.cast(ALICE, "?flight")
    first = intents.withdraw(ALICE, record.id)
    with pytest.raises(ConflictError):
        intents.withdraw(ALICE, record.id)
    assert intents.get(record.id) == first


def test_the_same_intent_twice_in_one_millisecond_is_a_conflict(intents, store):
    intents.cast(ALICE, "?flight")
    with pytest.raises(ConflictError):
        intents.cast(ALICE, "?flight")
    assert store.count("intents") == 1


def test_check_body_refuses_bodies_that_do_not_match_their_text(intents):
    body = verified(intents.cast(ALICE, FLIGHT, terms=["no-resale"]).raw).body
    check_body(body)
    for change in (
        lambda b: b.update(tokens=["hotel"]),
        lambda b: b["constraints"]["max"].update(money=1),
        lambda b: b.update(terms=["sell-it"]),
        lambda b: b.update(terms=["no-resale", "no-resale"]),
        lambda b: b.update(extra=1),
        lambda b: b.pop("words"),
        lambda b: b.update(text=5),
    ):
        broken = copy.deepcopy(body)
        change(broken)
        with pytest.raises(ValidationError):
            check_body(broken)


def test_an_older_home_gains_the_intents_table(tmp_path, clock):
    path = tmp_path / "node.db"
    with Store(path, migrations=MIGRATIONS[:3]) as old:
        assert "intents" not in old.table_names()
    with Store(path) as new:
        assert new.schema_version == len(MIGRATIONS)
        assert Intents(new, clock=clock).cast(ALICE, "?flight").status == "live"


# -- export and import -----------------------------------------------------------------------------------


@pytest.fixture
def home_with_intents(tmp_path):
    home = init_home(tmp_path / "alice", None, clock=lambda: T0)
    identity = load_identity(home.key_path, None)
    clock = Clock(T0)
    with open_store(home) as store:
        intents = Intents(store, clock=clock)
        intents.cast(identity, FLIGHT, terms=["contact-only-about-this"], ttl_ms=DAY)
        clock.now += 1
        gone = intents.cast(identity, "?taxi near:9q8yy", ttl_ms=DAY)
        clock.now += 1
        intents.withdraw(identity, gone.id)
        intents.cast(identity, "?pizza", ttl_ms=MINUTE)  # expired by the time of the export
    return home


def test_export_and_import_round_trip_intents(home_with_intents, tmp_path):
    doc = json.loads(json.dumps(export_home(home_with_intents, clock=lambda: T0 + DAY)))
    entries = doc["sections"]["intents"]
    assert [e["text"] for e in entries] == [FLIGHT, "?taxi near:9q8yy", "?pizza"]
    assert [e["withdrawal"] is not None for e in entries] == [False, True, False]
    result = import_home(doc, tmp_path / "restored", passphrase=None)
    assert result.counts["intents"] == 3
    again = export_home(tmp_path / "restored", clock=lambda: T0 + DAY)
    assert again["sections"]["intents"] == entries
    clock = Clock(T0 + 2 * MINUTE)
    with open_store(home_with_intents) as a, open_store(result.home) as b:
        original = Intents(a, clock=clock).list(status="all")
        restored = Intents(b, clock=clock).list(status="all")
        assert restored == original
        assert [r.status for r in restored] == ["live", "withdrawn", "expired"]
        # the new home has a new key: the imported intents are not its own to withdraw
        new_identity = load_identity(result.home.key_path, None)
        with pytest.raises(ConflictError, match="another identity"):
            Intents(b, clock=clock).withdraw(new_identity, restored[0].id)


def _flip(hex_text: str, at: int) -> str:
    return hex_text[:at] + ("1" if hex_text[at] != "1" else "2") + hex_text[at + 1 :]


BROKEN = {
    "not a list": lambda d: d["sections"].update(intents={}),
    "unknown field": lambda d: d["sections"]["intents"][0].update(colour="blue"),
    "missing field": lambda d: d["sections"]["intents"][0].pop("created"),
    "not hex": lambda d: d["sections"]["intents"][0].update(envelope="zz"),
    "bad signature": lambda d: d["sections"]["intents"][0].update(
        envelope=_flip(d["sections"]["intents"][0]["envelope"], -10)
    ),
    "text differs": lambda d: d["sections"]["intents"][0].update(text="?hotel"),
    "expiry differs": lambda d: d["sections"]["intents"][0].update(expires=1),
    "twice": lambda d: d["sections"]["intents"].append(d["sections"]["intents"][0]),
    "withdrawal of another intent": lambda d: d["sections"]["intents"][0].update(
        withdrawal=d["sections"]["intents"][1]["withdrawal"]
    ),
    "withdrawal is an intent": lambda d: d["sections"]["intents"][1].update(
        withdrawal=d["sections"]["intents"][0]["envelope"]
    ),
}


@pytest.mark.parametrize("change", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_intents_section_is_refused_and_creates_nothing(home_with_intents, tmp_path, change):
    doc = export_home(home_with_intents)
    import_home(copy.deepcopy(doc), tmp_path / "control", passphrase=None)  # the unbroken one imports
    broken = copy.deepcopy(doc)
    change(broken)
    with pytest.raises(ExchangeError):
        import_home(broken, tmp_path / "new", passphrase=None)
    assert not (tmp_path / "new").exists()


def test_an_intent_signed_with_a_body_that_does_not_match_its_text_is_refused(home_with_intents, tmp_path):
    doc = export_home(home_with_intents)
    body = {**NATIVE.parse_intent("?flight"), "terms": [], "tokens": ["hotel"]}
    forged = envelope.create(ALICE, "intent", body, created=T0, ttl_ms=DAY)
    doc["sections"]["intents"].append(
        {"id": forged.id.hex(), "text": "?flight", "created": T0, "expires": T0 + DAY,
         "envelope": forged.raw.hex(), "withdrawal": None}
    )  # fmt: skip
    with pytest.raises(ExchangeError, match="body"):
        import_home(doc, tmp_path / "new", passphrase=None)
    assert not (tmp_path / "new").exists()
