"""The random peer graph both gossip benchmarks build, and the small statistics they report."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence


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
