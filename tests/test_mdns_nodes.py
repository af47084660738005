"""LAN discovery between real nodes (issue 14): with mDNS on, a Pi and a laptop at home find each other
(``_vrm._tcp`` on 127.0.0.1 here), verify what they found like any candidate, and a vendor found so
receives the person's intents; a LAN neighbour that lies about its node id is never added."""

from __future__ import annotations

import trio

from federation import mdns
from node.identity import Identity
from node.leads import Leads
from node.nodeid import encode_node_id
from node.peers import Peers
from tests.fednet import FedNet, eventually

HOUR = 3_600_000
TIMEOUT = 60
LAN = {"mdns": True, "mdns_interval": 0.3, "mdns_interfaces": ["127.0.0.1"]}


def _peer(store, node_id, source=None):
    return next((p for p in Peers(store).list() if p.node_id == node_id and source in (None, p.source)), None)


async def test_a_vendor_found_on_the_lan_receives_the_intents(nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path)
        vendor = await net.node("shop", "vendor", **LAN)
        await vendor.op("subscriptions.add", {"text": "?bike"})
        # a neighbour claiming another node's id at the vendor's address: it does not answer as that id
        impostor = encode_node_id(Identity.generate().public_key)
        liar = await trio.to_thread.run_sync(
            lambda: mdns.Advertiser(impostor, "vendor", "127.0.0.1", vendor.port, interfaces=["127.0.0.1"])
        )
        try:
            laptop = await net.node("laptop", **LAN)
            found = await eventually(lambda: laptop.read(lambda s: _peer(s, vendor.node_id, "added")), interval=0.1)
            assert (found.source, found.url, found.role) == ("added", vendor.url, "vendor")

            async def outcome():
                states = {f["node_id"]: (f["state"], f["source"], f["detail"])
                          for f in (await laptop.runtime.status())["discovery"]}
                return states if states.get(impostor, ("pending",))[0] != "pending" else None

            states = await eventually(outcome, interval=0.1)
            assert states[impostor] == ("refused", "mdns", "another node answers there")
            assert await laptop.read(lambda s: _peer(s, impostor)) is None
            intent = await laptop.op("intent.cast", {"text": "Need ?bike repair", "ttl_ms": HOUR, "terms": []})
            leads = await eventually(lambda: vendor.read(lambda s: Leads(s).list()))
            assert [lead.intent_id for lead in leads] == [intent["id"]]
        finally:
            await trio.to_thread.run_sync(liar.close)
        await net.stop_all()


async def test_peers_discover_shows_the_lan_and_the_running_nodes_candidates(nursery, tmp_path):
    import json

    from typer.testing import CliRunner

    from cli.main import app

    with trio.fail_after(TIMEOUT):
        net = FedNet(nursery, tmp_path)
        pi = await net.node("pi", **LAN)
        laptop = await net.node("laptop", **LAN)
        await eventually(lambda: laptop.read(lambda s: _peer(s, pi.node_id, "added")), interval=0.1)

        def vrm(*args: str):
            result = CliRunner().invoke(app, ["peers", "discover", *args], env={"VRM_HOME": str(laptop.home.path), "COLUMNS": "400"})
            assert result.exit_code == 0, (result.stdout, result.stderr)
            return result

        shown = json.loads((await trio.to_thread.run_sync(vrm, "--json", "--timeout", "2")).stdout)
        assert [(c["node_id"], c["url"], c["role"]) for c in shown["lan"]
                if c["node_id"] == pi.node_id] == [(pi.node_id, pi.url, "person")]
        assert laptop.node_id not in [c["node_id"] for c in shown["lan"]]  # not itself
        assert [(c["state"], c["source"]) for c in shown["daemon"] if c["node_id"] == pi.node_id] == [("added", "mdns")]
        table = (await trio.to_thread.run_sync(vrm, "--timeout", "0")).stdout
        assert pi.node_id in table and "added" in table
        await net.stop_all()


async def test_vrm_serve_mdns_announces_the_node_on_the_lan(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from node.home import init_home

    home = init_home(tmp_path / "pi", None, "person")
    vrm = Path(sys.executable).with_name("vrm")
    env = {**os.environ, "VRM_HOME": str(home.path)}
    env.pop("VRM_PASSPHRASE", None)
    process = subprocess.Popen([str(vrm), "serve", "--port", "0", "--mdns"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        with trio.fail_after(TIMEOUT):
            assert process.stdout is not None
            url = None
            while url is None:
                line = await trio.to_thread.run_sync(process.stdout.readline)
                assert line, "vrm serve ended before listening"
                if line.startswith("federation "):
                    url = line.split(" ", 1)[1].strip()
            me = encode_node_id(Identity.generate().public_key)
            found = []
            while not found:
                found = [c for c in await mdns.discover(1.5, me, interfaces=["127.0.0.1"]) if c.node_id == home.node_id]
            assert [(c.url, c.role) for c in found] == [(url, "person")]
    finally:
        process.send_signal(signal.SIGTERM)
        await trio.to_thread.run_sync(process.communicate)
    assert process.returncode == 0
