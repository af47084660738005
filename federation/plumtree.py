"""Plumtree gossip (Leitão, Pereira, Rodrigues 2007) as a sans-IO state machine: events in, actions out.

One ``Plumtree`` per node. It knows peers by an opaque hashable key (the node id) and envelopes by
their 32-byte id; it never touches the network, the store or a clock. The driver (the node's runtime,
or the simulator) calls ``on_payload`` / ``on_ihave`` / ``on_graft`` / ``on_prune`` / ``peer_up`` /
``peer_down`` as things happen, and ``tick(now)`` when ``next_deadline()`` has come; each call returns
the actions to carry out, in order:

- ``Push(peer, id, hops)``: send the envelope (read from the store) to ``peer`` as a payload;
- ``Announce(peer, items)``: send ``[(id, hops), …]`` as an IHAVE (batched: one per peer per flush);
- ``Graft(peer, ids, eager)``: ask ``peer`` for these payloads and, when ``eager``, to push to us from
  now on (``ids`` may be empty: only the latter; not ``eager``: only the former, an early fetch);
- ``Prune(peer)``: tell ``peer`` to stop pushing to us (announce instead);
- ``Broken(peer, reason, id)``: the peer broke the protocol in a way worth a lower score (an announced
  id never came: ``id`` names it; duplicates after a prune); what to do about it is the driver's policy.

Whether an envelope is new is the store's verdict (the pipeline says ``ok`` or ``duplicate``), passed
in as ``fresh``: the machine keeps no set of everything ever seen, only bounded recent state.

Peers that speak only today's push (``[ttl, envelope]`` items, no IHAVE) are added with ``legacy=True``:
they are always eager, never pruned and never sent an announcement. Nothing here counts hops down to
a stop: a payload is forwarded by every node that finds it new, so no horizon can strand a node; the
``hops`` carried are only used to optimise the tree.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from federation.plumtree_types import (  # noqa: F401  (re-exported: the machine's API)
    ID_BYTES, MAX_ANNOUNCE, MAX_HOPS, Action, Announce, Broken, Graft, Peer, Prune, Push, Timers,
)


@dataclass(slots=True)
class _Missing:
    deadline: int
    first_at: int
    owner: Peer  # the first announcer, whose share of ``max_missing_per_peer`` this is
    announcers: deque[tuple[Peer, int]] = field(default_factory=deque)
    grafted: list[Peer] = field(default_factory=list)
    exhausted: bool = False  # every announcer was asked; waiting out promise_ms
    early: bool = False  # the next GRAFT is the early fetch (the link stays lazy)
    fetched: Peer | None = None  # the announcer an early fetch asked (its answer leaves the link lazy)


class Plumtree:
    def __init__(self, timers: Timers | None = None) -> None:
        self.timers = timers or Timers()
        self.eager: set[Peer] = set()
        self.lazy: set[Peer] = set()
        self.legacy: set[Peer] = set()
        self._pending: dict[Peer, list[tuple[bytes, int]]] = {}  # announcements not yet flushed
        self._flush_at: int | None = None
        self._missing: dict[bytes, _Missing] = {}
        self._timers: list[tuple[int, bytes]] = []  # (deadline, id) heap; stale entries are skipped
        self._missing_by: dict[Peer, int] = {}  # awaited ids per first announcer
        # id -> hops, from, at, and the peers we GRAFTed it from (their late answers are no offence)
        self._recent: OrderedDict[bytes, tuple[int, Peer | None, int, tuple[Peer, ...]]] = OrderedDict()
        self._dups: dict[Peer, int] = {}  # duplicates in a row from each eager peer
        self._grafts: dict[Peer, int] = {}  # GRAFTs in a row to each peer (a payload from it resets)
        self._pruned_at: dict[Peer, int] = {}  # peers we pruned and when (duplicates after it are noted)
        self._proven: set[Peer] = set()  # peers that, while eager, sent us a new payload first: on our tree
        self._watch: dict[bytes, tuple[int, Peer]] = {}  # ids an early fetch brought first -> (graft_timeout, peer)
        self._watching: list[tuple[int, bytes]] = []  # their (deadline, id) heap; stale entries are skipped
        self._holes: dict[Peer, int] = {}  # fetches in a row through a peer that no other copy followed
        # The eager peers in push order (by repr: the same in every run), kept while the set is the
        # same: sorting them for every payload was most of a relayed intent's cost.
        self._eager_order: tuple[frozenset[Peer], tuple[Peer, ...]] = (frozenset(), ())

    # -- membership ----------------------------------------------------------------------------

    def peer_up(self, peer: Peer, *, legacy: bool = False, lazy: bool = False) -> None:
        """A peer became reachable (added, discovered and verified, or back after a failure). New
        peers start eager, as in the paper, so the first payloads prune the tree into shape, unless
        ``lazy`` (a node starting with many peers keeps a few eager: fewer cycles to prune while
        many payloads are in flight; a GRAFT adds what is missing)."""
        if legacy:
            self.legacy.add(peer)
            lazy = False
        if peer in self.eager or peer in self.lazy:
            return
        (self.lazy if lazy else self.eager).add(peer)

    def peer_down(self, peer: Peer) -> None:
        """A peer left or cannot be reached: it is neither pushed to nor announced to, and an awaited id
        it announced falls to the next announcer."""
        self.eager.discard(peer)
        self.lazy.discard(peer)
        self.legacy.discard(peer)
        self._pending.pop(peer, None)
        self._pruned_at.pop(peer, None)
        self._dups.pop(peer, None)
        self._grafts.pop(peer, None)
        self._proven.discard(peer)
        self._holes.pop(peer, None)
        for missing in self._missing.values():
            if any(p == peer for p, _ in missing.announcers):
                missing.announcers = deque((p, h) for p, h in missing.announcers if p != peer)

    @property
    def peers(self) -> set[Peer]:
        return self.eager | self.lazy

    # -- events --------------------------------------------------------------------------------

    def broadcast(self, id_: bytes, now: int) -> list[Action]:
        """Our own new envelope: push it to every eager peer, announce it to the lazy ones."""
        self._remember(id_, 0, None, now)
        return self._spread(id_, 0, set(), now)

    def on_payload(self, peer: Peer, id_: bytes, hops: int, fresh: bool, now: int, *,
                   pushed: bool = True) -> list[Action]:  # fmt: skip
        """``peer`` sent the payload ``id_`` that took ``hops`` hops to reach it; ``fresh`` is whether
        the store took it as new (``ok``) rather than ``duplicate``. Invalid envelopes never come here.
        ``pushed`` False: we pulled it from ``peer`` (a page, a reconciliation): it is passed on as any
        new payload, but says nothing of the link (PROTOCOL.md section 13), which stays as it was."""
        hops = min(max(hops, 0) + 1, MAX_HOPS)
        if not fresh:
            action = self._duplicate(peer, id_, hops, now)
            return [] if action is None else [action]
        t = self.timers
        actions: list[Action] = []
        missing = self._drop_missing(id_)
        fanned = hops <= t.fanout_hops  # pushed to every peer near its author, not along the tree
        if pushed:
            self._dups.pop(peer, None)  # a new payload from it: the streak of duplicates is broken
            if missing is None or peer not in missing.grafted:
                self._grafts.pop(peer, None)  # an eager push from it: no GRAFT streak
            if peer in self.eager:
                self._proven.add(peer)
        fetched = missing is not None and peer == missing.fetched  # the answer to an early fetch
        if fetched and t.fetch_graft_after and missing is not None:
            at = missing.first_at + t.graft_timeout_ms  # a hole if no other copy comes by then
            if now < at:
                self._watch[id_] = (at, peer)
                heapq.heappush(self._watching, (at, id_))
        if pushed and not fanned and not fetched:  # an early fetch leaves the link lazy
            self._pushed_by(peer, now)
        if pushed and missing is not None and peer not in missing.grafted:
            # Optimisation: an announcer that was much earlier (in time) than this eager copy is the
            # better parent; graft it and prune this one.
            if t.optimise_ms and missing.announcers and now - missing.first_at >= t.optimise_ms:
                better, _ = missing.announcers[0]
                if better != peer and peer not in self.legacy:
                    actions += self._swap(better, peer, now)
        self._remember(id_, hops, peer, now, () if missing is None else tuple(missing.grafted))
        # Peers that announced it to us hold it: a push or an IHAVE to them would be wasted.
        holders = {peer} if missing is None else {peer, *missing.grafted, *(p for p, _ in missing.announcers)}
        actions += self._spread(id_, hops, holders, now)
        return actions

    def on_payloads(
        self, peer: Peer, items: Sequence[tuple[bytes, int]], now: int, *, pushed: bool = True
    ) -> tuple[list[tuple[Peer, ...]], list[Action]]:
        """``on_payload(peer, id, hops, True, now, pushed=pushed)`` for each new ``(id, hops)`` of
        ``items`` in turn, in one call: the same state after it; for each item the peers its Push
        actions name, in order, and the other actions in order. An id nobody announced (the common
        case) costs no Action and no set: the peers it goes to are the same tuple for every item until
        the links change."""
        fanout = self.timers.fanout_hops
        pushes: list[tuple[Peer, ...]] = []
        others: list[Action] = []
        plans: dict[bool, tuple[tuple[Peer, ...], list[list[tuple[bytes, int]]]]] = {}  # by fanned out
        holders = {peer}
        for id_, arrived in items:
            if self._missing and id_ in self._missing:  # announced, grafted or watched: the full rules
                actions = self.on_payload(peer, id_, arrived, True, now, pushed=pushed)
                pushes.append(tuple(a.peer for a in actions if isinstance(a, Push)))
                others += [a for a in actions if not isinstance(a, Push)]
                plans.clear()  # the links may have changed
                continue
            # on_payload's rules for an id not awaited, in its order
            hops = min(max(arrived, 0) + 1, MAX_HOPS)
            if pushed:
                self._dups.pop(peer, None)
                self._grafts.pop(peer, None)
                if peer in self.eager:
                    self._proven.add(peer)
                if hops > fanout and self._pushed_by(peer, now):
                    plans.clear()
            self._remember(id_, hops, peer, now)
            fanned = hops < fanout
            plan = plans.get(fanned)
            if plan is None:
                plan = plans[fanned] = self._plan(holders, fanned)
            pushes.append(plan[0])
            self._announce(plan[1], id_, hops, now)
        return pushes, others

    def heeds_duplicates(self, peer: Peer) -> bool:
        """Whether copies from ``peer`` could change anything: False (``on_duplicates`` would answer
        nothing and change nothing) when no id is awaited or watched and the peer is legacy or off
        the tree."""
        on_tree = peer in self.eager or peer in self.lazy
        return bool(self._missing or self._watch) or (on_tree and peer not in self.legacy)

    def on_duplicates(self, peer: Peer, items: Sequence[tuple[bytes, int]], now: int) -> list[Action]:
        """``on_payload(peer, id, hops, False, now)`` for each ``(id, hops)`` of ``items`` in turn, in one
        call: the same state after it and the same actions (a pushed batch's copies of what the store
        held, most of a busy node's payloads, without a list and a call per copy)."""
        if not self.heeds_duplicates(peer):
            return []
        if not self._missing and not self._watch and peer in self.eager:  # only the link is at stake
            return self._eager_duplicates(peer, items, now)
        actions: list[Action] = []
        duplicate = self._duplicate
        arrived = {hops: min(max(hops, 0) + 1, MAX_HOPS) for hops in {hops for _, hops in items}}  # one or a few
        for id_, hops in items:
            action = duplicate(peer, id_, arrived[hops], now)
            if action is not None:
                actions.append(action)
        return actions

    def on_ihave(self, peer: Peer, items: Iterable[tuple[bytes, int]], now: int) -> list[Action]:
        """``peer`` announced these ``(id, hops)``; the driver passes those the store does not hold and
        those it holds that ``knows`` (recent ones, compared here for a shorter path)."""
        actions: list[Action] = []
        t = self.timers
        if peer not in self.eager | self.lazy:
            return actions
        for id_, hops in list(items)[:MAX_ANNOUNCE]:
            if len(id_) != ID_BYTES:
                continue
            hops = min(max(hops, 0) + 1, MAX_HOPS)
            seen = self._recent.get(id_)
            if seen is not None:
                have_hops, sender, _, _ = seen
                if t.optimise_hops and sender is not None and sender != peer and hops + t.optimise_hops <= have_hops:
                    if sender not in self.legacy and peer not in self.eager:
                        actions += self._swap(peer, sender, now)
                        self._recent[id_] = (hops, peer, seen[2], seen[3])
                continue
            missing = self._missing.get(id_)
            if missing is None:
                if len(self._missing) >= t.max_missing or self._missing_by.get(peer, 0) >= t.max_missing_per_peer:
                    continue  # bounded: what is not awaited is caught up by reconciliation
                missing = self._missing[id_] = _Missing(now + t.graft_timeout_ms, now, peer)
                heapq.heappush(self._timers, (missing.deadline, id_))
                self._missing_by[peer] = self._missing_by.get(peer, 0) + 1
            if len(missing.announcers) < t.announcers_per_id and all(p != peer for p, _ in missing.announcers):
                missing.announcers.append((peer, hops))
                if (t.early_fetch_announcers and not missing.grafted and not missing.early
                        and len(missing.announcers) >= t.early_fetch_announcers
                        and now + t.early_fetch_ms < missing.deadline):
                    missing.early = True
                    missing.deadline = now + t.early_fetch_ms
                    heapq.heappush(self._timers, (missing.deadline, id_))
        return actions

    def on_graft(self, peer: Peer, ids: Iterable[bytes], now: int, eager: bool = True) -> list[Action]:
        """``peer`` asks for these payloads (the driver sends those it holds) and, when ``eager``, to be
        pushed to from now on."""
        if peer not in self.eager | self.lazy:
            return []
        if eager:
            self.lazy.discard(peer)
            self.eager.add(peer)
            self._pruned_at.pop(peer, None)
        return [Push(peer, id_, self._hops_of(id_)) for id_ in list(ids)[:MAX_ANNOUNCE] if len(id_) == ID_BYTES]

    def on_prune(self, peer: Peer, now: int) -> list[Action]:
        """``peer`` asks us to announce instead of pushing."""
        if peer in self.eager and peer not in self.legacy:
            self.eager.discard(peer)
            self.lazy.add(peer)
        return []

    # -- time ----------------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """When ``tick`` has something to do (ms, the driver's clock), or None."""
        while self._timers and self._stale(self._timers[0]):
            heapq.heappop(self._timers)
        while self._watching and self._watch.get(self._watching[0][1], (None,))[0] != self._watching[0][0]:
            heapq.heappop(self._watching)
        deadlines = [d for d in (self._flush_at, self._timers[0][0] if self._timers else None,
                                 self._watching[0][0] if self._watching else None) if d is not None]
        return min(deadlines, default=None)

    def tick(self, now: int) -> list[Action]:
        actions: list[Action] = []
        if self._flush_at is not None and self._flush_at <= now:
            self._flush_at = None
            for peer, items in self._pending.items():
                for i in range(0, len(items), MAX_ANNOUNCE):
                    actions.append(Announce(peer, tuple(items[i : i + MAX_ANNOUNCE])))
            self._pending.clear()
        grafts: dict[Peer, list[bytes]] = {}
        fetches: dict[Peer, list[bytes]] = {}  # early fetches: GRAFTs that leave the link lazy
        while self._timers and self._timers[0][0] <= now:
            entry = heapq.heappop(self._timers)
            if self._stale(entry):
                continue
            id_ = entry[1]
            missing = self._missing[id_]
            if not missing.announcers:
                if not missing.exhausted and missing.grafted:
                    # Nobody else to ask; answers on slow or lossy links may still come.
                    missing.exhausted = True
                    missing.deadline = now + self.timers.promise_ms
                    heapq.heappush(self._timers, (missing.deadline, id_))
                    continue
                # Every peer asked announced a payload it did not deliver, even late: a promise
                # broken. Reconciliation will bring the payload if it exists.
                actions += [Broken(p, "unanswered_ihave", id_) for p in missing.grafted]
                self._drop_missing(id_)
                continue
            peer, _ = missing.announcers.popleft()
            missing.grafted.append(peer)
            if missing.early:  # the fetch; the eager GRAFT (to the next announcer) stays at graft_timeout
                missing.early = False
                missing.fetched = peer
                t = self.timers
                missing.deadline = max(now + t.graft_retry_ms, missing.first_at + t.graft_timeout_ms)
                heapq.heappush(self._timers, (missing.deadline, id_))
                fetches.setdefault(peer, []).append(id_)
                continue
            missing.deadline = now + self.timers.graft_retry_ms
            heapq.heappush(self._timers, (missing.deadline, id_))
            grafts.setdefault(peer, []).append(id_)
        while self._watching and self._watching[0][0] <= now:
            deadline, id_ = heapq.heappop(self._watching)
            if self._watch.get(id_, (None,))[0] != deadline:
                continue
            _, peer = self._watch.pop(id_)
            if peer not in self.lazy:
                continue  # gone (peer_down forgot its count) or eager already: no hole to count
            holes = self._holes[peer] = self._holes.get(peer, 0) + 1
            if holes >= self.timers.fetch_graft_after:
                self._holes.pop(peer, None)
                self.lazy.discard(peer)
                self.eager.add(peer)
                self._pruned_at.pop(peer, None)
                actions.append(Graft(peer, (), True))
        for peer, ids in fetches.items():
            for i in range(0, len(ids), MAX_ANNOUNCE):
                actions.append(Graft(peer, tuple(ids[i : i + MAX_ANNOUNCE]), False))
        for peer, ids in grafts.items():
            # One missed payload is fetched alone; a peer we had to ask again and again in a row is
            # on our best path, so the link becomes eager. (Making every GRAFT eager, as the paper
            # does, re-creates cycles faster than duplicates prune them when many payloads are in
            # flight at once, and the tree never settles.)
            streak = self._grafts[peer] = self._grafts.get(peer, 0) + 1
            eager = streak >= self.timers.graft_eager_after
            if eager:
                self._grafts.pop(peer, None)
                self.lazy.discard(peer)
                self.eager.add(peer)
            for i in range(0, len(ids), MAX_ANNOUNCE):
                actions.append(Graft(peer, tuple(ids[i : i + MAX_ANNOUNCE]), eager))
        return actions

    def knows(self, id_: bytes) -> bool:
        """Whether ``id_`` is recent here (received, or awaited): an IHAVE of it is worth passing to
        ``on_ihave`` even though the store holds it (it may show a shorter path)."""
        return id_ in self._recent or id_ in self._missing

    def awaited(self) -> int:
        """How many announced ids are awaited (bounded by ``Timers.max_missing``)."""
        return len(self._missing)

    # -- internals -----------------------------------------------------------------------------

    def _eager_in_order(self) -> tuple[Peer, ...]:
        members, order = self._eager_order
        if members != self.eager:
            members = frozenset(self.eager)
            order = tuple(sorted(members, key=repr))
            self._eager_order = (members, order)
        return order

    def _spread(self, id_: bytes, hops: int, holders: set[Peer], now: int) -> list[Action]:
        targets, announce = self._plan(holders, hops < self.timers.fanout_hops)
        self._announce(announce, id_, hops, now)
        return [Push(p, id_, hops) for p in targets]

    def _plan(self, holders: set[Peer], fanned: bool) -> tuple[tuple[Peer, ...], list[list[tuple[bytes, int]]]]:
        """Where a new payload goes while the links stay as they are: the peers to push it to (the
        eager ones in order, then, ``fanned`` out near its author, the lazy ones) and the pending
        IHAVE lists of the lazy peers to announce it to; none of them ``holders``."""
        eager = [p for p in self._eager_in_order() if p not in holders]
        lazy = [p for p in self.lazy if p not in holders and p not in self.legacy]
        if fanned:
            return tuple(eager + sorted(lazy, key=repr)), []
        return tuple(eager), [self._pending.setdefault(p, []) for p in lazy]

    def _announce(self, pending: list[list[tuple[bytes, int]]], id_: bytes, hops: int, now: int) -> None:
        for announced in pending:
            announced.append((id_, hops))
        if pending and self._flush_at is None:
            self._flush_at = now + self.timers.announce_delay_ms

    def _pushed_by(self, peer: Peer, now: int) -> bool:
        """A new payload was pushed to us by ``peer``, not fanned out near its author nor fetched: a
        lazy link becomes eager, since the sender is on our path now (it answered a GRAFT, or is a new
        link), unless we pruned it moments ago and this was sent before our PRUNE reached it. Whether
        the links changed."""
        if peer not in self.lazy:
            return False
        pruned_at = self._pruned_at.get(peer)
        if pruned_at is not None and now - pruned_at <= self.timers.prune_grace_ms:
            return False
        self.lazy.discard(peer)
        self.eager.add(peer)
        self._pruned_at.pop(peer, None)
        return True

    def _eager_duplicates(self, peer: Peer, items: Sequence[tuple[bytes, int]], now: int) -> list[Action]:
        """``on_duplicates`` from an eager peer while no id is awaited or watched (the common case): each
        copy but the late answers to our GRAFTs adds to its streak, whatever its hops; the first that
        reaches the limit prunes the link, and the copies after it (from a lazy peer pruned ``now``,
        within the grace) change nothing."""
        recent = self._recent
        counted = 0
        for id_, _ in items:
            seen = recent.get(id_)
            if seen is None or peer not in seen[3]:
                counted += 1
        action = self._add_to_streak(peer, counted, now) if counted else None
        return [] if action is None else [action]

    def _add_to_streak(self, peer: Peer, copies: int, now: int) -> Action | None:
        """``copies`` more duplicates in a row over ``peer``'s link: a Prune once they reach its limit."""
        t = self.timers
        # A link that has only ever brought duplicates (most of the start's eager links: each
        # node's choices add to its peers') is a cycle to cut soon; one that has brought a
        # payload first may be on the best path for some authors, so it gets a longer streak.
        limit = t.prune_after
        if t.prune_unproven_after and peer not in self._proven:
            limit = min(limit, t.prune_unproven_after)
        streak = self._dups.get(peer, 0) + copies
        if streak < limit:
            self._dups[peer] = streak
            return None
        self._dups.pop(peer, None)
        self._to_lazy(peer, now)
        return Prune(peer)

    def _duplicate(self, peer: Peer, id_: bytes, hops: int, now: int) -> Action | None:
        """A copy of ``id_``, held here already, from ``peer`` (``hops`` as counted on arrival): a Prune
        when the peer's streak of copies cuts its eager link, Broken when a pruned peer goes on."""
        t = self.timers
        if self._missing:
            self._drop_missing(id_)
        seen = self._recent.get(id_)
        if seen is not None and peer in seen[3]:
            return None  # the late answer to our GRAFT: asked for, so neither an offence nor a cycle
        if self._watch:
            watched = self._watch.pop(id_, None)
            if watched is not None:  # the tree brought it too, only later: no hole there
                self._holes.pop(watched[1], None)
        if (peer in self.legacy or (peer not in self.eager and peer not in self.lazy)  # no set built per copy
                or (hops <= t.fanout_hops and peer in self.lazy)):  # fanned out near its author
            return None
        pruned_at = self._pruned_at.get(peer)
        if peer in self.lazy and pruned_at is not None:
            if now - pruned_at > t.prune_grace_ms:
                # At most one report per grace window: a late burst is not many offences.
                self._pruned_at[peer] = now
                return Broken(peer, "ignored_prune")
            return None
        return self._add_to_streak(peer, 1, now)

    def _swap(self, better: Peer, worse: Peer, now: int) -> list[Action]:
        self.lazy.discard(better)
        self.eager.add(better)
        self._to_lazy(worse, now)
        return [Graft(better, ()), Prune(worse)]

    def _to_lazy(self, peer: Peer, now: int) -> None:
        self.eager.discard(peer)
        self.lazy.add(peer)
        self._pruned_at[peer] = now

    def _remember(self, id_: bytes, hops: int, sender: Peer | None, now: int, asked: tuple[Peer, ...] = ()) -> None:
        self._recent[id_] = (hops, sender, now, asked)
        self._recent.move_to_end(id_)
        while len(self._recent) > self.timers.recent:
            self._recent.popitem(last=False)

    def _hops_of(self, id_: bytes) -> int:
        seen = self._recent.get(id_)
        return 0 if seen is None else seen[0]

    def _drop_missing(self, id_: bytes) -> _Missing | None:
        missing = self._missing.pop(id_, None)
        if missing is not None:
            left = self._missing_by.get(missing.owner, 0) - 1
            if left > 0:
                self._missing_by[missing.owner] = left
            else:
                self._missing_by.pop(missing.owner, None)
        return missing

    def _stale(self, entry: tuple[int, bytes]) -> bool:
        missing = self._missing.get(entry[1])
        return missing is None or missing.deadline != entry[0]
