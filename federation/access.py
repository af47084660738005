"""Consented access on the federation side, in the store's thread (``AsyncStore.run``).

``answer_access`` answers a fetch (``POST /v1/access``): check, spend a use, append a receipt and
queue its copy, all in one transaction, then seal the values to the grantee. ``receive_pushes`` is a
vendor opening what a person's node pushed (``POST /v1/access/push``). ``queue_pushes`` is a person's
node sealing changed vault fields for its live push grants into the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from federation import wire
from federation.kinds import ACCESS_KIND, access_ref, addressee
from federation.outbox import Outbox
from node.backends import NATIVE, Backend
from node.envelope import Envelope
from node.errors import ValidationError, VrmError
from node.grants import Grants
from node.identity import Identity
from node.reasons import Reason
from node.receipts import Receipts
from node.seal import open_sealed, seal
from node.store import Clock, Store, wall_clock_ms
from node.vault import Vault, validate_field_name

PublishDirect = Callable[[Envelope, str], set[str]]


class Answered(NamedTuple):
    """What ``answer_access`` returns: ``outcome`` is ``ok`` or the refusal's label; when ok,
    ``sealed`` holds exactly ``fields`` (sealed to the requester, info = the grant id). ``peers``
    got the receipt's copy queued (wake them)."""

    outcome: str
    fields: list[str]
    sealed: bytes | None
    peers: frozenset[str]


class Access:
    """This node's side of consented access. ``publish_direct`` (the pipeline's) holds a receipt and
    queues it for its addressee; ``identity`` signs receipts and opens data sealed to this node
    (None: every method refuses with ValidationError)."""

    def __init__(
        self,
        *,
        store: Store,
        identity: Identity | None,
        grants: Grants,
        receipts: Receipts,
        vault: Vault,
        outbox: Outbox,
        publish_direct: PublishDirect,
        clock: Clock = wall_clock_ms,
        backend: Backend = NATIVE,
    ) -> None:
        self.store = store
        self._identity = identity
        self._grants = grants
        self._receipts = receipts
        self._vault = vault
        self._outbox = outbox
        self._publish_direct = publish_direct
        self._clock = clock
        self._backend = backend

    def answer_access(
        self, requester_hex: str, grant_id: bytes, fields: Sequence[str] | None, source: str = ""
    ) -> Answered:
        """Answer a fetch signed by ``requester_hex`` (``POST /v1/access``): the grant check, the use
        spent and the receipt appended happen in node.grants' one transaction, joined here by the
        receipt's copy queued for its vendor, so no answer ever goes out unreceipted."""
        identity = self._require_identity()
        with self.store.transaction():
            outcome = self._grants.access(
                identity, self._vault, grant_id.hex(), requester_hex, fields, source=source
            )
            receipt = outcome.receipt  # None for a fetch naming no grant of ours: counted, not sent
            peers = self._publish_direct(receipt, addressee(receipt)) if receipt is not None else set()
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
                reasons.append(self._grants.store_pushed(person_hex, item.grant.hex(), item.version, values))
            except ValidationError:
                reasons.append(Reason.INVALID_BODY)
        return bytes(reasons)

    def queue_pushes(self) -> set[str]:
        """Seal, for each live push grant whose vault fields changed since it was last pushed, the
        granted fields to the grantee and queue them (outbox kind ``access``, one delivery per grant
        and version, expiring with the grant; a revocation drops them: ``Pipeline.publish_direct``),
        each with its ``pushed`` receipt whose copy goes to the grantee; the peers to
        wake. The grantee must be a peer with a URL to be reached (the outbox retries until it has
        one; a grantee that is no peer at all has its deliveries dead-lettered by the runtime)."""
        with self.store.transaction():
            due = self._grants.pushes_due(self._vault)
            if not due:
                return set()
            identity = self._require_identity()
            peers: set[str] = set()
            now = self._clock()
            for grantee, grant_id, version, values in due:
                grant_bytes = bytes.fromhex(grant_id) if isinstance(grant_id, str) else bytes(grant_id)
                grant = self._grants.get(grant_bytes.hex())
                sealed = seal(bytes.fromhex(grantee), self._backend.encode(dict(values)), info=grant_bytes)
                queued = self._outbox.enqueue(
                    grantee,
                    wire.encode_push_item(grant_bytes, version, sealed),
                    kind=ACCESS_KIND,
                    now=now,
                    ref=access_ref(grant_bytes.hex(), version),
                    expires_at=grant.expires,  # undelivered by then, it is dead-lettered, never sent late
                )
                if queued is None:
                    continue  # this version is already on its way
                peers.add(grantee)
                receipt = self._receipts.append(
                    identity,
                    to=bytes.fromhex(grantee),
                    grant=grant_bytes,
                    fields=sorted(values),
                    purpose=grant.purpose,
                    outcome="pushed",
                )
                peers |= self._publish_direct(receipt, grantee)
        return peers

    def _require_identity(self) -> Identity:
        if self._identity is None:
            raise ValidationError("identity", "this node was wired without its identity")
        return self._identity


def _field_map(value: object) -> dict[str, str]:
    """``value`` if it is a map of vault field names to text (ValidationError otherwise)."""
    if not isinstance(value, dict) or not value:
        raise ValidationError("data", "pushed data is a map of field names to values")
    for name, text in value.items():
        validate_field_name(name)
        if not isinstance(text, str):
            raise ValidationError("data", f"the value of {name!r} is not text")
    return value
