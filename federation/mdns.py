"""LAN discovery over mDNS / DNS-SD: a node advertises ``_vrm._tcp`` with its node id and role, and
browses for others, so a Pi and a laptop at home find each other. python-zeroconf runs its own
threads; from trio it is driven through ``trio.to_thread`` (``discover``). What is found is a
``discovery.Candidate`` (source ``mdns``): dialled and verified like any other before it is a peer.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence

import trio
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

from federation.discovery import MAX_CANDIDATES, Candidate
from federation.wire import PEER_ROLES
from node.nodeid import is_node_id

SERVICE = "_vrm._tcp.local."


def _zeroconf(interfaces: Sequence[str] | None) -> Zeroconf:
    if interfaces is None:
        return Zeroconf(ip_version=IPVersion.V4Only)
    return Zeroconf(interfaces=list(interfaces), ip_version=IPVersion.V4Only)


class Advertiser:
    """Announces this node on the LAN until closed."""

    def __init__(self, node_id: str, role: str, address: str, port: int, interfaces: Sequence[str] | None = None) -> None:
        self._zc = _zeroconf(interfaces)
        self._info = ServiceInfo(
            SERVICE,
            f"{node_id[:32]}.{SERVICE}",
            addresses=[socket.inet_aton(address)],
            port=port,
            properties={"id": node_id, "role": role},
        )
        self._zc.register_service(self._info)

    def close(self) -> None:
        self._zc.unregister_service(self._info)
        self._zc.close()


def browse(seconds: float, own_id: str, interfaces: Sequence[str] | None = None) -> list[Candidate]:
    """Listen for ``seconds`` (blocking; call through a thread) and return the nodes found."""
    zc = _zeroconf(interfaces)
    names: list[str] = []
    lock = threading.Lock()

    def changed(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added:
            with lock:
                if len(names) < MAX_CANDIDATES:
                    names.append(name)

    browser = ServiceBrowser(zc, SERVICE, handlers=[changed])
    try:
        time.sleep(seconds)
        found: dict[str, Candidate] = {}
        with lock:
            pending = list(names)
        for name in pending:
            info = zc.get_service_info(SERVICE, name, timeout=1000)
            if info is None or not info.parsed_addresses() or not info.port:
                continue
            props = {k.decode(errors="replace"): (v or b"").decode(errors="replace") for k, v in info.properties.items()}
            node_id, role = props.get("id", ""), props.get("role")
            if not is_node_id(node_id) or node_id == own_id or role not in PEER_ROLES:
                continue  # a LAN neighbour says what it likes: only well-formed claims are kept
            found[node_id] = Candidate(node_id, f"http://{info.parsed_addresses()[0]}:{info.port}", role, "mdns")
        return list(found.values())
    finally:
        browser.cancel()
        zc.close()


async def discover(seconds: float, own_id: str, interfaces: Sequence[str] | None = None) -> list[Candidate]:
    """``browse`` from trio, in a worker thread."""
    return await trio.to_thread.run_sync(browse, seconds, own_id, interfaces)
