"""`vrm serve`: run the node as a daemon: the federation API for peers, the admin API for `vrm`.

Its settings come from node.toml (node.config), each flag overriding one key.

While it runs, every write command (`vrm intent`, `vrm offer`, `vrm peers add` …) goes through its
admin API (found in ``<home>/admin.json``), so peers hear of changes at once.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from functools import partial
from typing import Annotated, Any

import typer

from cli.context import node


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="The interface peers reach the federation API on [server.host: 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="The federation port, 0: any free one [server.port: 8470].")
    ] = None,
    admin_port: Annotated[
        int | None,
        typer.Option("--admin-port", min=0, max=65535, help="The admin API's port on 127.0.0.1 [server.admin_port: 0]."),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            metavar="URL",
            help="The URL peers should push to, when it is not the bound one (a proxy, a NAT forward, a DNS name): requests signed for any other name are refused.",
        ),
    ] = None,
    ui_lan: Annotated[
        bool | None,
        typer.Option(
            "--ui-lan/--no-ui-lan",
            help="Also serve the page on the LAN (0.0.0.0), for your phone: same login plus a pairing code [ui.lan: off].",
        ),
    ] = None,
    ui_port: Annotated[
        int | None,
        typer.Option("--ui-port", min=0, max=65535, help="The page's LAN port with --ui-lan, 0: any [ui.lan_port: 8471]."),
    ] = None,
    tls_cert: Annotated[
        str | None, typer.Option("--tls-cert", metavar="PEM", help="Serve HTTPS: the certificate chain.")
    ] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", metavar="PEM", help="The private key of --tls-cert.")] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="debug, info, warning or error [log.level: warning].")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="text or json (one object a line, on stderr) [log.format: text].")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help="A vendor fleet's postgresql:// database: serve as one of its listeners (default: the home's).",
        ),
    ] = None,
    allow_private_peers: Annotated[
        bool,
        typer.Option(
            "--allow-private-peers",
            help="Reach peers on private, loopback or link-local addresses: announced URLs, and names that "
            "resolve there (judged on every connection) [federation.allow_private_peers: false].",
        ),
    ] = False,
    mdns: Annotated[
        bool,
        typer.Option(
            "--mdns", help="Announce this node on the LAN (_vrm._tcp) and add the nodes found there; other machines "
            "reach it when it listens on a LAN address (--host) [federation.mdns: false]."
        ),
    ] = False,
) -> None:
    """Run this node until Ctrl-C or SIGTERM: serve peers, push and pull gossip, match and deliver.

    Settings come from node.toml in the home (`vrm config show`); a flag given here overrides its key.
    Prints the federation and admin URLs once both listen; under systemd (Type=notify) also tells it
    READY=1, STOPPING=1 and watchdog pings. Stops gracefully (requests in flight finish, the admin file
    is removed).
    """
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{public_url!r}: give an http:// or https:// URL", param_hint="--public-url")
    from node.config import load

    state = node(ctx)
    home = state.home()
    settings = load(home.path)
    given = {
        "server.host": host,
        "server.port": port,
        "server.admin_port": admin_port,
        "server.public_url": public_url,
        "server.tls_cert": tls_cert,
        "server.tls_key": tls_key,
        "ui.lan": ui_lan,
        "ui.lan_port": ui_port,
        "log.level": log_level,
        "log.format": log_format,
        "store.url": store,
    }
    if allow_private_peers:  # the flag only turns it on; the file's key may too
        given["federation.allow_private_peers"] = True
    if mdns:
        given["federation.mdns"] = True
    for key, value in given.items():
        if value is not None:
            settings.set(key, value)  # checked like the file: a ValidationError names the key
    options = run_options(settings)
    setup_logging(settings.get("log.level"), settings.get("log.format"))

    import trio

    from app.runtime import serve_forever
    from federation.sdnotify import Notifier

    notifier = Notifier.from_environ()
    identity = state.identity()  # ask for the passphrase before anything listens
    # The vault key answers fetches and seals pushed data; None for a home without a passphrase.
    vault_key = state.vault_key()
    bootstrap = settings.get("federation.bootstrap_peers")

    def ready(runtime: Any) -> None:
        # flush: a script (or a test) reads these lines through a pipe while the node keeps running
        typer.echo(f"{home.role} node {home.node_id}")
        typer.echo(f"federation {runtime.url}")
        typer.echo(f"admin {runtime.admin_url}")
        typer.echo(f"page {runtime.admin_url}/ui/ (vrm ui prints a login link)")
        if runtime.ui_lan_url:
            typer.echo(f"page on the LAN {runtime.ui_lan_url}/ui/")
        if runtime.public_url and runtime.public_url != runtime.url:
            typer.echo(f"public {runtime.public_url}")
        sys.stdout.flush()
        typer.echo("serving; Ctrl-C stops", err=True)
        # System tasks: they end with the run, and a failure in them is logged, never fatal.
        if bootstrap:
            trio.lowlevel.spawn_system_task(add_bootstrap_peers, runtime, bootstrap)
        if notifier.ping_interval is not None:
            trio.lowlevel.spawn_system_task(watchdog_pings, runtime, notifier)
        notifier.ready(f"serving {runtime.public_url or runtime.url}")

    try:
        trio.run(
            partial(
                serve_forever,
                home,
                identity,
                vault_key=vault_key,
                store=settings.get("store.url"),
                on_ready=ready,
                on_stopping=notifier.stopping,
                **options,
            )
        )
    except BaseExceptionGroup as group:
        error = _sole_error(group)
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            typer.echo(
                f"error: address already in use: port {options['port']} on {options['host']} (--port, server.port)"
                + (f" or admin port {options['admin_port']} (--admin-port)" if options["admin_port"] else ""),
                err=True,
            )
            raise typer.Exit(1) from None
        raise error from None
    typer.echo("stopped", err=True)


def run_options(settings: Any) -> dict[str, Any]:
    """``serve_forever``'s arguments from the settings (node.config.Config, flags already applied)."""
    from federation.ratelimit import RateLimiter
    from federation.server import TLSFiles
    from node.errors import ValidationError

    cert, key = settings.get("server.tls_cert"), settings.get("server.tls_key")
    if (cert is None) != (key is None):
        raise ValidationError("server.tls_key" if key is None else "server.tls_cert", "give both tls_cert and tls_key")
    tls = TLSFiles(cert, key) if cert else None
    if tls is not None:
        tls.check()
    return {
        "host": settings.get("server.host"),
        "port": settings.get("server.port"),
        "admin_port": settings.get("server.admin_port"),
        "public_url": settings.get("server.public_url"),
        "tls": tls,
        "pull_interval": settings.get("federation.pull_interval"),
        "ui_lan": settings.get("ui.lan"),
        "ui_lan_port": settings.get("ui.lan_port"),
        "allow_private_peers": settings.get("federation.allow_private_peers"),
        "exchange_interval": settings.get("federation.exchange_interval") or None,  # 0: never
        "max_peers": settings.get("federation.max_peers"),
        "mdns": settings.get("federation.mdns"),
        "app_options": {
            "limiter": RateLimiter(settings.get("limits.rate"), settings.get("limits.burst")),
            "max_body": settings.get("limits.max_body"),
            "trusted_proxies": frozenset(settings.get("server.trusted_proxies")),
        },
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line (time, level, logger, message, exception): for journald or a collector."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "at": int(record.created * 1000),  # ms, like every *_at in the CLI's JSON
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(level: str, fmt: str) -> None:
    """The node's loggers (vrm.*) to stderr — the journal under systemd — at ``level``, as text or JSON."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif os.environ.get("JOURNAL_STREAM"):  # the journal stamps each line itself
        handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


async def add_bootstrap_peers(runtime: Any, urls: list[str]) -> None:
    """Add each configured peer URL this node does not know yet (a restart adds nothing twice)."""
    from app import ops
    from node.peers import Peers

    store = runtime.store
    try:
        known = {p.url for p in await store.run(lambda: Peers(store.store, clock=runtime.clock).list())}
    except Exception:  # a system task must not raise: trio would end the whole run
        logging.getLogger("vrm.serve").exception("reading peers for the bootstrap list failed")
        return
    for url in urls:
        if url.rstrip("/") in known or url in known:
            continue
        try:
            await ops.run_op(runtime.services, "peers.add", {"url": url, "node_id": None})
        except Exception as exc:  # unreachable now: `vrm peers add` later, or the next restart retries
            logging.getLogger("vrm.serve").warning("bootstrap peer %s not added: %s", url, exc)


async def watchdog_pings(runtime: Any, notifier: Any) -> None:
    """WATCHDOG=1 every half timeout while the event loop and the store answer (a hung node is restarted)."""
    import trio

    while True:
        try:
            await runtime.store.run(lambda: None)
        except Exception:  # the store is gone (closing, or broken): stop pinging, systemd decides
            logging.getLogger("vrm.serve").warning("the store does not answer; watchdog pings stop")
            return
        notifier.watchdog()
        await trio.sleep(notifier.ping_interval)


def _sole_error(group: BaseExceptionGroup) -> BaseException:
    """The one error inside trio's nested nursery groups (a port in use, a node already serving), so
    the CLI reports it as a message and an exit code instead of a traceback."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return leaves[0] if len(leaves) == 1 else group


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
