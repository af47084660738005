"""The ingest pipeline: what happens to a batch of gossip items, in the store's worker thread.

``Pipeline.ingest`` runs one batch (a push or a pull page) through six stages, each one place:

1. decode + verify + match (``federation.verify.decode_and_verify``): ONE native call per batch that
   decodes, computes ids first (remembered or repeated ids are duplicates, never verified), verifies
   signatures on both cores, checks intent bodies against the tokenizer and matches the intents
   against the vendor's index;
2. dedupe (``_dedupe``): the ids the native pass did not know, with one ``GossipLog.known`` query;
3. judge per kind (``federation.judge.Judge``);
4. store, in ONE transaction with stages 2-6 (``_store``): the accepted envelopes and their effects;
5. match (``_match``): leads for the new live intents from the matches stage 1 found (a vendor);
6. deliver/respond (``_deliver``): each accepted envelope queued with ttl − 1 for every pushable peer
   except the one it came from and its author, while hops remain (or, with a ``relay``, for the peers
   it names whatever hops remain: Plumtree, ``federation.tree``); replies (a deletion answering a
   revocation) queued for their addressee.

It answers one reason byte per item (0 = accepted) and the peers given new deliveries, whom the caller
wakes (``Deliverer.notify``) once the transaction has committed. ``publish`` does stages 4 and 6 for
an envelope this node made. Nothing here does I/O besides the store; nothing raised by bad input
escapes (it becomes a reason code).

Hop counting: an item ``[ttl, env]`` may travel ``ttl`` more hops after reaching us; we store and
pass on ``ttl − 1`` (not below 0), forwarding only when ``ttl > 0``. The stored ttl is what pullers
get, so an envelope goes as far by pull as by push.

Direct kinds (``request``, ``grant``, ``revoke``, ``deletion``, ``receipt``) are never gossiped: only
their addressee (the body's ``to``) takes them (anyone else answers ``not_for_role`` and stores
nothing), they are held with ttl 0, never forwarded, left out of ``GET /v1/gossip`` and served by
``GET /v1/inbox`` to the addressee alone (``federation.pages``). ``publish_direct`` holds one this
node made and queues it for its addressee only. Consented access is ``federation.access``'s.

Every service the pipeline uses is given to it (built once, by ``app.root``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from federation import wire
from federation.judge import Batch, Judge
from federation.kinds import DIRECT_KINDS, GOSSIP_KIND, addressee
from federation.outbox import Outbox
from federation.verify import Verdicts, decode_and_verify, remember_committed
from node.backends import Backend, VerifierLike
from node.envelope import Envelope
from node.errors import ConflictError, ValidationError
from node.gossiplog import MAX_TTL, GossipLog, addressing, blob_id
from node.leads import Leads
from node.peers import Peers
from node.reasons import Reason
from node.store import Clock, Store

__all__ = ["GOSSIP_KIND", "Ingested", "MatcherIndex", "Pipeline", "Prepared"]


_CONFLICT_RETRIES = 2  # concurrent listeners storing the same envelope (fleet)
_TTL_OUT = tuple(max(ttl - 1, 0) for ttl in range(MAX_TTL + 1))  # what is stored and passed on, by ttl in
# What relaying one envelope needs: (id, hex id, author hex, recipient hex or None, expires, the ttl it
# is passed on with, its bytes).
Forward = tuple[bytes, str, str, str | None, int, int, bytes]


class MatcherIndex(Protocol):
    def match_envelopes(self, raws: Sequence[bytes]) -> list[list[int]]: ...
    def __len__(self) -> int: ...


class Prepared(NamedTuple):
    """A batch after stage 1 (``Pipeline.prepare``): its items, their ``Verdicts``, the clock it was
    judged at and whether the native pass matched its intents."""

    items: wire.Items
    verified: Verdicts
    now: int
    matched: bool
class Relay(Protocol):
    """Who gets a gossiped envelope instead of every pushable peer (``federation.tree.TreeRelay``,
    Plumtree). With a relay the hop limit no longer stops forwarding: the tree does."""

    def targets(self, env: Envelope, ttl: int, from_peer: str | None, pushable: Sequence[str]) -> Sequence[str]: ...
    def duplicates(self, from_peer: str, count: int, items: Callable[[], Sequence[tuple[bytes, int]]]) -> None: ...


class Ingested(NamedTuple):
    """What ``ingest`` returns: one reason byte per item, and the peers (hex keys) to wake."""

    reasons: bytes
    peers: frozenset[str]


class Pipeline:
    """Ingest and publish for one node (``me``, acting as ``role``). Every method runs in the store's
    thread (``AsyncStore.run``).

    ``index`` returns the vendor's compiled SubscriptionIndex (the caller rebuilds it when
    subscriptions change); it is only called when ``role`` is ``vendor``.
    """

    def __init__(
        self,
        *,
        store: Store,
        role: str,
        verifier: VerifierLike,
        judge: Judge,
        index: Callable[[], MatcherIndex | None] | None,
        log: GossipLog,
        peers: Peers,
        leads: Leads,
        outbox: Outbox,
        clock: Clock,
        backend: Backend,
        relay: Relay | None = None,
    ) -> None:
        self.store = store
        self.me = judge.me
        self.role = role
        self._verifier = verifier
        self._judge = judge
        self._index = index
        self.log = log
        self._peers = peers
        self._leads = leads
        self._outbox = outbox
        self._clock = clock
        self._backend = backend
        self._relay = relay  # None: flood every pushable peer while hops remain

    # -- ingest -------------------------------------------------------------------------------------

    def decode_push(self, body: bytes) -> wire.Items:
        """A ``POST /v1/gossip`` body's items by column, in one native scan (``wire.decode_push``):
        WireError when it is not a batch."""
        return wire.decode_push(body, self._backend.scan_batch)

    def ingest(
        self, items: Sequence[wire.GossipItem], from_peer: str | None = None, *, pushed: bool = True
    ) -> Ingested:
        """Judge, store and relay a batch from ``from_peer`` (hex key; None when unknown). ``pushed``:
        the peer sent it unasked (a push); False for what this node pulled or fetched."""
        return self.commit(self._prepare(items, self._vendor_index()), from_peer, pushed=pushed)

    def prepare(self, items: Sequence[wire.GossipItem]) -> Prepared:
        """Stage 1 without the store: the one native pass over ``items``. Safe on any thread while
        the store's thread commits an earlier batch (``federation.app`` runs it on a worker thread:
        verifying batch n+1 overlaps committing batch n). Matches are found here only against an
        index known current without the store (``current()`` of a LiveIndex); otherwise ``commit``
        matches in the store's thread."""
        return self._prepare(items, self._current_index())

    def _prepare(self, items: Sequence[wire.GossipItem], index: MatcherIndex | None) -> Prepared:
        now = self._clock()
        batch = wire.Items.of(items)
        native = getattr(index, "native", None) if index is not None and len(index) else None
        verified = decode_and_verify(self._verifier, self._backend, batch.envelopes, now, native)
        return Prepared(batch, verified, now, native is not None)

    def commit(self, prepared: Prepared, from_peer: str | None = None, *, pushed: bool = True) -> Ingested:
        """Stages 2-6 of a prepared batch in the store's thread: dedupe, judge, store, match and
        deliver in one transaction; the reason bytes and the peers to wake."""
        items, verdicts = prepared.items, prepared.verified
        if not items:
            return Ingested(b"", frozenset())
        index = None if prepared.matched else self._vendor_index()
        # Several listeners share a fleet's database: one that stored an envelope of this batch after
        # our dedupe makes our insert conflict. The transaction is undone; the retry sees it as held.
        # Inside a caller's transaction nothing is committed when we return (it may still roll back),
        # so the verifier remembers nothing then; the store's own dedupe still answers duplicates.
        joined = self.store.in_transaction
        ttls = items.ttls  # clamped to 0..MAX_TTL by wire.Items
        for attempt in range(_CONFLICT_RETRIES + 1):
            reasons = bytearray(verdicts.codes)
            held: list[bytes] = []  # ids the store holds once this commits (remembered by the verifier)
            batch = Batch(now=prepared.now)
            try:
                with self.store.transaction():
                    fresh = self._dedupe(verdicts, reasons, held)
                    self._judge.judge_items(verdicts, fresh, ttls, batch, reasons)
                    peers: set[str] = set()
                    if len(batch):
                        self._store(batch, from_peer)
                        self._match(batch, index)
                        peers = self._deliver(batch, from_peer, pushed)
            except ConflictError:
                if attempt == _CONFLICT_RETRIES:
                    raise
                continue
            if not joined:  # our transaction committed: only now may copies skip verification
                remember_committed(self._verifier, b"".join(held) + batch.packed_ids())
            # Duplicates a peer pushed prune the tree; what we pulled or fetched from it says nothing of
            # its links (a page overlaps what the tree brought), so it is never held against them.
            if self._relay is not None and from_peer is not None and pushed:
                count = reasons.count(Reason.DUPLICATE)  # only an item that decoded is one
                if count:
                    self._relay.duplicates(from_peer, count, lambda: verdicts.duplicates(reasons, ttls))
            return Ingested(bytes(reasons), frozenset(peers))
        raise AssertionError("unreachable")

    def _current_index(self) -> MatcherIndex | None:
        """The vendor's index when it can be had without the store (see ``prepare``), else None."""
        if self.role != "vendor" or self._index is None:
            return None
        current = getattr(self._index, "current", None)
        return current() if callable(current) else None  # another callable may read the store

    def _vendor_index(self) -> MatcherIndex | None:
        return self._index() if self.role == "vendor" and self._index is not None else None

    def _dedupe(self, verdicts: Verdicts, reasons: bytearray, held: list[bytes]) -> list[int]:
        """The indexes of OK items new here; envelopes already held become ``duplicate`` (one query;
        the held ones go to ``held``, to be remembered). Copies inside the batch were answered by the
        native pass (PROTOCOL.md section 7, "Judging a batch": a duplicate only of an accepted item,
        so a forged copy first does not make the genuine one after it a duplicate, and a copy of a
        refused item keeps its reason): at most one OK item per id."""
        fresh = list(verdicts.ok)
        if not fresh:
            return fresh
        known = self.log.known([verdicts.id(i) for i in fresh])
        if not known:
            return fresh
        out: list[int] = []
        for i in fresh:
            if verdicts.id(i) in known:
                reasons[i] = Reason.DUPLICATE
                held.append(verdicts.id(i))
            else:
                out.append(i)
        return out

    def _store(self, batch: Batch, from_peer: str | None) -> None:
        """Store what ``batch`` accepted with its effects (the caller's transaction): a batch of
        intents alone straight from stage 1's columns, any other in batch order from its ``Accepted``."""
        now, intents = batch.now, batch.intents
        if not batch.accepted and intents is not None:
            self.log.add_intents(intents.verdicts.intent_rows(intents.indexes, _TTL_OUT, intents.ttls, now, from_peer))
        else:
            self.log.add_verified([(a.id, a.kind, a.author_key, a.created, a.expires, blob_id(a.recipient),
                                    blob_id(a.ref), _TTL_OUT[a.ttl_in], a.raw, now, from_peer)
                                   for a in batch.in_order()])  # fmt: skip
        for intent_id in batch.withdrawn:
            self._leads.withdraw(intent_id, batch.now)

    def _match(self, batch: Batch, index: MatcherIndex | None) -> None:
        """Leads for the batch's new live intents, when this node is a vendor: from the matches the
        native pass found, or (an index without a native MatchIndex) one matcher call. A lead's row
        comes from the columns, its body's JSON written by the native core."""
        intents = batch.intents
        if self.role != "vendor" or intents is None or not intents.indexes:
            return
        verdicts, withdrawn = intents.verdicts, batch.withdrawn
        live = [i for i in intents.indexes if verdicts.hex_id(i) not in withdrawn] if withdrawn else intents.indexes
        if index is not None and len(index):
            found = index.match_envelopes([verdicts.raw(i) for i in live])
            matched = [(i, ids) for i, ids in zip(live, found, strict=True) if ids]
        else:
            matched = [(i, verdicts.matches(i)) for i in verdicts.matched(live)]
        if matched:
            self._leads.add_matched(verdicts.leads(matched))

    def _deliver(self, batch: Batch, from_peer: str | None, pushed: bool) -> set[str]:
        """Queue the forwards and the replies; the peers to wake."""
        exclude = {from_peer} if from_peer else set()
        peers = self._forward(batch, exclude=exclude, from_peer=from_peer, pushed=pushed)
        for reply, to in batch.replies:
            peers |= self.publish_direct(reply, to)
        return peers

    def _forward(self, batch: Batch, *, exclude: set[str], from_peer: str | None, pushed: bool) -> set[str]:
        """Queue what ``batch`` accepted for forwarding (while hops remain, or as the relay says): a
        batch of intents alone from stage 1's columns, any other from its ``Accepted``."""
        targets = self._targets(exclude)
        if targets is None:
            return set()  # nobody to relay to: no Accepted is even built
        relayed = self._relay is not None  # then the tree decides, whatever hops remain (no horizon)
        intents = batch.intents
        if not batch.accepted and intents is not None:
            forwards = intents.verdicts.forwards(intents.indexes, _TTL_OUT, intents.ttls, relayed)
        else:
            forwards = [(a.id, a.hex_id, a.author, a.recipient, a.expires, _TTL_OUT[a.ttl_in], a.raw)
                        for a in batch.in_order() if a.forward and (relayed or a.ttl_in > 0)]  # fmt: skip
        return self._enqueue(forwards, targets, from_peer=from_peer, pushed=pushed)

    def _targets(self, exclude: set[str]) -> tuple[list[str], set[str]] | None:
        """(pushable peers, peers that take only what is addressed to them) but ``exclude``; None
        when there are none."""
        pushable, deliverable = self._peers.reachable()  # one read
        peers = [p.public_key for p in pushable if p.public_key not in exclude]
        addressees = {p.public_key for p in deliverable} - exclude - set(peers)  # defences
        return (peers, addressees) if peers or addressees else None

    def _enqueue(self, forwards: list[Forward], targets: tuple[list[str], set[str]], *,
                 from_peer: str | None = None, pushed: bool = True) -> set[str]:  # fmt: skip
        """Queue each forward for every pushable peer of ``targets`` but its author (or those of them
        the relay names), and for its recipient when that takes only what is addressed to it."""
        if not forwards:
            return set()
        peers, addressees = targets
        relay = self._relay
        if relay is None:
            trees: list[list[str]] = [peers] * len(forwards)
        else:
            # What we pulled or fetched from a peer says nothing of its link (PROTOCOL.md section 13).
            trees = relay.targets_many([(f[0], f[5]) for f in forwards], from_peer, peers, pushed=pushed)
        items: list[tuple[bytes, str, int | None, list[str]]] = []
        for (_, hex_id, author, recipient, expires, ttl, raw), tree in zip(forwards, trees, strict=True):
            to = tree + [recipient] if recipient in addressees else tree  # a verified announced peer's own
            if author in to:
                to = [peer for peer in to if peer != author]
            if to:
                items.append((wire.encode_item(ttl, raw), hex_id, expires, to))
        return self._outbox.relay(items, now=self._clock())  # each payload stored once

    # -- local envelopes ------------------------------------------------------------------------------

    def publish(self, env: Envelope) -> set[str]:
        """Hold an envelope this node made (ttl ORIGIN_TTL) and queue it for every pushable peer; the
        peers to wake. Publishing the same envelope again changes nothing. Joins the caller's
        transaction, so what produced the envelope and its sending commit together."""
        if env.kind in DIRECT_KINDS:  # never gossiped, whoever publishes it
            return self.publish_direct(env, addressee(env))
        with self.store.transaction():
            if self.log.known([env.id]):
                return set()
            recipient, ref = addressing(env)
            self.log.add(env, ttl=wire.ORIGIN_TTL, recipient=recipient, ref=ref, from_peer=None)
            targets = self._targets(set())
            if targets is None:
                return set()
            forward = (env.id, env.id.hex(), env.author.hex(), recipient, env.expires, wire.ORIGIN_TTL, env.raw)
            return self._enqueue([forward], targets)

    def publish_direct(self, env: Envelope, to_hex: str) -> set[str]:
        """Hold a direct envelope this node made, addressed to ``to_hex`` (ttl 0, served to it alone
        by ``GET /v1/inbox``), and queue it for that one peer when it has a URL; the peers to wake. A
        ``revoke`` drops the pushes of its grant's data still queued for that peer.
        Publishing it again changes nothing. Joins the caller's transaction."""
        if env.kind not in DIRECT_KINDS:
            raise ValidationError("kind", f"{env.kind!r} is gossiped, not sent directly")
        if addressee(env) != to_hex:
            raise ValidationError("to", "a direct envelope goes to the key its body names")
        hex_id = env.id.hex()
        with self.store.transaction():
            if self.log.known([env.id]):
                return set()
            self.log.add(env, ttl=0, recipient=to_hex, ref=None, from_peer=None)
            if env.kind == "revoke":  # consent ended: what it would still have pushed never goes
                self._outbox.drop_access(to_hex, env.body["grant"].hex())
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
