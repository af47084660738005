"""LAN discovery on loopback: a node advertised over mDNS is found, with its id, role and URL, and a
browser does not find itself. Other nodes may be advertising on loopback meanwhile (tests on other
xdist workers, a developer's running node): only this test's fresh ids are looked at."""

from __future__ import annotations

import os

import trio

from federation import mdns
from node.nodeid import encode_node_id

PI, LAPTOP = encode_node_id(os.urandom(32)), encode_node_id(os.urandom(32))


def ours(found: list) -> list:
    return [c for c in found if c.node_id in (PI, LAPTOP)]


async def test_a_node_advertised_on_the_lan_is_found():
    ad = mdns.Advertiser(PI, "person", "127.0.0.1", 8123, interfaces=["127.0.0.1"])
    try:
        with trio.fail_after(20):
            found = await mdns.discover(2.5, own_id=LAPTOP, interfaces=["127.0.0.1"])
        assert [(c.node_id, c.url, c.role, c.source) for c in ours(found)] == [(PI, "http://127.0.0.1:8123", "person", "mdns")]
        with trio.fail_after(20):
            assert ours(await mdns.discover(2.5, own_id=PI, interfaces=["127.0.0.1"])) == []
    finally:
        ad.close()
