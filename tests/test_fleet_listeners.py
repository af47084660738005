"""A vendor fleet with several real listeners over one PostgreSQL database (issue 13, item 2).

Listeners run in this process (NodeRuntime on port 0) or as `vrm serve --store URL` processes when a
test kills one with SIGKILL (tests/fleetnet.py). Peers are real clients signing as a person.
"""

from __future__ import annotations

import statistics
import time

import httpx
import pytest
import trio

from federation import wire
from federation.auth import SignatureAuth
from federation.outbox import Outbox
from federation.peerclient import PeerClient
from node.errors import DeliveryError
from node.identity import Identity
from node.peers import Peers
from node.reasons import Reason
from node.subscriptions import Subscriptions
from tests.fednet import eventually
from tests.fleetnet import Fleet, Inbox, intent, until

TIMEOUT = 60


def leads(db) -> list[str]:
    return [r["intent_id"] for r in db.query("SELECT intent_id FROM leads ORDER BY id")]


def subscribe(fleet: Fleet, text: str) -> None:
    Subscriptions(fleet.db).add(text)


@pytest.mark.parametrize("listeners", [2, 3])
async def test_the_same_intent_pushed_to_every_listener_is_one_lead(fleet, listeners):
    with trio.fail_after(TIMEOUT):
        subscribe(fleet, "?flight")
        urls = [(await fleet.start()).url for _ in range(listeners)]
        alice = Identity.generate()
        pushed = [intent(alice, f"?flight to city {i}") for i in range(10)]
        answers: dict[str, list[bytes]] = {}
        async with PeerClient(alice) as client:

            async def push(url: str) -> None:  # all at once: the listeners race on the same rows
                answers[url] = [await client.push(url, [wire.GossipItem(4, env.raw)]) for env in pushed]

            async with trio.open_nursery() as nursery:
                for url in urls:
                    nursery.start_soon(push, url)
        for i in range(len(pushed)):
            codes = sorted(answers[url][i][0] for url in urls)
            assert codes.count(Reason.OK) >= 1 and set(codes) <= {Reason.OK, Reason.DUPLICATE}, codes
        assert sorted(leads(fleet.db)) == sorted(env.id.hex() for env in pushed)
        assert fleet.db.count("envelopes") == len(pushed)


async def test_a_listener_killed_during_ingest_loses_no_acknowledged_intent(fleet):
    with trio.fail_after(TIMEOUT):
        subscribe(fleet, "?flight")
        async with trio.open_nursery() as starting:  # two `vrm serve` processes, started together
            for _ in range(2):
                starting.start_soon(fleet.spawn)
        doomed, survivor = fleet.procs
        alice = Identity.generate()
        acknowledged: set[str] = set()
        refused = 0
        sent = 0
        in_flight = {doomed.url: False, survivor.url: False}
        async with PeerClient(alice, timeout=10) as client:

            async def stream(url: str, offset: int, count: int) -> None:
                nonlocal refused, sent
                for i in range(count):
                    batch = [intent(alice, f"?flight to city {offset + i}-{j}") for j in range(5)]
                    sent += len(batch)
                    in_flight[url] = True
                    try:
                        reasons = await client.push(url, [wire.GossipItem(4, env.raw) for env in batch])
                    except DeliveryError:  # the listener died: nothing of this batch was acknowledged
                        refused += 1
                        continue
                    finally:
                        in_flight[url] = False
                    # An acknowledged batch goes to the other listener too: duplicates across listeners.
                    acknowledged.update(env.id.hex() for env, code in zip(batch, reasons) if code == Reason.OK)
                    await client.push(survivor.url, [wire.GossipItem(4, env.raw) for env in batch])

            async def kill_midway() -> None:  # while a push to it is unanswered: mid-ingest
                await until(lambda: len(acknowledged) >= 100 and in_flight[doomed.url], interval=0.001)
                doomed.kill()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(stream, doomed.url, 0, 60)
                nursery.start_soon(stream, survivor.url, 10_000, 30)
                nursery.start_soon(kill_midway)
        assert doomed.popen.returncode == -9 and refused > 0  # it died while being pushed to
        made = leads(fleet.db)
        lost = acknowledged - set(made)
        duplicates = len(made) - len(set(made))
        print(f"\nkill -9 during ingest: sent {sent}, acknowledged {len(acknowledged)}, leads {len(made)}, "
              f"lost {len(lost)}, duplicate leads {duplicates}, refused batches {refused}")
        assert not lost and duplicates == 0
        assert fleet.db.count("envelopes") == len(made)  # every stored intent matched: one lead each


async def test_a_subscribe_on_one_listener_reaches_every_listeners_index_within_a_second(fleet):
    with trio.fail_after(TIMEOUT):
        listeners = [await fleet.start() for _ in range(3)]
        admins = [await _admin(runtime) for runtime in listeners]
        delays: list[float] = []
        for i in range(20):
            topic = f"?topic{i}"
            probe = intent(Identity.generate(), f"{topic} please").raw
            sub = await admins[i % 3].run_op("subscriptions.add", {"text": topic})
            started = time.monotonic()  # from the subscribe's answer: it is committed
            for runtime in listeners:  # the index a listener's next ingest matches with

                async def matches(runtime=runtime) -> bool:
                    index = runtime._daemon.index
                    return sub["id"] in (await trio.to_thread.run_sync(index)).match_envelopes([probe])[0]

                await eventually(matches, interval=0.002)
            delays.append(time.monotonic() - started)
        p99 = statistics.quantiles(delays, n=100, method="inclusive")[98]
        print(f"\nsubscription propagation to 3 listeners: p50 {statistics.median(delays) * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms")
        assert p99 < 1.0
        assert all(runtime.listener.notified >= 13 for runtime in listeners)  # heard the others' changes


async def _admin(runtime):
    from federation.admin import AdminClient

    client = await AdminClient.from_home(runtime.home)
    assert client is not None
    return client


async def test_a_signed_request_replayed_to_another_listener_is_refused(fleet):
    with trio.fail_after(TIMEOUT):
        first, second = await fleet.start(), await fleet.start()
        mallory = Identity.generate()
        async with httpx.AsyncClient() as http:
            # Behind a load balancer every listener answers the same authority: the signature covers it.
            request = next(SignatureAuth(mallory).auth_flow(http.build_request("GET", first.url + "/v1/node")))
            answered = await http.send(request)
            assert answered.status_code == 200
            replay = httpx.Request("GET", second.url + "/v1/node", headers=request.headers)
            refused = await http.send(replay)
            assert (refused.status_code, refused.headers.get("Vrm-Signature-Error")) == (401, "replayed")
            # The same authority with a fresh signature is answered there: it was the replay refused.
            fresh = next(SignatureAuth(mallory).auth_flow(http.build_request("GET", first.url + "/v1/node")))
            again = await http.send(httpx.Request("GET", second.url + "/v1/node", headers=fresh.headers))
            assert again.status_code == 200


def _queue(fleet: Fleet, inbox: Inbox, count: int, offset: int = 0) -> set[bytes]:
    alice = Identity.generate()
    envs = [intent(alice, f"?flight to city {offset + i}") for i in range(count)]
    outbox = Outbox(fleet.db)
    with fleet.db.transaction():
        for env in envs:
            outbox.enqueue(inbox.key, wire.encode_item(3, env.raw), kind="gossip", now=1, ref=env.id.hex())
    return {env.id for env in envs}


async def test_two_listeners_send_each_delivery_exactly_once(fleet, nursery):
    with trio.fail_after(TIMEOUT):
        inbox = await Inbox().start(nursery)
        Peers(fleet.db).add(public_key=inbox.identity.public_key, url=inbox.url, role="person", name="")
        listeners = [await fleet.start(), await fleet.start()]
        queued: set[bytes] = set()
        for round_ in range(10):  # both deliverers are woken for every round: they race for the rows
            queued |= _queue(fleet, inbox, 40, offset=round_ * 40)
            for runtime in listeners:
                runtime.deliverer.notify(inbox.key)
            await trio.sleep(0.01)
        await until(lambda: set(inbox.received) == queued)
        await until(lambda: fleet.db.count("outbox") == 0)
        assert set(inbox.received.values()) == {1}  # each sent once
        # Who sent how much is up to the race (disjoint claims: tests/test_fleet_races.py); that
        # the shares add up to the queue is not (counted once each acknowledgement is stored).
        await until(lambda: sum(r.deliverer.stats[inbox.key].delivered for r in listeners) == len(queued))
        assert set(inbox.received.values()) == {1}


async def test_claims_of_a_killed_listener_are_sent_by_another_after_the_lease(fleet, nursery):
    with trio.fail_after(TIMEOUT):
        inbox = await Inbox().start(nursery)
        inbox.hold = True  # the first listener's push hangs unanswered until it is killed
        Peers(fleet.db).add(public_key=inbox.identity.public_key, url=inbox.url, role="person", name="")
        queued = _queue(fleet, inbox, 30)
        doomed = await fleet.spawn(request_timeout=1.0)  # a lease of 3 s
        await until(lambda: inbox.held > 0)
        claimed = fleet.db.query("SELECT claimed_by, claim_until FROM outbox")
        assert len(claimed) == 30 and all(r["claimed_by"] for r in claimed)
        doomed.kill()
        inbox.hold = False
        survivor = await fleet.start(request_timeout=1.0)
        await until(lambda: set(inbox.received) == queued and fleet.db.count("outbox") == 0)
        assert set(inbox.received.values()) == {1}  # the killed listener's push never got through
        assert inbox.first_at >= min(r["claim_until"] for r in claimed)  # taken over, not stolen early
        await until(lambda: survivor.deliverer.stats[inbox.key].delivered == 30)


async def test_a_listener_whose_listen_connection_broke_catches_up_on_what_it_missed(fleet):
    with trio.fail_after(TIMEOUT):
        first, second = await fleet.start(), await fleet.start()
        admin = await _admin(first)
        probe = intent(Identity.generate(), "?kayak ?canoe on the lake").raw

        async def second_matches(sub_id: int) -> bool:
            return sub_id in (await trio.to_thread.run_sync(second._daemon.index)).match_envelopes([probe])[0]

        with fleet.db.connection() as conn:  # as a server restart or a dropped proxy connection would
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (f"vrm-listen {second.listener.id}",),
            )
        sub = await admin.run_op("subscriptions.add", {"text": "?kayak"})  # its NOTIFY may reach no one
        await until(lambda: second.listener.reconnects == 1)
        await eventually(lambda: second_matches(sub["id"]))
        later = await admin.run_op("subscriptions.add", {"text": "?canoe"})
        await eventually(lambda: second_matches(later["id"]))  # and it hears the next ones again
