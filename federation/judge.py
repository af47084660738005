"""Stage 3 of ingest: each verified, new envelope judged by its kind's rules.

Intents need nothing more here (their body was checked with the signature, ``federation.verify``);
withdrawals are checked against the intent they end (one that says ``fulfilled`` also closes our lead
and supersedes our offers on it); offers and decisions addressed to this node are
handed to ``Offers``, those addressed to others checked against what this relay holds; direct kinds
are taken only by their addressee, acting in the role the kind is for, and their effects are
node.grants' and node.receipts' (a revocation received makes this node sign a ``deletion``, sent back
by the pipeline in the same transaction). Effects are written in the batch's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Protocol

from node import envelope as envelopes
from node.backends import NATIVE, Backend
from node.envelope import Envelope
from node.errors import EnvelopeError, ValidationError, VrmError
from node.gossiplog import GossipLog, addressing
from node.grants import Grants
from node.identity import Identity
from node.intents import check_withdraw_body
from node.offers import Offers, check_decision_body, check_offer_body
from node.reasons import Reason
from node.receipts import Receipts

from federation.kinds import DIRECT_KINDS, DIRECT_ROLES, GOSSIPED_KINDS

if TYPE_CHECKING:
    from federation.verify import Verdicts


class TtlOf(Protocol):
    """Item i's ttl, clamped (a list, or the pipeline's lazy view)."""

    def __getitem__(self, i: int, /) -> int: ...


class Accepted:
    """An envelope judged acceptable, waiting for the batch's transaction: the fields its row and its
    forwarding need (ids and keys as hex), and ``env``, its ``Envelope``. An intent accepted from
    stage 1's columns gets its ``env`` (and with it its decoded body) only if something reads it: a
    lead, a relay; storing and queueing it need only the fields."""

    __slots__ = ("kind", "id", "hex_id", "author", "author_key", "created", "expires", "raw", "ttl_in", "recipient",
                 "ref", "forward", "at", "_env", "_source")  # fmt: skip

    def __init__(self, env: Envelope, ttl_in: int, recipient: str | None, ref: str | None, forward: bool) -> None:
        self.kind, self.id, self.hex_id, self.author = env.kind, env.id, env.id.hex(), env.author.hex()
        self.author_key = env.author
        self.created, self.expires, self.raw = env.created, env.expires, env.raw
        self.ttl_in = ttl_in  # as received (clamped); forwarded while > 0
        self.recipient, self.ref = recipient, ref
        self.forward = forward  # False for envelopes addressed to us: they have arrived
        self.at = -1  # its place in the batch (set by ``judge_items``): rows keep the batch's order
        self._env: Envelope | None = env
        self._source: Verdicts | None = None

    @classmethod
    def intent(cls, verdicts: Verdicts, i: int, ttl_in: int) -> Accepted:
        """Item ``i`` of stage 1, an intent (never addressed: always forwarded), from its columns."""
        self = cls.__new__(cls)
        self.id, self.hex_id, self.author, self.author_key, self.created, self.expires, self.raw = verdicts.intent_fields(i)
        self.kind, self.ttl_in, self.recipient, self.ref, self.forward = "intent", ttl_in, None, None, True
        self._env, self._source, self.at = None, verdicts, i
        return self

    @property
    def env(self) -> Envelope:
        if self._env is None:
            assert self._source is not None
            self._env = self._source.envelope(self.at)
        return self._env


class Intents:
    """The intents of one batch accepted from stage 1's columns: their indexes in batch order, no
    object per item. A batch of intents alone (a busy node's usual batch) is stored, matched and
    remembered from these columns; ``accepted`` gives them as ``Accepted`` where one is needed (a
    relay, a mixed batch), ``get`` one by hex id (a withdrawal or offer later in the batch)."""

    __slots__ = ("verdicts", "ttls", "indexes", "_by_hex")

    def __init__(self, verdicts: Verdicts, ttls: TtlOf) -> None:
        self.verdicts, self.ttls = verdicts, ttls
        self.indexes: list[int] = []
        self._by_hex: dict[str, int] = {}  # built as far as asked: most batches never ask

    def __len__(self) -> int:
        return len(self.indexes)

    def get(self, hex_id: str) -> Accepted | None:
        for i in self.indexes[len(self._by_hex) :]:  # ids are unique in a batch past dedupe
            self._by_hex[self.verdicts.hex_id(i)] = i
        i = self._by_hex.get(hex_id)
        return None if i is None else Accepted.intent(self.verdicts, i, self.ttls[i])

    def accepted(self) -> list[Accepted]:
        verdicts, ttls = self.verdicts, self.ttls
        return [Accepted.intent(verdicts, i, ttls[i]) for i in self.indexes]

    def packed_ids(self) -> bytes:
        """Their ids, concatenated (the batch's whole id column when every item is one)."""
        verdicts = self.verdicts
        if len(self.indexes) == len(verdicts):  # distinct, ascending: then exactly 0..n-1
            return verdicts.packed_ids
        return b"".join([verdicts.id(i) for i in self.indexes])


@dataclass
class Batch:
    """The state of one ingest: what was accepted so far (later items may refer to earlier ones):
    ``intents`` from stage 1's columns, every other kind in ``accepted``."""

    now: int
    intents: Intents | None = None
    accepted: dict[str, Accepted] = field(default_factory=dict)  # other kinds, by hex id, in batch order
    withdrawn: set[str] = field(default_factory=set)  # intent ids withdrawn by this batch
    replies: list[tuple[Envelope, str]] = field(default_factory=list)  # direct envelopes to send back

    def __len__(self) -> int:
        return len(self.accepted) + (len(self.intents) if self.intents is not None else 0)

    def pending(self, hex_id: str) -> Accepted | None:
        """What this batch accepted with this id, so far."""
        found = self.accepted.get(hex_id)
        if found is None and self.intents is not None:
            found = self.intents.get(hex_id)
        return found

    def in_order(self) -> list[Accepted]:
        """Everything accepted, as ``Accepted``, in batch order."""
        intents = self.intents.accepted() if self.intents is not None else []
        if not self.accepted:
            return intents
        others = list(self.accepted.values())
        return sorted(intents + others, key=attrgetter("at")) if intents else others

    def packed_ids(self) -> bytes:
        ids = b"".join([a.id for a in self.accepted.values()])
        return ids + self.intents.packed_ids() if self.intents is not None else ids


class Judge:
    """The per-kind rules of one node (``me``, hex key, acting as ``role``). ``identity`` signs what a
    direct kind makes this node answer; without it direct kinds are refused ``not_for_role``."""

    def __init__(
        self,
        *,
        me: str,
        role: str,
        identity: Identity | None,
        log: GossipLog,
        offers: Offers,
        grants: Grants,
        receipts: Receipts,
        backend: Backend = NATIVE,
    ) -> None:
        self.me = me
        self.role = role
        self._identity = identity
        self._log = log
        self._offers = offers
        self._grants = grants
        self._receipts = receipts
        self._backend = backend

    def judge_items(self, verdicts: Verdicts, indexes: list[int], ttls: TtlOf, batch: Batch, reasons: bytearray) -> None:
        """The reasons for items of stage 1 (OK and new here, in batch order; ``ttls`` clamped),
        written to ``reasons``. An intent needs nothing more (its body was checked with its signature)
        and joins ``batch.intents`` by index, no object built: intents are taken there and nowhere
        else. Any other kind is judged on its ``Envelope`` (``_judge_one``)."""
        intents = batch.intents = Intents(verdicts, ttls)
        intent, kinds = verdicts.intent_code, verdicts.kind_codes
        if all(kinds[i] == intent for i in indexes):
            intents.indexes = indexes
            return
        for i in indexes:
            if kinds[i] == intent:
                intents.indexes.append(i)
            else:
                reasons[i] = self._judge_one(verdicts.envelope(i), ttls[i], batch)
                if reasons[i] == Reason.OK:
                    batch.accepted[verdicts.hex_id(i)].at = i

    def _judge_one(self, env: Envelope, ttl: int, batch: Batch) -> Reason:
        """The reason for one verified, new envelope that is no intent; when OK it joins
        ``batch.accepted`` (and its effects on offers are written: they share the batch's
        transaction)."""
        if env.kind in DIRECT_KINDS:
            return self._judge_direct(env, batch)
        if env.kind not in GOSSIPED_KINDS or env.kind == "intent":
            return Reason.NOT_FOR_ROLE  # pragma: no cover - no other kind decodes; intents: judge_items
        try:
            if env.kind == "withdraw":
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
        batch.accepted[env.id.hex()] = Accepted(env, ttl, recipient, ref, forward)
        return Reason.OK

    def _judge_direct(self, env: Envelope, batch: Batch) -> Reason:
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
                reason = self._grants.request_received(env, me=me)
            elif env.kind == "grant":
                reason = self._grants.grant_received(env, me=me)
            elif env.kind == "revoke":
                reason, deletion = self._grants.revoke_received(self._identity, env)
                if deletion is not None:
                    batch.replies.append((deletion, env.author.hex()))
            elif env.kind == "deletion":
                reason = self._grants.deletion_received(env, me=me)
            else:
                reason = self._receipts.copy_received(env, me=me)
        except VrmError:  # the domain's refusal of what the body says; its own writes rolled back
            return Reason.INVALID_BODY
        if reason != Reason.OK:
            return Reason(reason)
        batch.accepted[env.id.hex()] = Accepted(env, 0, self.me, None, False)
        return Reason.OK

    def _intent(self, intent_id: str, batch: Batch) -> tuple[int, str, bool] | None:
        """(expires, author hex, withdrawn) of an intent held or accepted earlier in the batch."""
        pending = batch.pending(intent_id)
        if pending is not None:
            if pending.kind != "intent":
                return None
            return pending.expires, pending.author, intent_id in batch.withdrawn
        held = self._log.get(intent_id)
        if held is None or held.kind != "intent":
            return None
        withdrawn = intent_id in batch.withdrawn or bool(self._log.by_ref(intent_id, "withdraw"))
        return held.expires, held.author, withdrawn

    def _judge_withdraw(self, env: Envelope, batch: Batch) -> Reason:
        try:
            target, why = check_withdraw_body(env.body)
        except ValidationError:
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
        if why == "fulfilled":  # the person took an offer: our lead is closed, our other offers superseded
            self._offers.intent_closed(target.hex(), env.created)
        return Reason.OK

    def _judge_offer(self, env: Envelope, batch: Batch) -> Reason:
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

    def _judge_decision(self, env: Envelope, batch: Batch) -> Reason:
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

    def _offer(self, offer_id: str, batch: Batch) -> Envelope | None:
        pending = batch.pending(offer_id)
        if pending is not None:
            return pending.env if pending.kind == "offer" else None
        held = self._log.get(offer_id)
        if held is None or held.kind != "offer":
            return None
        try:
            return envelopes.decode(held.raw, self._backend)
        except EnvelopeError:  # pragma: no cover - only verified envelopes are held
            return None
