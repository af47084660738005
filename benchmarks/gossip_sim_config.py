"""What ``benchmarks.gossip_sim`` simulates: its configuration, the vendors' subscriptions, the simulated
clock, one node's parts, a cast intent and the counters a run keeps."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from federation import wire
from federation.outbox import Outbox
from federation.pages import Pages
from federation.pipeline import Pipeline
from node.identity import Identity
from node.store import Store
from node.subscriptions import SubscriptionIndex

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


def intent_text(rng: random.Random) -> str:
    want = rng.choice(WANTS)
    words = [f"Need ?{want}", f"max:{rng.randrange(50, 1500, 10)}USD"]
    if rng.random() < 0.4:
        words.append(f"#{rng.choice(TAGS)}")
    return " ".join(words)



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


