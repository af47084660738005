"""Consented access, person side: ``request_received`` keeps a request, ``pending``/``approve``
(narrower only)/``deny`` answer it, ``create`` grants without one. ``check`` is the pure grant check
of an access; ``access`` runs it, spends a use and appends the receipt in ONE transaction (a
revocation committed before is always seen: the use is spent with a conditional update under the
write lock). ``revoke`` and ``end_due`` (expiry, a spent budget, the intent served withdrawn or
expired) end grants with a signed ``revoke``; ``deletion_received`` records the vendor's statement;
``pushes_due`` says which push grants have vault fields to (re)send.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from node import envelope
from node.blocks import Blocks
from node.envelope import Envelope
from node.errors import ConflictError, PassphraseError, ValidationError, VaultError
from node.grants.base import GrantsBase, _asked, _intent_ended, _read_vault
from node.grants.bodies import (
    check_deletion_body,
    check_grant_body,
    check_request_body,
    check_revoke_body,
    field_list,
    _hex_key,
    _uint,
)
from node.grants.model import (
    END_REASONS,
    MAX_DURATION_MS,
    MAX_USES,
    MIN_DURATION_MS,
    REVOKE_TTL_MS,
    AccessOutcome,
    AccessRequest,
    Grant,
    _ENDED_REASON,
    _grant,
    _grant_row,
    _HEX64,
)
from node.identity import Identity
from node.intents import normalize_terms
from node.reasons import Reason
from node.receipts import Receipts
from node.refusals import StrangerRefusals
from node.seal import SealError, x25519_public_key
from node.vault import Vault


# The grant check's one query: the grant this node gave, and the intent it serves if any.
_CHECK_SQL = (
    "SELECT g.*, i.status AS intent_status, i.expires_at AS intent_expires FROM grants g"
    " LEFT JOIN intents i ON i.id = g.for_ref WHERE g.id = ? AND g.direction = 'given'"
)
_SPEND_SQL = (
    "UPDATE grants SET uses_spent = uses_spent + 1 WHERE id = ? AND direction = 'given' AND status = 'live'"
    " AND expires_at > ? AND (uses_allowed IS NULL OR uses_spent < uses_allowed)"
)


class PersonSide(GrantsBase):
    """A person's side: answering requests, granting, the grant check, ending grants, pushes due."""

    def request_received(self, env: Envelope, *, me: bytes | None = None) -> Reason:
        """Keep a ``request`` addressed to us as pending. Refusals, in order: ``invalid_body`` (also a
        request to its own author); ``not_for_role`` (``to`` is not ``me``, when given); ``duplicate``;
        ``unknown_intent`` (``for`` names neither an intent we cast nor an offer this vendor made us);
        ``withdrawn`` / ``expired`` (that intent ended); ``blocked`` (we blocked the vendor)."""
        body, refusal = envelope.addressed_body(env, "request", check_request_body, me)
        if body is None:
            return refusal
        if self._store.query_one("SELECT 1 FROM access_requests WHERE id = ?", [env.id.hex()]) is not None:
            return Reason.DUPLICATE
        now = self._clock()
        if body["for"] is not None:
            ref = body["for"].hex()
            intent = self._store.query_one(
                "SELECT status, expires_at FROM intents WHERE id = ? AND author = ?", [ref, body["to"].hex()]
            )
            offer = self._store.query_one(
                "SELECT 1 FROM offers WHERE id = ? AND direction = 'received' AND vendor = ?", [ref, env.author.hex()]
            )
            if intent is None and offer is None:
                return Reason.UNKNOWN_INTENT
            if intent is not None and intent["status"] == "withdrawn":
                return Reason.WITHDRAWN
            if intent is not None and intent["expires_at"] <= now:
                return Reason.EXPIRED
        if Blocks(self._store, clock=self._clock).is_blocked(env.author.hex()):
            return Reason.BLOCKED
        with self._store.transaction():
            self._store.insert("access_requests", self._request_row(env, "received", now))
        return Reason.OK

    def pending(self) -> list[AccessRequest]:
        """Requests received and not answered yet (nor expired), oldest first."""
        return self.requests(direction="received", status="pending")

    def approve(
        self,
        identity: Identity,
        request_ref: str,
        *,
        fields: Sequence[str] | None = None,
        duration_ms: int | None = None,
        uses: int | None = None,
        push: bool = False,
    ) -> tuple[Grant, Envelope]:
        """Grant a pending request, as asked or narrower: ``fields`` a subset of those asked,
        ``duration_ms`` at most the one asked, a budget of ``uses``. ValidationError for anything wider;
        ConflictError when the request is not pending."""
        asked = self.request_by_ref(request_ref, direction="received")
        if asked.status != "pending":
            raise ConflictError(f"request {asked.id[:12]} is {asked.status}: only a pending request is approved")
        names = list(asked.fields) if fields is None else field_list(fields)
        wider = sorted(set(names) - set(asked.fields))
        if wider:
            raise ValidationError("fields", f"{', '.join(wider)} not asked for; an approval can only narrow")
        duration = asked.duration_ms if duration_ms is None else duration_ms
        _uint(duration, "duration_ms", MIN_DURATION_MS, MAX_DURATION_MS)
        if duration > asked.duration_ms:
            raise ValidationError("duration_ms", "longer than asked; an approval can only narrow")
        grant, signed = self._make_grant(
            identity,
            bytes.fromhex(asked.vendor),
            fields=names,
            purpose=asked.purpose,
            duration_ms=duration,
            uses=uses,
            terms=None,
            for_id=asked.for_ref,
            request_id=asked.id,
            push=push,
        )
        return grant, signed

    def deny(self, request_ref: str) -> AccessRequest:
        """Refuse a pending request (the vendor is not told; its request expires). ConflictError when it
        is not pending."""
        asked = self.request_by_ref(request_ref, direction="received")
        if asked.status != "pending":
            raise ConflictError(f"request {asked.id[:12]} is {asked.status}: only a pending request is denied")
        with self._store.transaction():
            self._store.execute(
                "UPDATE access_requests SET status = 'denied', decided_at = ? WHERE id = ? AND status = 'pending'",
                [self._clock(), asked.id],
            )
        return self._request_by_id(asked.id)

    def create(
        self,
        identity: Identity,
        grantee_key: bytes,
        *,
        fields: Sequence[str],
        purpose: str,
        duration_ms: int,
        uses: int | None = None,
        terms: Sequence[str] | str = (),
        for_ref: str | None = None,
        push: bool = False,
    ) -> tuple[Grant, Envelope]:
        """Grant ``grantee_key`` access to ``fields`` without a request. ``for_ref`` names an intent we
        cast (the grant then ends with it and expires no later) or an offer we received."""
        _uint(duration_ms, "duration_ms", MIN_DURATION_MS, MAX_DURATION_MS)
        for_id = None if for_ref is None else self._resolve_for(for_ref, vendor=False)
        return self._make_grant(
            identity,
            bytes.fromhex(_hex_key(grantee_key, "grantee")),
            fields=field_list(fields),
            purpose=purpose.strip() if isinstance(purpose, str) else purpose,
            duration_ms=duration_ms,
            uses=uses,
            terms=normalize_terms(terms),
            for_id=for_id,
            request_id=None,
            push=push,
        )

    def _make_grant(
        self,
        identity: Identity,
        grantee: bytes,
        *,
        fields: list[str],
        purpose: object,
        duration_ms: int,
        uses: int | None,
        terms: tuple[str, ...] | None,
        for_id: str | None,
        request_id: str | None,
        push: bool,
    ) -> tuple[Grant, Envelope]:
        """Sign and keep a grant. Terms None: those of the intent served, if any. A grant serving an
        intent needs it live and ends no later than it."""
        if grantee == identity.public_key:
            raise ValidationError("grantee", "a grant goes to somebody else")
        try:
            x25519_public_key(grantee)  # data is sealed to it: refuse a key nothing can be sealed to
        except SealError:
            raise ValidationError("grantee", "not a valid node key") from None
        if uses is not None:
            _uint(uses, "uses", 1, MAX_USES)
        if not isinstance(push, bool):
            raise ValidationError("push", "must be true or false")
        now = self._clock()
        expires = now + duration_ms
        intent = None
        if for_id is not None:
            intent = self._store.query_one(
                "SELECT status, expires_at, body FROM intents WHERE id = ? AND author = ?",
                [for_id, identity.public_key.hex()],
            )
        if intent is not None:
            if intent["status"] != "live" or intent["expires_at"] <= now:
                state = "withdrawn" if intent["status"] != "live" else "expired"
                raise ConflictError(f"intent {for_id[:12]} is {state}: a grant cannot serve it")
            expires = min(expires, intent["expires_at"])
            if terms is None:
                terms = tuple(json.loads(intent["body"]).get("terms", ()))
        body = check_grant_body(
            {
                "to": grantee,
                "fields": fields,
                "purpose": purpose,
                "uses": uses,
                "terms": list(terms or ()),
                "for": None if for_id is None else bytes.fromhex(for_id),
                "request": None if request_id is None else bytes.fromhex(request_id),
                "push": push,
            }
        )
        signed = envelope.create(identity, "grant", body, created=now, expires=expires, backend=self._backend)
        with self._store.transaction():
            self._store.insert("grants", _grant_row(signed, "given", now))
            if request_id is not None:
                changed = self._store.execute(
                    "UPDATE access_requests SET status = 'approved', decided_at = ?, grant_id = ?"
                    " WHERE id = ? AND status = 'pending'",
                    [now, signed.id.hex(), request_id],
                )
                if changed != 1:
                    raise ConflictError(f"request {request_id[:12]} was answered meanwhile")
        return self._grant_by_id(signed.id.hex()), signed

    def check(
        self, grant_id_hex: str, requester_hex: str, fields: Sequence[str] | None, now: int
    ) -> tuple[Reason, Grant | None]:
        """Whether ``requester_hex`` may read ``fields`` (None: all granted) under grant ``grant_id_hex``
        at ``now``; reads only. The first that applies: ``no_grant`` (no grant we gave has that id),
        ``not_grantee``, ``revoked`` (revoked, or the intent it serves withdrawn or ended),
        ``expired``, ``budget_spent``, ``out_of_scope``; else OK. The grant is returned when it is
        ours."""
        if not isinstance(grant_id_hex, str) or not _HEX64.fullmatch(grant_id_hex):
            return Reason.NO_GRANT, None
        row = self._store.query_one(_CHECK_SQL, [grant_id_hex])
        if row is None:
            return Reason.NO_GRANT, None
        grant = _grant(row)
        if requester_hex != grant.grantee:
            return Reason.NOT_GRANTEE, grant
        if grant.status != "live":
            return _ENDED_REASON[grant.end_reason], grant
        if grant.expires <= now:
            return Reason.EXPIRED, grant
        if _intent_ended(row, now):
            return Reason.REVOKED, grant
        if grant.uses_allowed is not None and grant.uses_spent >= grant.uses_allowed:
            return Reason.BUDGET_SPENT, grant
        if fields is not None:
            if isinstance(fields, str) or not all(isinstance(f, str) for f in fields):
                raise ValidationError("fields", "give a list of field names")
            if not set(fields) <= set(grant.fields):
                return Reason.OUT_OF_SCOPE, grant
        return Reason.OK, grant

    def access(
        self,
        identity: Identity,
        vault: Vault,
        grant_id_hex: str,
        requester_hex: str,
        fields: Sequence[str] | None,
        *,
        source: str = "",
    ) -> AccessOutcome:
        """Answer an access by ``requester_hex`` (the verified signer) in ONE transaction: the check,
        one use spent when it passes, the values read (only fields present in the vault), and a receipt
        appended whatever the answer when it names a grant we gave; a fetch naming none is only
        counted for ``source`` (its address) in ``stranger_refusals``, with no receipt (None), so
        strangers cannot grow the signed log. ValidationError (nothing written) for field names that
        are not names, or more than 32 of them."""
        requester = bytes.fromhex(_hex_key(requester_hex, "requester"))
        asked = None if fields is None else _asked(fields)
        with self._store.transaction():
            now = self._clock()
            reason, grant = self.check(grant_id_hex, requester.hex(), asked, now)
            if reason == Reason.OK and self._store.execute(_SPEND_SQL, [grant_id_hex, now]) != 1:
                # Changed since the check read it: look again, now under the write lock.
                reason, grant = self.check(grant_id_hex, requester.hex(), asked, now)
                if reason == Reason.OK:  # cannot happen under the lock; never answer unspent
                    raise ConflictError(f"grant {grant_id_hex[:12]} changed during the access")
            values: dict[str, str] = {}
            if reason == Reason.OK:
                assert grant is not None
                values = _read_vault(vault, asked if asked is not None else list(grant.fields))
                shown = sorted(values)
            elif asked is not None:
                shown = asked
            else:
                shown = list(grant.fields) if grant is not None and reason != Reason.NOT_GRANTEE else []
            if grant is None:  # names no grant we gave: counted in aggregate, not receipted
                StrangerRefusals(self._store, clock=self._clock).count(source, reason.label)
                return AccessOutcome(reason, None, values, None)
            # A stranger (not the grantee) learns nothing from its receipt but what it sent.
            ours = reason != Reason.NOT_GRANTEE
            receipt = Receipts(self._store, clock=self._clock, backend=self._backend).append(
                identity,
                to=requester,
                grant=bytes.fromhex(grant.id),
                fields=shown,
                purpose=grant.purpose if ours else "",
                outcome=reason.label,
            )
            if reason == Reason.OK:
                grant = self._grant_by_id(grant.id)
        return AccessOutcome(reason, grant, values, receipt)

    def revoke(self, identity: Identity, ref: str, *, reason: str = "revoked") -> tuple[Grant, Envelope]:
        """End a grant we gave, now: every access is refused from this commit on. Returns the ended
        grant and the signed ``revoke`` for its vendor. ConflictError if it already ended."""
        if reason not in END_REASONS:
            raise ValidationError("reason", f"must be one of {', '.join(END_REASONS)}")
        row = self._row(ref)
        if row["direction"] != "given":
            raise ValidationError("grant", "only the person who gave a grant revokes it")
        if row["status"] != "live":
            raise ConflictError(f"grant {row['id'][:12]} already ended ({row['end_reason']})")
        signed = self._end(identity, row, reason, self._clock())
        return self._grant_by_id(row["id"]), signed

    def _end(self, identity: Identity, row: dict[str, Any], reason: str, now: int) -> Envelope:
        body = check_revoke_body(
            {"to": bytes.fromhex(row["grantee"]), "grant": bytes.fromhex(row["id"]), "reason": reason}
        )
        signed = envelope.create(identity, "revoke", body, created=now, ttl_ms=REVOKE_TTL_MS, backend=self._backend)
        with self._store.transaction():
            changed = self._store.execute(
                "UPDATE grants SET status = 'ended', end_reason = ?, ended_at = ?, revoke_id = ?, revoke_raw = ?"
                " WHERE id = ? AND status = 'live'",
                [reason, now, signed.id.hex(), signed.raw, row["id"]],
            )
            if changed != 1:
                raise ConflictError(f"grant {row['id'][:12]} ended meanwhile")
        return signed

    def deletion_received(self, env: Envelope, *, me: bytes | None = None) -> Reason:
        """Record a vendor's ``deletion`` statement on the grant we gave. Refusals, in order:
        ``invalid_body``; ``not_for_role`` (``to`` is not ``me``, when given); ``no_grant`` (no grant we
        gave has that id); ``not_grantee`` (not signed by its grantee); ``invalid_body`` (it names
        another revocation than ours, or fields not granted); ``duplicate`` (already recorded)."""
        body, refusal = envelope.addressed_body(env, "deletion", check_deletion_body, me, refuse_self=False)
        if body is None:
            return refusal
        row = self._store.query_one(
            "SELECT * FROM grants WHERE id = ? AND direction = 'given'", [body["grant"].hex()]
        )
        if row is None or body["to"].hex() != row["person"]:
            return Reason.NO_GRANT
        if env.author.hex() != row["grantee"]:
            return Reason.NOT_GRANTEE
        if body["revoke"] is not None and body["revoke"].hex() != row["revoke_id"]:
            return Reason.INVALID_BODY
        if not set(body["fields"]) <= set(json.loads(row["fields"])):
            return Reason.INVALID_BODY
        if row["deletion_id"] is not None:
            return Reason.DUPLICATE
        with self._store.transaction():
            self._store.execute(
                "UPDATE grants SET deletion_id = ?, deletion_raw = ?, deletion_confirmed_at = ?"
                " WHERE id = ? AND deletion_id IS NULL",
                [env.id.hex(), env.raw, self._clock(), row["id"]],
            )
        return Reason.OK

    def end_due(self, identity: Identity, now: int) -> list[Envelope]:
        """End every live grant we gave that is due at ``now``: past its expiry (``expired``), serving
        an intent withdrawn or expired (``intent_ended``), or with its budget spent (``budget_spent``);
        the signed revocations, one per grant, to send to the vendors."""
        rows = self._store.query(
            "SELECT g.*, i.status AS intent_status, i.expires_at AS intent_expires FROM grants g"
            " LEFT JOIN intents i ON i.id = g.for_ref"
            " WHERE g.direction = 'given' AND g.status = 'live' AND (g.expires_at <= ?"
            " OR (g.uses_allowed IS NOT NULL AND g.uses_spent >= g.uses_allowed)"
            " OR i.status = 'withdrawn' OR i.expires_at <= ?) ORDER BY g.created_at, g.id",
            [now, now],
        )
        revokes = []
        with self._store.transaction():
            for row in rows:
                if row["expires_at"] <= now:
                    reason = "expired"
                elif _intent_ended(row, now):
                    reason = "intent_ended"
                else:
                    reason = "budget_spent"
                revokes.append(self._end(identity, row, reason, now))
        return revokes

    def end_after_deal(self, identity: Identity, *, intent_id: str, offer_id: str, vendor: str, now: int) -> list[Envelope]:
        """The deal of ``offer_id`` for ``intent_id`` with ``vendor`` (hex key) is done: end every live
        grant we gave that vendor serving that intent or offer and carrying the term
        ``delete-after-use`` (``intent_ended``: what it served is over). The signed revocations, to
        send to the vendor, which deletes what it holds. Joins the caller's transaction."""
        rows = self._store.query(
            "SELECT * FROM grants WHERE direction = 'given' AND status = 'live' AND grantee = ?"
            " AND for_ref IN (?, ?) ORDER BY created_at, id",
            [vendor, intent_id, offer_id],
        )
        with self._store.transaction():
            return [
                self._end(identity, row, "intent_ended", now)
                for row in rows
                if "delete-after-use" in json.loads(row["terms"])
            ]

    def pushes_due(self, vault: Vault) -> list[tuple[str, str, int, dict[str, str]]]:
        """(grantee hex, grant id hex, version, values) for each live push grant we gave whose vault
        fields changed (set, replaced or deleted) since it was last pushed, marking them pushed: call it
        in the transaction that queues them. ``values`` holds the granted fields present now (a field
        deleted from the vault is left out, so the vendor drops it); ``version`` counts up from 1 per
        grant. A grant whose fields cannot be read now (an encrypted vault opened without its key) waits
        for the next call."""
        now = self._clock()
        rows = self._store.query(
            "SELECT g.*, i.status AS intent_status, i.expires_at AS intent_expires FROM grants g"
            " LEFT JOIN intents i ON i.id = g.for_ref WHERE g.direction = 'given' AND g.status = 'live'"
            " AND g.push = 1 AND g.expires_at > ? ORDER BY g.created_at, g.id",
            [now],
        )
        if not rows:
            return []
        stamps = {e.name: e.updated_at for e in vault.list()}
        due = []
        with self._store.transaction():
            for row in rows:
                if _intent_ended(row, now):
                    continue  # ending: end_due revokes it
                if row["uses_allowed"] is not None and row["uses_spent"] >= row["uses_allowed"]:
                    continue
                names = [n for n in json.loads(row["fields"]) if n in stamps]
                # What was pushed, by field names and update times only: never a value, nor its hash.
                state = json.dumps([[n, stamps[n]] for n in names])
                if state == row["pushed_state"] or (row["pushed_state"] is None and not names):
                    continue
                try:
                    values = _read_vault(vault, names)
                except (VaultError, PassphraseError):
                    continue
                version = row["pushed_version"] + 1
                self._store.execute(
                    "UPDATE grants SET pushed_version = ?, pushed_state = ? WHERE id = ?", [version, state, row["id"]]
                )
                due.append((row["grantee"], row["id"], version, values))
        return due
