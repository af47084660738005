"""The subscription matcher: 100 000 subscriptions, batches of signed intent envelopes, the native index
against its pure-Python reference in the same run (both decode each envelope and match its body).

``run_scale`` (the full run, at 1M subscriptions; too slow for the CI gate) adds the same comparison at
scale, the index's memory (the native estimate and the RSS delta of building it), a LiveIndex built from
a store holding them, subscribe latency p50/p99 (store commit + in-place index update, and the update
alone), and matching throughput on one thread while another subscribes, as a ratio to matching alone.

Subscriptions and intents are drawn from the same vocabulary of 1 000 wants with a skew (a few are
popular: ``?flight`` has thousands of subscriptions, most wants a few dozen), and the same places,
areas, amounts and dates, so intents land in large buckets and each matches several subscriptions.
"""

from __future__ import annotations

import gc
import itertools
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.harness import Bench, Suite
from node import envelope
from node.identity import Identity
from node.store import Store, spec_hash
from node.subscriptions import (
    LiveIndex,
    SubscriptionIndex,
    Subscriptions,
    compile_subscription,
    parse_subscription,
    spec_json,
)

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


# -- at scale: memory, in-place updates, subscribe latency, matching while subscribing ------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def compiled_corpus(native, n: int, seed: int = 11) -> tuple[list[str], list[tuple]]:
    texts = subscription_texts(n, seed)
    return texts, [compile_subscription(i + 1, parse_subscription(t, backend=native), backend=native)
                   for i, t in enumerate(texts)]  # fmt: skip


def fill_store(store, native, texts: list[str], chunk: int = 50_000) -> None:
    """The subscriptions table as ``Subscriptions.add`` would leave it, written in bulk."""
    for at in range(0, len(texts), chunk):
        rows = []
        for t in texts[at : at + chunk]:
            spec = spec_json(parse_subscription(t, backend=native))
            rows.append({"text": t, "spec": spec, "spec_hash": spec_hash(spec), "created_at": NOW_MS})
        with store.transaction():
            store.insert_many("subscriptions", rows)


def match_loop(index, raws: list[bytes], seconds: float) -> tuple[float, float]:
    """(intents per second, the slowest batch in seconds) matched by one thread for ``seconds``."""
    done, slowest, started = 0, 0.0, time.perf_counter()
    while (now := time.perf_counter()) - started < seconds:
        index.match_envelopes(raws)
        slowest = max(slowest, time.perf_counter() - now)
        done += len(raws)
    return done / (time.perf_counter() - started), slowest


def run_scale(suite: Suite, native, reference, *, subscriptions: int = 1_000_000, subscribes: int = 300) -> dict:
    """At ``subscriptions``: native against the reference (intents/s and ratio), index memory, the live
    index built from a store, subscribe latency, and matching throughput while subscribes run."""
    tag = f"{subscriptions // 1000}k"
    print(f"[matcher {tag}] {load()}", file=sys.stderr)
    started = time.perf_counter()
    texts, compiled = compiled_corpus(native, subscriptions)
    print(f"  {subscriptions:,} subscriptions compiled in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    n_index = native.MatchIndex(compiled)
    build_s = time.perf_counter() - started
    rss_delta, heap = rss_bytes() - before, n_index.heap_bytes()
    started = time.perf_counter()
    r_index = reference.MatchIndex(compiled)
    r_build_s = time.perf_counter() - started
    raws = signed_intents(native, intent_texts(256))
    if n_index.match_envelopes(raws) != r_index.match_envelopes(raws):
        raise SystemExit(f"benchmark corpus ({tag}): native and reference match the intents differently")
    print(f"  native index: built in {build_s:.2f} s, heap estimate {heap / 1e6:.0f} MB, RSS delta "
          f"{rss_delta / 1e6:.0f} MB; reference built in {r_build_s:.1f} s", file=sys.stderr)  # fmt: skip
    label = f"({tag} subs, 256/batch)"
    suite.run_group(f"matcher{tag}", [
        Bench(f"matcher{tag}.reference.match_envelopes", f"reference match_envelopes {label}",
              lambda: r_index.match_envelopes(raws), ops=256),
        Bench(f"matcher{tag}.native.match_envelopes", f"native match_envelopes {label}",
              lambda: n_index.match_envelopes(raws), ops=256, baseline=f"matcher{tag}.reference.match_envelopes",
              extra={"heap_bytes": heap, "rss_delta_bytes": rss_delta}),
    ])  # fmt: skip
    del r_index, n_index, compiled
    gc.collect()
    figures = {f"matcher_{tag}_heap_mb": round(heap / 1e6, 1), f"matcher_{tag}_rss_delta_mb": round(rss_delta / 1e6, 1),
               f"matcher_{tag}_native_build_s": round(build_s, 2)}  # fmt: skip
    figures.update(live_figures(native, texts, raws, tag, subscribes))
    print(f"[matcher {tag}] done; {load()}", file=sys.stderr)
    return figures


def durable_commit_times(path: Path, count: int) -> list[float]:
    """Wall seconds of ``count`` one-row commits under the store's durability settings (WAL,
    ``synchronous=FULL``): the floor every acknowledged write pays on this disk, fsync and all. A
    subscribe is that floor plus its own work; the disk, not the index, decides its wall time."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("CREATE TABLE t (x INTEGER)")
        times = []
        for i in range(count):
            t0 = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (?)", (i,))
            db.execute("COMMIT")
            times.append(time.perf_counter() - t0)
        return times
    finally:
        db.close()


def live_figures(native, texts: list[str], raws: list[bytes], tag: str, subscribes: int) -> dict:
    """A store holding ``texts``, its LiveIndex, subscribes timed one by one, and matching with and
    without subscribes running on another thread."""
    with tempfile.TemporaryDirectory(prefix="vrm-bench-") as tmp:
        store = Store(Path(tmp) / "node.db")
        try:
            started = time.perf_counter()
            fill_store(store, native, texts)
            fill_s = time.perf_counter() - started
            live = LiveIndex(store, backend=native)
            started = time.perf_counter()
            index = live()
            live_s = time.perf_counter() - started
            print(f"  store filled in {fill_s:.1f} s; LiveIndex built from it in {live_s:.1f} s "
                  f"(heap estimate {index.heap_bytes() / 1e6:.0f} MB)", file=sys.stderr)  # fmt: skip
            # New subscriptions from the same vocabulary, each made distinct in meaning by a tag of its own.
            fresh = [f"{t} #new{i}" for i, t in enumerate(subscription_texts(4 * subscribes, seed=99))]
            subs = Subscriptions(store, clock=lambda: NOW_MS, backend=native, live=live)
            plain = Subscriptions(store, clock=lambda: NOW_MS, backend=native)
            total, update, cpu = [], [], []
            for i, text in enumerate(fresh[:subscribes]):
                if i % 2:  # subscribe with the index updated inside (the node's path)
                    t0, c0 = time.perf_counter(), time.thread_time()
                    subs.add(text)
                    total.append(time.perf_counter() - t0)
                    cpu.append(time.thread_time() - c0)
                else:  # the same, the index update timed alone
                    plain.add(text)
                    t0 = time.perf_counter()
                    live.sync()
                    update.append(time.perf_counter() - t0)
            commit = durable_commit_times(Path(tmp) / "baseline.db", len(total))
            print(f"  subscribe (commit + index update): p50 {percentile(total, 50) * 1e3:.2f} ms, p99 "
                  f"{percentile(total, 99) * 1e3:.2f} ms wall (fsync included), CPU p50 "
                  f"{percentile(cpu, 50) * 1e3:.2f} ms; index update alone p50 {percentile(update, 50) * 1e6:.0f} "
                  f"µs, p99 {percentile(update, 99) * 1e6:.0f} µs; a bare durable one-row commit on the same "
                  f"disk p50 {percentile(commit, 50) * 1e3:.2f} ms: subscribe = commit + "
                  f"{(percentile(total, 50) - percentile(commit, 50)) * 1e3:.2f} ms", file=sys.stderr)  # fmt: skip
            stall = stall_ratio(index, raws, subs, fresh[subscribes:])
        finally:
            store.close()
    return {
        f"matcher_{tag}_live_build_s": round(live_s, 2),
        f"matcher_{tag}_subscribe_p50_ms": round(percentile(total, 50) * 1e3, 3),
        f"matcher_{tag}_subscribe_p99_ms": round(percentile(total, 99) * 1e3, 3),
        f"matcher_{tag}_subscribe_cpu_p50_ms": round(percentile(cpu, 50) * 1e3, 3),
        f"matcher_{tag}_subscribe_cpu_p99_ms": round(percentile(cpu, 99) * 1e3, 3),
        f"matcher_{tag}_durable_commit_p50_ms": round(percentile(commit, 50) * 1e3, 3),
        f"matcher_{tag}_subscribe_over_commit_p50_ms": round((percentile(total, 50) - percentile(commit, 50)) * 1e3, 3),
        f"matcher_{tag}_index_update_p50_us": round(percentile(update, 50) * 1e6, 1),
        f"matcher_{tag}_index_update_p99_us": round(percentile(update, 99) * 1e6, 1),
        **stall,
    }


def stall_ratio(index, raws: list[bytes], subs, texts: list[str], seconds: float = 3.0) -> dict:
    """Matching on one thread, alone and then while another thread subscribes and unsubscribes."""
    alone, alone_max = match_loop(index, raws, seconds)
    stop, done = threading.Event(), [0]

    def churn() -> None:
        for text in itertools.cycle(texts):
            if stop.is_set():
                return
            subs.remove(subs.add(text).id)
            done[0] += 1

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        busy, busy_max = match_loop(index, raws, seconds)
    finally:
        stop.set()
        writer.join()
    ratio = busy / alone
    print(f"  matching alone {alone:,.0f} intents/s (slowest batch {alone_max * 1e3:.1f} ms); while "
          f"{done[0] / seconds:,.0f} subscribe+unsubscribe/s run on another thread {busy:,.0f} intents/s (slowest "
          f"batch {busy_max * 1e3:.1f} ms): ratio {ratio:.2f}; {load()}", file=sys.stderr)  # fmt: skip
    return {"matcher_match_alone_per_s": round(alone), "matcher_match_while_subscribing_per_s": round(busy),
            "matcher_subscribe_churn_per_s": round(done[0] / seconds), "matcher_no_stall_ratio": round(ratio, 3),
            "matcher_slowest_batch_alone_ms": round(alone_max * 1e3, 2),
            "matcher_slowest_batch_while_subscribing_ms": round(busy_max * 1e3, 2)}  # fmt: skip
