"""LAN discovery over mDNS / DNS-SD: a node advertises ``_vrm._tcp`` with its node id and role, and
browses for others, so a Pi and a laptop at home find each other. python-zeroconf runs its own
threads; from trio it is driven through ``trio.to_thread`` (``discover``). What is found is a
``discovery.Candidate`` (source ``mdns``): dialled and verified like any other before it is a peer.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import trio
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

from federation.discovery import MAX_CANDIDATES, Candidate
from federation.server import ALL_INTERFACES, host_addresses
from federation.wire import PEER_ROLES
from node.nodeid import is_node_id

SERVICE = "_vrm._tcp.local."
LOGGER = logging.getLogger("vrm.discovery")


def _zeroconf(interfaces: Sequence[str] | None) -> Zeroconf:
    if interfaces is None:
        return Zeroconf(ip_version=IPVersion.V4Only)
    return Zeroconf(interfaces=list(interfaces), ip_version=IPVersion.V4Only)


def local_addresses() -> list[str]:
    """This host's IPv4 addresses but loopback (what a node bound to all interfaces announces)."""
    return [a for a in host_addresses() if ":" not in a and not a.startswith("127.")]


def _txt(node_id: str, role: str, tls: bool) -> dict[str, str]:
    return {"id": node_id, "role": role, "v": "1", **({"tls": "1"} if tls else {})}


def _info(node_id: str, role: str, addresses: Sequence[str], port: int, tls: bool = False) -> ServiceInfo:
    return ServiceInfo(
        SERVICE,
        f"{node_id[:32]}.{SERVICE}",
        addresses=[socket.inet_aton(a) for a in addresses],
        port=port,
        properties=_txt(node_id, role, tls),
    )


def _candidate(info: ServiceInfo | None, own_id: str) -> Candidate | None:
    """The node a resolved service claims to be, when the claim is well formed."""
    if info is None or not info.parsed_addresses(IPVersion.V4Only) or not info.port:
        return None
    props = {k.decode(errors="replace"): (v or b"").decode(errors="replace") for k, v in info.properties.items()}
    node_id, role = props.get("id", ""), props.get("role")
    if not is_node_id(node_id) or node_id == own_id or role not in PEER_ROLES:
        return None  # a LAN neighbour says what it likes: only well-formed claims are kept
    scheme = "https" if props.get("tls") == "1" else "http"
    return Candidate(node_id, f"{scheme}://{info.parsed_addresses(IPVersion.V4Only)[0]}:{info.port}", role, "mdns")


class Advertiser:
    """Announces this node on the LAN until closed."""

    def __init__(self, node_id: str, role: str, address: str, port: int, interfaces: Sequence[str] | None = None) -> None:
        self._zc = _zeroconf(interfaces)
        self._info = _info(node_id, role, [address], port)
        self._zc.register_service(self._info)

    def close(self) -> None:
        self._zc.unregister_service(self._info)
        self._zc.close()


class Lan:
    """A running node on the LAN: advertised, and browsing for others the whole time (one Zeroconf).
    Its methods block: call them through ``trio.to_thread``."""

    def __init__(
        self, node_id: str, role: str, addresses: Sequence[str], port: int, *,
        interfaces: Sequence[str] | None = None, tls: bool = False,
    ) -> None:
        self.own_id = node_id
        self._zc = _zeroconf(interfaces)
        self._lock = threading.Lock()
        self._seen: dict[str, bool] = {}  # service name -> resolved since last seen
        self._info = _info(node_id, role, addresses, port, tls) if addresses else None
        if self._info is not None:
            self._zc.register_service(self._info)
        self._browser = ServiceBrowser(self._zc, SERVICE, handlers=[self._changed])

    def _changed(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        with self._lock:
            if state_change is ServiceStateChange.Removed:
                self._seen.pop(name, None)
            elif name in self._seen or len(self._seen) < MAX_CANDIDATES:
                self._seen[name] = False  # (re)announced: resolve it again

    def found(self, timeout_ms: int = 1000) -> list[Candidate]:
        """The nodes announced since the last call, resolved (at most MAX_CANDIDATES names are kept)."""
        with self._lock:
            pending = [name for name, done in self._seen.items() if not done]
            for name in pending:
                self._seen[name] = True
        out: dict[str, Candidate] = {}
        for name in pending:
            c = _candidate(self._zc.get_service_info(SERVICE, name, timeout=timeout_ms), self.own_id)
            if c is not None and c.node_id is not None:
                out[c.node_id] = c
        return list(out.values())

    def close(self) -> None:
        self._browser.cancel()
        if self._info is not None:
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
            c = _candidate(zc.get_service_info(SERVICE, name, timeout=1000), own_id)
            if c is not None and c.node_id is not None:
                found[c.node_id] = c
        return list(found.values())
    finally:
        browser.cancel()
        zc.close()


async def discover(seconds: float, own_id: str, interfaces: Sequence[str] | None = None) -> list[Candidate]:
    """``browse`` from trio, in a worker thread."""
    return await trio.to_thread.run_sync(browse, seconds, own_id, interfaces)


async def on_the_lan(
    discovery: Any, *, node_id: str, role: str, host: str, port: int, interfaces: Sequence[str] | None,
    tls: bool, interval: float,
) -> None:
    """A running node's LAN presence until cancelled: announced where it is bound (every non-loopback
    address when bound to all; browsing there too), and what the LAN announces offered to
    ``discovery`` (federation.peerexchange.Discovery), which verifies it, every ``interval`` seconds."""
    everywhere = host in ALL_INTERFACES
    if interfaces is None and not everywhere:
        interfaces = [host]  # a node bound to one address is announced (and browses) there only
    addresses = local_addresses() if everywhere else [host]
    lan = await trio.to_thread.run_sync(partial(Lan, node_id, role, addresses, port, interfaces=interfaces, tls=tls))
    try:
        while True:
            try:
                found = await trio.to_thread.run_sync(lan.found)
                if found and discovery.offer(found):
                    await discovery.verify_only()
            except Exception:  # a bug in one neighbour's answer must not stop LAN discovery
                LOGGER.exception("LAN discovery failed")
            await trio.sleep(interval)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(lan.close)
