"""`vrm serve`: run the node as a daemon: the federation API for peers, the admin API for `vrm`.

While it runs, every write command (`vrm intent`, `vrm offer`, `vrm peers add` …) goes through its
admin API (found in ``<home>/admin.json``), so peers hear of changes at once.
"""

from __future__ import annotations

import errno
import json
import logging
import sys
from functools import partial
from typing import Annotated, Any

import typer

from cli.context import node


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="The interface peers reach the federation API on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The federation port (0: any free one).")] = 8470,
    admin_port: Annotated[
        int, typer.Option("--admin-port", min=0, max=65535, help="The admin API's port on 127.0.0.1 (0: any).")
    ] = 0,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            metavar="URL",
            help="The URL peers should push to, when it is not the bound one (a proxy, a NAT forward).",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning (default) or error.")
    ] = "warning",
    log_format: Annotated[
        str, typer.Option("--log-format", help="text (default) or json (one object a line, on stderr).")
    ] = "text",
) -> None:
    """Run this node until Ctrl-C or SIGTERM: serve peers, push and pull gossip, match and deliver.

    Prints the federation and admin URLs once both listen; stops gracefully (requests in flight finish,
    the admin file is removed).
    """
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{public_url!r}: give an http:// or https:// URL", param_hint="--public-url")
    import trio

    from app.runtime import serve_forever

    try:
        configure_logging(log_level, log_format)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    state = node(ctx)
    home = state.home()
    identity = state.identity()  # ask for the passphrase before anything listens
    # The vault key answers fetches and seals pushed data; None for a home without a passphrase.
    vault_key = state.vault_key()

    def ready(runtime: Any) -> None:
        # flush: a script (or a test) reads these lines through a pipe while the node keeps running
        typer.echo(f"{home.role} node {home.node_id}")
        typer.echo(f"federation {runtime.url}")
        typer.echo(f"admin {runtime.admin_url}")
        if runtime.public_url and runtime.public_url != runtime.url:
            typer.echo(f"public {runtime.public_url}")
        sys.stdout.flush()
        typer.echo("serving; Ctrl-C stops", err=True)

    try:
        trio.run(
            partial(
                serve_forever,
                home,
                identity,
                host=host,
                port=port,
                admin_port=admin_port,
                public_url=public_url,
                vault_key=vault_key,
                on_ready=ready,
            )
        )
    except BaseExceptionGroup as group:
        error = _sole_error(group)
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            typer.echo(
                f"error: address already in use: port {port} on {host} (--port)"
                + (f" or admin port {admin_port} (--admin-port)" if admin_port else ""),
                err=True,
            )
            raise typer.Exit(1) from None
        raise error from None
    typer.echo("stopped", err=True)


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "at": int(record.created * 1000),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def configure_logging(level: str = "warning", fmt: str = "text") -> None:
    """Send the node's log (the vrm.* loggers: failed peers, refused requests) to stderr at ``level``
    in ``fmt``; the one place a config file's log keys are applied too. ValueError for other values."""
    if level not in LOG_LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


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
