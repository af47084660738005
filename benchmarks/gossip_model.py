"""Plumtree with reconciliation catch-up against today's TTL flooding, on one simulated world.

``python -m benchmarks.gossip_model [--quick] [--nodes 1000] [--intents N] [--seed S] [--gate] [--json PATH]``

Running 1,000 real pipelines is unaffordable here, so this is a faithful model: the protocol logic is
the real code (``federation.plumtree.Plumtree`` per node, ``node.reconcile`` for catch-up); the
network is a priority queue of timed events. Both protocols run on the SAME world in one invocation:
the same graph (``gossip_graph.build_graph``), link latencies, slow and lossy links, nodes behind NAT,
casts, churn schedule and misbehaving peers.

The world: a tenth of the nodes are vendors listening for one or two of ten topics; each intent has
one of eleven topics (one matches no vendor). Links take 5–80 ms one way; 5 % are slow (×5); 5 % lose
10 % of their requests (a lost request is retried after 300 ms, doubling: HTTP at-least-once). A node
takes 1 ms to handle a request. 20 % of persons are behind NAT: never pushed to, they push their own
intents out and catch up (flooding: pulls by cursor every 60 s; Plumtree: reconciliation every 60 s).
Churn: 10 % of the nodes leave at a random instant of the cast window and return 1–10 s later; a
request to a node that left fails after a round trip (flooding's outbox retries it with backoff,
1 s doubling to 60 s; Plumtree takes the peer down and its children graft elsewhere). On return a node
greets its peers and catches up (flooding: pulls from every peer; Plumtree: reconciles with one).
Misbehaving peers (1 % of the nodes): droppers forward nothing; duplicators send every payload twice to
every peer and ignore PRUNE; flooders announce 50 bogus ids to every peer each 100 ms (Plumtree) or
push 50 junk envelopes (flooding). A Plumtree node drops a peer reported ``Broken`` 10 times (the
scoring the defences work persists).

Measured over honest nodes: time from cast to every live matching vendor (a vendor online, honest and
public throughout the 5 s after the cast), coverage of those pairs within 5 s, payload copies
received per node per intent by phase (push: eager pushes and GRAFT answers; catch-up: pulls or
reconciliation fetches) and announcements (ids in IHAVEs) received, and bytes on the wire per node per
intent (each request counted as ``REQUEST_OVERHEAD`` bytes of signed headers plus its body). Then a
node back after one hour offline catches up from its five peers: items transferred against items
missing, and rounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.gossip_drivers import Flooding, PlumtreeDriver
from benchmarks.gossip_figures import catch_up_after_offline, figures, machine, print_report
from benchmarks.gossip_world import ModelConfig, Net, World, intent_id, make_world

__all__ = ["Flooding", "ModelConfig", "Net", "PlumtreeDriver", "World", "gate", "intent_id", "make_world",
           "model_config", "print_report", "run", "simulate"]

DEFAULT_JSON = Path(__file__).resolve().parent / "results-gossip-model.json"
# The gate's ceiling on Plumtree's payload copies per node per intent. The target is 1.3 (1,000
# nodes: 1.25-1.27 on seeds 1-4); the quick run's 100 nodes give 1.31-1.37 (the fan-out near the
# author weighs more in a small network), so this only stops it getting much worse.
MAX_COPIES = 1.5


def model_config(quick: bool, seed: int = 1) -> ModelConfig:
    """The benchmark's world: 1,000 nodes, or for ``--quick`` (and ``make bench-gate``) 100. Both cast 200
    intents: with 100 the small network's figure is mostly the start's pruning, and moved by ±0.05
    from seed to seed."""
    return ModelConfig(nodes=100 if quick else 1000, intents=200, seed=seed)


def simulate(world: World, protocol: type) -> dict[str, Any]:
    cfg = world.cfg
    net = Net(world, cfg.seed + 1)
    proto = protocol(net)
    authors = {k: author for k, (_, author, _) in enumerate(world.casts)}
    proto.author = authors  # flooding needs it for pulls
    proto.start()
    for k, (t, author, _) in enumerate(world.casts):
        net.at(t, proto.cast, author, k)
    for node, (leave, back) in world.churn.items():
        net.at(leave, net.online.__setitem__, node, False)
        net.at(back, _rejoin, net, proto, node)
    started = time.process_time()
    net.run(world.casts[-1][0] + cfg.horizon_ms)
    cpu = time.process_time() - started
    return figures(world, net, proto.name, cpu)


def _rejoin(net: Net, proto: Any, node: int) -> None:
    net.online[node] = True
    proto.rejoin(node)


def run(cfg: ModelConfig) -> dict[str, Any]:
    world = make_world(cfg)
    started = time.perf_counter()
    results = {p.name: simulate(world, p) for p in (Flooding, PlumtreeDriver)}
    return {
        "config": asdict(cfg),
        "world": {
            "vendors": len(world.vendors), "nat": len(world.nat), "churning": len(world.churn),
            "misbehaving": dict(Counter(world.bad.values())), "links": len(world.latency) // 2,
            "lossy_links": len(world.lossy) // 2,
        },
        **results,
        "catch_up_1h": catch_up_after_offline(cfg.seed, live=2_000 if cfg.nodes < 500 else 20_000),
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": machine(),
    }


def gate(r: dict[str, Any], max_ratio: float = 0.5, max_copies: float | None = None) -> list[str]:
    """What fails: Plumtree's payload copies over flooding's in the same run, Plumtree's copies above
    ``max_copies`` (a count, not a time: a loaded machine cannot move it; by default ``MAX_COPIES``
    for runs of 100 intents or more, as the tree's first payloads are what prune it into shape), and
    full coverage."""
    if max_copies is None and r["config"]["intents"] >= 100:
        max_copies = MAX_COPIES
    failures = []
    ratio = r["plumtree"]["copies_per_node_per_intent"]["all"] / r["flooding"]["copies_per_node_per_intent"]["all"]
    r["copy_ratio"] = round(ratio, 3)
    if ratio > max_ratio:
        failures.append(f"plumtree copies {ratio:.2f}x flooding's (need <= {max_ratio}x)")
    copies = r["plumtree"]["copies_per_node_per_intent"]["all"]
    if max_copies is not None and copies > max_copies:
        failures.append(f"plumtree {copies} copies per node per intent (need <= {max_copies})")
    if r["plumtree"]["coverage_within_5s"] < 1.0:
        failures.append(f"plumtree coverage within 5 s {r['plumtree']['coverage_within_5s']:.2%} (need 100 %)")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gossip_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 nodes rather than 1,000 (CI)")
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--intents", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gate", action="store_true",
                        help=f"exit 1 unless plumtree copies <= 0.5x flooding's and <= {MAX_COPIES}")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    base = model_config(args.quick, args.seed)
    cfg = ModelConfig(
        nodes=args.nodes or base.nodes,
        intents=args.intents or base.intents,
        seed=args.seed,
    )
    print(f"modelling {cfg.nodes} nodes, {cfg.intents} intents, both protocols ...", file=sys.stderr)
    r = run(cfg)
    failures = gate(r)
    print_report(r)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    for f in failures:
        print(f"GATE FAILED: {f}", file=sys.stderr)
    return 1 if args.gate and failures else 0


if __name__ == "__main__":
    sys.exit(main())
