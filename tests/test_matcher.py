"""The subscription matcher: native MatchIndex against its pure-Python reference.

Fixed cases run on both implementations (the ``backend`` fixture). Differential tests build both from
the same random subscriptions and feed them the same random, mutated and hostile bodies and envelopes:
the output bytes must be identical, and equal to the union of one-subscription indexes (so the index
only narrows, never loses a match). No input bytes make either raise.
"""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.backends import NATIVE
from node.errors import EnvelopeError
from node.intents import parse_intent
from node.subscriptions import SubscriptionIndex, compile_subscription, parse_subscription

AUTHOR = bytes(range(32))
SIG = bytes(64)
OK, MALFORMED, NOT_INTENT = 0, 1, 2
EQ, LT, LE, GT, GE = range(5)
MONEY, INT, DATE = range(3)


def body(text: str) -> dict:
    return parse_intent(text).body(["no-resale"])


def enc(value) -> bytes:
    return NATIVE.encode(value)


def envelope(value, kind: str = "intent") -> bytes:
    return NATIVE.encode_envelope(AUTHOR, value, 1_700_000_000_000, 1_700_000_600_000, kind, SIG)


def split(result: tuple[bytes, bytes, bytes]) -> list[tuple[int, list[int]]]:
    flags, offsets, ids = result
    off, found = memoryview(offsets).cast("Q"), memoryview(ids).cast("q")
    assert len(off) == len(flags) + 1 and off[0] == 0 and off[-1] == len(found)
    return [(flags[i], found[off[i] : off[i + 1]].tolist()) for i in range(len(flags))]


def sub(sid: int, tokens, *, tags=(), handles=(), equals=(), near=None, bounds=()) -> tuple:
    return (sid, list(tokens), list(tags), list(handles), list(equals), near, list(bounds))


def ids_of(backend, subs, texts) -> list[list[int]]:
    got = split(backend.MatchIndex(subs).match_bodies([enc(body(t)) for t in texts]))
    assert all(flag == OK for flag, _ in got)
    return [ids for _, ids in got]


# -- fixed cases ------------------------------------------------------------------------------------


def test_the_example(backend):
    compiled = compile_subscription(42, parse_subscription("?flight to:JFK near:dr5 max>=200USD"), backend=backend)
    index = SubscriptionIndex([compiled], backend=backend)
    hit = body("?flight SFO->JFK near:dr5ru max:400USD")
    misses = [
        body("?flight SFO->JFK near:dr5ru max:150USD"),  # offers too little
        body("?flight SFO->JFK near:dr5ru max:400EUR"),  # another currency
        body("?flight SFO->LAX near:dr5ru max:400USD"),  # elsewhere
        body("?flight SFO->JFK near:9q8 max:400USD"),  # another area
        body("?hotel SFO->JFK near:dr5ru max:400USD"),  # another token
        body("?flight SFO->JFK near:dr5ru"),  # says nothing about money
    ]
    assert index.match_bodies([enc(hit)] + [enc(b) for b in misses]) == [[42]] + [[]] * len(misses)
    assert index.match_envelopes([envelope(hit), envelope(hit, "offer"), b"junk"]) == [[42], [], []]
    assert len(index) == 1


def test_tokens_tags_handles_all_required(backend):
    subs = [
        sub(1, ["flight"]),
        sub(2, ["flight", "hotel"]),
        sub(3, ["flight"], tags=["work"]),
        sub(4, ["flight"], handles=["acme-air"]),
        sub(5, ["taxi"]),
    ]
    texts = ["?flight", "?hotel ?flight #work", "?Flight @acme-air #Work ?taxi", "?hotel", "?bus"]
    assert ids_of(backend, subs, texts) == [[1], [1, 2, 3], [1, 3, 4, 5], [], []]


def test_near_overlaps_either_way(backend):
    subs = [sub(1, ["pizza"], near="dr5r"), sub(2, ["pizza"], near="d"), sub(3, ["pizza"], near="9q8")]
    texts = ["?pizza near:dr5ru", "?pizza near:dr", "?pizza near:DR5RX", "?pizza near:9", "?pizza near:u0", "?pizza"]
    assert ids_of(backend, subs, texts) == [[1, 2], [1, 2], [1, 2], [3], [], []]


def test_equality_is_exact_and_type_strict(backend):
    subs = [
        sub(1, ["flight"], equals=[("to", {"place": "JFK"})]),
        sub(2, ["flight"], equals=[("to", {"place": "JFK"}), ("from", {"place": "SFO"})]),
        sub(3, ["flight"], equals=[("seat", {"text": "window"})]),
        sub(4, ["flight"], equals=[("qty", {"int": 1})]),
    ]
    index = backend.MatchIndex(subs)
    bodies = [
        body("?flight SFO->JFK seat:window qty:1"),
        body("?flight LAX->JFK seat:Window"),
        {**body("?flight"), "constraints": {"qty": {"int": True}}},  # True is not 1
    ]
    assert split(index.match_bodies([enc(b) for b in bodies])) == [(OK, [1, 2, 3, 4]), (OK, [1]), (OK, [])]


@pytest.mark.parametrize(
    ("bound", "hits"),
    [
        (("max", GE, MONEY, 20000, "USD"), [True, True, False, False, True, False]),
        (("max", LE, MONEY, 20000, "USD"), [False, True, True, False, True, False]),
        (("max", GT, MONEY, 20000, "USD"), [True, False, False, False, True, False]),
        (("max", LT, MONEY, 20000, "USD"), [False, False, True, False, True, False]),
        (("max", EQ, MONEY, 20000, "USD"), [False, True, False, False, True, False]),
    ],
)
def test_money_bounds(backend, bound, hits):
    texts = [
        "?flight max:400USD",
        "?flight max:200USD",
        "?flight max:150USD",
        "?flight max:400EUR",
        "?flight max:100..300USD",  # some value of the range satisfies every op
        "?flight budget:400USD",  # another key
    ]
    got = ids_of(backend, [sub(7, ["flight"], bounds=[bound])], texts)
    assert got == [[7] if h else [] for h in hits]


def test_dates_and_numbers(backend):
    subs = [
        sub(1, ["hotel"], bounds=[("before", LT, DATE, 20261220, "")]),
        sub(2, ["hotel"], bounds=[("nights", GE, INT, 3, ""), ("nights", LE, INT, 5, "")]),
        sub(3, ["hotel"], bounds=[("on", EQ, DATE, 20260714, "")]),
    ]
    texts = [
        "?hotel before:2026-12-19 nights:2",
        "?hotel before:2026-12-20 nights:4",
        "?hotel nights:5..9 on:2026-07-10..2026-07-20",
        "?hotel nights:6 on:2026-07-15",
    ]
    assert ids_of(backend, subs, texts) == [[1], [2], [2, 3], []]


def test_compiled_subscription_texts(backend):
    """Subscription text -> compiled form -> matches, for each constraint form."""
    cases = {
        "?hotel nights:3": (["?hotel nights:3", "?hotel nights:2..4"], ["?hotel nights:4", "?hotel"]),
        "?hotel nights:3..5": (["?hotel nights:5..8", "?hotel nights:4"], ["?hotel nights:6", "?hotel nights:1..2"]),
        "?flight budget:100..300USD": (["?flight budget:300USD"], ["?flight budget:301USD", "?flight budget:200EUR"]),
        "?flight on>=2026-07-01 on<2026-08-01": (["?flight on:2026-07-31"], ["?flight on:2026-08-01"]),
        "?flight from:sfo #work @acme-air": (["?flight SFO->JFK #work @acme-air"], ["?flight SFO->JFK #work"]),
        "?bike color:blue": (["?bike color:blue"], ["?bike color:Blue"]),
        "?bike qty>=2": (["?bike qty:2", "?bike qty:1..2"], ["?bike qty:1"]),
    }
    for i, (text, (hits, misses)) in enumerate(cases.items()):
        compiled = compile_subscription(i, parse_subscription(text, backend=backend), backend=backend)
        assert ids_of(backend, [compiled], hits + misses) == [[i]] * len(hits) + [[]] * len(misses), text


def test_ids_are_ascending_and_distinct(backend):
    subs = [sub(9, ["a", "b"]), sub(-4, ["b"]), sub(2**62, ["a"]), sub(9, ["b", "a"])]
    assert ids_of(backend, subs, ["?b ?a ?b", "?a"]) == [[-4, 9, 2**62], [2**62]]


def test_flags_and_hostile_items(backend):
    index = backend.MatchIndex([sub(1, ["flight"])])
    good = body("?flight")
    items = [
        enc(good),
        b"",
        b"\xc1",
        enc(good)[:-1],
        enc(["not", "a", "map"]),
        enc({**good, "tokens": ["flight", 3]}),
        enc({**good, "constraints": {"to": "JFK"}}),
        enc({k: v for k, v in good.items() if k != "tags"}),
        bytearray(enc(good)),
        memoryview(enc(good)),
        b"\x90" * 70_000,  # over the size cap
    ]
    assert split(index.match_bodies(items)) == [
        (OK, [1]),
        *[(MALFORMED, [])] * 7,
        (OK, [1]),
        (OK, [1]),
        (MALFORMED, []),
    ]
    envelopes = [envelope(good), envelope(good, "withdraw"), envelope("flight"), enc(good), envelope(good)[3:]]
    assert split(index.match_envelopes(envelopes)) == [
        (OK, [1]),
        (NOT_INTENT, []),
        (MALFORMED, []),
        (MALFORMED, []),
        (MALFORMED, []),
    ]
    assert split(index.match_bodies([])) == []
    with pytest.raises(TypeError):
        index.match_bodies([enc(good), "text"])
    with pytest.raises(TypeError):
        index.match_envelopes(None)


@pytest.mark.parametrize(
    ("subs", "error"),
    [
        ([sub(1, [])], ValueError),
        ([sub(1, ["a"], bounds=[("max", 9, MONEY, 1, "USD")])], ValueError),
        ([sub(1, ["a"], bounds=[("max", EQ, 7, 1, "USD")])], ValueError),
        ([sub(1, ["a"], bounds=[("max", EQ, MONEY, 2**63, "USD")])], OverflowError),
        ([sub(2**64, ["a"])], OverflowError),
        ([(1, "abc", [], [], [], None, [])], TypeError),
        ([sub(1, ["a"], near=5)], TypeError),
        ([sub(1, ["a"], equals=[("to", 1.5)])], EnvelopeError),
        ([sub(1, ["a"], equals=[["to", 1]])], TypeError),
        ([[1, ["a"], [], [], [], None, []]], TypeError),
        ([(1, ["a"])], ValueError),
        ([sub(1, ["a"], equals=[("to",)])], ValueError),
        ([sub(1, ["a"], bounds=[("max", EQ, MONEY, 1)])], ValueError),
        (None, TypeError),
    ],
)
def test_construction_errors(backend, subs, error):
    with pytest.raises(error):
        backend.MatchIndex(subs)


def test_empty_index(backend):
    index = backend.MatchIndex([])
    assert len(index) == 0
    assert split(index.match_bodies([enc(body("?x")), b"\xc1"])) == [(OK, []), (MALFORMED, [])]


def test_native_releases_the_gil():
    """A long batch runs while another Python thread keeps working."""
    subs = [sub(i, ["flight"], near="dr5"[: i % 4] or None) for i in range(1000)]
    index = NATIVE.MatchIndex(subs)
    batch = [enc(body("?flight near:dr5ru"))] * 2000
    ticks = []
    worker = threading.Thread(target=lambda: ticks.append(len(index.match_bodies(batch)[0])))
    worker.start()
    while worker.is_alive():
        ticks.append(None)
        worker.join(0.001)
    assert ticks.count(2000) == 1
    assert len(ticks) > 10  # held GIL: 1 or 2 (the loop runs only before and after the call)


# -- differential -----------------------------------------------------------------------------------

TOKENS = ["flight", "hotel", "taxi", "pizza", "bike", "café"]
TAGS = ["work", "eco", "urgent"]
HANDLES = ["acme-air", "zed.shop"]
PLACES = ["SFO", "JFK", "LAX", "CDG"]
GEOHASHES = ["d", "dr", "dr5", "dr5r", "dr5ru", "9q", "9q8yy", "u0"]
MONEY_KEYS, INT_KEYS, DATE_KEYS = ["max", "min", "budget"], ["qty", "nights"], ["before", "after", "on"]
CURRENCIES = ["USD", "EUR", "JPY"]


def random_date(rng: random.Random) -> str:
    return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def random_subscription(rng: random.Random, sid: int) -> tuple:
    equals, near, bounds = [], None, []
    if rng.random() < 0.4:
        equals.append((rng.choice(["to", "from"]), {"place": rng.choice(PLACES)}))
    if rng.random() < 0.1:
        equals.append(("qty", rng.choice([{"int": 1}, {"int": True}, {"range": [1, 2]}])))
    if rng.random() < 0.1:
        equals.append(("color", {"text": rng.choice(["blue", "red"])}))
    if rng.random() < 0.4:
        near = rng.choice(GEOHASHES + [""])[: rng.randint(0, 4)]
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        kind = rng.choice([MONEY, INT, DATE])
        if kind == MONEY:
            key, value, cur = rng.choice(MONEY_KEYS), rng.choice([0, 5000, 20000, 40000, -1]), rng.choice(CURRENCIES)
        elif kind == INT:
            key, value, cur = rng.choice(INT_KEYS), rng.randint(-1, 6), ""
        else:
            key, value, cur = rng.choice(DATE_KEYS), int(random_date(rng).replace("-", "")), ""
        bounds.append((key, rng.randrange(5), kind, value, cur))
    tokens = rng.sample(TOKENS, rng.choice([1, 1, 1, 2]))
    tags = rng.sample(TAGS, rng.choice([0, 0, 0, 1]))
    handles = rng.sample(HANDLES, rng.choice([0, 0, 0, 1]))
    return (sid, tokens, tags, handles, equals, near, bounds)


def random_intent_text(rng: random.Random) -> str:
    parts = [f"?{t}" for t in rng.sample(TOKENS, rng.randint(1, 3))]
    parts += [f"#{t}" for t in rng.sample(TAGS, rng.randint(0, 2))]
    parts += [f"@{h}" for h in rng.sample(HANDLES, rng.randint(0, 1))]
    if rng.random() < 0.6:
        parts.append(f"{rng.choice(PLACES)}->{rng.choice(PLACES)}")
    if rng.random() < 0.6:
        parts.append(f"near:{rng.choice(GEOHASHES)}")
    for key in rng.sample(MONEY_KEYS, rng.randint(0, 2)):
        lo, hi = sorted(rng.choice([0, 50, 150, 200, 400]) for _ in range(2))
        cur = rng.choice(CURRENCIES)
        parts.append(f"{key}:{lo}{cur}" if rng.random() < 0.6 else f"{key}:{lo}..{hi}{cur}")
    for key in rng.sample(INT_KEYS, rng.randint(0, 2)):
        lo, hi = sorted(rng.randint(0, 6) for _ in range(2))
        parts.append(f"{key}:{lo}" if rng.random() < 0.6 else f"{key}:{lo}..{hi}")
    for key in rng.sample(DATE_KEYS, rng.randint(0, 2)):
        lo, hi = sorted(random_date(rng) for _ in range(2))
        parts.append(f"{key}:{lo}" if rng.random() < 0.6 else f"{key}:{lo}..{hi}")
    if rng.random() < 0.2:
        parts.append(f"color:{rng.choice(['blue', 'red', 'Blue'])}")
    rng.shuffle(parts)
    return " ".join(parts)


# Constraint values a hostile author could sign: each tests one rule of the matcher's reading.
HOSTILE_VALUES = [
    {"money": True, "cur": "USD"},
    {"money": -5, "cur": "USD"},
    {"money": 2**64 - 1, "cur": "USD"},
    {"money": -(2**63), "cur": "USD"},
    {"money": 20000},
    {"money": 20000, "cur": b"USD"},
    {"money": "20000", "cur": "USD", "int": 3},
    {"int": 3, "date": "2026-07-14"},
    {"int": True},
    {"int": 1, "range": [0, 9]},
    {"range": [1, 2, 3]},
    {"range": [5, 1]},
    {"range": ["2026-01-01", 5]},
    {"range": ["2026-01-01", "2026-13-99"]},
    {"range": [100, 300], "cur": 5},
    {"range": [100, "300"], "cur": "USD"},
    {"range": "1..2"},
    {"date": "２０２６-01-01"},
    {"date": "2026-1x-01"},
    {"date": "2026-07-14T"},
    {"date": 20260714},
    {"geohash": 5},
    {"geohash": ""},
    {"geohash": "DR5"},
    {"geohash": "dr5\u00e9"},
    {"place": "JFK", "extra": None},
    {"place": b"JFK"},
    {"text": "blue"},
    {},
]


def mutate(rng: random.Random, value: dict):
    """A random structural mutation of a body (often still readable, sometimes not)."""
    b = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in value.items()}
    choice = rng.randrange(12)
    keys = list(b["constraints"]) or ["max"]
    if choice < 5:
        b["constraints"][rng.choice(keys + ["near", "qty", "on", "to"])] = rng.choice(HOSTILE_VALUES)
    elif choice == 5:
        b["tokens"] = b["tokens"] + [rng.choice([1, None, b"flight", "flight", "FLIGHT"])]
    elif choice == 6:
        del b[rng.choice(["tokens", "tags", "handles", "constraints", "text"])]
    elif choice == 7:
        b[rng.choice(["tokens", "tags", "handles", "constraints"])] = rng.choice([None, "flight", {}, [], 5])
    elif choice == 8:
        b["constraints"] = {**b["constraints"], "to": rng.choice(["JFK", 5, ["JFK"], None])}
    elif choice == 9:
        return rng.choice([[b], "flight", 5, None, b"x"])
    elif choice == 10:
        b["tokens"] = b["tokens"] * 3  # repeated tokens
    else:
        b["extra"] = {"nested": [1, {"a": b"x"}]}
    return b


def flip(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(4)
        if op == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == 1 and data:
            del data[rng.randrange(len(data)) :]
        elif op == 2:
            data.insert(rng.randint(0, len(data)), rng.randrange(256))
        elif data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def random_items(rng: random.Random, n: int) -> tuple[list[bytes], list[bytes]]:
    """(bodies, envelopes): valid, mutated and byte-damaged."""
    bodies, envelopes = [], []
    for _ in range(n):
        value = body(random_intent_text(rng))
        if rng.random() < 0.3:
            value = mutate(rng, value)
        try:
            raw = enc(value)
        except EnvelopeError:
            continue
        kind = "intent" if rng.random() < 0.85 else rng.choice(["offer", "withdraw", "accept"])
        env = envelope(value, kind)
        if rng.random() < 0.1:
            raw, env = flip(rng, raw), flip(rng, env)
        bodies.append(raw)
        envelopes.append(env)
    bodies.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))))
    return bodies, envelopes


def brute_force(native, subs, items, method: str) -> list[tuple[int, list[int]]]:
    """Every subscription on its own, results merged: what the index must give."""
    out = None
    for s in subs:
        one = split(getattr(native.MatchIndex([s]), method)(items))
        out = one if out is None else [(f, sorted(set(a) | set(b))) for (f, a), (_, b) in zip(out, one)]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_differential_random(native, reference, seed):
    rng = random.Random(seed)
    subs = [random_subscription(rng, rng.randrange(-5, 10_000)) for _ in range(rng.choice([10, 40, 150]))]
    bodies, envelopes = random_items(rng, 300)
    n_index, r_index = native.MatchIndex(subs), reference.MatchIndex(subs)
    assert len(n_index) == len(r_index) == len(subs)
    for method, items in (("match_bodies", bodies), ("match_envelopes", envelopes)):
        got = getattr(n_index, method)(items)
        assert got == getattr(r_index, method)(items), method
        assert split(got) == brute_force(native, subs, items, method), method
    matched = sum(1 for _, ids in split(n_index.match_bodies(bodies)) if ids)
    assert matched > 0  # the corpus exercises matches, not only misses


canonical = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=6) | st.binary(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


@given(
    constraints=st.dictionaries(st.sampled_from(["max", "qty", "on", "near", "to", "color"]), canonical, max_size=4),
    tokens=st.lists(st.sampled_from(TOKENS + ["", "x"]), max_size=3),
    data=st.binary(max_size=64),
)
def test_differential_hypothesis(native, reference, constraints, tokens, data):
    rng = random.Random(len(tokens) * 7 + len(data))
    subs = [random_subscription(rng, i) for i in range(30)]
    value = {"tokens": tokens, "tags": ["work"], "handles": [], "constraints": constraints, "text": "x"}
    wrapped = {**value, "constraints": {k: {"v": v} for k, v in constraints.items()}}
    items = [enc(value), data, enc(constraints), enc(wrapped)]
    envelopes = [envelope(value), data]
    for method, batch in (("match_bodies", items), ("match_envelopes", envelopes)):
        assert getattr(native.MatchIndex(subs), method)(batch) == getattr(reference.MatchIndex(subs), method)(batch)
