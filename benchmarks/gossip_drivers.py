"""The two protocols ``benchmarks.gossip_model`` compares, as nodes' runtimes would drive them on the
modelled network: today's TTL flooding with pulls by cursor, and Plumtree (the real state machine) with
reconciliation catch-up (the real ``node.reconcile``)."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from benchmarks.gossip_world import ENVELOPE_BYTES, ID_ENTRY, MAX_TTL, ORIGIN_TTL, REQUEST_OVERHEAD, Net, intent_id
from federation import plumtree as pt
from node import reconcile


class Flooding:
    """Today's protocol: ttl 4 push to every peer with a URL (not the sender, not the author), pulls
    by cursor from every peer each interval and on return, outbox retries with backoff."""

    name = "flooding"

    def __init__(self, net: Net) -> None:
        self.net, self.w = net, net.w
        self.ttl: list[dict[int, int]] = [{} for _ in range(self.w.cfg.nodes)]
        self.log: list[list[int]] = [[] for _ in range(self.w.cfg.nodes)]  # intents in receipt order
        self.cursor: dict[tuple[int, int], int] = {}

    def start(self) -> None:
        for n in range(self.w.cfg.nodes):
            self.net.at(self.w.phase[n], self._pull_round, n, True)
            if self.w.bad.get(n) == "flood":
                self.net.at(n % 100, self._flood, n)

    def cast(self, author: int, k: int) -> None:
        self.net.hold(author, k)
        self._accept(author, k, ORIGIN_TTL + 1, None, author)

    def _accept(self, node: int, k: int, ttl_in: int, sender: int | None, author: int) -> None:
        """Hold what was accepted with ``ttl_in`` and pass it on with one hop less (section 7)."""
        fwd = min(ttl_in, MAX_TTL) - 1 if ttl_in else 0
        self.ttl[node][k] = fwd
        self.log[node].append(k)
        if ttl_in == 0 or self.w.bad.get(node) == "drop":
            return
        times = 2 if self.w.bad.get(node) == "dup" else 1
        for peer in self.w.adj[node]:
            if peer not in (sender, author) and peer not in self.w.nat:
                for _ in range(times):
                    self._push(node, peer, k, fwd, author, 1000)

    def _push(self, src: int, dst: int, k: int, ttl: int, author: int, backoff: int) -> None:
        def failed() -> None:  # the outbox keeps it and tries again later
            wait = self.net.rng.randrange(backoff) + 1
            self.net.at(self.net.now + wait, self._push, src, dst, k, ttl, author, min(backoff * 2, 60_000))

        self.net.send(src, dst, ENVELOPE_BYTES, self._receive, dst, src, k, ttl, author, "push", failed=failed)

    def _receive(self, node: int, sender: int, k: int, ttl: int, author: int, phase: str) -> None:
        if self.net.receive(node, k, phase, "pull" if phase == "catch-up" else "push", sender):
            self._accept(node, k, ttl, sender, author)

    def _pull_round(self, node: int, periodic: bool) -> None:
        if self.net.online[node]:
            for peer in self.w.adj[node]:
                if peer not in self.w.nat:
                    self.net.send(node, peer, 0, self._serve, node, peer)
        if periodic:
            self.net.at(self.net.now + self.w.cfg.sync_interval_ms, self._pull_round, node, True)

    def _serve(self, node: int, peer: int) -> None:
        start = self.cursor.get((node, peer), 0)
        items = [] if self.w.bad.get(peer) == "drop" else self.log[peer][start:]
        self.cursor[node, peer] = len(self.log[peer])
        self.net.bytes += ENVELOPE_BYTES * len(items)
        sent = [(k, self.ttl[peer][k]) for k in items]
        self.net.at(self.net.now + self.w.latency[node, peer] + 1, self._pulled, node, peer, sent)

    def _pulled(self, node: int, peer: int, items: list[tuple[int, int]]) -> None:
        for k, ttl in items:
            self._receive(node, peer, k, ttl, self.author[k], "catch-up")  # as far by pull as by push

    def _flood(self, node: int) -> None:
        for peer in self.w.adj[node]:
            if peer not in self.w.nat:
                self.net.send(node, peer, 50 * ENVELOPE_BYTES, lambda: None)  # refused: bad signatures
        if self.net.now < self.w.casts[-1][0] + 10_000:
            self.net.at(self.net.now + 100, self._flood, node)

    def rejoin(self, node: int) -> None:
        self._pull_round(node, False)


class PlumtreeDriver:
    """Plumtree (the real state machine, one per node) with reconciliation catch-up (the real
    ``node.reconcile``), as a node's runtime would drive them. Each node starts eager on two of its
    links, the rest lazy."""

    name = "plumtree"
    BAN_AFTER = 10

    def __init__(self, net: Net) -> None:
        self.net, self.w = net, net.w
        self.trees = [pt.Plumtree(self.w.cfg.timers) for _ in range(self.w.cfg.nodes)]
        self.tick_at: list[int | None] = [None] * self.w.cfg.nodes
        self.broken: Counter[tuple[int, int]] = Counter()
        self.banned: set[tuple[int, int]] = set()  # (node, peer it refuses)
        self.ids = {intent_id(k): k for k in range(len(self.w.casts))}
        rng = random.Random(self.w.cfg.seed + 2)
        for n in range(self.w.cfg.nodes):
            peers = [p for p in sorted(self.w.adj[n]) if p not in self.w.nat]  # nobody can push to NAT
            if self.w.cfg.eager_by_latency:  # a node measures each peer's round trip when it greets it
                eager = set(sorted(peers, key=lambda p: (self.w.latency[n, p], p))[: self.w.cfg.initial_eager])
            else:
                eager = set(rng.sample(peers, min(len(peers), self.w.cfg.initial_eager)))
            for peer in peers:
                self.trees[n].peer_up(peer, lazy=peer not in eager)

    def start(self) -> None:
        for n in range(self.w.cfg.nodes):
            self.net.at(self.w.phase[n], self._sync_round, n, True)
            if self.w.bad.get(n) == "flood":
                self.net.at(n % 100, self._flood, n)

    def cast(self, author: int, k: int) -> None:
        self.net.hold(author, k)
        self._act(author, self.trees[author].broadcast(intent_id(k), self.net.now))

    def _act(self, node: int, actions: list[pt.Action], cause: str = "eager") -> None:
        """Carry out the tree's actions; ``cause`` names what the pushes among them answer (an eager
        forward, or a GRAFT)."""
        bad = self.w.bad.get(node)
        for a in actions:
            if isinstance(a, pt.Push):
                k = self.ids.get(a.id)
                if k is None or k not in self.net.holds[node] or bad == "drop":
                    continue
                if self.author.get(k) == node:  # our own: the outbox keeps it until delivered
                    self._send_own(node, a.peer, a.id, 1000)
                    continue
                for _ in range(2 if bad == "dup" else 1):
                    self._send(node, a.peer, ENVELOPE_BYTES, self._on_payload, a.peer, node, a.id, a.hops, cause)
            elif bad is not None:
                continue  # misbehaving nodes send no control messages
            elif isinstance(a, pt.Announce):
                self._send(node, a.peer, ID_ENTRY * len(a.items), self._on_ihave, a.peer, node, a.items)
            elif isinstance(a, pt.Graft):
                self._send(node, a.peer, 4 + 33 * len(a.ids), self._on_graft, a.peer, node, a.ids, a.eager)
            elif isinstance(a, pt.Prune):
                self._send(node, a.peer, 8, self._on_prune, a.peer, node)
            elif isinstance(a, pt.Broken):
                self.broken[node, a.peer] += 1
                if self.broken[node, a.peer] >= self.BAN_AFTER:
                    self.banned.add((node, a.peer))
                    self.trees[node].peer_down(a.peer)
                elif a.reason == "ignored_prune":  # as federation/tree.py: it may have re-greeted us, all eager
                    self._send(node, a.peer, 8, self._on_prune, a.peer, node)
        self._schedule(node)

    def _send(self, src: int, dst: int, size: int, fn: Callable[..., None], *args: Any) -> None:
        def failed() -> None:
            if not self.net.online[dst]:  # (one back already answers again: its hello came first)
                self.trees[src].peer_down(dst)
                self._schedule(src)

        self.net.send(src, dst, size, self._guard, fn, dst, src, args, failed=failed)

    def _send_own(self, src: int, dst: int, id_: bytes, backoff: int) -> None:
        def failed() -> None:
            self.trees[src].peer_down(dst)
            wait = self.net.rng.randrange(backoff) + 1
            self.net.at(self.net.now + wait, self._send_own, src, dst, id_, min(backoff * 2, 60_000))

        self.net.send(src, dst, ENVELOPE_BYTES, self._guard, self._on_payload, dst, src, (dst, src, id_, 0, "own"), failed=failed)

    def _guard(self, fn, dst: int, src: int, args) -> None:
        if (dst, src) not in self.banned:
            fn(*args)

    def _schedule(self, node: int) -> None:
        deadline = self.trees[node].next_deadline()
        if deadline is not None and (self.tick_at[node] is None or deadline < self.tick_at[node]):
            self.tick_at[node] = max(deadline, self.net.now)
            self.net.at(self.tick_at[node], self._tick, node, self.tick_at[node])

    def _tick(self, node: int, when: int) -> None:
        if self.tick_at[node] != when:
            return
        self.tick_at[node] = None
        if self.net.online[node]:
            self._act(node, self.trees[node].tick(self.net.now))

    def _on_payload(self, node: int, sender: int, id_: bytes, hops: int, cause: str) -> None:
        k = self.ids.get(id_)
        if k is None:
            return
        fresh = self.net.receive(node, k, "push", cause, sender)
        if self.w.bad.get(node) == "dup":  # ignores the tree: every payload, twice, to every peer
            if fresh:
                for peer in self.w.adj[node]:
                    if peer not in self.w.nat:
                        for _ in range(2):
                            self._send(node, peer, ENVELOPE_BYTES, self._on_payload, peer, node, id_, hops + 1, "dup-peer")
            return
        self._act(node, self.trees[node].on_payload(sender, id_, hops, fresh, self.net.now))

    def _on_ihave(self, node: int, sender: int, items) -> None:
        for id_, _ in items:
            k = self.ids.get(id_)
            if k is not None:
                self.net.announced[node, k] += 1
        held, tree = self.net.holds[node], self.trees[node]
        news = [(i, h) for i, h in items if tree.knows(i) or self.ids.get(i) not in held]
        self._act(node, tree.on_ihave(sender, news, self.net.now))

    def _on_graft(self, node: int, sender: int, ids, eager: bool) -> None:
        self._act(node, self.trees[node].on_graft(sender, ids, self.net.now, eager), "graft")

    def _on_prune(self, node: int, sender: int) -> None:
        self._act(node, self.trees[node].on_prune(sender, self.net.now))

    def _flood(self, node: int) -> None:
        bogus = tuple((os.urandom(32), 1) for _ in range(50))
        for peer in self.w.adj[node]:
            if peer not in self.w.nat:
                self._send(node, peer, ID_ENTRY * 50, self._on_ihave, peer, node, bogus)
        if self.net.now < self.w.casts[-1][0] + 10_000:
            self.net.at(self.net.now + 100, self._flood, node)

    # -- catch-up ------------------------------------------------------------------------------

    def _sync_round(self, node: int, periodic: bool) -> None:
        peers = [p for p in self.w.adj[node] if p not in self.w.nat and (node, p) not in self.banned]
        if self.net.online[node] and peers:
            self._reconcile(node, self.net.rng.choice(peers))
        if periodic:
            self.net.at(self.net.now + self.w.cfg.sync_interval_ms, self._sync_round, node, True)

    def _reconcile(self, node: int, peer: int) -> None:
        """Reconcile our live set with the peer's, then fetch what we lack (one more round trip)."""
        if not self.net.online[peer]:
            return
        mine = [(t, intent_id(k)) for k, t in self._created(node)]
        theirs = [] if self.w.bad.get(peer) == "drop" else [(t, intent_id(k)) for k, t in self._created(peer)]
        outcome, rounds, sent = reconcile.reconcile_sets(mine, theirs)
        self.net.rounds.append(rounds)
        self.net.bytes += sent + 2 * rounds * REQUEST_OVERHEAD
        for i in sorted(outcome.have):  # what the peer lacks, we offer (it is pushed like any payload)
            self._send(node, peer, ENVELOPE_BYTES, self._offered, peer, self.ids[i], node)
        need = sorted(self.ids[i] for i in outcome.need)
        if need:
            self.net.bytes += 33 * len(need) + ENVELOPE_BYTES * len(need) + REQUEST_OVERHEAD
            rtt = 2 * (self.w.latency[node, peer] + 1)
            self.net.at(self.net.now + rtt * (rounds + 1), self._fetched, node, need, peer)

    def _created(self, node: int) -> list[tuple[int, int]]:
        return [(k, self.w.casts[k][0]) for k in self.net.holds[node]]

    def _offered(self, node: int, k: int, sender: int) -> None:
        if self.net.receive(node, k, "catch-up", "offer", sender):
            self._act(node, self.trees[node].broadcast(intent_id(k), self.net.now))

    def _fetched(self, node: int, need: list[int], sender: int) -> None:
        for k in need:
            self.net.receive(node, k, "catch-up", "fetch", sender)

    def rejoin(self, node: int) -> None:
        for peer in self.w.adj[node]:
            if self.net.online[peer] and node not in self.w.nat:
                self.trees[peer].peer_up(node)  # its hello
            if peer not in self.w.nat:
                self.trees[node].peer_up(peer)
        self._sync_round(node, False)
        self._schedule(node)

