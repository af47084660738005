"""The figures of a finished ``benchmarks.gossip_sim`` run, and the printed table."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from benchmarks.gossip_graph import distances, summary
from benchmarks.gossip_sim_config import MAX_HOPS
from federation import wire

if TYPE_CHECKING:
    from benchmarks.gossip_sim import GossipSim


def results(sim: GossipSim) -> dict[str, Any]:
    """The figures of a finished run (JSON-able)."""
    cfg, stats = sim.config, sim.stats
    leads = sim._leads()
    dist = {i.author: distances(sim.adj, i.author) for i in sim.intents}
    drained = sim.push_drained_at
    others = [(n, i.id) for i in sim.intents for n in range(cfg.nodes) if n != i.author]
    pairs = [(i, v) for i in sim.intents for v in i.vendors]

    # The push phase: what the intents' own pushes achieved.
    push_times, push_all, hops, longer, repair = [], [], [], 0, []
    missed: Counter[str] = Counter()
    for intent in sim.intents:
        times = []
        for vendor in intent.vendors:
            at = leads[vendor].get(intent.id)
            if at is not None and at <= drained:
                times.append(at - intent.cast_at)
                hop = stats.first[vendor, intent.id][1]
                hops.append(hop)
                longer += hop > dist[intent.author][vendor]
            else:
                beyond = dist[intent.author][vendor] > MAX_HOPS
                missed["beyond ttl reach" if beyond else "ttl spent on a longer, faster path"] += 1
                if at is not None:
                    repair.append(at - intent.cast_at)
        if intent.vendors and len(times) == len(intent.vendors):
            push_times.append(max(times))
        firsts = [stats.first.get((n, intent.id)) for n in range(cfg.nodes) if n != intent.author]
        if all(f is not None and f[2] == "push" for f in firsts):
            push_all.append(max(f[0] for f in firsts) - intent.cast_at)  # type: ignore[index]
    push_copies = [stats.copies["push"][k] for k in others]
    push_reached = [k for k in others if stats.first.get(k, (0, 0, ""))[2] == "push"]
    push = {
        "covered": len(pairs) - sum(missed.values()),
        "coverage": 1 - sum(missed.values()) / len(pairs) if pairs else 1.0,
        "missed": dict(missed),
        "node_reach": len(push_reached) / len(others),
        "time_to_all_matching_vendors_ms": summary(push_times),
        "time_to_every_node_ms": summary(push_all),
        "hops_to_matching_vendor": summary(hops),
        "first_copy_longer_than_shortest_path": longer,
        "copies_per_node_per_intent": summary(push_copies),
        "duplicates_per_node_per_intent": summary([c - (c > 0) for c in push_copies]),
        "requests": stats.requests["push phase pushes"],
        "items": stats.items["push phase pushes"],
        "drained_at_ms": drained,
    }

    # With the pull phase: everything each node ended up holding.
    pull = None
    if cfg.pull_interval_ms:
        all_times = []
        for intent in sim.intents:
            times = [leads[v].get(intent.id) for v in intent.vendors]
            if intent.vendors and all(t is not None for t in times):
                all_times.append(max(times) - intent.cast_at)  # type: ignore[type-var,operator]
        covered = sum(1 for i, v in pairs if i.id in leads[v])
        total = [stats.copies["push"][k] + stats.copies["pull"][k] for k in others]
        pull = {
            "interval_ms": cfg.pull_interval_ms,
            "covered": covered,
            "coverage": covered / len(pairs) if pairs else 1.0,
            "node_reach": sum(1 for k in others if k in stats.first) / len(others),
            "time_to_all_matching_vendors_ms": summary(all_times),
            "repair_ms": summary(repair),
            "copies_per_node_per_intent": summary(total),
            "duplicates_per_node_per_intent": summary([c - (c > 0) for c in total]),
            "rounds_per_node_max": max(stats.rounds.values(), default=0),
            "pull_requests": stats.requests["pulls"],
            "pull_items": stats.items["pulls"],
            "pushes_in_pull_phase": stats.requests["pull phase pushes"],
            "ended_at_ms": sim.clock.t,
        }
    ecc = [max(distances(sim.adj, u)) for u in range(cfg.nodes)]
    degrees = [len(a) for a in sim.adj]
    unexpected = sum(1 for i in sim.intents for v, held in leads.items() if i.id in held and v not in i.vendors)
    return {
        "config": asdict(cfg),
        "graph": {
            "nodes": cfg.nodes,
            "vendors": len(leads),
            "edges": sum(degrees) // 2,
            "degree_min": min(degrees),
            "degree_mean": round(statistics.fmean(degrees), 2),
            "degree_max": max(degrees),
            "diameter": max(ecc),
            "radius": min(ecc),
            "max_hops": MAX_HOPS,
        },
        "intents": len(sim.intents),
        "intents_matching_a_vendor": sum(1 for i in sim.intents if i.vendors),
        "vendor_pairs": len(pairs),
        "push": push,
        "pull": pull,
        "unexpected_leads": unexpected,
        "stored_more_than_once": sum(1 for k in others if stats.accepted[k] > 1),
        "refused": dict(stats.refused),
        "wall_s": round(sim.wall_s, 2),
        "ingest_wall_s": round(stats.ingest_wall_s, 2),
    }


def print_table(r: dict[str, Any]) -> None:
    g, push, pull = r["graph"], r["push"], r["pull"]
    print(
        f"{g['nodes']} nodes ({g['vendors']} vendors), {g['edges']} links, degree {g['degree_min']}-"
        f"{g['degree_max']} (mean {g['degree_mean']}), diameter {g['diameter']}; origin ttl "
        f"{wire.ORIGIN_TTL}, so at most {g['max_hops']} hops; {r['intents']} intents, "
        f"{r['intents_matching_a_vendor']} matching a vendor ({r['vendor_pairs']} intent-vendor pairs)"
    )
    rows = [
        ("push", "time to every matching vendor (ms)", push["time_to_all_matching_vendors_ms"]),
        ("push", "time to every node (ms)", push["time_to_every_node_ms"]),
        ("push", "hops to a matching vendor", push["hops_to_matching_vendor"]),
        ("push", "copies received per node per intent", push["copies_per_node_per_intent"]),
        ("push", "duplicates per node per intent", push["duplicates_per_node_per_intent"]),
    ]
    if pull is not None:
        rows += [
            ("+pull", "time to every matching vendor (ms)", pull["time_to_all_matching_vendors_ms"]),
            ("+pull", "lead time of pairs push missed (ms)", pull["repair_ms"]),
            ("+pull", "copies received per node per intent", pull["copies_per_node_per_intent"]),
            ("+pull", "duplicates per node per intent", pull["duplicates_per_node_per_intent"]),
        ]
    headers = ("phase", "measure (simulated)", "n", "p50", "p99", "mean", "max")
    cells = [
        (phase, label, *(["-"] * 5 if s is None else [f"{s[k]:,}" for k in ("n", "p50", "p99", "mean", "max")]))
        for phase, label, s in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))
    missed = ", ".join(f"{n} {why}" for why, n in push["missed"].items()) or "none missed"
    print(
        f"push coverage: {push['covered']}/{r['vendor_pairs']} pairs ({push['coverage']:.2%}; {missed}); "
        f"nodes reached {push['node_reach']:.2%}; first copy came by a longer path than the shortest "
        f"{push['first_copy_longer_than_shortest_path']} times; {push['requests']:,} pushes carrying "
        f"{push['items']:,} items; drained at {push['drained_at_ms']:,} ms"
    )
    if pull is not None:
        print(
            f"with pulls every {pull['interval_ms']:,} ms: {pull['covered']}/{r['vendor_pairs']} pairs "
            f"({pull['coverage']:.2%}); nodes reached {pull['node_reach']:.2%}; {pull['pull_requests']:,} pull "
            f"requests carrying {pull['pull_items']:,} items; at most {pull['rounds_per_node_max']} rounds "
            f"per node; ended at {pull['ended_at_ms']:,} ms"
        )
    refused = ", ".join(f"{k} {v}" for k, v in r["refused"].items()) or "none"
    print(
        f"stored more than once: {r['stored_more_than_once']}; unexpected leads: {r['unexpected_leads']}; "
        f"other refusals: {refused}; {r['wall_s']} s wall ({r['ingest_wall_s']} s in Pipeline.ingest)"
    )


