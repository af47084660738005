"""The grant check and the whole access transaction, on a person's store holding 10 000 grants.

Each call is timed on its own (time.perf_counter_ns), so the figures are latencies: p50 and p99 of
``Grants.check`` (one indexed read and the grant decoded) and of ``Grants.access`` (the check, one use
spent, the vault read, a receipt signed and appended, and the commit, which waits for the disk:
``synchronous=FULL``). The store lives in a temporary directory on the machine's disk.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Result, Suite
from node import envelope
from node.grants import Grants
from node.identity import Identity
from node.store import Store
from node.vault import Vault

NOW_MS = 1_750_000_000_000
DAY_MS = 86_400_000
FIELDS = ["email", "name", "phone", "shipping_address", "sizes"]


def populate(store: Store, person: Identity, vendors: list[Identity], n: int, *, backend) -> list[tuple[str, str]]:
    """``n`` real signed grants from ``person`` to ``vendors`` in turn (some with a budget, some ended),
    inserted in one transaction; (grant id, grantee hex) of the live unlimited ones granting ``email``."""
    rng = random.Random(7)
    rows, live = [], []
    for i in range(n):
        vendor = vendors[i % len(vendors)]
        fields = sorted(rng.sample(FIELDS, rng.randrange(1, len(FIELDS) + 1)))
        uses = None if i % 4 else rng.randrange(1, 10)
        body = {"to": vendor.public_key, "fields": fields, "purpose": f"order {i}", "uses": uses, "terms": [],
                "for": None, "request": None, "push": False}  # fmt: skip
        created = NOW_MS - rng.randrange(1, 30) * DAY_MS
        env = envelope.create(person, "grant", body, created=created, expires=NOW_MS + 60 * DAY_MS, backend=backend)
        ended = i % 10 == 9
        rows.append({
            "id": env.id.hex(), "direction": "given", "person": person.public_key.hex(),
            "grantee": vendor.public_key.hex(), "fields": json.dumps(fields), "purpose": body["purpose"],
            "terms": "[]", "uses_allowed": uses, "uses_spent": 0, "for_ref": None, "request_id": None, "push": 0,
            "raw": env.raw, "created_at": env.created, "expires_at": env.expires, "received_at": env.created,
            "status": "ended" if ended else "live", "end_reason": "revoked" if ended else None,
            "ended_at": NOW_MS - 1 if ended else None,
        })  # fmt: skip
        if uses is None and not ended and "email" in fields:
            live.append((env.id.hex(), vendor.public_key.hex()))
    with store.transaction():
        store.insert_many("grants", rows)
    return live


def _latencies(fn, calls: int) -> list[float]:
    fn()  # warm up
    out = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(calls):
            start = time.perf_counter_ns()
            fn()
            out.append((time.perf_counter_ns() - start) / 1e9)
    finally:
        if gc_was_enabled:
            gc.enable()
    return out


def _cpu_interleaved(fns, calls: int, per_sample: int = 20) -> list[list[float]]:
    """CPU time (time.process_time_ns) per call of each of ``fns``, sampled in alternation so a busy
    neighbour slows each equally; ``per_sample`` calls per sample because the CPU clock is coarse."""
    for fn in fns:
        fn()
    out: list[list[float]] = [[] for _ in fns]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(max(1, calls // per_sample)):
            for i, fn in enumerate(fns):
                start = time.process_time_ns()
                for _ in range(per_sample):
                    fn()
                out[i].append((time.process_time_ns() - start) / 1e9 / per_sample)
    finally:
        if gc_was_enabled:
            gc.enable()
    return out


def _result(name: str, label: str, samples: list[float], extra: dict) -> Result:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    mean = statistics.fmean(ordered)
    return Result(
        name=name,
        label=label,
        group="grants",
        per_op_s=p50,
        median_per_op_s=p50,
        ops_per_s=1.0 / mean,
        rounds=1,
        calls_per_round=len(samples),
        ops_per_call=1,
        extra={"p50_s": p50, "p99_s": p99, "mean_s": mean, "max_s": ordered[-1], **extra},
    )


def run(suite: Suite, native, *, grants: int = 10_000) -> dict:
    """Measure and add ``grants.check`` and ``grants.access`` to the suite; what was built, for the
    results' meta."""
    person = Identity.from_seed(bytes([1]) * 32)
    vendors = [Identity.from_seed(bytes([100 + i]) * 32) for i in range(50)]
    checks, accesses = (3_000, 150) if suite.quick else (30_000, 1_000)
    with tempfile.TemporaryDirectory(prefix="vrm-bench-grants-") as tmp:
        with Store(Path(tmp) / "person.db", clock=lambda: NOW_MS) as store:
            started = time.perf_counter()
            live = populate(store, person, vendors, grants, backend=native)
            vault = Vault(store, bytes(range(32)), clock=lambda: NOW_MS)
            for name in FIELDS:
                vault.set(name, f"value of {name}")
            book = Grants(store, clock=lambda: NOW_MS, backend=native)
            built_s = time.perf_counter() - started
            rng = random.Random(11)
            picks = [rng.choice(live) for _ in range(checks)]
            asked = [None, ["email"], ["email", "phone"]]  # the last is out of scope for some grants

            it = iter(range(10**9))

            def check() -> None:
                i = next(it) % checks
                grant_id, grantee = picks[i]
                book.check(grant_id, grantee, asked[i % 3], NOW_MS)

            def access() -> None:
                i = next(it) % checks
                grant_id, grantee = picks[i]
                book.access(person, vault, grant_id, grantee, ["email"])

            reason, _ = book.check(*picks[0], None, NOW_MS)
            if reason != 0:
                raise SystemExit(f"benchmark store: a live grant is refused ({reason.label})")
            def point_query() -> None:  # the baseline: one indexed SQLite read of the same row
                i = next(it) % checks
                store.query_one("SELECT raw FROM grants WHERE id = ?", (picks[i][0],))

            check_s = _latencies(check, checks)
            check_cpu, query_cpu = _cpu_interleaved([check, point_query], checks)
            access_s = _latencies(access, accesses)
            receipts = store.count("receipts")
    extra = {"grants": grants, "live_unlimited": len(live)}
    check_cpu_p50 = sorted(check_cpu)[len(check_cpu) // 2]
    query = _result("grants.point_query", "SQLite point query CPU p50 (baseline)", query_cpu, extra)
    checked = _result("grants.check", f"Grants.check p50, {grants:,} grants", check_s,
                      {**extra, "cpu_p50_s": check_cpu_p50})  # fmt: skip
    # The ratio is of CPU time, interleaved with the baseline; the wall-time p50/p99 are reported.
    checked.baseline, checked.ratio = "grants.point_query", query.per_op_s / check_cpu_p50
    for result in (
        query,
        checked,
        _result("grants.access", "Grants.access p50 (check+spend+receipt+commit)", access_s, extra),
    ):
        suite.results[result.name] = result
        if suite.verbose:
            x = result.extra
            print(f"  {result.label:<52} p50 {x['p50_s'] * 1e6:8.1f} µs  p99 {x['p99_s'] * 1e6:8.1f} µs  "
                  f"max {x['max_s'] * 1e6:8.1f} µs  ({result.calls_per_round} calls)", file=sys.stderr)  # fmt: skip
    if suite.verbose:
        print(f"  store of {grants:,} grants built in {built_s:.1f} s; {receipts} receipts appended", file=sys.stderr)
    return {"grants": grants, "grants_build_s": round(built_s, 2)}
