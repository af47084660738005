"""Verifier.ingest, the one pass over a received batch: its verdicts, its result layout, duplicates that
skip verification, the intent body check, matching, threads, and native == reference on random and
hostile batches."""

from __future__ import annotations

import json
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import ValidationError
from node.intents import KNOWN_TERMS, check_body, parse_intent
from node.reasons import Reason
from node.reference.envelope import KINDS
from tests.vectors.loaders import NOW_MS, Author, canonical, envelope_map

ALICE, BOB = Author.numbered(201), Author.numbered(202)
DAY = 86_400_000
FLIGHT = parse_intent("?flight from:SFO to:JFK max:300USD #work @acme").body(["no-resale"])
SUBS = [(1, ["flight"], [], [], [], None, []), (2, ["flight"], ["work"], [], [], None, []), (3, ["taxi"], [], [], [], None, [])]


def intent(author: Author = ALICE, body=FLIGHT, created: int = NOW_MS - 1000, ttl: int = DAY, **kw) -> bytes:
    return canonical(envelope_map(author, kind="intent", body=body, created=created, expires=created + ttl, **kw))


def other(kind: str, author: Author = BOB, body=None, created: int = NOW_MS - 1000, ttl: int = DAY) -> bytes:
    body = {"to": ALICE.public_key} if body is None else body
    return canonical(envelope_map(author, kind=kind, body=body, created=created, expires=created + ttl))


def forged(raw_fields: dict) -> bytes:
    return canonical({**raw_fields, "sig": bytes(64)})


def split(result) -> list[tuple]:
    """The result as one tuple per item: (code, id, kind, author, created, expires, body, matched,
    (text, body as JSON) for an accepted intent, else None)."""
    n = len(result)
    created = struct.unpack(f"={n}q", result.created)
    expires = struct.unpack(f"={n}q", result.expires)
    offsets = struct.unpack(f"={n + 1}Q", result.match_offsets)
    ids = struct.unpack(f"={len(result.match_ids) // 8}q", result.match_ids)
    one_by_one = [result.body(i) for i in range(n)]  # decoded on demand, before the whole list
    with pytest.raises(IndexError):
        result.body(n)
    assert len(result.codes) == len(result.kinds) == len(result.bodies) == n
    assert result.bodies == one_by_one == [result.body(i) for i in range(n)]
    assert len(result.ids) == len(result.authors) == 32 * n
    intents = [i for i in range(n) if result.codes[i] == Reason.OK and result.kinds[i] == KINDS.index("intent")]
    as_json = dict(zip(intents, result.intents_json(intents), strict=True))
    return [
        (result.codes[i], result.ids[32 * i : 32 * i + 32], result.kinds[i], result.authors[32 * i : 32 * i + 32],
         created[i], expires[i], result.bodies[i], list(ids[offsets[i] : offsets[i + 1]]), as_json.get(i))
        for i in range(n)
    ]  # fmt: skip


def test_an_accepted_intent_carries_everything_the_pipeline_needs(backend):
    raw = intent()
    env = backend.decode_envelope(raw)
    result = backend.Verifier().ingest([raw], NOW_MS, backend.MatchIndex(SUBS))
    [(code, id_, kind, author, created, expires, body, matched, as_json)] = split(result)
    assert (code, id_, author, created, expires) == (Reason.OK, env[8], ALICE.public_key, env[3], env[4])
    assert backend.KINDS[kind] == "intent"
    assert body == FLIGHT and matched == [1, 2] == result.matched(0)
    assert as_json == (FLIGHT["text"], json.dumps(FLIGHT, ensure_ascii=False, sort_keys=True))
    # without an index: the same verdict, no matches
    assert split(backend.Verifier().ingest([raw], NOW_MS))[0][:7] == (code, id_, kind, author, created, expires, body)
    assert backend.Verifier().ingest([raw], NOW_MS).matched(0) == []


def test_refusals_keep_what_decoded_and_drop_the_body(backend):
    late = intent(created=NOW_MS - 2 * DAY)
    items = [late, b"\x01\x02", b"\x00" * (backend.MAX_ENVELOPE_BYTES + 1), other("offer")]
    rows = split(backend.Verifier().ingest(items, NOW_MS))
    assert [r[0] for r in rows] == [Reason.EXPIRED, Reason.TRAILING_BYTES, Reason.TOO_LARGE, Reason.OK]
    assert rows[0][1] == backend.decode_envelope(late)[8] and rows[0][6] is None and rows[0][3] == ALICE.public_key
    for row in rows[1:3]:  # did not decode: zeros and the no-kind code
        assert row[1:6] == (bytes(32), backend.NO_KIND, bytes(32), 0, 0) and row[6] is None
    assert backend.KINDS[rows[3][2]] == "offer" and rows[3][6] == {"to": ALICE.public_key}


def test_ingest_gives_verify_batch_codes_for_distinct_envelopes(backend):
    fields = envelope_map(ALICE, body=FLIGHT, created=NOW_MS, expires=NOW_MS + DAY)
    items = [intent(), forged(fields), intent(created=NOW_MS + 10 * 60_000), other("grant"), other("receipt"),
             intent(BOB, ttl=400 * DAY), canonical(envelope_map(ALICE, kind="offer", public_key=b"\x02" + bytes(31)))]  # fmt: skip
    verifier = backend.Verifier()
    codes, ids = verifier.verify_batch(items, NOW_MS)
    result = verifier.ingest(items, NOW_MS)
    assert result.codes == codes and result.ids == ids
    assert list(codes) == [0, Reason.BAD_SIGNATURE, Reason.NOT_YET_VALID, 0, 0, Reason.TOO_LONG_LIVED, Reason.BAD_KEY]


def test_repeats_in_a_batch_are_duplicates_of_the_first_accepted(backend):
    good = intent()
    fields = envelope_map(ALICE, body=FLIGHT, created=NOW_MS - 1000, expires=NOW_MS - 1000 + DAY)
    assert canonical(fields) == good
    bad = forged(fields)  # the same id (the signed bytes), another signature
    codes = backend.Verifier().ingest([good, good, bad, good], NOW_MS).codes
    assert list(codes) == [Reason.OK, Reason.DUPLICATE, Reason.DUPLICATE, Reason.DUPLICATE]
    # a forgery first does not make the genuine copy after it a duplicate
    codes = backend.Verifier().ingest([bad, bad, good, bad, good], NOW_MS).codes
    assert list(codes) == [Reason.BAD_SIGNATURE, Reason.BAD_SIGNATURE, Reason.OK, Reason.DUPLICATE, Reason.DUPLICATE]
    # repeats of a refused envelope keep its reason
    late = intent(created=NOW_MS - 2 * DAY)
    assert list(backend.Verifier().ingest([late, late], NOW_MS).codes) == [Reason.EXPIRED] * 2


def test_remembered_ids_are_duplicates_without_verification(backend):
    verifier = backend.Verifier(recent_ids=2)
    a, b, c = intent(), intent(BOB), intent(body=parse_intent("?taxi").body())
    first = verifier.ingest([a, b, c], NOW_MS)
    assert list(first.codes) == [0, 0, 0] and verifier.recent_len() == 0  # ingest alone remembers nothing
    verifier.remember(first.ids[:64])
    assert list(verifier.ingest([a, b, c], NOW_MS).codes) == [Reason.DUPLICATE, Reason.DUPLICATE, Reason.OK]
    # the set is bounded: remembering c pushes out a, the oldest
    verifier.remember(first.ids[64:])
    assert verifier.recent_len() == 2
    assert list(verifier.ingest([a, b, c], NOW_MS).codes) == [Reason.OK, Reason.DUPLICATE, Reason.DUPLICATE]
    # a remembered id is not verified: even a forged copy of it is a duplicate, never bad_signature
    fields = envelope_map(BOB, body=FLIGHT, created=NOW_MS - 1000, expires=NOW_MS - 1000 + DAY)
    assert list(verifier.ingest([forged(fields)], NOW_MS).codes) == [Reason.DUPLICATE]
    for wrong in (b"x" * 31, b"x" * 33):
        with pytest.raises(ValueError, match="32-byte"):
            verifier.remember(wrong)
    with pytest.raises(TypeError):
        verifier.remember("00" * 32)
    off = backend.Verifier(recent_ids=0)
    off.remember(first.ids)
    assert off.recent_len() == 0


def hostile_bodies() -> list:
    body = dict(FLIGHT)
    out = [
        {**body, "tokens": ["flight", "extra"]},
        {**body, "tokens": list(reversed(parse_intent("?a ?b").tokens))},
        {**body, "terms": ["no-resale", "no-resale"]},
        {**body, "terms": ["No-Resale"]},
        {**body, "terms": [" no-resale"]},
        {**body, "terms": ["sell-everything"]},
        {**body, "terms": "no-resale"},
        {**body, "terms": [1]},
        {**body, "text": "no token here"},
        {**body, "text": 7},
        {**body, "text": "?flight from:SFO"},
        {**body, "words": ["x"]},
        {**body, "constraints": {}},
        {**body, "extra": 1},
        {k: v for k, v in body.items() if k != "words"},
        [body],
        "?flight",
        None,
        {**body, "terms": []},
        {**body, "terms": list(KNOWN_TERMS)},
        parse_intent("?hotel near:9q8yy dates:2025-01-01..2025-01-09 nights:2..4 seats:2 budget:10..20EUR day:2025-02-02").body(),
        body,
    ]
    return out


def test_an_accepted_intents_json_is_what_python_dumps(backend):
    """``intents_json`` (the leads' texts and bodies, one call): the JSON of ``json.dumps(body,
    ensure_ascii=False, sort_keys=True)`` to the byte, whatever the text holds (quotes, backslashes,
    every control character the tokenizer lets through, non-ASCII, U+2028); a typed error for an index
    that is no accepted intent."""
    texts = ['?taxi "now" back\\slash', "?café ☕ 🚕 \u2028 end", "?tab\there", "?line\nbreak and\r",
             "need\x01 \x1f ?taxi", "x\x08y\x0cz ?taxi \x7f"] + [f"w{chr(c)}w ?taxi" for c in range(0x20)]  # fmt: skip
    bodies = [parse_intent(t).body() for t in texts]
    batch = [intent(body=b) for b in bodies] + [other("offer"), b"\x01"]
    result = backend.Verifier().ingest(batch, NOW_MS, None)
    assert list(result.codes[: len(bodies)]) == [Reason.OK] * len(bodies)
    expected = [(body["text"], json.dumps(body, ensure_ascii=False, sort_keys=True)) for body in bodies]
    assert result.intents_json(range(len(bodies))) == expected
    assert result.intents_json([2, 0]) == [expected[2], expected[0]] and result.intents_json([]) == []
    for not_an_intent in (len(bodies), len(bodies) + 1):  # an offer; junk
        with pytest.raises(ValueError, match=f"item {not_an_intent} is not an accepted intent"):
            result.intents_json([0, not_an_intent])
    with pytest.raises(IndexError):
        result.intents_json([len(batch)])


def test_the_intent_body_check_is_check_body(backend):
    """invalid_body exactly when node.intents.check_body refuses the body."""
    bodies = hostile_bodies()
    items = [intent(body=b, created=NOW_MS - i) for i, b in enumerate(bodies)]
    codes = backend.Verifier().ingest(items, NOW_MS).codes
    for body, code in zip(bodies, codes):
        try:
            check_body(body)
            expected = Reason.OK
        except ValidationError:
            expected = Reason.INVALID_BODY
        assert code == expected, body
    assert Reason.OK in codes and Reason.INVALID_BODY in codes
    # other kinds' bodies are judged later, by the pipeline's per-kind rules
    assert list(backend.Verifier().ingest([other("offer", body={"x": 1})], NOW_MS).codes) == [Reason.OK]


def test_the_body_check_compares_types_strictly(backend):
    """check_body compares with ==, where True == 1; the native pass compares canonical bytes."""
    body = parse_intent("?seat seats:2").body()
    assert body["constraints"]["seats"] == {"int": 2}
    assert list(backend.Verifier().ingest([intent(body=body)], NOW_MS).codes) == [Reason.OK]
    body = parse_intent("?seat seats:1").body()
    body["constraints"]["seats"] = {"int": True}
    assert list(backend.Verifier().ingest([intent(body=body)], NOW_MS).codes) == [Reason.INVALID_BODY]


def test_index_of_the_other_implementation_is_a_type_error(native, reference):
    with pytest.raises(TypeError):
        native.Verifier().ingest([intent()], NOW_MS, reference.MatchIndex(SUBS))
    with pytest.raises(TypeError):
        reference.Verifier().ingest([intent()], NOW_MS, native.MatchIndex(SUBS))
    with pytest.raises(TypeError):
        native.Verifier().ingest(["text"], NOW_MS)
    with pytest.raises(OverflowError):
        native.Verifier().ingest([intent()], 2**63)


# -- threads -----------------------------------------------------------------------------------------------


def big_batch(rng: random.Random, n: int) -> list[bytes]:
    authors = [Author.numbered(300 + i) for i in range(8)]
    good = [intent(authors[i % 8], created=NOW_MS - i) for i in range(n)]
    items = list(good)
    for i in rng.sample(range(n), n // 20):
        raw = bytearray(items[i])
        raw[-10] ^= 1  # inside "sig" (the last entry is "v": 1): a bad signature
        items[i] = bytes(raw)
    for i in rng.sample(range(n), n // 20):
        items[i] = good[rng.randrange(n)]  # repeats
    return items


@pytest.mark.parametrize("n", [100, 700])  # 100: only the signatures are split over threads
def test_threads_do_not_change_a_verdict(native, n):
    items = big_batch(random.Random(5), n)
    one, many = native.Verifier(threads=1), native.Verifier(threads=4)
    assert one.threads == 1 and many.threads == 4 and native.Verifier().threads >= 1
    codes, ids = one.verify_batch(items, NOW_MS)
    assert many.verify_batch(items, NOW_MS) == (codes, ids)
    assert bytes(one.verify_one(raw, NOW_MS)[0] for raw in items) == codes
    assert Reason.BAD_SIGNATURE in codes and Reason.OK in codes
    index = native.MatchIndex(SUBS)
    a, b = one.ingest(items, NOW_MS, index), many.ingest(items, NOW_MS, index)
    assert split(a) == split(b)
    assert Reason.DUPLICATE in a.codes
    # every non-duplicate verdict is verify_batch's
    assert all(x == y for x, y in zip(a.codes, codes) if x != Reason.DUPLICATE)


# -- native == reference -------------------------------------------------------------------------------------

POOL_AUTHORS = [Author.numbered(400 + i) for i in range(3)]


@st.composite
def hostile_item(draw) -> bytes:
    author = draw(st.sampled_from(POOL_AUTHORS))
    created = NOW_MS - draw(st.sampled_from([0, 1, DAY, 3 * DAY]))
    ttl = draw(st.sampled_from([1, 1000, DAY, 364 * DAY, 366 * DAY, 2**63 - 1 - created]))
    kind = draw(st.sampled_from(["intent", "intent", "intent", "offer", "withdraw", "receipt", "revoke"]))
    bodies = hostile_bodies()
    body = draw(st.sampled_from(bodies)) if kind == "intent" else {"to": author.public_key}
    fields = envelope_map(author, kind=kind, body=body, created=created, expires=created + ttl)
    raw = canonical(fields)
    op = draw(st.sampled_from(["none", "none", "sig", "truncate", "flip", "oversize", "zero-times"]))
    if op == "sig":
        raw = forged(fields)
    elif op == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif op == "flip":
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ (1 << draw(st.integers(0, 7)))]) + raw[i + 1 :]
    elif op == "oversize":
        raw = raw + bytes(65_537)
    elif op == "zero-times":
        raw = canonical(envelope_map(author, kind=kind, body=body, created=0, expires=2**63 - 1))
    return raw


@settings(max_examples=40)
@given(
    batch=st.lists(hostile_item(), min_size=0, max_size=10),
    repeats=st.lists(st.integers(0, 9), max_size=4),
    remembered=st.lists(st.integers(0, 9), max_size=3),
    with_index=st.booleans(),
)
def test_native_equals_reference_on_hostile_batches(native, reference, batch, repeats, remembered, with_index):
    if batch:
        batch = batch + [batch[i % len(batch)] for i in repeats]
    results = []
    for backend in (native, reference):
        verifier = backend.Verifier(key_cache_size=4)
        ids = b"".join(backend.decode_envelope(batch[i])[8] for i in remembered if i < len(batch) and _decodes(backend, batch[i]))
        verifier.remember(ids)
        index = backend.MatchIndex(SUBS) if with_index else None
        results.append(split(verifier.ingest(batch, NOW_MS, index)))
    assert results[0] == results[1]


def _decodes(backend, raw: bytes) -> bool:
    try:
        backend.decode_envelope(raw)
    except Exception:  # noqa: BLE001 - any refusal
        return False
    return True


def test_the_reference_body_rules_are_node_intents_rules():
    from node import intents
    from node.reference import ingest as reference_ingest

    assert reference_ingest.KNOWN_TERMS == intents.KNOWN_TERMS
    assert reference_ingest.BODY_KEYS == intents.BODY_KEYS


def test_native_equals_reference_on_a_large_mixed_batch(native, reference):
    """A fixed-seed batch mixing every kind of trouble, with repeats and remembered ids, in both
    implementations, with an index: the same tuple for every item, and every verdict represented."""
    rng = random.Random(8)
    strategy_items = []
    for i in range(70):
        author = POOL_AUTHORS[i % len(POOL_AUTHORS)]
        body = rng.choice(hostile_bodies())
        created = NOW_MS - rng.choice([0, 1, DAY, 3 * DAY])
        ttl = rng.choice([DAY, DAY, 364 * DAY, 366 * DAY])
        kind = rng.choice(["intent", "intent", "offer", "withdraw"])
        fields = envelope_map(author, kind=kind, body=body if kind == "intent" else {"to": author.public_key},
                              created=created, expires=created + ttl)  # fmt: skip
        raw = canonical(fields)
        roll = rng.random()
        if roll < 0.1:
            raw = forged(fields)
        elif roll < 0.15:
            raw = raw[: rng.randrange(len(raw))]
        elif roll < 0.2:
            raw = raw + b"\x00"
        strategy_items.append(raw)
    batch = strategy_items + [rng.choice(strategy_items) for _ in range(15)]
    remembered = b"".join(native.decode_envelope(raw)[8] for raw in strategy_items[:20] if _decodes(native, raw))
    results = []
    for backend in (native, reference):
        verifier = backend.Verifier(threads=1) if backend is native else backend.Verifier()
        verifier.remember(remembered)
        results.append(split(verifier.ingest(batch, NOW_MS, backend.MatchIndex(SUBS))))
    assert results[0] == results[1]
    seen = {row[0] for row in results[0]}
    assert {Reason.OK, Reason.DUPLICATE, Reason.INVALID_BODY, Reason.BAD_SIGNATURE, Reason.EXPIRED,
            Reason.TOO_LONG_LIVED, Reason.MALFORMED, Reason.TRAILING_BYTES} <= seen  # fmt: skip
    assert any(row[7] for row in results[0])  # something matched


def test_the_pipelines_columns_give_what_decoding_gives(backend):
    """Stage 1's columns (federation.verify.Verdicts) for a mixed batch, in both implementations: an
    accepted item's fields and its Envelope are what decoding it gives; refusals and repeats are only
    codes; an intent is accepted from its columns with its Envelope built only when read."""
    from federation.judge import Accepted
    from federation.verify import decode_and_verify
    from node import envelope as envelopes

    good, offer = intent(), other("offer")
    batch = [good, b"\x01\x02", intent(created=NOW_MS - 2 * DAY), offer, good]
    verdicts = decode_and_verify(backend.Verifier(), backend, batch, NOW_MS, backend.MatchIndex(SUBS))
    assert list(verdicts.codes) == [Reason.OK, Reason.TRAILING_BYTES, Reason.EXPIRED, Reason.OK, Reason.DUPLICATE]
    assert verdicts.ok == [0, 3]
    assert [verdicts.decoded(i) for i in range(5)] == [True, False, True, True, True]
    for i, raw in ((0, good), (3, offer)):
        env = envelopes.decode(raw, backend)
        assert verdicts.envelope(i) == env and verdicts.id(i) == env.id and verdicts.hex_id(i) == env.id.hex()
        assert (verdicts.kind(i), verdicts.author_hex(i), verdicts.created(i), verdicts.expires(i), verdicts.raw(i)) == (
            env.kind, env.author.hex(), env.created, env.expires, raw)
    assert verdicts.matches(0) == [1, 2] and verdicts.matches(3) == []
    old = intent(created=NOW_MS - 2 * DAY)  # decodes, refused: a later copy keeps its reason
    codes = decode_and_verify(backend.Verifier(), backend, [good, offer, good, old, good, old], NOW_MS).codes
    assert list(codes) == [Reason.OK, Reason.OK, Reason.DUPLICATE, Reason.EXPIRED, Reason.DUPLICATE, Reason.EXPIRED]
    accepted = Accepted.intent(verdicts, 0, 3)
    assert accepted._env is None  # nothing decoded yet
    assert (accepted.hex_id, accepted.author, accepted.raw, accepted.ttl_in, accepted.forward) == (
        verdicts.hex_id(0), ALICE.public_key.hex(), good, 3, True)
    assert accepted.env == envelopes.decode(good, backend) and accepted.env.body == FLIGHT

