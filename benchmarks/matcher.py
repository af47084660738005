"""The subscription matcher: 100 000 subscriptions, batches of signed intent envelopes, the native index
against its pure-Python reference in the same run (both decode each envelope and match its body).

Subscriptions and intents are drawn from the same vocabulary of 1 000 wants with a skew (a few are
popular: ``?flight`` has thousands of subscriptions, most wants a few dozen), and the same places,
areas, amounts and dates, so intents land in large buckets and each matches several subscriptions.
"""

from __future__ import annotations

import itertools
import random
import sys
import time

from benchmarks.harness import Bench, Suite
from node import envelope
from node.identity import Identity
from node.subscriptions import SubscriptionIndex, compile_subscription, parse_subscription

BASELINE = "matcher.reference.match_envelopes"
NOW_MS = 1_750_000_000_000

_COMMON = ["flight", "hotel", "taxi", "pizza", "plumber", "bike-repair", "laptop", "shoes", "dentist", "catering",
           "rentalcar", "train", "ferry", "sofa", "tutor", "gym", "florist", "lawyer", "printer", "camera"]  # fmt: skip
_PLACES = ["SFO", "JFK", "LAX", "ORD", "ATL", "DFW", "SEA", "BOS", "MIA", "DEN", "LHR", "CDG", "FRA", "AMS", "MAD",
           "FCO", "ZRH", "VIE", "CPH", "OSL", "HND", "NRT", "ICN", "SIN", "HKG", "SYD", "MEL", "YYZ"]  # fmt: skip
_AREAS = ["9q8yy", "dr5ru", "u09tv", "gcpvj", "xn76u", "u33db", "sp3e9", "c23nb", "9v6kp", "dpz83", "u281z", "f25dv"]
_TAGS = ["work", "family", "urgent", "eco", "weekend", "vegan", "kids", "pets"]
_HANDLES = ["acme-air", "zephyr.rentals", "bella_catering", "local-bikes", "city-cabs"]
_CURRENCIES = ["USD", "EUR"]
_WORDS = ["please", "need", "cheap", "tomorrow", "quiet", "window", "seat", "two", "kids", "fast"]


def vocabulary(n: int = 1000) -> tuple[list[str], list[float]]:
    """n wants and their cumulative Zipf-like weights (s = 0.8): a few are common, most are rare."""
    names = _COMMON + [f"item{i}" for i in range(n - len(_COMMON))]
    return names, list(itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(n)))


def subscription_texts(n: int, seed: int = 11) -> list[str]:
    """n distinct subscription texts (a vendor's catalogue of what it listens for)."""
    rng = random.Random(seed)
    names, weights = vocabulary()
    out: set[str] = set()
    while len(out) < n:
        parts = [f"?{t}" for t in set(rng.choices(names, cum_weights=weights, k=rng.choice([1, 1, 1, 1, 1, 2])))]
        if rng.random() < 0.35:
            parts.append(f"{rng.choice(['to', 'from'])}:{rng.choice(_PLACES)}")
        if rng.random() < 0.45:
            parts.append(f"near:{rng.choice(_AREAS)[: rng.randint(2, 5)]}")
        if rng.random() < 0.1:
            parts.append(f"#{rng.choice(_TAGS)}")
        if rng.random() < 0.05:
            parts.append(f"@{rng.choice(_HANDLES)}")
        roll = rng.random()
        if roll < 0.25:
            parts.append(f"max>={rng.choice([50, 100, 200, 300, 500])}{rng.choice(_CURRENCIES)}")
        elif roll < 0.35:
            parts.append(f"nights{rng.choice(['>=', '<='])}{rng.randint(1, 7)}")
        elif roll < 0.42:
            parts.append(f"before<2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
        out.add(" ".join(parts))
    return sorted(out)


def intent_texts(n: int, seed: int = 12) -> list[str]:
    rng = random.Random(seed)
    names, weights = vocabulary()
    out = []
    for _ in range(n):
        parts = [f"?{t}" for t in set(rng.choices(names, cum_weights=weights, k=rng.choice([1, 1, 2])))]
        if rng.random() < 0.5:
            a, b = rng.sample(_PLACES, 2)
            parts.append(f"{a}->{b}")
        if rng.random() < 0.6:
            area = rng.choice(_AREAS)
            parts.append(f"near:{area[: rng.randint(4, 5)]}{''.join(rng.choices('0123456789bcdefg', k=2))}")
        if rng.random() < 0.5:
            parts.append(f"max:{rng.choice([80, 150, 250, 400, 900])}{rng.choice(_CURRENCIES)}")
        if rng.random() < 0.2:
            parts.append(f"nights:{rng.randint(1, 4)}..{rng.randint(4, 9)}")
        if rng.random() < 0.2:
            parts.append(f"before:2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
        if rng.random() < 0.2:
            parts.append(f"#{rng.choice(_TAGS)}")
        parts += rng.sample(_WORDS, rng.randint(1, 4))
        rng.shuffle(parts)
        out.append(" ".join(parts))
    return out


def signed_intents(backend, texts: list[str]) -> list[bytes]:
    from node.intents import parse_intent

    identity = Identity.from_seed(b"\x07" * 32)
    return [
        envelope.create(
            identity, "intent", parse_intent(t, backend=backend).body(["no-resale"]),
            created=NOW_MS - i, expires=NOW_MS + 86_400_000, backend=backend,
        ).raw
        for i, t in enumerate(texts)
    ]  # fmt: skip


def run(suite: Suite, native, reference, *, subscriptions: int = 100_000) -> dict:
    started = time.perf_counter()
    parsed = [parse_subscription(t, backend=native) for t in subscription_texts(subscriptions)]
    compiled = [compile_subscription(i + 1, p, backend=native) for i, p in enumerate(parsed)]
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    n_index = native.MatchIndex(compiled)
    build_native_s = time.perf_counter() - started
    started = time.perf_counter()
    r_index = reference.MatchIndex(compiled)
    build_reference_s = time.perf_counter() - started
    batch = 256
    raws = signed_intents(native, intent_texts(batch))
    got = n_index.match_envelopes(raws)
    if got != r_index.match_envelopes(raws):
        raise SystemExit("benchmark corpus: native and reference match the intents differently")
    flags, offsets, _ = got
    ends = memoryview(offsets).cast("Q")
    matched = sum(1 for i in range(batch) if ends[i + 1] > ends[i])
    if flags != bytes(batch) or not matched:
        raise SystemExit("benchmark corpus: the intents do not read as intents or match nothing")
    print(f"  {subscriptions:,} subscriptions parsed in {parse_s:.1f} s; index built natively in "
          f"{build_native_s:.2f} s, by the reference in {build_reference_s:.2f} s; {matched}/{batch} intents "
          f"match, {ends[batch] / batch:.1f} subscriptions per intent", file=sys.stderr)  # fmt: skip

    index = SubscriptionIndex(compiled, backend=native)  # the public wrapper: ids as lists

    def ref():
        r_index.match_envelopes(raws)

    def nat():
        n_index.match_envelopes(raws)

    def wrapped():
        index.match_envelopes(raws)

    label = f"({subscriptions // 1000}k subs, {batch}/batch)"
    suite.run_group("matcher", [
        Bench(BASELINE, f"reference match_envelopes {label}", ref, ops=batch),
        Bench("matcher.native.match_envelopes", f"native match_envelopes {label}", nat, ops=batch, baseline=BASELINE),
        Bench("matcher.native.index", f"native SubscriptionIndex (ids as lists) {label}", wrapped, ops=batch,
              baseline=BASELINE),
    ])  # fmt: skip
    return {"subscriptions": subscriptions, "matcher_batch": batch, "matcher_matched": matched,
            "matcher_ids_per_intent": round(ends[batch] / batch, 2)}  # fmt: skip
