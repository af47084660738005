"""The ingest pipeline: what happens to a batch of gossip items, in the store's worker thread.

``Pipeline.ingest`` takes the items of one push or pull page and, in this order:

1. verifies every envelope with ONE native ``verify_batch`` call (structure, clock, ZIP-215 batch);
2. drops what is already held, with one ``GossipLog.known`` query (and repeats inside the batch);
3. judges each new envelope by its kind's rules (``_judge``): intents re-tokenized, withdrawals
   checked against the intent they end, offers and decisions addressed to this node handed to
   ``Offers``, those addressed to others checked and relayed;
4. in ONE transaction: stores the accepted envelopes and their effects (offers, withdrawn leads),
   runs ONE matcher call over the new live intents when this node is a vendor (creating leads), and
   queues each accepted envelope with ttl − 1 for every pushable peer except the one it came from and
   its author, while hops remain.

It answers one reason byte per item (0 = accepted) and the peers given new deliveries, whom the caller
wakes (``Deliverer.notify``) once the transaction has committed. ``publish`` does step 4 for an
envelope this node made. Nothing here does I/O besides the store; nothing raised by bad input
escapes (it becomes a reason code).

Hop counting: an item ``[ttl, env]`` may travel ``ttl`` more hops after reaching us; we store and
pass on ``ttl − 1`` (not below 0), forwarding only when ``ttl > 0``. The stored ttl is what pullers
get, so an envelope goes as far by pull as by push.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from federation import wire
from federation.outbox import Outbox
from node import envelope as envelopes
from node.backends import NATIVE, Backend, VerifierLike
from node.envelope import Envelope
from node.errors import EnvelopeError, ValidationError
from node.gossiplog import GossipLog, addressing, envelope_row
from node.intents import check_body
from node.leads import Leads
from node.offers import Offers, check_decision_body, check_offer_body
from node.peers import Peers
from node.reasons import Reason
from node.store import Clock, Store, wall_clock_ms

GOSSIP_KIND = "gossip"  # the outbox kind of gossip items
GOSSIPED_KINDS = frozenset({"intent", "withdraw", "offer", "accept", "decline"})
ADDRESSED_KINDS = frozenset({"offer", "accept", "decline"})


class MatcherIndex(Protocol):
    def match_envelopes(self, raws: Sequence[bytes]) -> list[list[int]]: ...
    def __len__(self) -> int: ...


class Ingested(NamedTuple):
    """What ``ingest`` returns: one reason byte per item, and the peers (hex keys) to wake."""

    reasons: bytes
    peers: frozenset[str]


@dataclass
class _Accepted:
    """An envelope judged acceptable, waiting for the batch's transaction."""

    env: Envelope
    ttl_in: int  # as received (clamped); forwarded while > 0
    recipient: str | None
    ref: str | None
    forward: bool  # False for envelopes addressed to us: they have arrived


@dataclass
class _Batch:
    """The state of one ingest: what was accepted so far (later items may refer to earlier ones)."""

    now: int
    accepted: dict[str, _Accepted] = field(default_factory=dict)  # by hex id, in batch order
    withdrawn: set[str] = field(default_factory=set)  # intent ids withdrawn by this batch


class Pipeline:
    """Ingest and publish for one node. Every method runs in the store's thread (``AsyncStore.run``).

    ``index`` returns the vendor's compiled SubscriptionIndex (the caller rebuilds it when
    subscriptions change); it is only called when ``role`` is ``vendor``.
    """

    def __init__(
        self,
        store: Store,
        public_key: bytes,
        role: str,
        verifier: VerifierLike | None = None,
        index: Callable[[], MatcherIndex | None] | None = None,
        clock: Clock = wall_clock_ms,
        backend: Backend = NATIVE,
        *,
        outbox: Outbox | None = None,
    ) -> None:
        self.store = store
        self.me = bytes(public_key).hex()
        self.role = role
        self._verifier = verifier if verifier is not None else backend.Verifier()
        self._index = index
        self._clock = clock
        self._backend = backend
        self._outbox = outbox if outbox is not None else Outbox(store)
        self.log = GossipLog(store, clock=clock)
        self._peers = Peers(store, clock=clock)
        self._leads = Leads(store, clock=clock)
        self._offers = Offers(store, clock=clock, backend=backend)

    # -- ingest -------------------------------------------------------------------------------------

    def ingest(self, items: Sequence[wire.GossipItem], from_peer: str | None = None) -> Ingested:
        """Judge, store and relay a batch from ``from_peer`` (hex key; None when unknown)."""
        if not items:
            return Ingested(b"", frozenset())
        batch = _Batch(now=self._clock())
        codes, ids = self._verifier.verify_batch([item.envelope for item in items], batch.now)
        reasons = bytearray(codes)
        fresh: list[tuple[int, str]] = []
        seen: set[str] = set()
        for i, code in enumerate(reasons):
            if code == Reason.OK:
                hex_id = ids[32 * i : 32 * i + 32].hex()
                if hex_id in seen:
                    reasons[i] = Reason.DUPLICATE
                else:
                    seen.add(hex_id)
                    fresh.append((i, hex_id))
        with self.store.transaction():
            known = self.log.known([hex_id for _, hex_id in fresh])
            for i, hex_id in fresh:
                if hex_id in known:
                    reasons[i] = Reason.DUPLICATE
                    continue
                env = envelopes.decode(items[i].envelope, self._backend)
                reasons[i] = self._judge(env, min(max(items[i].ttl, 0), wire.MAX_TTL), batch)
            peers = self._commit(batch, from_peer)
        return Ingested(bytes(reasons), frozenset(peers))

    def _judge(self, env: Envelope, ttl: int, batch: _Batch) -> Reason:
        """The reason for one verified, new envelope; when OK it joins ``batch.accepted`` (and its
        effects on offers are written: they share the batch's transaction)."""
        if env.kind not in GOSSIPED_KINDS:
            return Reason.NOT_FOR_ROLE  # request, grant, receipt …: exchanged directly, never gossiped
        try:
            if env.kind == "intent":
                check_body(env.body, backend=self._backend)
                reason = Reason.OK
            elif env.kind == "withdraw":
                reason = self._judge_withdraw(env, batch)
            elif env.kind == "offer":
                check_offer_body(env.body)
                reason = self._judge_offer(env, batch)
            else:
                check_decision_body(env.body)
                reason = self._judge_decision(env, batch)
            if reason != Reason.OK:
                return reason
            recipient, ref = addressing(env)
        except ValidationError:
            return Reason.INVALID_BODY
        forward = recipient != self.me
        batch.accepted[env.id.hex()] = _Accepted(env, ttl, recipient, ref, forward)
        return Reason.OK

    def _intent(self, intent_id: str, batch: _Batch) -> tuple[int, str, bool] | None:
        """(expires, author hex, withdrawn) of an intent held or accepted earlier in the batch."""
        pending = batch.accepted.get(intent_id)
        if pending is not None:
            if pending.env.kind != "intent":
                return None
            return pending.env.expires, pending.env.author.hex(), intent_id in batch.withdrawn
        held = self.log.get(intent_id)
        if held is None or held.kind != "intent":
            return None
        withdrawn = intent_id in batch.withdrawn or bool(self.log.by_ref(intent_id, "withdraw"))
        return held.expires, held.author, withdrawn

    def _judge_withdraw(self, env: Envelope, batch: _Batch) -> Reason:
        body = env.body
        if not isinstance(body, dict) or list(body) != ["intent"]:
            return Reason.INVALID_BODY
        target = body["intent"]
        if not isinstance(target, bytes) or len(target) != 32:
            return Reason.INVALID_BODY
        intent = self._intent(target.hex(), batch)
        if intent is None:
            return Reason.UNKNOWN_INTENT  # we cannot tell who may withdraw it: not relayed
        expires, author, withdrawn = intent
        if author != env.author.hex() or expires != env.expires:
            return Reason.WRONG_AUTHOR
        if withdrawn:
            return Reason.WITHDRAWN  # an intent is withdrawn once
        batch.withdrawn.add(target.hex())
        return Reason.OK

    def _judge_offer(self, env: Envelope, batch: _Batch) -> Reason:
        to = env.body["to"].hex()
        if to == self.me:
            if self.role != "person":
                return Reason.NOT_FOR_ROLE
            return Reason(self._offers.receive(env, me=bytes.fromhex(self.me)))
        intent = self._intent(env.body["intent"].hex(), batch)
        if intent is not None:  # a relay that holds the intent checks the offer against it
            expires, author, withdrawn = intent
            if author != to:
                return Reason.INVALID_BODY
            if withdrawn:
                return Reason.WITHDRAWN
            if expires <= batch.now:
                return Reason.EXPIRED
        return Reason.OK

    def _judge_decision(self, env: Envelope, batch: _Batch) -> Reason:
        to = env.body["to"].hex()
        if to == self.me:
            if self.role != "vendor":
                return Reason.NOT_FOR_ROLE
            return Reason(self._offers.decision_received(env))
        offer = self._offer(env.body["offer"].hex(), batch)
        if offer is not None:  # a relay that holds the offer checks who decides and for whom
            if offer.author != env.body["to"] or offer.body.get("intent") != env.body["intent"]:
                return Reason.INVALID_BODY
            if offer.body.get("to") != env.author:
                return Reason.WRONG_AUTHOR
        return Reason.OK

    def _offer(self, offer_id: str, batch: _Batch) -> Envelope | None:
        pending = batch.accepted.get(offer_id)
        if pending is not None:
            return pending.env if pending.env.kind == "offer" else None
        held = self.log.get(offer_id)
        if held is None or held.kind != "offer":
            return None
        try:
            return envelopes.decode(held.raw, self._backend)
        except EnvelopeError:  # pragma: no cover - only verified envelopes are held
            return None

    def _commit(self, batch: _Batch, from_peer: str | None) -> set[str]:
        """Store what ``batch`` accepted with its effects and queue the forwards (caller's transaction)."""
        accepted = list(batch.accepted.values())
        if not accepted:
            return set()
        rows = [
            envelope_row(
                a.env,
                ttl=max(a.ttl_in - 1, 0),
                recipient=a.recipient,
                ref=a.ref,
                from_peer=from_peer,
                received_at=batch.now,
            )
            for a in accepted
        ]
        self.log.add_many(rows)
        for intent_id in batch.withdrawn:
            self._leads.withdraw(intent_id, batch.now)
        if self.role == "vendor":
            self._match([a.env for a in accepted if a.env.kind == "intent" and a.env.id.hex() not in batch.withdrawn])
        forwards = [(a.env, a.ttl_in - 1) for a in accepted if a.forward and a.ttl_in > 0]
        return self._enqueue(forwards, exclude={from_peer} if from_peer else set())

    def _match(self, intents: list[Envelope]) -> None:
        index = self._index() if self._index is not None and intents else None
        if index is None or len(index) == 0:
            return
        matches = index.match_envelopes([env.raw for env in intents])
        leads = [(env, ids) for env, ids in zip(intents, matches, strict=True) if ids]
        if leads:
            self._leads.add_many(leads)

    def _enqueue(self, forwards: list[tuple[Envelope, int]], *, exclude: set[str]) -> set[str]:
        """Queue each (envelope, ttl) for every pushable peer but ``exclude`` and the author."""
        if not forwards:
            return set()
        peers = [p.public_key for p in self._peers.pushable() if p.public_key not in exclude]
        notified: set[str] = set()
        now = self._clock()
        for env, ttl in forwards:
            payload = wire.encode_item(ttl, env.raw)
            author = env.author.hex()
            for peer in peers:
                if peer == author:
                    continue
                queued = self._outbox.enqueue(
                    peer, payload, kind=GOSSIP_KIND, now=now, ref=env.id.hex(), expires_at=env.expires
                )
                if queued is not None:
                    notified.add(peer)
        return notified

    # -- local envelopes ------------------------------------------------------------------------------

    def publish(self, env: Envelope) -> set[str]:
        """Hold an envelope this node made (ttl ORIGIN_TTL) and queue it for every pushable peer; the
        peers to wake. Publishing the same envelope again changes nothing. Joins the caller's
        transaction, so what produced the envelope and its sending commit together."""
        hex_id = env.id.hex()
        with self.store.transaction():
            if self.log.known([hex_id]):
                return set()
            recipient, ref = addressing(env)
            self.log.add(env, ttl=wire.ORIGIN_TTL, recipient=recipient, ref=ref, from_peer=None)
            return self._enqueue([(env, wire.ORIGIN_TTL)], exclude=set())

    # -- pulls ----------------------------------------------------------------------------------------

    def page(self, after: int, limit: int, *, recipient: str | None = None) -> wire.PullPage:
        """What ``GET /v1/gossip`` (or ``/v1/inbox`` with ``recipient``) answers: live envelopes with
        seq > ``after`` in seq order, without withdrawn intents, at most ``limit`` items and
        MAX_BATCH_BYTES of envelopes; ``next`` is the last seq looked at (``after`` when none)."""
        held, next_seq = self.log.since(after, limit, recipient=recipient)
        withdrawn = self._withdrawn([h.id for h in held if h.kind == "intent"])
        items: list[wire.GossipItem] = []
        size, last = 0, after
        for h in held:
            size += len(h.raw) + 16  # the item's own framing, generously
            if size > wire.MAX_BATCH_BYTES - 64 and last != after:
                next_seq = last  # the rest comes with the next page
                break
            last = h.seq
            if h.id not in withdrawn:
                items.append(wire.GossipItem(h.ttl, h.raw))
        return wire.PullPage(items, next_seq)

    def _withdrawn(self, intent_ids: list[str]) -> set[str]:
        """Which of these intents a held withdrawal ended (one query)."""
        if not intent_ids:
            return set()
        rows = self.store.query(
            "SELECT ref FROM envelopes WHERE kind = 'withdraw' AND ref IN (SELECT value FROM json_each(?))",
            [json.dumps(intent_ids)],
        )
        return {r["ref"] for r in rows}
