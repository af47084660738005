"""LAN discovery on loopback: a node advertised over mDNS is found, with its id, role and URL, and a
browser does not find itself."""

from __future__ import annotations

import trio

from federation import mdns
from node.nodeid import encode_node_id

PI, LAPTOP = encode_node_id(bytes([7]) * 32), encode_node_id(bytes([8]) * 32)


async def test_a_node_advertised_on_the_lan_is_found():
    ad = mdns.Advertiser(PI, "person", "127.0.0.1", 8123, interfaces=["127.0.0.1"])
    try:
        with trio.fail_after(20):
            found = await mdns.discover(2.5, own_id=LAPTOP, interfaces=["127.0.0.1"])
        assert [(c.node_id, c.url, c.role, c.source) for c in found] == [(PI, "http://127.0.0.1:8123", "person", "mdns")]
        with trio.fail_after(20):
            assert await mdns.discover(2.5, own_id=PI, interfaces=["127.0.0.1"]) == []
    finally:
        ad.close()
