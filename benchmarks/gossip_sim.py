"""Gossip over a network of real nodes, with simulated links and a simulated clock.

``python -m benchmarks.gossip_sim [--quick] [--nodes 100] [--intents N] [--seed S] [--json PATH]``

Every node has its own store (SQLite, WAL) and its own ``federation.pipeline.Pipeline``; a tenth are
vendors with different subscriptions, the rest persons. The peer graph is seeded and random (each node
peers with 4 to 6 others, connected); each link has a seeded one-way latency (5 to 80 ms). Processing
takes no simulated time, so the figures are the protocol's (hops, latencies, fan-out), not this
machine's, and a run is reproducible bit for bit (fixed epoch, seeded keys, graph and casts).

Push phase: persons cast intents at random instants (``Intents.cast`` + ``Pipeline.publish``) and the
simulator does what ``federation.delivery.Deliverer`` does, without HTTP: per directed link one
request in flight carrying the head of the sender's outbox for that peer (``Outbox.due``, up to 100
items) as a wire batch, which the receiver decodes and hands to ``Pipeline.ingest(items,
from_peer=sender)``; the answer's arrival acknowledges it (``mark_delivered``) and sends the next batch.

Pull phase (unless ``--pull-interval 0``): once the pushes have drained, every node runs what
``app.sync.sync`` does, at its own phase of the pull interval (the runtime's 60 s): a ``page``
of each peer's gossip after the cursor it keeps for that peer, ingested, until the cursor stops
moving; rounds go on until nothing new was taken anywhere for two intervals.

Measured per intent: the simulated time until every vendor whose subscriptions match it (by the
vendors' own matchers) holds a lead (read from the vendor's ``leads`` table), the hops the first copy
took, and the copies each node was offered (those beyond the first are duplicates: refused with reason
``duplicate``, never stored). An origin sends ttl 4, so a push travels at most 5 hops, and the first
copy to arrive is the one a node keeps and passes on: a node can be missed by the push when it is
further than 5 hops, or when a copy that came the long way round (more hops, less latency) arrived
first with no hops left, so the copy with hops to spare was refused as a duplicate. Both are counted;
the pull phase is what repairs them.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from app.root import build_core
from benchmarks.gossip_graph import build_graph, distances, percentile, summary
from benchmarks.gossip_sim_config import (
    EPOCH_MS,
    MAX_HOPS,
    PULL_LIMIT,
    VENDOR_SUBSCRIPTIONS,
    CastIntent,
    SimClock,
    SimConfig,
    SimNode,
    _Stats,
    intent_text,
)
from benchmarks.gossip_sim_report import print_table, results
from federation import wire
from federation.outbox import Outbox
from node import envelope
from node.identity import Identity
from node.intents import Intents
from node.leads import Leads
from node.peers import Peers
from node.reasons import Reason
from node.store import Store
from node.subscriptions import Subscriptions

__all__ = ["MAX_HOPS", "GossipSim", "SimConfig", "build_graph", "distances", "percentile", "simulate", "summary"]

DEFAULT_JSON = Path(__file__).resolve().parent / "results-gossip.json"


class GossipSim:
    """The nodes, their links and the event queue. ``run`` casts the intents and pushes until every
    outbox is empty (the push phase), then, with ``pull_interval_ms``, lets every node pull from its
    peers each interval until a fixpoint (the pull phase); ``results`` gathers the figures. Close it,
    or use it as a context manager."""

    def __init__(self, config: SimConfig, directory: Path) -> None:
        config.check()
        self.config = config
        self.clock = SimClock()
        rng = random.Random(config.seed)
        self.adj = build_graph(config.nodes, config.min_degree, config.max_degree, rng)
        self.latency: dict[tuple[int, int], int] = {}
        for u in range(config.nodes):
            for v in sorted(self.adj[u]):
                if u < v:
                    lat = rng.randint(config.min_latency_ms, config.max_latency_ms)
                    self.latency[u, v] = self.latency[v, u] = lat
        vendor_nodes = sorted(rng.sample(range(config.nodes), config.vendors))
        self._rng = rng
        self.nodes: list[SimNode] = []
        self._by_key: dict[str, int] = {}
        self._stack = ExitStack()
        try:
            for i in range(config.nodes):
                subs = None
                if i in vendor_nodes:
                    subs = VENDOR_SUBSCRIPTIONS[vendor_nodes.index(i) % len(VENDOR_SUBSCRIPTIONS)]
                self.nodes.append(self._open_node(i, directory, subs))
            self._link_peers()
        except BaseException:
            self.close()
            raise
        self.intents: list[CastIntent] = []
        self._raw_ids: dict[bytes, str] = {}
        self._events: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._busy: set[tuple[int, int]] = set()
        self._phase = "push"
        self._last_new = 0  # when some node last accepted a new envelope
        self.push_drained_at = 0
        self.stats = _Stats()
        self.wall_s = 0.0

    def _open_node(self, i: int, directory: Path, subscriptions: tuple[str, ...] | None) -> SimNode:
        identity = Identity.from_seed(self.config.seed.to_bytes(8, "big") + i.to_bytes(24, "big"))
        store = self._stack.enter_context(Store(directory / f"node{i:03d}.db", clock=self.clock))
        matcher = None
        if subscriptions is not None:
            book = Subscriptions(store, clock=self.clock)
            for text in subscriptions:
                book.add(text)
            matcher = book.index()
        outbox = Outbox(store, rand=random.Random(i).random)
        role = "vendor" if subscriptions is not None else "person"
        core = build_core(store, identity.public_key, role, None, (lambda: matcher), self.clock, outbox=outbox)
        node = SimNode(i, role, identity, store, outbox, core.pipeline, core.pages, matcher)
        self._by_key[node.key] = i
        return node

    def _link_peers(self) -> None:
        for node in self.nodes:
            peers = Peers(node.store, clock=self.clock)
            for j in sorted(self.adj[node.index]):
                other = self.nodes[j]
                url = f"http://n{j}.sim.invalid"  # never dialled: the simulator carries the bytes
                peers.add(public_key=other.identity.public_key, url=url, role=other.role, name=f"n{j}")

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> GossipSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events ------------------------------------------------------------------------------------

    def _at(self, t: int, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._events, (t, self._seq, fn, args))

    def _drain(self) -> None:
        while self._events:
            at, _, fn, args = heapq.heappop(self._events)
            self.clock.t = at
            fn(*args)

    def run(self) -> None:
        """Cast the intents at random instants and push until nothing is queued; then the pull phase."""
        started = time.perf_counter()
        persons = [n.index for n in self.nodes if n.role == "person"]
        t = 0.0
        for _ in range(self.config.intents):
            if self.config.interval_ms:
                t += self._rng.expovariate(1 / self.config.interval_ms)
            self._at(round(t), self._cast, self._rng.choice(persons), intent_text(self._rng))
        self._drain()
        self.push_drained_at = self.clock.t
        if self.config.pull_interval_ms:
            # Each node pulls at its own phase of the interval, as nodes started at different times do.
            self._phase = "pull"
            for node in self.nodes:
                self._at(self.clock.t + self._rng.randrange(self.config.pull_interval_ms), self._pull_round, node.index)
            self._drain()
        self.wall_s = time.perf_counter() - started

    def _cast(self, author: int, text: str) -> None:
        node = self.nodes[author]
        with node.store.transaction():  # the intent and its sending commit together, as ops.py does
            record = Intents(node.store, clock=self.clock).cast(node.identity, text)
            woken = node.pipeline.publish(envelope.decode(record.raw))
        vendors = [
            n.index for n in self.nodes if n.matcher is not None and n.matcher.match_envelopes([record.raw])[0]
        ]
        self.intents.append(CastIntent(record.id, author, self.clock.t, text, vendors))
        self._raw_ids[record.raw] = record.id
        self._last_new = self.clock.t
        self._wake(author, woken)

    def _ingest(self, dst: int, src: int, items: list[wire.GossipItem], pushed: bool) -> None:
        node = self.nodes[dst]
        started = time.perf_counter()
        result = node.pipeline.ingest(items, self.nodes[src].key)
        self.stats.ingest_wall_s += time.perf_counter() - started
        copies = self.stats.copies[self._phase]
        for item, code in zip(items, result.reasons, strict=True):
            key = (dst, self._raw_ids[item.envelope])
            copies[key] += 1
            if code == Reason.OK:
                self.stats.accepted[key] += 1
                # A pushed item's ttl tells the hops it took; a pulled one carries the holder's ttl.
                hops = wire.ORIGIN_TTL - item.ttl + 1 if pushed else None
                self.stats.first[key] = (self.clock.t, hops, self._phase)
                self._last_new = self.clock.t
            elif code != Reason.DUPLICATE:
                self.stats.refused[Reason(code).label] += 1
        self._wake(dst, result.peers)

    # -- pushes: what federation.delivery.Deliverer does, one request in flight per link ------------

    def _wake(self, sender: int, peers: frozenset[str] | set[str]) -> None:
        """``Deliverer.notify``: start the link unless a request is in flight (its answer goes on)."""
        for key in sorted(peers):
            self._push(sender, self._by_key[key])

    def _push(self, src: int, dst: int) -> None:
        if (src, dst) in self._busy:
            return
        batch = self.nodes[src].outbox.due(self.nodes[dst].key, self.clock(), limit=self.config.batch_limit)
        if not batch:
            return
        self._busy.add((src, dst))
        self.stats.requests[f"{self._phase} phase pushes"] += 1
        self.stats.items[f"{self._phase} phase pushes"] += len(batch)
        body = wire.encode_batch([d.payload for d in batch])
        self._at(self.clock.t + self.latency[src, dst], self._pushed, src, dst, body, [d.id for d in batch])

    def _pushed(self, src: int, dst: int, body: bytes, ids: list[int]) -> None:
        self._ingest(dst, src, wire.decode_batch(body), pushed=True)
        self._at(self.clock.t + self.latency[src, dst], self._acknowledged, src, dst, ids)

    def _acknowledged(self, src: int, dst: int, ids: list[int]) -> None:
        self.nodes[src].outbox.mark_delivered(ids)
        self._busy.discard((src, dst))
        self._push(src, dst)

    # -- pulls: what app/sync.py ``sync`` does every pull interval ------------------------------

    def _pull_round(self, i: int) -> None:
        self.stats.rounds[i] += 1
        node = self.nodes[i]
        for peer in Peers(node.store, clock=self.clock).pushable():
            self._pull(i, self._by_key[peer.public_key], peer.pull_cursor)
        # Go on while anything is still spreading: once no node took anything new for two intervals,
        # every node has pulled every peer since the last change, so all hold the same envelopes.
        if self.clock.t - self._last_new <= 2 * self.config.pull_interval_ms:
            self._at(self.clock.t + self.config.pull_interval_ms, self._pull_round, i)

    def _pull(self, i: int, j: int, cursor: int) -> None:
        self.stats.requests["pulls"] += 1
        self._at(self.clock.t + self.latency[i, j], self._serve_pull, i, j, cursor)

    def _serve_pull(self, i: int, j: int, cursor: int) -> None:
        page = self.nodes[j].pages.page(cursor, PULL_LIMIT)
        body = wire.encode_pull([(item.ttl, item.envelope) for item in page.items], page.next)
        self._at(self.clock.t + self.latency[i, j], self._pulled, i, j, cursor, body)

    def _pulled(self, i: int, j: int, cursor: int, body: bytes) -> None:
        page = wire.decode_pull(body)
        if page.items:
            self.stats.items["pulls"] += len(page.items)
            self._ingest(i, j, page.items, pushed=False)
        if page.next > cursor:  # only a cursor that stops moving ends the feed
            Peers(self.nodes[i].store, clock=self.clock).set_cursor(self.nodes[j].key, pull=page.next)
            self._pull(i, j, page.next)

    # -- results -----------------------------------------------------------------------------------

    def _leads(self) -> dict[int, dict[str, int]]:
        """Per vendor: intent id -> when its lead was made (simulated ms), read from its store."""
        return {
            node.index: {
                lead.intent_id: lead.received_at - EPOCH_MS
                for lead in Leads(node.store, clock=self.clock).list(status="all")
            }
            for node in self.nodes
            if node.role == "vendor"
        }

    def results(self) -> dict[str, Any]:
        """The figures of a finished run (JSON-able)."""
        return results(self)

    def stored(self) -> dict[int, Counter[str]]:
        """Per node, how many ``envelopes`` rows each envelope id has (read back from its store)."""
        sql = "SELECT id, count(*) AS n FROM envelopes GROUP BY id"
        return {node.index: Counter({bytes(r["id"]).hex(): r["n"] for r in node.store.query(sql)}) for node in self.nodes}


def simulate(config: SimConfig, directory: Path | None = None) -> dict[str, Any]:
    """Run one simulation with its stores in ``directory`` (an empty one; by default a temporary
    directory, in /dev/shm when there is one: durability is not what is measured) and return its
    results."""
    with ExitStack() as stack:
        if directory is None:
            shm = Path("/dev/shm")
            base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vrm-gossip-", dir=base)))
        elif any(directory.glob("node*.db")):
            raise ValueError(f"{directory} already holds node stores; give an empty directory")
        sim = stack.enter_context(GossipSim(config, directory))
        sim.run()
        return sim.results()


def _range(text: str, what: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    if not sep or not low.isdigit() or not high.isdigit():
        raise ValueError(f"{what} must be MIN-MAX, such as 4-6, not {text!r}")
    return int(low), int(high)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gossip_sim", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 intents instead of 200 (CI)")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--vendors", type=int, default=10)
    parser.add_argument("--intents", type=int, help="how many intents to cast (default 200, quick 50)")
    parser.add_argument("--degree", default="4-6", help="peers per node, MIN-MAX (default 4-6)")
    parser.add_argument("--latency", default="5-80", help="one-way link latency in ms, MIN-MAX (default 5-80)")
    parser.add_argument("--interval", type=int, default=10, help="mean ms between two casts (default 10)")
    parser.add_argument(
        "--pull-interval", type=int, default=60_000, help="ms between a node's pulls, 0 for none (default 60000)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="an empty directory for the node stores (default: temporary)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write results ({DEFAULT_JSON})")
    args = parser.parse_args(argv)
    try:
        min_degree, max_degree = _range(args.degree, "--degree")
        min_latency, max_latency = _range(args.latency, "--latency")
        config = SimConfig(
            nodes=args.nodes,
            vendors=args.vendors,
            intents=args.intents or (50 if args.quick else 200),
            min_degree=min_degree,
            max_degree=max_degree,
            min_latency_ms=min_latency,
            max_latency_ms=max_latency,
            interval_ms=args.interval,
            pull_interval_ms=args.pull_interval,
            seed=args.seed,
        )
        config.check()
        if args.dir is not None:
            args.dir.mkdir(parents=True, exist_ok=True)
        print(f"simulating {config.nodes} nodes, {config.intents} intents ...", file=sys.stderr)
        results = simulate(config, args.dir)
    except ValueError as exc:
        parser.error(str(exc))
    print_table(results)
    meta = {"python": sys.version.split()[0], "platform": platform.platform(), "quick": args.quick}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, **results}, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.json}", file=sys.stderr)
    final = results["pull"] or results["push"]
    return 0 if final["covered"] == results["vendor_pairs"] and not results["stored_more_than_once"] else 1


if __name__ == "__main__":
    sys.exit(main())

