"""Consented access, vendor side: ``request`` signs a ``request`` for fields of a person's vault;
``grant_received`` keeps a grant addressed to us; ``store_fetched``/``store_pushed`` keep the data got
under it (``held``); ``revoke_received`` ends it, deletes what we hold and signs the ``deletion``
statement the person's node gets back; ``end_expired_received`` deletes the data of grants past their
expiry.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from node import envelope
from node.envelope import Envelope
from node.errors import PassphraseError, ValidationError
from node.grants.base import GrantsBase, _is_value_map
from node.vault import seal as seal_value
from node.vault import unseal as unseal_value
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
    DELETION_TTL_MS,
    MAX_DURATION_MS,
    MIN_DURATION_MS,
    REQUEST_TTL_MS,
    AccessRequest,
    _grant_row,
    _HEX64,
)
from node.identity import Identity
from node.reasons import Reason


class VendorSide(GrantsBase):
    """A vendor's side: asking, keeping what a person granted and sent, deleting it when due."""

    def request(
        self,
        identity: Identity,
        person_key: bytes,
        *,
        fields: Sequence[str],
        purpose: str,
        duration_ms: int,
        for_ref: str | None,
    ) -> tuple[AccessRequest, Envelope]:
        """Sign a ``request`` to the person ``person_key`` for ``fields`` (any order) for ``purpose`` and
        ``duration_ms``, optionally naming the intent (a lead) or offer it serves by id or prefix; kept
        as sent. The request itself expires in 7 days."""
        person = bytes.fromhex(_hex_key(person_key, "person"))
        if person == identity.public_key:
            raise ValidationError("person", "a request goes to somebody else's node")
        for_id = None if for_ref is None else self._resolve_for(for_ref, vendor=True)
        body = check_request_body(
            {
                "to": person,
                "fields": field_list(fields),
                "purpose": purpose.strip() if isinstance(purpose, str) else purpose,
                "duration": _uint(duration_ms, "duration_ms", MIN_DURATION_MS, MAX_DURATION_MS),
                "for": None if for_id is None else bytes.fromhex(for_id),
            }
        )
        now = self._clock()
        signed = envelope.create(
            identity, "request", body, created=now, ttl_ms=REQUEST_TTL_MS, backend=self._backend
        )
        with self._store.transaction():
            self._store.insert("access_requests", self._request_row(signed, "sent", now))
        return self._request_by_id(signed.id.hex()), signed

    def grant_received(self, env: Envelope, *, me: bytes | None = None) -> Reason:
        """Keep a ``grant`` addressed to us. Refusals, in order: ``invalid_body`` (also a grant to its
        own author); ``not_for_role`` (its ``to`` is not ``me``, when given); ``duplicate``;
        ``unknown_intent`` (it names a request we never sent); ``wrong_author`` (that request went to
        someone else); ``invalid_body`` (it grants a field the request did not ask for). A grant naming
        our request marks it approved."""
        body, refusal = envelope.addressed_body(env, "grant", check_grant_body, me)
        if body is None:
            return refusal
        if self._store.query_one("SELECT 1 FROM grants WHERE id = ?", [env.id.hex()]) is not None:
            return Reason.DUPLICATE
        asked = None
        if body["request"] is not None:
            asked = self._store.query_one(
                "SELECT * FROM access_requests WHERE id = ? AND direction = 'sent'", [body["request"].hex()]
            )
            if asked is None:
                return Reason.UNKNOWN_INTENT
            if asked["person"] != env.author.hex() or asked["vendor"] != body["to"].hex():
                return Reason.WRONG_AUTHOR
            if not set(body["fields"]) <= set(json.loads(asked["fields"])):
                return Reason.INVALID_BODY
        now = self._clock()
        with self._store.transaction():
            self._store.insert("grants", _grant_row(env, "received", now))
            if asked is not None:
                self._store.execute(
                    "UPDATE access_requests SET status = 'approved', decided_at = ?, grant_id = ?"
                    " WHERE id = ? AND status = 'pending'",
                    [env.created, env.id.hex(), asked["id"]],
                )
        return Reason.OK

    def revoke_received(self, identity: Identity, env: Envelope) -> tuple[Reason, Envelope | None]:
        """End a grant we received on the person's ``revoke``: delete what we hold under it and sign
        the ``deletion`` statement (returned, to be sent to her). Refusals, in order: ``invalid_body``;
        ``not_for_role`` (addressed to another key); ``no_grant`` (no grant we received has that id);
        ``wrong_author`` (not signed by the grant's person); ``duplicate`` (already answered)."""
        body, refusal = envelope.addressed_body(
            env, "revoke", check_revoke_body, identity.public_key, refuse_self=False
        )
        if body is None:
            return refusal, None
        row = self._store.query_one(
            "SELECT * FROM grants WHERE id = ? AND direction = 'received'", [body["grant"].hex()]
        )
        if row is None:
            return Reason.NO_GRANT, None
        if env.author.hex() != row["person"]:
            return Reason.WRONG_AUTHOR, None
        if row["revoke_id"] is not None:
            return Reason.DUPLICATE, None
        now = self._clock()
        with self._store.transaction():
            deleted = self._delete_held(row, now, body["reason"])
            statement = check_deletion_body(
                {"to": env.author, "grant": body["grant"], "revoke": env.id, "fields": deleted}
            )
            deletion = envelope.create(
                identity, "deletion", statement, created=now, ttl_ms=DELETION_TTL_MS, backend=self._backend
            )
            self._store.execute(
                "UPDATE grants SET revoke_id = ?, revoke_raw = ?, deletion_id = ?, deletion_raw = ? WHERE id = ?",
                [env.id.hex(), env.raw, deletion.id.hex(), deletion.raw, row["id"]],
            )
        self._store.checkpoint_truncate()  # the deleted values' pages zeroed, the WAL emptied
        return Reason.OK, deletion

    def store_pushed(self, person_key_hex: str, grant_id: str, version: int, plaintext_map: dict) -> Reason:
        """Keep what a person's node pushed under a grant we received from it: the values replace what
        we held (a field no longer sent was deleted from her vault). Refusals: ``no_grant`` (no such
        grant from that person), ``revoked`` (the grant ended), ``expired``, ``duplicate`` (a version
        not newer than the last taken), ``invalid_body`` (not a map of granted field names to text)."""
        if not isinstance(grant_id, str) or not _HEX64.fullmatch(grant_id) or not isinstance(person_key_hex, str):
            return Reason.NO_GRANT
        row = self._store.query_one(
            "SELECT * FROM grants WHERE id = ? AND direction = 'received' AND person = ?",
            [grant_id, person_key_hex],
        )
        if row is None:
            return Reason.NO_GRANT
        now = self._clock()
        if row["status"] == "ended":
            return Reason.REVOKED
        if row["expires_at"] <= now:
            return Reason.EXPIRED
        if isinstance(version, bool) or not isinstance(version, int) or version < 1 or version >= 2**63:
            return Reason.INVALID_BODY
        if version <= row["held_version"]:
            return Reason.DUPLICATE
        granted = set(json.loads(row["fields"]))
        if not _is_value_map(plaintext_map, granted):
            return Reason.INVALID_BODY
        with self._store.transaction():
            self._store.execute("DELETE FROM held_data WHERE grant_id = ?", [grant_id])
            self._store.insert_many(
                "held_data",
                [self._held_row(grant_id, n, v, now) for n, v in plaintext_map.items()],
            )
            self._store.execute("UPDATE grants SET held_version = ? WHERE id = ?", [version, grant_id])
        return Reason.OK

    def store_fetched(self, grant_id: str, values: dict) -> None:
        """Keep values fetched under a grant we received (merged into what we hold; one use counted).
        Nothing is kept when the grant ended meanwhile: its data must not outlive it. ValidationError
        for values that are not granted field names to text."""
        row = self._row(grant_id)
        if row["direction"] != "received":
            raise ValidationError("grant", "data is kept only under grants this node received")
        if not _is_value_map(values, set(json.loads(row["fields"]))):
            raise ValidationError("values", "must map granted field names to text")
        if row["status"] == "ended":
            return
        now = self._clock()
        with self._store.transaction():
            for name, value in values.items():
                self._store.execute(
                    "INSERT INTO held_data (grant_id, name, value, nonce, received_at)"
                    " VALUES (:grant_id, :name, :value, :nonce, :received_at)"
                    " ON CONFLICT (grant_id, name) DO UPDATE SET value = excluded.value,"
                    " nonce = excluded.nonce, received_at = excluded.received_at",
                    self._held_row(row["id"], name, value, now),
                )
            self._store.execute(
                "UPDATE grants SET uses_spent = uses_spent + 1 WHERE id = ?"
                " AND (uses_allowed IS NULL OR uses_spent < uses_allowed)",
                [row["id"]],
            )

    def held(self, grant_id: str) -> dict[str, str]:
        """The values we hold under a grant we received, by field name (empty when none)."""
        rows = self._store.query(
            "SELECT name, value, nonce FROM held_data WHERE grant_id = ? ORDER BY name", [grant_id]
        )
        return {r["name"]: self._held_value(grant_id, r) for r in rows}

    def held_names(self, grant_id: str) -> list[str]:
        """The names of the fields we hold under a grant we received (no key needed), sorted."""
        rows = self._store.query("SELECT name FROM held_data WHERE grant_id = ? ORDER BY name", [grant_id])
        return [r["name"] for r in rows]

    # Held values are sealed like the vault's (ChaCha20-Poly1305 under the vault key, fresh nonce);
    # the associated data names the grant and the field, so a ciphertext moved to another grant or
    # field, or into the vault, fails to open instead of being read as the wrong value.
    def _held_row(self, grant_id: str, name: str, value: str, now: int) -> dict[str, Any]:
        if self._held_key is None:
            return {"grant_id": grant_id, "name": name, "value": value, "nonce": None, "received_at": now}
        nonce, sealed = seal_value(self._held_key, _held_aad(grant_id, name), value)
        return {
            "grant_id": grant_id, "name": name, "value": base64.b64encode(sealed).decode("ascii"),
            "nonce": nonce, "received_at": now,
        }

    def _held_value(self, grant_id: str, row: dict[str, Any]) -> str:
        if row["nonce"] is None:
            return str(row["value"])
        if self._held_key is None:
            raise PassphraseError("the data held under this grant is encrypted: give the passphrase")
        return unseal_value(
            self._held_key, _held_aad(grant_id, row["name"]), row["nonce"], base64.b64decode(row["value"])
        )

    def end_expired_received(self, now: int) -> list[str]:
        """End the live grants we received that are past their expiry and delete what we hold under
        them; their ids."""
        rows = self._store.query(
            "SELECT * FROM grants WHERE direction = 'received' AND status = 'live' AND expires_at <= ?", [now]
        )
        with self._store.transaction():
            for row in rows:
                self._delete_held(row, now, "expired")
        if rows:
            self._store.checkpoint_truncate()
        return [r["id"] for r in rows]

    def _delete_held(self, row: dict[str, Any], now: int, reason: str) -> list[str]:
        """Delete the data held under a received grant and end it (if live); every field name deleted
        under it so far, sorted."""
        names = [r["name"] for r in self._store.query("SELECT name FROM held_data WHERE grant_id = ?", [row["id"]])]
        self._store.execute("DELETE FROM held_data WHERE grant_id = ?", [row["id"]])
        deleted = sorted(set(json.loads(row["deleted_fields"] or "[]")) | set(names))
        self._store.execute("UPDATE grants SET deleted_fields = ? WHERE id = ?", [json.dumps(deleted), row["id"]])
        if row["status"] == "live":
            self._store.execute(
                "UPDATE grants SET status = 'ended', end_reason = ?, ended_at = ? WHERE id = ? AND status = 'live'",
                [reason, now, row["id"]],
            )
        return deleted


def _held_aad(grant_id: str, name: str) -> str:
    # vault.seal takes the associated data as ASCII text; a vault field name never holds ':'
    return f"held:{grant_id}:{name}"
