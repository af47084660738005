"""`vrm demo`: the federation on this machine, narrated as it happens.

A person node (Alice) and two vendor nodes (Acme Air listens for flights, Blue Bikes for bikes) run on
loopback, each a real ``NodeRuntime`` (HTTP servers, gossip, matcher, outbox) with its own SQLite store in
a temporary directory, all in one trio program. Alice casts two intents; each vendor gets a lead only
for the one its subscription matches and answers it with an offer; both offers reach Alice, who accepts
one and declines the other; the demo then shows what changed in her records and on Acme's side.

The last act is consented access: Acme Air, whose offer she accepted, asks for her shipping address;
she grants it for one use; Acme fetches it; a second fetch is refused (budget spent); she revokes; Acme's
node deletes what it held and confirms it, signed; her receipt log verifies. Then the nodes stop.

``vrm demo --envelopes`` is the earlier, lower-level demo: one envelope through encode, decode and
verify, then a mixed batch verified in one native call.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import trio
from rich.console import Console
from rich.table import Table

from node import envelope
from node._native import Verifier
from node.identity import Identity
from node.intents import parse_intent
from node.reasons import Reason

DAY_MS = 24 * 3600 * 1000
STEP_TIMEOUT_S = 10.0  # a step that takes longer on loopback is a bug, not a slow network
T = TypeVar("T")


class DemoStalled(Exception):
    """A step of the story did not happen in time."""


# -- the federation story ------------------------------------------------------------------------------


def run_demo(console: Console | None = None) -> int:
    """Run the story; 0 when every step happened, 1 (with the step named) when one did not."""
    console = console or Console()
    started = time.perf_counter()
    stalled: BaseException | None = None
    with tempfile.TemporaryDirectory(prefix="vrm-demo-") as root:
        try:
            trio.run(_story, console, Path(root))
        except* DemoStalled as group:  # raised inside the nursery that runs the nodes
            stalled = group.exceptions[0]
    if stalled is not None:
        console.print(f"[bold red]the demo stalled:[/] {stalled}")
        return 1
    elapsed = time.perf_counter() - started
    console.rule(f"[bold]done in {elapsed:.1f} s: three nodes stopped, temporary homes removed")
    return 0


async def _story(console: Console, root: Path) -> None:
    from app.ops import run_op
    from app.runtime import NodeRuntime
    from node.gossiplog import GossipLog
    from node.home import init_home
    from node.keystore import load_identity

    console.rule("[bold]vrm-node demo: an intent meets two vendors, and Alice decides who sees her address")
    specs = [
        ("alice", "person", "Alice", ""),
        ("acme", "vendor", "Acme Air", "acme-air"),
        ("bikes", "vendor", "Blue Bikes", "blue-bikes"),
    ]
    async with trio.open_nursery() as nursery:
        nodes: dict[str, Any] = {}
        for key, role, name, handle in specs:
            home = init_home(root / key, None, role=role, name=name, handle=handle)
            # The grants sweeper would end a spent grant on its own after a while; the story has Alice
            # revoke it herself, so the sweep runs only at start.
            runtime = NodeRuntime(home, load_identity(home.key_path, None), port=0, grants_interval=3600.0)
            nodes[key] = await nursery.start(runtime.run)
        alice, acme, bikes = nodes["alice"], nodes["acme"], nodes["bikes"]
        table = _table(
            "1. Three nodes start on loopback, each with its own SQLite store", "node", "role", "listens on", "node id"
        )
        for runtime in nodes.values():
            home = runtime.home
            table.add_row(home.name, home.role, runtime.url, home.node_id[:20] + "…")
        console.print(table)

        async def op(runtime: Any, name: str, args: dict[str, Any]) -> dict[str, Any]:
            return await run_op(runtime.services, name, args)

        await op(acme, "subscriptions.add", {"text": "?flight from:SFO"})
        await op(bikes, "subscriptions.add", {"text": "?bike near:9q8"})
        console.print("2. Acme Air subscribes to [cyan]?flight from:SFO[/], Blue Bikes to [cyan]?bike near:9q8[/]")

        for vendor in (acme, bikes):
            await op(alice, "peers.add", {"url": vendor.url, "node_id": vendor.home.node_id})
        for vendor in (acme, bikes):
            await _until(lambda v=vendor: _announced(v, alice), f"{vendor.home.name} to learn Alice's URL")
        console.print(
            "3. Alice adds both as peers: her node fetches each one's id, pins its key and says hello, "
            "so they know where to send her offers"
        )

        flight, bike = [
            await op(alice, "intent.cast", {"text": text, "ttl_ms": DAY_MS, "terms": ["no-resale"]})
            for text in ("?flight SFO->JFK max:400USD", "?bike near:9q8yy max:900USD")
        ]
        console.print("4. Alice casts two signed intents, gossiped to her peers:")
        for intent in (flight, bike):
            console.print(f"   [green]{intent['text']}[/] ({intent['id'][:12]}…)")

        [acme_lead] = await _until(lambda: _leads(acme), "Acme's lead")
        [bikes_lead] = await _until(lambda: _leads(bikes), "Blue Bikes' lead")
        await _until(lambda: _holds(acme, bike["id"]), "the bike intent at Acme")
        await _until(lambda: _holds(bikes, flight["id"]), "the flight intent at Blue Bikes")
        table = _table(
            "5. Both vendors heard both intents; each kept a lead for its match", "vendor", "intents held", "leads"
        )
        for runtime, lead in ((acme, acme_lead), (bikes, bikes_lead)):
            held = await runtime.store.run(GossipLog(runtime.store.store).count_by_kind)
            table.add_row(runtime.home.name, str(held.get("intent", 0)), f"#{lead.id}: {lead.text}")
        console.print(table)

        acme_offer = await op(acme, "offers.make", _offer(acme_lead, 34900, "SFO->JFK Dec 18, seat 12A, one bag"))
        bikes_offer = await op(bikes, "offers.make", _offer(bikes_lead, 74900, "Commuter bike, pick-up in the Mission"))
        received = await _until(lambda: _offers(alice, "received", 2), "both offers at Alice")
        table = _table(
            "6. Both vendors answer with a signed offer, addressed to Alice alone", "offer", "from", "price", "text"
        )
        for o in received:
            table.add_row(o.id[:12], f"@{o.vendor_handle}", _money(o.price_minor, o.currency), o.text)
        console.print(table)

        await op(alice, "offers.accept", {"ref": acme_offer["id"]})
        await op(alice, "offers.decline", {"ref": bikes_offer["id"]})
        console.print("7. Alice accepts Acme's offer, declines Blue Bikes'; each decision is signed and sent back")
        await _until(lambda: _decided(acme, "accepted"), "the acceptance at Acme")
        await _until(lambda: _decided(bikes, "declined"), "the decline at Blue Bikes")
        console.print("   Acme Air sees its offer [bold green]accepted[/], Blue Bikes its offer [bold]declined[/]")

        vendor, purchases, timeline = await alice.store.run(
            _alice_records, alice.store.store, acme.home.node_id
        )
        table = _table(f"8. Alice's records changed: {vendor} is now one of her vendors", "when", "timeline")
        for event in reversed(timeline):
            table.add_row(time.strftime("%H:%M:%S", time.localtime(event.at / 1000)), event.summary)
        console.print(table)
        for purchase in purchases:
            console.print(f"   purchase: {purchase.product} for {_money(purchase.price_minor, purchase.currency)}")

        await _consented_access(console, op, alice, acme, acme_offer["id"])

        for runtime in nodes.values():
            runtime.stop()


SHIPPING_ADDRESS = "221B Baker Street, London NW1 6XE"
MASK = "••••••"  # a vault value is printed once, where the vendor legitimately fetched it


async def _consented_access(console: Console, op: Any, alice: Any, acme: Any, offer_id: str) -> None:
    """The last act: a request, a one-use grant, a fetch, a refusal, the revocation, the deletion
    statement and the receipt log, between Alice and the vendor whose offer she accepted."""
    from node.errors import AccessRefused

    console.rule("[bold]Consented access: Acme Air needs Alice's shipping address")
    await op(alice, "vault.set", {"name": "shipping_address", "value": SHIPPING_ADDRESS})
    console.print(f"9. Alice keeps her shipping address in her vault: shipping_address = [dim]{MASK}[/]")

    purpose = "ship the tickets"
    args = {"person": alice.home.node_id, "fields": ["shipping_address"], "purpose": purpose,
            "duration_ms": 30 * DAY_MS, "for": offer_id}  # fmt: skip
    await op(acme, "access.request", args)
    [pending] = await _until(lambda: _pending(alice), "Acme's request at Alice")
    console.print(
        f"10. Acme Air asks for [cyan]{', '.join(pending.fields)}[/] for 30 days to \"{pending.purpose}\" "
        "(its accepted offer); the signed request waits in Alice's [bold]grants pending[/]"
    )

    grant = await op(alice, "grants.approve", {"request": pending.id, "uses": 1, "push": False})
    await _until(lambda: _received_grant(acme, grant["id"]), "the grant at Acme")
    console.print(
        f"11. Alice approves it for [bold]one use[/]: grant {grant['id'][:12]}…, signed by her, naming "
        "Acme's key, the field, the purpose and the expiry"
    )

    fetched = await op(acme, "access.fetch", {"grant": grant["id"], "fields": None})
    console.print(
        "12. Acme fetches with a signed request; Alice's node checks the grant, spends the use and "
        "answers, sealed to Acme's key:"
    )
    for name, value in sorted(fetched["values"].items()):
        console.print(f"    {name} = [bold]{value}[/]")

    try:
        await op(acme, "access.fetch", {"grant": grant["id"], "fields": None})
    except AccessRefused as exc:
        console.print(f"13. A second fetch is refused: [bold red]{exc.reason}[/] (the grant allowed one use)")
    else:
        raise DemoStalled("the second fetch was answered; it should be refused (budget_spent)")

    await op(alice, "grants.revoke", {"ref": grant["id"]})
    console.print("14. Alice revokes the grant: a signed revocation goes to Acme, asking it to delete the data")
    confirmed = await _until(lambda: _deletion_confirmed(alice, grant["id"]), "Acme's deletion statement at Alice")
    if await _held(acme, grant["id"]):
        raise DemoStalled("Acme deleting the data it held under the revoked grant")
    console.print(
        "    Acme's node deletes the address and answers with a signed deletion statement: "
        f"[bold green]deletion confirmed[/] at {time.strftime('%H:%M:%S', time.localtime(confirmed / 1000))}"
    )

    receipts, report = await alice.store.run(_receipt_log, alice.store.store, alice.home.public_key)
    table = _table(
        "15. Alice's receipt log, hash-chained and signed by her node",
        "#", "vendor", "fields", "purpose", "outcome",
    )  # fmt: skip
    names = {acme.home.public_key: acme.home.name}
    for receipt in receipts:
        table.add_row(str(receipt.seq), names.get(receipt.vendor, receipt.vendor[:12]), ", ".join(receipt.fields),
                      receipt.purpose, receipt.outcome)  # fmt: skip
    console.print(table)
    if not report.ok:
        raise DemoStalled(f"a verifying receipt log (broken at #{report.seq}: {report.problem})")
    await _until(lambda: _copies(acme, [r.id for r in receipts]), "Acme's copies of the receipts")
    console.print(
        f"    verify-log: [bold green]intact[/]: {len(receipts)} receipts, chained and signed; "
        "Acme holds its copy of each"
    )


def _offer(lead: Any, price_minor: int, text: str) -> dict[str, Any]:
    """``offers.make`` arguments: a USD offer on ``lead`` that stands for two days."""
    return {"lead": str(lead.id), "price_minor": price_minor, "currency": "USD", "text": text, "ttl_ms": 2 * DAY_MS}


def _money(minor: int, currency: str) -> str:
    from cli.money import format_money

    return format_money(minor, currency)


async def _until(check: Callable[[], Awaitable[T]], what: str) -> T:
    """Poll ``check`` until it returns something truthy (the nodes work in the background)."""
    with trio.move_on_after(STEP_TIMEOUT_S):
        while True:
            value = await check()
            if value:
                return value
            await trio.sleep(0.02)
    raise DemoStalled(f"waited {STEP_TIMEOUT_S:.0f} s for {what}")


async def _announced(vendor: Any, person: Any) -> bool:
    from node.peers import Peers

    peer = await vendor.store.run(Peers(vendor.store.store).by_key, person.home.public_key)
    return peer is not None and peer.url == person.public_url


async def _leads(runtime: Any) -> list[Any]:
    from node.leads import Leads

    return await runtime.store.run(Leads(runtime.store.store).list)


async def _holds(runtime: Any, envelope_id: str) -> bool:
    from node.gossiplog import GossipLog

    return await runtime.store.run(GossipLog(runtime.store.store).get, envelope_id) is not None


async def _offers(runtime: Any, direction: str, count: int) -> list[Any]:
    from node.offers import Offers

    offers = await runtime.store.run(lambda: Offers(runtime.store.store).list(direction=direction))
    return offers if len(offers) >= count else []


async def _decided(runtime: Any, status: str) -> bool:
    from node.offers import Offers

    offers = await runtime.store.run(lambda: Offers(runtime.store.store).list(direction="sent", status=status))
    return bool(offers)


async def _pending(runtime: Any) -> list[Any]:
    from node.grants import Grants

    return await runtime.store.run(lambda: Grants(runtime.store.store).pending())


async def _received_grant(runtime: Any, grant_id: str) -> bool:
    from node.grants import Grants

    grants = await runtime.store.run(lambda: Grants(runtime.store.store).list(direction="received"))
    return any(g.id == grant_id for g in grants)


async def _deletion_confirmed(runtime: Any, grant_id: str) -> int | None:
    from node.grants import Grants

    grant = await runtime.store.run(Grants(runtime.store.store).get, grant_id)
    return grant.deletion_confirmed_at


async def _held(runtime: Any, grant_id: str) -> dict[str, str]:
    from node.grants import Grants

    return await runtime.store.run(Grants(runtime.store.store).held, grant_id)


async def _copies(runtime: Any, ids: list[str]) -> bool:
    from node.receipts import Receipts

    held = await runtime.store.run(lambda: Receipts(runtime.store.store).list())
    return [r.id for r in held] == ids


def _receipt_log(store: Any, public_key_hex: str) -> tuple[list[Any], Any]:
    from node.receipts import Receipts

    receipts = Receipts(store)
    return receipts.list(), receipts.verify(bytes.fromhex(public_key_hex))


def _alice_records(store: Any, vendor_node_id: str) -> tuple[str, list[Any], list[Any]]:
    from node.records import Records

    records = Records(store)
    vendor = next(v for v in records.list_vendors() if v.node_id == vendor_node_id)
    return f"{vendor.handle} ({vendor.name})", records.list_purchases(vendor.id), records.timeline(vendor.id)


def _table(title: str, *columns: str) -> Table:
    return Table(*columns, title=title, title_justify="left")


# -- the envelope demo ----------------------------------------------------------------------------------


def run_envelope_demo(batch_size: int, console: Console | None = None) -> int:
    console = console or Console()
    console.rule("[bold]vrm-node demo: one envelope's journey")

    alice = Identity.generate()
    console.print(f"1. Alice creates an Ed25519 identity: [cyan]{alice.public_key.hex()}[/]")

    parsed = parse_intent("?flight SFO->JFK before:2026-12-20 max:400USD")
    intent = envelope.create(alice, "intent", parsed.body(["contact-only-about-this"]), ttl_ms=7 * DAY_MS)
    console.print(
        f"2. She signs an [bold]intent[/] expiring in 7 days: {len(intent.raw)} bytes of canonical "
        f"MessagePack, id [green]{intent.id.hex()}[/]"
    )
    console.print(f"   wire bytes: [dim]{intent.raw.hex()}[/]")

    decoded = envelope.decode(intent.raw)
    console.print(
        f"3. A vendor decodes it natively: kind={decoded.kind!r}, body={decoded.body!r}, "
        f"id matches: {decoded.id == intent.id}"
    )

    verifier = Verifier()
    now = envelope.now_ms()
    code, _ = verifier.verify_one(intent.raw, now)
    console.print(f"4. Single ZIP-215 verification: [bold]{Reason(code).label}[/]")

    batch, labels = _mixed_batch(alice, intent.raw, batch_size, now)
    started = time.perf_counter()
    codes, ids = verifier.verify_batch(batch, now)
    elapsed = time.perf_counter() - started
    console.print(
        f"5. A batch of {len(batch)} envelopes from 16 authors, verified in one native call "
        f"in {elapsed * 1e3:.2f} ms ({len(batch) / elapsed:,.0f} envelopes/s):"
    )
    table = Table("item", "what was sent", "verdict", "id")
    for index, label in labels.items():
        table.add_row(str(index), label, Reason(codes[index]).label, ids[32 * index : 32 * index + 8].hex() + "…")
    accepted = sum(1 for c in codes if c == Reason.OK)
    console.print(table)
    console.print(f"   {accepted} accepted, {len(batch) - accepted} refused, each with its reason.")
    console.rule("[bold]done")
    return 0


def _mixed_batch(alice: Identity, good: bytes, size: int, now: int) -> tuple[list[bytes], dict[int, str]]:
    """Valid envelopes from 16 authors with a tampered, an expired and a truncated one mixed in."""
    authors = [alice] + [Identity.generate() for _ in range(15)]
    batch = [
        envelope.create(authors[i % 16], "intent", parse_intent(f"?rentalcar near:9q8y #n{i}").body(), ttl_ms=DAY_MS).raw
        for i in range(size)
    ]
    labels = {0: "a valid intent"}
    if size >= 4:
        batch[1] = good.replace(b"SFO", b"LAX")  # still canonical, so only the signature can catch it
        batch[2] = envelope.create(
            alice, "intent", parse_intent("?taxi").body(), created=now - 2 * DAY_MS, expires=now - DAY_MS
        ).raw
        batch[3] = good[:-5]
        labels.update({1: "Alice's intent with SFO changed to LAX", 2: "an intent that expired yesterday", 3: "a truncated envelope"})
    return batch, labels
