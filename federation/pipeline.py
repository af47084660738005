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

Direct kinds (``request``, ``grant``, ``revoke``, ``deletion``, ``receipt``) are never gossiped: only
their addressee (the body's ``to``) takes them (anyone else answers ``not_for_role`` and stores
nothing), they are held with ttl 0, never forwarded, left out of ``GET /v1/gossip`` and served by
``GET /v1/inbox`` to the addressee alone. ``publish_direct`` holds one this node made and queues it
for its addressee only. Their effects are node.grants' and node.receipts' (a revocation received
makes this node sign a ``deletion``, sent back in the same transaction).

Consented access runs here too, in the store's thread: ``answer_access`` (a fetch: check, spend a
use, append a receipt and queue its copy, all in one transaction, then seal the values to the
grantee), ``receive_pushes`` (a vendor opening what a person's node pushed) and ``queue_pushes``
(a person's node sealing changed vault fields for its live push grants into the outbox).
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
from node.errors import EnvelopeError, ValidationError, VrmError
from node.gossiplog import GossipLog, addressing, envelope_row
from node.grants import Grants
from node.identity import Identity
from node.intents import check_body
from node.leads import Leads
from node.offers import Offers, check_decision_body, check_offer_body
from node.peers import Peers
from node.reasons import Reason
from node.receipts import Receipts
from node.seal import open_sealed, seal
from node.store import Clock, Store, wall_clock_ms
from node.vault import Vault, validate_field_name

GOSSIP_KIND = "gossip"  # the outbox kind of gossip items (and of direct envelopes, sent as items)
ACCESS_KIND = "access"  # the outbox kind of pushed access data (POST /v1/access/push)
GOSSIPED_KINDS = frozenset({"intent", "withdraw", "offer", "accept", "decline"})
ADDRESSED_KINDS = frozenset({"offer", "accept", "decline"})
# Direct kinds and the role their addressee must act as.
DIRECT_ROLES = {"request": "person", "grant": "vendor", "revoke": "vendor", "deletion": "person", "receipt": "vendor"}
DIRECT_KINDS = frozenset(DIRECT_ROLES)


class MatcherIndex(Protocol):
    def match_envelopes(self, raws: Sequence[bytes]) -> list[list[int]]: ...
    def __len__(self) -> int: ...


class Ingested(NamedTuple):
    """What ``ingest`` returns: one reason byte per item, and the peers (hex keys) to wake."""

    reasons: bytes
    peers: frozenset[str]


class Answered(NamedTuple):
    """What ``answer_access`` returns: ``outcome`` is ``ok`` or the refusal's label; when ok,
    ``sealed`` holds exactly ``fields`` (sealed to the requester, info = the grant id). ``peers``
    got the receipt's copy queued (wake them)."""

    outcome: str
    fields: list[str]
    sealed: bytes | None
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
    replies: list[tuple[Envelope, str]] = field(default_factory=list)  # direct envelopes to send back


class Pipeline:
    """Ingest and publish for one node. Every method runs in the store's thread (``AsyncStore.run``).

    ``index`` returns the vendor's compiled SubscriptionIndex (the caller rebuilds it when
    subscriptions change); it is only called when ``role`` is ``vendor``. ``identity`` (this node's,
    matching ``public_key``) signs what the node answers by itself (deletion statements, receipts) and
    opens data sealed to it; without it those kinds are refused ``not_for_role``. ``vault_key`` opens
    the vault (None: a vault without passphrase, or a node that cannot answer fetches).
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
        identity: Identity | None = None,
        vault_key: bytes | None = None,
    ) -> None:
        if identity is not None and identity.public_key != bytes(public_key):
            raise ValidationError("identity", "the pipeline's identity must be the node's key")
        self.store = store
        self.me = bytes(public_key).hex()
        self._identity = identity
        self._vault_key = vault_key
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
        self.grants = Grants(store, clock=clock, backend=backend)
        self.receipts = Receipts(store, clock=clock, backend=backend)

    def vault(self) -> Vault:
        """This node's vault (opened with the key the pipeline was given)."""
        return Vault(self.store, self._vault_key, clock=self._clock)

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
        if env.kind in DIRECT_KINDS:
            return self._judge_direct(env, batch)
        if env.kind not in GOSSIPED_KINDS:
            return Reason.NOT_FOR_ROLE  # pragma: no cover - the verifier knows no other kind
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

    def _judge_direct(self, env: Envelope, batch: _Batch) -> Reason:
        """A direct envelope is taken only by its addressee, acting in the role its kind is for; its
        effect is the domain's (node.grants, node.receipts), written in the batch's transaction."""
        to = env.body.get("to") if isinstance(env.body, dict) else None
        if not isinstance(to, bytes) or len(to) != 32:
            return Reason.INVALID_BODY
        if to.hex() != self.me or self.role != DIRECT_ROLES[env.kind] or self._identity is None:
            return Reason.NOT_FOR_ROLE  # never relayed, never held for somebody else
        me = self._identity.public_key
        try:
            if env.kind == "request":
                reason = self.grants.request_received(env, me=me)
            elif env.kind == "grant":
                reason = self.grants.grant_received(env, me=me)
            elif env.kind == "revoke":
                reason, deletion = self.grants.revoke_received(self._identity, env)
                if deletion is not None:
                    batch.replies.append((deletion, env.author.hex()))
            elif env.kind == "deletion":
                reason = self.grants.deletion_received(env, me=me)
            else:
                reason = self.receipts.copy_received(env, me=me)
        except VrmError:  # the domain's refusal of what the body says; its own writes rolled back
            return Reason.INVALID_BODY
        if reason != Reason.OK:
            return Reason(reason)
        batch.accepted[env.id.hex()] = _Accepted(env, 0, self.me, None, False)
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
        peers = self._enqueue(forwards, exclude={from_peer} if from_peer else set())
        for reply, to in batch.replies:
            peers |= self.publish_direct(reply, to)
        return peers

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
        addressees = {p.public_key for p in self._peers.deliverable()} - exclude - set(peers)  # defences
        notified: set[str] = set()
        now = self._clock()
        for env, ttl in forwards:
            payload = wire.encode_item(ttl, env.raw)
            author = env.author.hex()
            recipient = addressing(env)[0]  # defences: a verified announced peer gets what is addressed to it
            for peer in peers + [recipient] if recipient in addressees else peers:
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
        if env.kind in DIRECT_KINDS:  # never gossiped, whoever publishes it
            return self.publish_direct(env, _addressee(env))
        hex_id = env.id.hex()
        with self.store.transaction():
            if self.log.known([hex_id]):
                return set()
            recipient, ref = addressing(env)
            self.log.add(env, ttl=wire.ORIGIN_TTL, recipient=recipient, ref=ref, from_peer=None)
            return self._enqueue([(env, wire.ORIGIN_TTL)], exclude=set())

    def publish_direct(self, env: Envelope, to_hex: str) -> set[str]:
        """Hold a direct envelope this node made, addressed to ``to_hex`` (ttl 0, served to it alone
        by ``GET /v1/inbox``), and queue it for that one peer when it has a URL; the peers to wake.
        Publishing it again changes nothing. Joins the caller's transaction."""
        if env.kind not in DIRECT_KINDS:
            raise ValidationError("kind", f"{env.kind!r} is gossiped, not sent directly")
        if _addressee(env) != to_hex:
            raise ValidationError("to", "a direct envelope goes to the key its body names")
        hex_id = env.id.hex()
        with self.store.transaction():
            if self.log.known([hex_id]):
                return set()
            self.log.add(env, ttl=0, recipient=to_hex, ref=None, from_peer=None)
            peer = self._peers.by_key(to_hex)
            if peer is None or peer.url is None:
                return set()  # it pulls its inbox from us
            queued = self._outbox.enqueue(
                to_hex,
                wire.encode_item(0, env.raw),
                kind=GOSSIP_KIND,
                now=self._clock(),
                ref=hex_id,
                expires_at=env.expires,
            )
        return {to_hex} if queued is not None else set()

    # -- consented access -----------------------------------------------------------------------------

    def answer_access(self, requester_hex: str, grant_id: bytes, fields: Sequence[str] | None) -> Answered:
        """Answer a fetch signed by ``requester_hex`` (``POST /v1/access``): the grant check, the use
        spent and the receipt appended happen in node.grants' one transaction, joined here by the
        receipt's copy queued for its vendor, so no answer ever goes out unreceipted."""
        identity = self._require_identity()
        with self.store.transaction():
            outcome = self.grants.access(identity, self.vault(), grant_id.hex(), requester_hex, fields)
            receipt = outcome.receipt
            peers = self.publish_direct(receipt, _addressee(receipt))
        if not outcome.ok:
            return Answered(outcome.reason.label, [], None, frozenset(peers))
        values = dict(outcome.values)
        names = sorted(values)
        sealed = seal(bytes.fromhex(requester_hex), self._backend.encode(values), info=bytes(grant_id))
        return Answered("ok", names, sealed, frozenset(peers))

    def receive_pushes(self, person_hex: str, items: Sequence[wire.PushItem]) -> bytes:
        """Keep what ``person_hex``'s node pushed (``POST /v1/access/push``): one reason byte per item,
        ``invalid_body`` for data that does not open to a map of field names to text."""
        identity = self._require_identity()
        reasons = bytearray()
        for item in items:
            try:
                values = _field_map(self._backend.decode(open_sealed(identity, item.sealed, info=item.grant)))
            except VrmError:
                reasons.append(Reason.INVALID_BODY)
                continue
            try:
                reasons.append(self.grants.store_pushed(person_hex, item.grant.hex(), item.version, values))
            except ValidationError:
                reasons.append(Reason.INVALID_BODY)
        return bytes(reasons)

    def queue_pushes(self) -> set[str]:
        """Seal, for each live push grant whose vault fields changed since it was last pushed, the
        granted fields to the grantee and queue them (outbox kind ``access``, one delivery per grant
        and version), each with its ``pushed`` receipt whose copy goes to the grantee; the peers to
        wake. The grantee must be a peer with a URL to be reached (the outbox retries until it has
        one; a grantee that is no peer at all has its deliveries dead-lettered by the runtime)."""
        with self.store.transaction():
            due = self.grants.pushes_due(self.vault())
            if not due:
                return set()
            identity = self._require_identity()
            peers: set[str] = set()
            now = self._clock()
            for grantee, grant_id, version, values in due:
                grant_bytes = bytes.fromhex(grant_id) if isinstance(grant_id, str) else bytes(grant_id)
                sealed = seal(bytes.fromhex(grantee), self._backend.encode(dict(values)), info=grant_bytes)
                queued = self._outbox.enqueue(
                    grantee,
                    wire.encode_push_item(grant_bytes, version, sealed),
                    kind=ACCESS_KIND,
                    now=now,
                    ref=f"{grant_bytes.hex()}:{version}",
                )
                if queued is None:
                    continue  # this version is already on its way
                peers.add(grantee)
                grant = self.grants.get(grant_bytes.hex())
                receipt = self.receipts.append(
                    identity,
                    to=bytes.fromhex(grantee),
                    grant=grant_bytes,
                    fields=sorted(values),
                    purpose=grant.purpose,
                    outcome="pushed",
                )
                peers |= self.publish_direct(receipt, grantee)
        return peers

    def _require_identity(self) -> Identity:
        if self._identity is None:
            raise ValidationError("identity", "this pipeline was built without the node's identity")
        return self._identity

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
            if h.id in withdrawn or (recipient is None and h.kind in DIRECT_KINDS):
                continue  # direct envelopes go to their addressee's inbox only
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


def _addressee(env: Envelope) -> str:
    """The hex key a direct envelope's body names as ``to``."""
    to = env.body.get("to") if isinstance(env.body, dict) else None
    if not isinstance(to, bytes) or len(to) != 32:
        raise ValidationError("to", f"a {env.kind} names its addressee in 'to' (32 bytes)")
    return to.hex()


def _field_map(value: object) -> dict[str, str]:
    """``value`` if it is a map of vault field names to text (ValidationError otherwise)."""
    if not isinstance(value, dict) or not value:
        raise ValidationError("data", "pushed data is a map of field names to values")
    for name, text in value.items():
        validate_field_name(name)
        if not isinstance(text, str):
            raise ValidationError("data", f"the value of {name!r} is not text")
    return value
