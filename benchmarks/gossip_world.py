"""The modelled world of ``benchmarks.gossip_model``: its configuration, the graph, links, casts, churn
and misbehaving peers (``make_world``), and the event queue with the links and counters both protocols
share (``Net``)."""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.gossip_graph import build_graph
from federation import plumtree as pt

ENVELOPE_BYTES = 300  # a cast intent ("Need ?flight max:400USD #family") is 295 bytes
REQUEST_OVERHEAD = 450  # signed request headers and a small answer, per request
ID_ENTRY = 36  # an (id, hops) pair in an IHAVE
ORIGIN_TTL, MAX_TTL = 4, 8
TOPICS = 11


@dataclass(frozen=True)
class ModelConfig:
    nodes: int = 1000
    intents: int = 200
    interval_ms: int = 25
    min_degree: int = 4
    max_degree: int = 6
    slow_share: float = 0.05
    lossy_share: float = 0.05
    loss: float = 0.10
    nat_share: float = 0.20  # of persons
    churn_share: float = 0.10
    bad_share: float = 0.01
    sync_interval_ms: int = 60_000
    horizon_ms: int = 70_000  # after the last cast
    seed: int = 1
    # Fan-out near the author (off in nodes until their duplicates carry hops) and the shorter streak
    # for links that never brought a payload first (off in nodes until their relay counts only pushed
    # duplicates): PROTOCOL.md 13.
    timers: pt.Timers = pt.Timers(fanout_hops=2, prune_unproven_after=2)
    initial_eager: int = 2  # peers each node starts eager with (the rest lazy)
    # Or those with the shortest round trip (a node times each peer when it greets it): p99 0.88 s
    # rather than 0.94 s at 1,000 nodes, but 1.51 copies rather than 1.47 at 100, so off.
    eager_by_latency: bool = False


@dataclass
class World:
    cfg: ModelConfig
    adj: list[set[int]]
    latency: dict[tuple[int, int], int]
    lossy: set[tuple[int, int]]
    vendors: dict[int, set[int]]  # vendor -> topics
    nat: set[int]
    bad: dict[int, str]  # node -> "drop" | "dup" | "flood"
    casts: list[tuple[int, int, int]]  # (t, author, topic)
    churn: dict[int, tuple[int, int]]  # node -> (leave at, back at)
    phase: dict[int, int]  # node -> its sync phase


def make_world(cfg: ModelConfig) -> World:
    rng = random.Random(cfg.seed)
    order = rng.sample(range(cfg.nodes), cfg.nodes)
    n_vendors = max(1, cfg.nodes // 10)
    vendors = {v: {k % 10, *([rng.randrange(10)] if rng.random() < 0.5 else [])} for k, v in enumerate(order[:n_vendors])}
    persons = order[n_vendors:]
    n_bad = max(3, round(cfg.nodes * cfg.bad_share)) if cfg.bad_share else 0
    bad = {p: ("drop", "dup", "flood")[k % 3] for k, p in enumerate(persons[:n_bad])}
    honest_persons = persons[n_bad:]
    nat = set(honest_persons[: round(len(honest_persons) * cfg.nat_share)])
    public_persons = [p for p in honest_persons if p not in nat]
    # Public nodes form the random graph; a node behind NAT dials two or three of them (it can reach
    # out, nobody can reach in), so it hangs off the graph rather than holding it together.
    public = [n for n in range(cfg.nodes) if n not in nat]
    sub = build_graph(len(public), cfg.min_degree, cfg.max_degree, rng)
    adj: list[set[int]] = [set() for _ in range(cfg.nodes)]
    for i, peers in enumerate(sub):
        adj[public[i]] = {public[j] for j in peers}
    for n in sorted(nat):
        for p in rng.sample(public, rng.randint(2, 3)):
            adj[n].add(p)
            adj[p].add(n)
    latency, lossy = {}, set()
    for u in range(cfg.nodes):
        for v in sorted(adj[u]):
            if u < v:
                lat = rng.randint(5, 80) * (5 if rng.random() < cfg.slow_share else 1)
                latency[u, v] = latency[v, u] = lat
                if rng.random() < cfg.lossy_share:
                    lossy |= {(u, v), (v, u)}
    casts, t = [], 0.0
    for _ in range(cfg.intents):
        t += rng.expovariate(1 / cfg.interval_ms)
        casts.append((round(t), rng.choice(honest_persons), rng.randrange(TOPICS)))
    window = casts[-1][0] + 1
    churners = rng.sample(public_persons + list(vendors), round(cfg.nodes * cfg.churn_share))
    churn = {}
    for c in churners:
        leave = rng.randrange(window)
        churn[c] = (leave, leave + rng.randint(1000, 10_000))
    # A node that is away casts nothing: such a cast goes to the next person online at that instant.
    for i, (t, author, topic) in enumerate(casts):
        while author in churn and churn[author][0] <= t < churn[author][1]:
            author = rng.choice(honest_persons)
        casts[i] = (t, author, topic)
    phase = {n: rng.randrange(cfg.sync_interval_ms) for n in range(cfg.nodes)}
    return World(cfg, adj, latency, lossy, vendors, nat, bad, casts, churn, phase)


def intent_id(k: int) -> bytes:
    return hashlib.sha256(b"model-intent-%d" % k).digest()


class Net:
    """The event queue, the links and the counters both protocols share."""

    def __init__(self, world: World, seed: int) -> None:
        self.w = world
        self.rng = random.Random(seed)
        self.events: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self.seq = 0
        self.now = 0
        self.online = [True] * world.cfg.nodes
        self.bytes = 0
        self.requests = 0
        self.holds: list[dict[int, int]] = [{} for _ in range(world.cfg.nodes)]  # intent -> when
        self.copies: dict[str, Counter[tuple[int, int]]] = {"push": Counter(), "catch-up": Counter()}
        self.announced: Counter[tuple[int, int]] = Counter()
        self.rounds: list[int] = []
        # Where each copy came from, for the figures' breakdown: (node, intent) -> (cause, sender) of the
        # first copy, and the later copies (duplicates) by cause.
        self.first: dict[tuple[int, int], tuple[str, int | None]] = {}
        self.dups: Counter[tuple[str, int, int]] = Counter()

    def at(self, t: int, fn: Callable[..., None], *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, fn, args))

    def run(self, until: int) -> None:
        while self.events and self.events[0][0] <= until:
            self.now, _, fn, args = heapq.heappop(self.events)
            fn(*args)

    def send(self, src: int, dst: int, size: int, deliver: Callable[..., None], *args: Any, failed=None) -> None:
        """A request src -> dst: lost attempts are retried; a dst that is offline fails it back."""
        delay, attempt = 0, 0
        while (src, dst) in self.w.lossy and self.rng.random() < self.w.cfg.loss:
            self.bytes += size + REQUEST_OVERHEAD
            delay += 300 * 2**attempt
            attempt += 1
        self.bytes += size + REQUEST_OVERHEAD
        self.requests += 1
        self.at(self.now + delay + self.w.latency[src, dst] + 1, self._arrive, src, dst, deliver, args, failed)

    def _arrive(self, src, dst, deliver, args, failed) -> None:
        if not self.online[dst]:
            if failed is not None:
                self.at(self.now + self.w.latency[src, dst], failed)
            return
        deliver(*args)

    def hold(self, node: int, k: int) -> bool:
        if k in self.holds[node]:
            return False
        self.holds[node][k] = self.now
        return True

    def receive(self, node: int, k: int, phase: str, cause: str, sender: int | None) -> bool:
        """A payload copy reached ``node``: counted by phase and cause; whether it was new there."""
        self.copies[phase][node, k] += 1
        fresh = self.hold(node, k)
        if fresh:
            self.first[node, k] = (cause, sender)
        else:
            self.dups[cause, node, k] += 1
        return fresh

