"""`make demo-fleet`: one vendor served by two listeners over one throwaway PostgreSQL cluster.

It runs the commands an operator would (printed as it goes): `vrm fleet init`, `vrm fleet join` for
two listener homes, `vrm serve` for each (fleet.launch), a person's node casting an intent at
listener 1, the same signed intent relayed to listener 2 — which answers ``duplicate``: the fleet
already holds it — and `vrm leads list` showing exactly one lead. Everything is stopped and deleted
at the end. ``python -m fleet.demo``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.launch import Fleet, Node, start_node, vrm

WAIT_S = 30.0


def say(text: str) -> None:
    print(text, flush=True)


def run(home: Path, *args: str, show: bool = True) -> str:
    if show:
        say(f"$ vrm --home {home.name} {' '.join(args)}")
    out = vrm(home, *args)
    if show and "--json" not in args:
        for line in out.rstrip().splitlines():
            say(f"  {line}")
    return out


def eventually(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"demo failed: timed out waiting for {what}")
        time.sleep(0.3)
    return value


def relay(envelope_id: str, source: Node, target: Node) -> str:
    """Pull the intent from the person's node and push it to ``target`` as a gossiping peer would;
    the reason ``target`` answers with."""
    import trio

    from federation.peerclient import PeerClient
    from node.identity import Identity
    from node.reasons import Reason

    async def go() -> str:
        async with PeerClient(Identity.from_seed(b"\x52" * 32), timeout=30) as client:
            page = await client.pull(source.url)
            from node import envelope

            items = [i for i in page.items if envelope.decode(i.envelope).id.hex() == envelope_id]
            if not items:
                raise SystemExit("demo failed: the person's node does not serve its intent")
            [reason] = await client.push(target.url, items)
            return Reason(reason).name.lower()

    return trio.run(go)


def main() -> int:
    from fleet.cluster import PgCluster, PostgresUnavailable

    try:
        cluster = PgCluster().start()
    except PostgresUnavailable as exc:
        print(f"demo-fleet needs PostgreSQL: {exc}", file=sys.stderr)
        return 2
    person: Node | None = None
    fleet: Fleet | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="vrm-demo-fleet-") as tmp:
            root = Path(tmp)
            url = cluster.url
            say(f"A throwaway PostgreSQL cluster: {url}\n")
            acme, alice = root / "acme", root / "alice"
            run(acme, "init", "--vendor", "--name", "Acme Air", "--no-passphrase")
            run(acme, "fleet", "init", "--store", url)
            run(acme, "subscribe", "?flight")
            listeners = [root / "listener-1", root / "listener-2"]
            for home in listeners:
                run(home, "fleet", "join", "--store", url)
            say("\nStarting two listeners (vrm serve), each waited for until GET /v1/health is ok ...")
            fleet = Fleet(listeners, args=("--allow-private-peers",)).start()
            for node in fleet.nodes:
                say(f"  {node.home.name}: {node.url}  health {json.dumps(node.health()[1])}")
            run(acme, "fleet", "status")

            say("\nA person's node casts an intent; its only peer is listener 1.")
            run(alice, "init", "--name", "Alice", "--no-passphrase")
            person = start_node(alice, args=("--allow-private-peers",))
            one, two = fleet.nodes
            vendor_id = json.loads(run(acme, "id", "--json", show=False))["node_id"]
            run(alice, "peers", "add", one.url, "--id", vendor_id)
            intent = json.loads(run(alice, "intent", "?flight SFO->JFK max:400USD", "--expires", "1d", "--json", show=False))
            say(f"$ vrm --home alice intent \"?flight SFO->JFK max:400USD\" --expires 1d\n  intent {intent['id']}")
            leads = eventually(lambda: json.loads(run(acme, "leads", "list", "--json", show=False)), "the lead")

            say("\nThe same signed intent relayed to listener 2, as gossip from another peer would bring it:")
            answer = relay(intent["id"], person, two)
            say(f"  listener 2 answered: {answer}  (the fleet's database already holds it)")
            time.sleep(1.5)  # anything a second listener would have added lands by now
            leads = json.loads(run(acme, "leads", "list", "--json", show=False))
            run(acme, "leads", "list")
            ok = len(leads) == 1 and leads[0]["intent_id"] == intent["id"] and answer == "duplicate"
            say(
                f"\n{'OK' if ok else 'FAILED'}: the intent reached both listeners of one vendor and made "
                f"exactly {len(leads)} lead."
            )
            run(acme, "fleet", "status")
            return 0 if ok else 1
    finally:
        say("\nStopping the listeners, the person's node and the cluster ...")
        if person is not None:
            person.stop()
        if fleet is not None:
            fleet.stop()
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
