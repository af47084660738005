"""Consent ends before its data is sent: pushes of a grant's data queued for a vendor that is away
expire with the grant, and its revocation (by the person, or by the sweep when the grant expired)
drops them from the outbox, so the vendor never gets data after consent ended. Other grants'
pushes stay queued."""

from __future__ import annotations

import trio

from app.access import sweep_grants
from app.ops import run_op
from tests.helpers import person_with_away_vendor

HOUR = 3_600_000
MINUTE = 60_000
TIMEOUT = 30


def _queued(services, peer: str) -> list[tuple[str, str, int | None]]:
    rows = services.store.store.query("SELECT kind, ref, expires_at FROM outbox WHERE peer = ? ORDER BY id", [peer])
    return [(r["kind"], r["ref"], r["expires_at"]) for r in rows]


def _pushes(services, peer: str) -> list[str]:
    return [ref for kind, ref, _ in _queued(services, peer) if kind == "access"]


async def _grant(services, vendor: bytes, fields: list[str], duration_ms: int) -> dict:
    return await run_op(services, "grants.create", {"vendor": vendor.hex(), "fields": fields, "purpose": "receipts",
                                                    "duration_ms": duration_ms, "push": True})  # fmt: skip


async def test_a_revocation_drops_the_pushes_still_queued_for_its_grant(tmp_path):
    with trio.fail_after(TIMEOUT):
        async with person_with_away_vendor(tmp_path / "alice") as (services, vendor):
            await run_op(services, "vault.set", {"name": "phone", "value": "+1 555 0100"})
            ending = await _grant(services, vendor, ["email"], HOUR)
            staying = await _grant(services, vendor, ["phone"], HOUR)
            await run_op(services, "vault.set", {"name": "email", "value": "alice@example.com"})
            queued = _queued(services, vendor.hex())
            assert _pushes(services, vendor.hex()) == [f"{ending['id']}:1", f"{staying['id']}:1", f"{ending['id']}:2"]
            assert {expires for kind, _, expires in queued if kind == "access"} == {ending["expires"], staying["expires"]}

            revoked = await run_op(services, "grants.revoke", {"ref": ending["id"]})
            assert _pushes(services, vendor.hex()) == [f"{staying['id']}:1"]
            assert ("gossip", revoked["revoke_id"]) in {(kind, ref) for kind, ref, _ in _queued(services, vendor.hex())}


async def test_a_grant_ended_by_the_sweep_drops_its_pushes(tmp_path):
    now = [1_000_000_000_000]
    with trio.fail_after(TIMEOUT):
        async with person_with_away_vendor(tmp_path / "alice", lambda: now[0]) as (services, vendor):
            brief = await _grant(services, vendor, ["email"], 2 * MINUTE)
            lasting = await _grant(services, vendor, ["email"], HOUR)
            assert _pushes(services, vendor.hex()) == [f"{brief['id']}:1", f"{lasting['id']}:1"]
            now[0] += 3 * MINUTE
            assert await sweep_grants(services) == {"ended": 1, "deleted": 0}
            assert _pushes(services, vendor.hex()) == [f"{lasting['id']}:1"]
