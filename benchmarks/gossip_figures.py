"""The figures of ``benchmarks.gossip_model``: what each protocol achieved on the modelled world (times to
the live matching vendors, coverage, copies by phase and by cause), the catch-up after an hour
offline, and the printed report."""

from __future__ import annotations

import hashlib
import os
import platform
import random
import sys
from collections import Counter
from typing import Any

from benchmarks.gossip_graph import summary
from benchmarks.gossip_world import Net, World
from node import reconcile


def _live(world: World, node: int, start: int, end: int) -> bool:
    span = world.churn.get(node)
    return span is None or span[1] <= start or span[0] >= end


def figures(world: World, net: Net, name: str, cpu: float) -> dict[str, Any]:
    cfg = world.cfg
    honest = [n for n in range(cfg.nodes) if n not in world.bad]
    times, pairs, within, slowest = [], 0, 0, []
    for k, (t, author, topic) in enumerate(world.casts):
        live = [v for v, topics in world.vendors.items() if topic in topics and _live(world, v, t, t + 5000)]
        got = [net.holds[v].get(k) for v in live]
        pairs += len(live)
        within += sum(1 for g in got if g is not None and g - t <= 5000)
        if live and all(g is not None for g in got):
            times.append(max(got) - t)  # type: ignore[type-var,operator]
            slowest.append((k, live[got.index(max(got))], max(got) - t))  # type: ignore[type-var,operator]
    others = [(n, k) for k, (_, author, _) in enumerate(world.casts) for n in honest if n != author]
    per = len(others)
    push = sum(net.copies["push"][x] for x in others) / per
    catch = sum(net.copies["catch-up"][x] for x in others) / per
    held = sum(1 for n, k in others if k in net.holds[n]) / per
    # The first intents pay for pruning the start's tree into shape; a federation that has run a
    # while is in the later tenths. Steady: the intents after the first quarter, in the same run.
    intents = len(world.casts)
    tenths = [[x for x in others if x[1] * 10 // intents == i] for i in range(10)]
    warm = [x for x in others if x[1] >= intents // 4]
    return {
        "protocol": name,
        "time_to_every_live_matching_vendor_ms": summary(times),
        "coverage_within_5s": within / pairs if pairs else 1.0,
        "live_vendor_pairs": pairs,
        "copies_per_node_per_intent": {"push": round(push, 3), "catch-up": round(catch, 3), "all": round(push + catch, 3)},
        "copies_by_tenth": [_copies(net, xs) for xs in tenths],
        "copies_after_first_quarter": _copies(net, warm),
        "announcements_per_node_per_intent": round(sum(net.announced[x] for x in others) / per, 3),
        "bytes_per_node_per_intent": round(net.bytes / len(honest) / len(world.casts), 1),
        "requests": net.requests,
        "held_at_end": round(held, 4),
        "reconcile_rounds": summary(net.rounds),
        "cpu_s": round(cpu, 2),
        "breakdown": breakdown(world, net, others, slowest),
    }


def _copies(net: Net, xs: list[tuple[int, int]]) -> float | None:
    if not xs:
        return None
    return round(sum(net.copies["push"][x] + net.copies["catch-up"][x] for x in xs) / len(xs), 3)


def breakdown(world: World, net: Net, others: list[tuple[int, int]], slowest: list[tuple[int, int, int]]) -> dict[str, Any]:
    """Where the copies and the time go: first copies and duplicates (per node per intent) by cause,
    and for each intent the path its first copy took to the last live matching vendor (hops, how many
    of them were GRAFTs or catch-up, and the time spent beyond the links' latency)."""
    per = len(others)
    wanted = set(others)
    first, dups = Counter(), Counter()
    for x in others:
        if x in net.first:
            first[net.first[x][0]] += 1
    for (cause, node, k), n in net.dups.items():
        if (node, k) in wanted:
            dups[cause] += n
    paths = []
    for k, vendor, took in slowest:
        hops, waited, node, causes, steps = 0, 0, vendor, Counter(), []
        while (node, k) in net.first:
            cause, sender = net.first[node, k]
            causes[cause] += 1
            if sender is None or sender == node:
                break
            hops += 1
            lat = world.latency.get((sender, node), 0)
            beyond = net.holds[node][k] - net.holds[sender][k] - lat
            waited += beyond
            steps.append(f"{cause} {lat}+{beyond}")
            node = sender
        paths.append({"ms": took, "hops": hops, "causes": dict(causes), "beyond_latency_ms": waited,
                      "steps": steps[::-1]})
    paths.sort(key=lambda p: p["ms"])
    tail = paths[-max(1, len(paths) // 20):]
    return {
        "first_copy": {c: round(n / per, 4) for c, n in sorted(first.items())},
        "duplicates": {c: round(n / per, 4) for c, n in sorted(dups.items())},
        "hops_to_last_vendor": summary([p["hops"] for p in paths]),
        "slowest_5pct": tail,
    }


def catch_up_after_offline(seed: int, live: int = 20_000, per_hour: int = 3_600, peers: int = 5) -> dict[str, Any]:
    """A node back after 1 h offline, with ``live`` intents held before and ``per_hour`` cast while it
    was away (every peer holds them all): what reconciliation with its peers, one after another,
    transfers (for the whole set and for one vendor's token filter, a tenth of it), against pulls by
    cursor from every peer."""
    rng = random.Random(seed)
    hour = 3_600_000
    old = [(rng.randrange(30 * 24 * hour), hashlib.sha256(b"old-%d" % i).digest()) for i in range(live)]
    new = [(30 * 24 * hour + rng.randrange(hour), hashlib.sha256(b"new-%d" % i).digest()) for i in range(per_hour)]
    out: dict[str, Any] = {"live_before": live, "cast_while_away": per_hour, "peers": peers}
    for label, keep in (("all", lambda i: True), ("one filter", lambda i: i[1][0] < 26)):
        mine = [i for i in old if keep(i)]
        theirs = mine + [i for i in new if keep(i)]
        transferred, rounds, sent = 0, [], 0
        have = list(mine)
        for _ in range(peers):
            outcome, r, b = reconcile.reconcile_sets(have, theirs)
            transferred += len(outcome.need)
            rounds.append(r)
            sent += b
            have = have + [i for i in theirs if i[1] in outcome.need]
        out[label] = {
            "set": len(theirs),
            "missing": len(theirs) - len(mine),
            "transferred": transferred,
            "rounds_first_peer": rounds[0],
            "rounds_each_other_peer": max(rounds[1:], default=0),
            "fingerprint_bytes": sent,
            "pull_items_by_cursor": peers * (len(theirs) - len(mine)),
        }
    return out


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpus": os.cpu_count(), "load": [round(x, 2) for x in load], "python": sys.version.split()[0],
            "platform": platform.platform()}


def print_report(r: dict[str, Any]) -> None:
    c, w = r["config"], r["world"]
    print(
        f"{c['nodes']} nodes ({w['vendors']} vendors, {w['nat']} behind NAT, {w['churning']} churning, misbehaving "
        f"{w['misbehaving']}), {w['links']} links ({w['lossy_links']} lossy), {c['intents']} intents"
    )
    for name in ("flooding", "plumtree"):
        p = r[name]
        t = p["time_to_every_live_matching_vendor_ms"] or {}
        cp = p["copies_per_node_per_intent"]
        print(
            f"  {name:9} to every live matching vendor p50 {t.get('p50', '-')} ms p99 {t.get('p99', '-')} ms; "
            f"coverage in 5 s {p['coverage_within_5s']:.2%} of {p['live_vendor_pairs']}; copies/node/intent push "
            f"{cp['push']} catch-up {cp['catch-up']} all {cp['all']}; announcements {p['announcements_per_node_per_intent']}; "
            f"{p['bytes_per_node_per_intent']:,} B/node/intent; held at end {p['held_at_end']:.2%}; cpu {p['cpu_s']} s"
        )
        print(
            f"  {'':9} copies/node/intent after the first quarter's intents (steady) {p['copies_after_first_quarter']}; "
            f"by tenth of the intents {p['copies_by_tenth']}"
        )
    b = r["plumtree"]["breakdown"]
    h = b["hops_to_last_vendor"] or {}
    print(
        f"  plumtree breakdown per node per intent: first copies {b['first_copy']}; duplicates {b['duplicates']}; "
        f"hops to each intent's last vendor p50 {h.get('p50', '-')} p99 {h.get('p99', '-')} (flooding "
        f"{(r['flooding']['breakdown']['hops_to_last_vendor'] or {}).get('p50', '-')})"
    )
    for label in ("all", "one filter"):
        k = r["catch_up_1h"][label]
        print(
            f"  catch-up after 1 h offline ({label}, {k['set']:,} live): {k['transferred']:,} transferred for "
            f"{k['missing']:,} missing in {k['rounds_first_peer']} rounds (+{k['rounds_each_other_peer']} per further "
            f"peer, {k['fingerprint_bytes']:,} B); pulls by cursor from {r['catch_up_1h']['peers']} peers: "
            f"{k['pull_items_by_cursor']:,} items"
        )
    m = r["machine"]
    print(f"  {r['wall_s']} s wall; {m['cpus']} cpus, load {m['load']}")

