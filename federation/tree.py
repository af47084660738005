"""Plumtree gossip on a running node (PROTOCOL.md section 13): the ``POST /v1/tree`` body and handler,
and ``TreeRelay``, which drives the sans-IO ``federation.plumtree.Plumtree`` for the pipeline and for
the runtime.

- The pipeline asks ``targets`` who gets a new payload (the eager peers, every legacy peer and every
  peer not classified yet: they get today's push; near its author the lazy peers too) and tells
  ``duplicates`` what a peer sent twice (enough in a row and the peer is sent a PRUNE). Both pass the
  hops the item's ttl tells (``hops_of``). Both run in the store's thread, inside the ingest
  transaction, so the pushes are queued in the outbox with the envelope they carry.
- The handler feeds IHAVE, GRAFT and PRUNE from a peer to the machine; a GRAFT's ids this node holds
  are queued in the outbox for the grafter (the eager push the GRAFT asked for).
- ``run`` is the runtime's timer task: it ticks the machine when its next deadline comes (IHAVE
  batches flushed, GRAFTs fired), sends the control messages, one sender per peer, fetches with
  ``POST /v1/gossip/ids`` what no GRAFT brought, asks new peers whether they speak ``plumtree/1`` and
  hands the peers' broken promises (``ignored_prune``, ``unanswered_ihave``) to peer scoring, bounded.

The eager and lazy sets live in memory only: at start every peer is eager again and the first
duplicates prune the tree back into shape. A peer not known to speak ``plumtree/1`` is legacy: it
always gets ``POST /v1/gossip`` items, is never pruned and is never sent an announcement.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import trio
from starlette.requests import Request
from starlette.responses import Response

from federation import plumtree as pt
from federation import wire
from federation.auth import signed_body
from federation.kinds import DIRECT_KINDS, GOSSIP_KIND
from federation.outbox import Outbox
from federation.peerclient import PeerClient
from federation.treewire import MAX_BODY, MAX_IDS, TreeMessage, decode_tree, encode_tree
from node.errors import DeliveryError, WireError
from node.nodeid import encode_node_id
from node.gossiplog import id_in
from node.store import Clock, Store

__all__ = ["CAPABILITY", "LIVE_TIMERS", "MAX_BODY", "MAX_IDS", "PATH", "TreeMessage", "TreeRelay", "decode_tree",
           "encode_tree", "hops_of", "links", "tree"]

LOGGER = logging.getLogger("vrm.tree")
CAPABILITY = "plumtree/1"  # advertised in GET /v1/node's "gossip" list
PATH = "/v1/tree"
MAX_PENDING = 4 * MAX_IDS  # announcements (and graft ids) waiting for one peer; older ones are dropped
# What a running node uses unless told otherwise: the model's fan-out near the author (its p99 < 1 s
# at 1,000 nodes; benchmarks/gossip_model.py), now that payloads and duplicates carry real hops.
LIVE_TIMERS = pt.Timers(fanout_hops=2, prune_unproven_after=2)
REPORT_INTERVAL_S = 2.0  # how often broken promises are handed to peer scoring
# A peer found legacy is asked again at a refresh (it may have been upgraded), but not sooner than
# this: refreshes follow hellos and peer changes, which strangers' verified claims can bring often.
LEGACY_RECHECK_MS = 10 * 60_000
MAX_REPORTED = 1  # of each offence, per peer per report: a burst (a restart, a flaky link) costs little


async def tree(request: Request, peer: str) -> Response:
    """``POST /v1/tree``: a peer's IHAVE, GRAFT and PRUNE (404 on a node that does not speak it)."""
    fed = request.app.state.federation
    relay: TreeRelay | None = fed.tree
    if relay is None:
        return _answer(wire.error_body("not_found"), 404)
    msg = decode_tree(signed_body(request))
    extra = msg.cost - 1  # the request's own token was taken by the guard
    if extra and fed.limiter.take(peer, extra) < extra:
        return _answer(wire.error_body(wire.RATE_LIMITED), 429, {"Retry-After": fed.limiter.retry_after_header(peer)})
    held: set[bytes] = set()
    if msg.ihave:
        held = await fed.store.run(fed.pipeline.log.known, [id_ for id_, _ in msg.ihave])
    pushes = relay.received(peer, msg, held)
    if pushes:
        woken = await fed.store.run(relay.queue_held, peer, pushes)
        if woken:
            fed.notify(frozenset(woken))
    return _answer(msgpack.packb({}), 200)


def _answer(body: bytes, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status, headers, media_type=wire.MEDIA_TYPE)


@dataclass(slots=True)
class _Outgoing:
    """What waits to be sent to one peer (merged: one message carries all of it)."""

    ihave: list[tuple[bytes, int]] = field(default_factory=list)
    graft: bool | None = None  # a GRAFT waits (its eager flag), or None
    graft_ids: list[bytes] = field(default_factory=list)
    prune: bool = False
    fetch: list[bytes] = field(default_factory=list)  # ids no GRAFT brought: POST /v1/gossip/ids

    def messages(self) -> list[TreeMessage]:
        out: list[TreeMessage] = []
        first = True
        while first or self.ihave or self.graft_ids:
            graft = None
            if self.graft is not None and (first or self.graft_ids):
                graft = (self.graft, tuple(self.graft_ids[:MAX_IDS]))
                del self.graft_ids[:MAX_IDS]
            msg = TreeMessage(graft, tuple(self.ihave[:MAX_IDS]), self.prune and first)
            del self.ihave[:MAX_IDS]
            if msg.graft is not None or msg.ihave or msg.prune:
                out.append(msg)
            first = False
        return out


Send = Callable[[str, TreeMessage], Awaitable[None]]
Fetch = Callable[[str, list[bytes]], Awaitable[None]]
Classify = Callable[[str], Awaitable[bool]]


def hops_of(arrived_ttl: int) -> int:
    """How many links an item that arrived with ``arrived_ttl`` took to reach its sender: the author's
    node sends ``ORIGIN_TTL`` and every hop takes one off, down to 0 (section 7). Exact for the first
    hops, which is all fan-out needs (0 counts as ``ORIGIN_TTL``: at least that far). An honest node
    never sends more than ``ORIGIN_TTL``; more counts as far (``MAX_HOPS``), so a peer cannot have its
    payloads fanned out, or its duplicates excused as fanned, by inflating the ttl."""
    if arrived_ttl > wire.ORIGIN_TTL:
        return pt.MAX_HOPS
    return wire.ORIGIN_TTL - max(arrived_ttl, 0)


Offend = Callable[[list[tuple[str, dict[str, int]]]], Awaitable[object]]


def links(
    http: PeerClient, url_of: Callable[[str], str | None], ingest: Callable[[str, list], Awaitable[None]]
) -> dict[str, Any]:
    """``run``'s ``send``, ``fetch`` and ``classify`` over the signed peer client; ``url_of(peer)`` is
    the peer's base URL (None: unknown now), ``ingest(peer, items)`` feeds fetched items to the
    pipeline as from that peer."""

    def url(peer: str) -> str:
        found = url_of(peer)
        if found is None:
            raise DeliveryError("no address for this peer")
        return found

    async def send(peer: str, msg: TreeMessage) -> None:
        await http.tree(url(peer), encode_tree(msg))

    async def fetch(peer: str, ids: list[bytes]) -> None:
        page = await http.gossip_by_ids(url(peer), ids)
        if page.items:
            await ingest(peer, page.items)

    async def classify(peer: str) -> bool:
        info = await http.node_info(url(peer))
        return CAPABILITY in info.gossip and info.node_id == encode_node_id(bytes.fromhex(peer))

    return {"send": send, "fetch": fetch, "classify": classify}


class TreeRelay:
    """One node's Plumtree state and its drivers (see the module docstring). Thread-safe: the store's
    thread, request handlers and the timer task all call it."""

    def __init__(self, *, store: Store, outbox: Outbox, clock: Clock, timers: pt.Timers | None = None) -> None:
        self._store = store
        self._outbox = outbox
        self._clock = clock
        self.plumtree = pt.Plumtree(timers)
        self._lock = threading.Lock()
        self._members: set[str] = set()  # pushable peers the machine knows
        self._speaks: dict[str, bool] = {}  # peer -> speaks plumtree/1 (absent: not asked yet)
        self._legacy_since: dict[str, int] = {}  # peer -> when it answered it does not (ms)
        self._asking: set[str] = set()
        self._unanswered: set[str] = set()  # asked and not answered: asked again at the next refresh
        self._out: dict[str, _Outgoing] = {}
        self._planned: int | None = None  # the deadline the timer task sleeps until
        self._wake: Callable[[], None] = lambda: None
        self.stats: Counter[str] = Counter()  # payloads, duplicates, ihave/graft/prune sent and received …
        self._offences: dict[str, Counter[str]] = {}  # broken promises not yet reported, by member
        self._unreached: set[str] = set()  # members our last tree message to failed: nothing held against them

    # -- the pipeline's side (the store's thread, in the ingest transaction) -------------------------

    def targets(self, envelope_id: bytes, ttl: int, from_peer: str | None, pushable: Sequence[str]) -> list[str]:
        """Who gets the envelope ``envelope_id`` (new here, from ``from_peer``; None: made here) of
        ``pushable``."""
        return self.targets_many([(envelope_id, ttl)], from_peer, pushable)[0]

    def targets_many(
        self, items: Sequence[tuple[bytes, int]], from_peer: str | None, pushable: Sequence[str], *,
        pushed: bool = True,
    ) -> list[list[str]]:  # fmt: skip
        """``targets`` of each ``(envelope id, ttl)`` of a batch, in one hold of the lock. Items going to
        the same peers share one list: read them, never change them. ``pushed`` False: what we pulled
        or fetched from ``from_peer``, which leaves its link as it was."""
        now = self._clock()
        out: list[list[str]] = []
        to_peers: list[tuple[pt.Peer, ...]] = []
        with self._lock:
            members, tree = self._members, self.plumtree
            if from_peer is None:
                for envelope_id, _ in items:
                    actions = tree.broadcast(envelope_id, now)
                    to_peers.append(tuple(a.peer for a in actions if isinstance(a, pt.Push)))
                    self._queue(actions)
            else:
                # ``ttl`` is what it is passed on with: one less than it arrived with (0 stays 0)
                plans, actions = tree.on_payloads(from_peer, [(i, hops_of(ttl + 1)) for i, ttl in items], now,
                                                  pushed=pushed)  # fmt: skip
                to_peers.extend(plans)
                self._queue(actions)
                self.stats["payloads"] += len(items)
            # Most items of a batch go to the same peers: one list each (the callers only read them).
            lists: dict[tuple[pt.Peer, ...], list[str]] = {}
            for pushes in to_peers:
                to = lists.get(pushes)
                if to is None:
                    chosen = set(pushes)
                    to = lists[pushes] = [p for p in pushable if p != from_peer and (p in chosen or p not in members)]
                out.append(to)
            due = self._due()
        if due:  # an IHAVE batch to flush before the timer task would wake
            self._wake()
        return out

    def duplicates(self, from_peer: str, count: int, items: Callable[[], Sequence[tuple[bytes, int]]]) -> None:
        """``from_peer`` sent ``count`` envelopes this node held already; ``items()`` lists them as ``(id,
        ttl it arrived with)``, asked for only when the tree heeds them (most copies come from peers off
        it: nothing to list). The hops tell a fanned-out copy near its author (never a reason to
        prune) from a tree push."""
        now = self._clock()
        with self._lock:
            self.stats["duplicates"] += count
            if not self.plumtree.heeds_duplicates(from_peer):
                return
            copies = items()
            hops = {ttl: hops_of(ttl) for ttl in {ttl for _, ttl in copies}}  # a batch came with a ttl or a few
            self._queue(self.plumtree.on_duplicates(from_peer, [(id_, hops[ttl]) for id_, ttl in copies], now))
            due = self._due()
        if due:
            self._wake()

    # -- the handler's side ---------------------------------------------------------------------

    def received(self, peer: str, msg: TreeMessage, held: set[bytes]) -> list[bytes]:
        """A peer's tree message; the ids to push to it (its GRAFT). ``held``: of its IHAVE ids, those
        the store holds (left out unless recent here: they may show a shorter path)."""
        now = self._clock()
        pushes: list[bytes] = []
        with self._lock:
            if peer not in self._members:
                self.stats["from_strangers"] += 1
                return pushes  # only peers this node gossips with steer its tree
            if msg.graft is not None:
                self.stats["graft_received"] += 1
                eager, ids = msg.graft
                pushes = [a.id for a in self.plumtree.on_graft(peer, ids, now, eager) if isinstance(a, pt.Push)]
            if msg.ihave:
                self.stats["ihave_received"] += len(msg.ihave)
                items = [(i, h) for i, h in msg.ihave if i not in held or self.plumtree.knows(i)]
                self._queue(self.plumtree.on_ihave(peer, items, now))
            if msg.prune:
                self.stats["prune_received"] += 1
                self.plumtree.on_prune(peer, now)
        self._poke()
        return pushes

    def queue_held(self, peer: str, ids: Sequence[bytes]) -> set[str]:
        """Queue for ``peer`` the envelopes of ``ids`` held here (live, gossiped kinds), in the store's
        thread; the peers to wake."""
        if not ids:
            return set()
        where, params = id_in(ids)
        rows = self._store.query(
            f"SELECT id, ttl, raw, expires_at FROM envelopes WHERE {where}"
            f" AND expires_at > ? AND kind NOT IN ({', '.join('?' * len(DIRECT_KINDS))})",
            [*params, self._clock(), *sorted(DIRECT_KINDS)],
        )
        deliveries = [(peer, wire.encode_item(r["ttl"], bytes(r["raw"])), bytes(r["id"]).hex(), r["expires_at"]) for r in rows]
        with self._store.transaction():
            return self._outbox.enqueue_many(deliveries, kind=GOSSIP_KIND, now=self._clock())

    # -- membership -----------------------------------------------------------------------------

    def refresh(self, pushable: Iterable[str]) -> None:
        """The peers this node gossips with now (added, with a URL). New ones start legacy until
        they are asked (by ``run``) whether they speak plumtree/1; legacy ones are asked again once
        ``LEGACY_RECHECK_MS`` passed since they answered."""
        now_members = set(pushable)
        now = self._clock()
        with self._lock:
            for gone in self._members - now_members:
                self.plumtree.peer_down(gone)
                self._speaks.pop(gone, None)
                self._legacy_since.pop(gone, None)
                self._out.pop(gone, None)
                self._offences.pop(gone, None)
                self._unreached.discard(gone)
            for new in now_members - self._members:
                self.plumtree.peer_up(new, legacy=True)
            self._members = now_members
            self._unanswered.clear()
            for peer in [p for p, speaks in self._speaks.items()
                         if not speaks and now - self._legacy_since.get(p, now) >= LEGACY_RECHECK_MS]:  # fmt: skip
                del self._speaks[peer]  # asked again: it may have been upgraded (legacy meanwhile)
        self._poke(force=True)

    def recheck(self, peer: str) -> None:
        """``peer`` itself said hello (it may have restarted, upgraded): if it was found legacy, ask it
        again now, whatever ``LEGACY_RECHECK_MS`` says. A peer can so cost us one question about itself."""
        with self._lock:
            if self._speaks.get(peer) is not False:
                return
            del self._speaks[peer]
            self._legacy_since.pop(peer, None)
        self._poke(force=True)

    def unasked(self) -> set[str]:
        """Peers not yet known to speak plumtree/1 or not (they are served as legacy meanwhile)."""
        with self._lock:
            return self._members - set(self._speaks)

    def classified(self, peer: str, speaks: bool) -> None:
        with self._lock:
            if peer not in self._members:
                return
            self._speaks[peer] = speaks
            if speaks:
                self._legacy_since.pop(peer, None)
            else:
                self._legacy_since[peer] = self._clock()
            if speaks == (peer in self.plumtree.legacy):  # it changed: it starts over, eager
                self.plumtree.peer_down(peer)
                self.plumtree.peer_up(peer, legacy=not speaks)

    # -- the timer task -------------------------------------------------------------------------

    async def run(
        self,
        *,
        send: Send,
        fetch: Fetch,
        classify: Classify,
        offend: Offend | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Tick the machine at its deadlines and send what it says, until cancelled. ``send`` POSTs a
        tree message, ``fetch`` fetches and ingests ids by ``POST /v1/gossip/ids``, ``classify``
        tells whether a peer lists plumtree/1; each raises DeliveryError or WireError on failure.
        ``offend`` (``federation.scoring.PeerScoring.record_many``) is given the peers' broken
        promises every ``REPORT_INTERVAL_S``, at most ``MAX_REPORTED`` of each per peer."""
        token = trio.lowlevel.current_trio_token()
        wakeup = trio.Event()

        def wake() -> None:
            try:
                token.run_sync_soon(lambda: wakeup.set())
            except trio.RunFinishedError:
                pass

        sending: set[str] = set()
        async with trio.open_nursery() as nursery:
            self._wake = wake
            if offend is not None:
                nursery.start_soon(self._report, offend)
            task_status.started()
            try:
                while True:
                    wakeup = trio.Event()
                    now = self._clock()
                    with self._lock:
                        self._queue(self.plumtree.tick(now))
                        self._planned = deadline = self.plumtree.next_deadline()
                        ready = [p for p in self._out if p not in sending]
                        busy = self._asking | self._unanswered
                        ask = [p for p in self._members if p not in self._speaks and p not in busy]
                        self._asking.update(ask)
                    for peer in ready:
                        sending.add(peer)
                        nursery.start_soon(self._sender, peer, send, fetch, sending)
                    for peer in ask:
                        nursery.start_soon(self._classify, peer, classify)
                    if deadline is None:
                        await wakeup.wait()
                    else:
                        with trio.move_on_after(max(0, deadline - self._clock()) / 1000):
                            await wakeup.wait()
            finally:
                self._wake = lambda: None

    async def _sender(self, peer: str, send: Send, fetch: Fetch, sending: set[str]) -> None:
        try:
            while True:
                with self._lock:
                    out = self._out.pop(peer, None)
                if out is None:
                    return
                fetch_ids, messages = out.fetch, out.messages()
                for msg in messages:
                    try:
                        await send(peer, msg)
                    except (DeliveryError, WireError) as exc:  # hints: lost ones are repaired later
                        with self._lock:
                            self.stats["send_failed"] += 1
                            self._unreached.add(peer)  # its PRUNE or GRAFT may not have arrived
                        LOGGER.debug("tree message to %s failed: %s", peer[:12], exc)
                        break
                    with self._lock:
                        self._unreached.discard(peer)
                        self.stats["ihave_sent"] += len(msg.ihave)
                        self.stats["graft_sent"] += msg.graft is not None
                        self.stats["prune_sent"] += msg.prune
                for start in range(0, len(fetch_ids), MAX_IDS):
                    try:
                        await fetch(peer, fetch_ids[start : start + MAX_IDS])
                        with self._lock:
                            self.stats["fetched"] += len(fetch_ids[start : start + MAX_IDS])
                    except (DeliveryError, WireError) as exc:  # reconciliation is the last resort
                        LOGGER.debug("fetching from %s failed: %s", peer[:12], exc)
                        break
        except Exception:  # a bug in sending to one peer must not stop the tree
            LOGGER.exception("sending tree messages to %s failed", peer[:12])
        finally:
            sending.discard(peer)
            self._poke(force=True)  # what was queued meanwhile gets a sender

    def take_offences(self) -> list[tuple[str, dict[str, int]]]:
        """The broken promises noted since the last call, at most ``MAX_REPORTED`` of each per peer
        (``stats`` keeps the true counts)."""
        with self._lock:
            taken, self._offences = self._offences, {}
        return [(peer, {k: min(n, MAX_REPORTED) for k, n in sorted(c.items())}) for peer, c in sorted(taken.items())]

    async def _report(self, offend: Offend) -> None:
        while True:
            await trio.sleep(REPORT_INTERVAL_S)
            offences = self.take_offences()
            if not offences:
                continue
            try:
                await offend(offences)
            except Exception:  # scoring failing (the store) must not stop the tree
                LOGGER.exception("reporting %d peers' broken tree promises failed", len(offences))

    async def _classify(self, peer: str, classify: Classify) -> None:
        speaks: bool | None = None
        try:
            speaks = await classify(peer)
        except (DeliveryError, WireError) as exc:  # stays legacy (today's push) until asked again
            LOGGER.debug("could not ask %s for its gossip capabilities: %s", peer[:12], exc)
        except Exception:
            LOGGER.exception("asking %s for its gossip capabilities failed", peer[:12])
        if speaks is not None:
            self.classified(peer, speaks)
        with self._lock:
            self._asking.discard(peer)
            if speaks is None:
                self._unanswered.add(peer)

    # -- internals (under the lock) -----------------------------------------------------------------

    def _queue(self, actions: Iterable[pt.Action]) -> None:
        fetching: set[bytes] = set()
        for a in actions:
            if isinstance(a, pt.Push):
                continue
            if isinstance(a, pt.Broken):
                self.stats[a.reason] += 1
                if a.peer in self._members and a.peer not in self._unreached:  # bounded: one per peer
                    self._offences.setdefault(a.peer, Counter())[a.reason] += 1
                if a.reason == "ignored_prune":  # it may have restarted (all eager again): say it again
                    a = pt.Prune(a.peer)
                elif a.id is not None and a.id not in fetching:  # announced, never pushed: fetch it
                    fetching.add(a.id)
                    self._out_of(a.peer).fetch.append(a.id)
                    continue
                else:
                    continue
            out = self._out_of(a.peer)
            if isinstance(a, pt.Announce):
                out.ihave.extend(a.items)
                del out.ihave[:-MAX_PENDING]
            elif isinstance(a, pt.Graft):
                out.graft = bool(out.graft) or a.eager
                out.graft_ids.extend(a.ids)
                del out.graft_ids[:-MAX_PENDING]
                out.prune = out.prune and not a.eager
            elif isinstance(a, pt.Prune):
                out.prune = True
                out.graft = None if out.graft is None else False

    def _out_of(self, peer: str) -> _Outgoing:
        out = self._out.get(peer)
        if out is None:
            out = self._out[peer] = _Outgoing()
        return out

    def _due(self) -> bool:
        """Whether the timer task must look now: messages wait, or the machine's next deadline is
        earlier than the one it sleeps until (under the lock)."""
        deadline = self.plumtree.next_deadline()
        return bool(self._out) or (deadline is not None and (self._planned is None or deadline < self._planned))

    def _poke(self, force: bool = False) -> None:
        with self._lock:
            due = force or self._due()
        if due:
            self._wake()
