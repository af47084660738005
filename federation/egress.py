"""Where the node's own requests may go: the address policy, checked when a URL is accepted and again
on every connection.

A URL a stranger claims is checked before the node uses it (``url_allowed``, from
``federation.peerverify`` and peer exchange): http or https, and its host — the literal address, or
every address its name resolves to — a global unicast address. Private, loopback, link-local and
site-local addresses are refused unless allowed (the operator's ``allow_private_peers``, a node
serving on a private address, or a LAN neighbour found by mDNS); multicast, reserved and
unspecified addresses always.

A name is only as good as its next answer, though: the owner of ``peer.example`` can make it resolve
to a public address while the claim is checked and to ``127.0.0.1`` or ``169.254.169.254`` for every
push after (DNS rebinding). So the node's HTTP client connects through ``GuardedBackend``: each new
connection to a name resolves it once, refuses it (``httpx.ConnectError``, a failed attempt the
deliverer retries) unless every address is allowed, and connects to one of the addresses it judged
(the next one tried when an attempt fails or is slow, as trio's own ``open_tcp_stream`` does).
TLS is still checked against the name (httpcore's SNI comes from the URL, not the socket). A literal
address cannot change: it was judged when its URL was accepted, with that URL's source in mind
(mDNS neighbours are literal private addresses), so here it is only refused when it is never allowed.
Proxies named in the environment (``HTTP_PROXY`` …) are not used for peers: httpx applies them only
to a client without a transport of its own, and a proxy would dial names the node never judged.
"""

from __future__ import annotations

import ipaddress
import typing
import urllib.parse
from collections.abc import Awaitable, Callable

import httpcore
import httpx
import trio

TIMEOUT = 5.0  # seconds to resolve a name when no connect timeout is given
MAX_ATTEMPTS = 4  # addresses of one name tried (the families interleaved) before a connection fails
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: an IPv4 address in the low 32 bits
STAGGER = 0.25  # seconds before the next address is tried while one attempt is pending (RFC 8305)

Resolver = Callable[[str, int], Awaitable[list[str]]]


def address_allowed(text: str, allow_private: bool) -> bool:
    """Whether the node may connect to the literal address ``text``."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:  # fec0::/10, deprecated but still a LAN's (ipaddress calls it global)
            return allow_private
        if address.is_loopback:  # ::1 sits in ::/8, which ipaddress calls reserved
            return allow_private
        # An IPv4 address inside (mapped, 6to4's 2002::/16 which ipaddress calls global, or a DNS64
        # network's NAT64 prefix, inside ::/8 as well): judge that one.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            address = embedded
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return False
    if address.is_global:
        return True
    return allow_private


def is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, in a thread)."""
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    # an IPv6 link-local address is only reachable through its interface: keep the scope id
    return [f"{i[4][0]}%{i[4][3]}" if len(i[4]) == 4 and i[4][3] else i[4][0] for i in infos]


def interleaved(addresses: list[str]) -> list[str]:
    """``addresses`` without repeats, IPv6 and IPv4 alternating from the resolver's first (RFC 8305),
    so a family that does not work here costs one attempt, not all of them."""
    unique = list(dict.fromkeys(addresses))
    first = [a for a in unique if (":" in a) == (":" in unique[0])] if unique else []
    other = [a for a in unique if a not in first]
    out = []
    for i in range(max(len(first), len(other))):
        out.extend(x[i] for x in (first, other) if i < len(x))
    return out


async def url_allowed(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> bool:
    """Whether the node may send requests to ``url`` (see the module docstring)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname
    if is_literal(host):
        return address_allowed(host, allow_private)
    try:  # a name: every address it resolves to must be allowed
        with trio.fail_after(TIMEOUT):
            addresses = await resolver(host, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError, trio.TooSlowError):  # UnicodeError: a label IDNA refuses (> 63 chars)
        return False
    return bool(addresses) and all(address_allowed(a, allow_private) for a in addresses)


def private_peers_allowed(allow_private_peers: bool, host: str) -> bool:
    """Whether a node's peers may be on private addresses: the operator allowed them
    (``federation.allow_private_peers``), or the node itself serves on such an address."""
    return allow_private_peers or serves_privately(host)


def serves_privately(host: str) -> bool:
    """Whether a node bound to ``host`` serves on a non-global address (then its peers may too). All
    interfaces (``0.0.0.0``, ``::``) is not: a public node must not be steered to its own LAN."""
    if host == "localhost":
        return True
    if not is_literal(host):
        return False
    address = ipaddress.ip_address(host)
    return not address.is_unspecified and not address.is_global


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's trio backend, connecting only where the address policy allows (module docstring)."""

    def __init__(self, *, allow_private: bool, resolver: Resolver = resolve) -> None:
        self.allow_private = allow_private
        self._resolver = resolver
        self._inner = httpcore.TrioBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._judged(host, port, timeout)

        async def attempt(address: str, failed: trio.Event) -> None:
            nonlocal connected
            try:
                stream = await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                errors.append(exc)
                failed.set()
                return
            except Exception as exc:  # anything else from a socket is an address that did not work
                errors.append(httpcore.ConnectError(f"connecting to {address}: {exc!r}"))
                failed.set()
                return
            if connected is None:
                connected = stream
                attempts.cancel_scope.cancel()
            else:  # two attempts connected in the same scheduling round
                await stream.aclose()

        # As trio's own open_tcp_stream does (happy eyeballs): the next address is tried once the
        # previous attempt failed or STAGGER seconds passed, the first to connect wins.
        connected: httpcore.AsyncNetworkStream | None = None
        errors: list[httpcore.ConnectError | httpcore.ConnectTimeout] = []
        try:
            async with trio.open_nursery() as attempts:
                for address in addresses[:MAX_ATTEMPTS]:
                    failed = trio.Event()
                    attempts.start_soon(attempt, address, failed)
                    with trio.move_on_after(STAGGER):
                        await failed.wait()
        except BaseException:  # the caller's deadline, say: a stream that connected meanwhile is closed
            if connected is not None:
                with trio.CancelScope(shield=True):
                    await connected.aclose()
            raise
        if connected is None:
            raise errors[-1]
        return connected

    async def _judged(self, host: str, port: int, timeout: float | None) -> list[str]:
        if is_literal(host):
            if not address_allowed(host, allow_private=True):
                raise httpcore.ConnectError(f"refused to connect to {host}: never a peer's address")
            return [host]
        try:
            with trio.fail_after(TIMEOUT if timeout is None else timeout):
                found = await self._resolver(host, port)
        except trio.TooSlowError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        refused = [a for a in found if not address_allowed(a, self.allow_private)]
        if not found:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        if refused:
            hint = "" if self.allow_private else " (private addresses: federation.allow_private_peers)"
            raise httpcore.ConnectError(f"refused to connect to {host}: it resolves to {', '.join(refused)}{hint}")
        return interleaved(found)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a peer is never reached through a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (TLS verified as configured, SSL_CERT_FILE honoured) over ``GuardedBackend``."""

    def __init__(self, *, allow_private: bool, resolver: Resolver = resolve) -> None:
        super().__init__()
        self.backend = GuardedBackend(allow_private=allow_private, resolver=resolver)
        limits = httpx.Limits()  # httpx's defaults, as the plain transport has them
        # httpx builds its pool without a way to pass a network backend: the pool is rebuilt with ours.
        # tests/test_egress.py fails if httpx stops sending requests through ``_pool``.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )
