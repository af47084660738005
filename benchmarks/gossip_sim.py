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
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.root import build_core
from federation import wire
from federation.outbox import Outbox
from federation.pages import Pages
from federation.pipeline import Pipeline
from node import envelope
from node.identity import Identity
from node.intents import Intents
from node.leads import Leads
from node.peers import Peers
from node.reasons import Reason
from node.store import Store
from node.subscriptions import SubscriptionIndex, Subscriptions

DEFAULT_JSON = Path(__file__).resolve().parent / "results-gossip.json"
EPOCH_MS = 1_767_225_600_000  # the simulation's time 0 (2026-01-01): fixed, so runs are reproducible
MAX_HOPS = wire.ORIGIN_TTL + 1  # the origin's ttl counts the hops after the first one

# What the vendors listen for (one tuple per vendor; vendor k takes entry k modulo the list). Some
# overlap, so one intent can have several matching vendors; some intents match none.
VENDOR_SUBSCRIPTIONS: tuple[tuple[str, ...], ...] = (
    ("?flight",),
    ("?flight max>=400USD",),
    ("?hotel",),
    ("?hotel #family",),
    ("?taxi", "?bike"),
    ("?bike #electric",),
    ("?plumber",),
    ("?sofa max<=800USD",),
    ("?laptop",),
    ("?piano", "?tutor"),
)
WANTS = ("flight", "hotel", "taxi", "bike", "plumber", "sofa", "laptop", "piano", "tutor", "haircut", "kayak")
TAGS = ("family", "electric", "urgent")


@dataclass(frozen=True)
class SimConfig:
    nodes: int = 100
    vendors: int = 10
    intents: int = 200
    min_degree: int = 4
    max_degree: int = 6
    min_latency_ms: int = 5
    max_latency_ms: int = 80
    interval_ms: int = 10  # mean time between two casts (exponential)
    batch_limit: int = 100  # the Deliverer's default
    pull_interval_ms: int = 60_000  # the runtime's default; 0: no pull phase
    seed: int = 1

    def check(self) -> None:
        if self.nodes < 2 or not 1 <= self.vendors < self.nodes:
            raise ValueError("need at least 2 nodes, at least 1 vendor and at least 1 person")
        if self.intents < 1:
            raise ValueError("need at least 1 intent")
        if not 1 <= self.min_degree <= self.max_degree or self.max_degree >= self.nodes:
            raise ValueError("degrees must satisfy 1 <= min <= max < nodes")
        if not 0 < self.min_latency_ms <= self.max_latency_ms:
            raise ValueError("latencies must satisfy 0 < min <= max")
        if self.interval_ms < 0 or self.pull_interval_ms < 0:
            raise ValueError("intervals must be >= 0")
        if not 1 <= self.batch_limit <= wire.MAX_ITEMS:
            raise ValueError(f"the batch limit must be 1..{wire.MAX_ITEMS}")


class SimClock:
    """The one clock every node reads: simulated milliseconds since EPOCH_MS."""

    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        return EPOCH_MS + self.t


@dataclass
class SimNode:
    index: int
    role: str
    identity: Identity
    store: Store
    outbox: Outbox
    pipeline: Pipeline
    pages: Pages
    matcher: SubscriptionIndex | None  # vendors: their compiled subscriptions

    @property
    def key(self) -> str:
        return self.identity.public_key.hex()


@dataclass
class CastIntent:
    id: str
    author: int  # node index
    cast_at: int  # simulated ms
    text: str
    vendors: list[int]  # nodes whose subscriptions match it (each vendor's own matcher)


# -- the graph ---------------------------------------------------------------------------------------


def build_graph(n: int, min_degree: int, max_degree: int, rng: random.Random) -> list[set[int]]:
    """A connected random graph: a random spanning tree, then random edges until every node has its
    drawn target degree (min..max) or no partner under max_degree is left."""
    adj: list[set[int]] = [set() for _ in range(n)]
    order = list(range(n))
    rng.shuffle(order)
    for i in range(1, n):
        open_ = [v for v in order[:i] if len(adj[v]) < max_degree] or order[:i]
        v = rng.choice(open_)
        adj[order[i]].add(v)
        adj[v].add(order[i])
    target = [rng.randint(min_degree, max_degree) for _ in range(n)]
    for u in rng.sample(range(n), n):
        while len(adj[u]) < target[u]:
            partners = [v for v in range(n) if v != u and v not in adj[u] and len(adj[v]) < target[v]]
            if not partners:
                partners = [v for v in range(n) if v != u and v not in adj[u] and len(adj[v]) < max_degree]
            if not partners:
                break
            v = rng.choice(partners)
            adj[u].add(v)
            adj[v].add(u)
    return adj


def distances(adj: Sequence[set[int]], source: int) -> list[int]:
    """Hops from ``source`` to every node (BFS; -1 for unreachable)."""
    dist = [-1] * len(adj)
    dist[source] = 0
    frontier = [source]
    while frontier:
        nxt = []
        for u in frontier:
            for v in adj[u]:
                if dist[v] < 0:
                    dist[v] = dist[u] + 1
                    nxt.append(v)
        frontier = nxt
    return dist


def intent_text(rng: random.Random) -> str:
    want = rng.choice(WANTS)
    words = [f"Need ?{want}", f"max:{rng.randrange(50, 1500, 10)}USD"]
    if rng.random() < 0.4:
        words.append(f"#{rng.choice(TAGS)}")
    return " ".join(words)


# -- the simulation ----------------------------------------------------------------------------------

PULL_LIMIT = 1000  # items per pull page, as app/sync.py asks


@dataclass
class _Stats:
    first: dict[tuple[int, str], tuple[int, int | None, str]] = field(default_factory=dict)  # (t, hops, phase)
    copies: dict[str, Counter[tuple[int, str]]] = field(
        default_factory=lambda: {"push": Counter(), "pull": Counter()}
    )  # items offered per (node, id), by phase
    accepted: Counter[tuple[int, str]] = field(default_factory=Counter)  # reason OK per (node, id)
    refused: Counter[str] = field(default_factory=Counter)  # reasons other than OK/duplicate, by label
    requests: Counter[str] = field(default_factory=Counter)  # pushes (by phase) and pulls
    items: Counter[str] = field(default_factory=Counter)
    rounds: Counter[int] = field(default_factory=Counter)  # pull rounds per node
    ingest_wall_s: float = 0.0


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
        cfg, stats = self.config, self.stats
        leads = self._leads()
        dist = {i.author: distances(self.adj, i.author) for i in self.intents}
        drained = self.push_drained_at
        others = [(n, i.id) for i in self.intents for n in range(cfg.nodes) if n != i.author]
        pairs = [(i, v) for i in self.intents for v in i.vendors]

        # The push phase: what the intents' own pushes achieved.
        push_times, push_all, hops, longer, repair = [], [], [], 0, []
        missed: Counter[str] = Counter()
        for intent in self.intents:
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
            for intent in self.intents:
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
                "ended_at_ms": self.clock.t,
            }
        ecc = [max(distances(self.adj, u)) for u in range(cfg.nodes)]
        degrees = [len(a) for a in self.adj]
        unexpected = sum(1 for i in self.intents for v, held in leads.items() if i.id in held and v not in i.vendors)
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
            "intents": len(self.intents),
            "intents_matching_a_vendor": sum(1 for i in self.intents if i.vendors),
            "vendor_pairs": len(pairs),
            "push": push,
            "pull": pull,
            "unexpected_leads": unexpected,
            "stored_more_than_once": sum(1 for k in others if stats.accepted[k] > 1),
            "refused": dict(stats.refused),
            "wall_s": round(self.wall_s, 2),
            "ingest_wall_s": round(stats.ingest_wall_s, 2),
        }

    def stored(self) -> dict[int, Counter[str]]:
        """Per node, how many ``envelopes`` rows each envelope id has (read back from its store)."""
        sql = "SELECT id, count(*) AS n FROM envelopes GROUP BY id"
        return {node.index: Counter({r["id"]: r["n"] for r in node.store.query(sql)}) for node in self.nodes}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> dict[str, float] | None:
    """n, p50, p99, mean and max of the values (None when there are none)."""
    if not values:
        return None
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "mean": round(statistics.fmean(values), 3),
        "max": max(values),
    }


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


# -- reporting ---------------------------------------------------------------------------------------


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
