"""Serve one ASGI app with Hypercorn's trio worker and report the address it actually bound.

``await nursery.start(serve, app, host=..., port=0)`` returns a ``Bound`` once the socket listens, so
port 0 (any free port, what tests use) gives a usable URL. Hypercorn binds the sockets itself from
``config.bind`` and hands the ``http://host:port`` of each listener to ``task_status.started``; that
is the only reliable place to learn the port it was given.

Shutdown is graceful when ``shutdown_trigger`` returns: Hypercorn stops accepting, lets requests in
flight finish for up to ``graceful_timeout`` seconds, then runs the app's lifespan shutdown.
Cancelling the task stops at once instead.

``tls`` (a certificate chain and its key, PEM files) makes it serve HTTPS itself: Hypercorn's TLS,
HTTP/1.1 and h2 by ALPN; the reported URL is then ``https://host:port``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.types import ASGIApp

from federation.limits import Limits, hypercorn_settings
from node.errors import ValidationError

ALL_INTERFACES = frozenset({"0.0.0.0", "::", ""})  # hosts that bind every interface

# Hypercorn logs "Running on …" and connection errors here; it propagates to the root logger, so the
# caller (the CLI) decides whether anyone sees it.
LOGGER = logging.getLogger("vrm.http")


@dataclass(frozen=True)
class Bound:
    """Where a server listens: ``url`` is ``http://host:port`` with the real port."""

    host: str
    port: int
    url: str


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for serving HTTPS: the certificate chain and its private key."""

    cert: str
    key: str

    def check(self) -> None:
        """Refuse, before anything listens, files that are missing or do not make a key pair."""
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise ValidationError("tls", f"cannot use {self.cert} with {self.key}: {exc}") from None


def make_config(
    host: str, port: int, *, graceful_timeout: float, tls: TLSFiles | None = None, limits: Limits | None = None
) -> Config:
    """Hypercorn's config; with ``limits`` (the federation port) its deadlines close a connection that
    trickles its headers or sits silent (``federation.limits.hypercorn_settings``)."""
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be 0..65535, not {port!r}")
    config = Config()
    if tls is not None:
        config.certfile, config.keyfile = tls.cert, tls.key
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    config.errorlog = LOGGER
    config.keep_alive_timeout = 30.0  # peers push in bursts over one pooled connection
    if limits is not None:
        for name, value in hypercorn_settings(limits).items():
            setattr(config, name, value)
    return config


async def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    graceful_timeout: float = 5.0,
    tls: TLSFiles | None = None,
    limits: Limits | None = None,
    task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``host:port`` until ``shutdown_trigger`` returns (graceful) or the task is
    cancelled; ``task_status.started`` gets the ``Bound`` address once the socket listens.
    OSError (address in use, no such interface) propagates before ``started``."""
    config = make_config(host, port, graceful_timeout=graceful_timeout, tls=tls, limits=limits)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(hypercorn_serve, app, config, shutdown_trigger=shutdown_trigger, mode="asgi")
        )
        task_status.started(bound_from_url(binds[0]))


def bound_from_url(url: str) -> Bound:
    """``http://127.0.0.1:54321`` (as Hypercorn reports a listener) as a Bound."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"not a listener URL: {url!r}")
    return Bound(host=parts.hostname, port=parts.port, url=f"{parts.scheme}://{parts.netloc}")


def host_addresses() -> list[str]:
    """Every address of this host's interfaces, IPv4 and IPv6 (loopback included, no scope ids)."""
    import ifaddr

    return [ip.ip if isinstance(ip.ip, str) else ip.ip[0] for adapter in ifaddr.get_adapters() for ip in adapter.ips]


def listener_urls(scheme: str, host: str, port: int, bound_host: str | None = None) -> list[str]:
    """The URLs a server bound to ``host:port`` can be reached at: ``host`` as configured (a name like
    ``localhost`` too) and the address it was bound at (``bound_host``); bound to all interfaces, every
    address of this host and its host name instead (``0.0.0.0`` names no host, and every such node
    would share it). A name beyond these (DNS, a proxy) is the operator's to configure as the node's
    public URL."""
    if host not in ALL_INTERFACES:
        hosts = [host, *([bound_host] if bound_host else [])]
    else:
        hosts = [*host_addresses(), "localhost", socket.gethostname()]
    return [f"{scheme}://[{h}]:{port}" if ":" in h else f"{scheme}://{h}:{port}" for h in dict.fromkeys(hosts)]
