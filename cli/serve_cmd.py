"""`vrm serve`: run the node as a daemon: the federation API for peers, the admin API for `vrm`.

While it runs, every write command (`vrm intent`, `vrm offer`, `vrm peers add` …) goes through its
admin API (found in ``<home>/admin.json``), so peers hear of changes at once.
"""

from __future__ import annotations

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
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help="A vendor fleet's postgresql:// database: serve as one of its listeners (default: the home's).",
        ),
    ] = None,
) -> None:
    """Run this node until Ctrl-C or SIGTERM: serve peers, push and pull gossip, match and deliver.

    Prints the federation and admin URLs once both listen; stops gracefully (requests in flight finish,
    the admin file is removed).
    """
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{public_url!r}: give an http:// or https:// URL", param_hint="--public-url")
    import logging

    import trio

    from app.runtime import serve_forever

    # The node's loggers (vrm.*) report failed peers and refused requests; warnings and worse go to
    # stderr with a time, so a daemon's log reads as one.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

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
                store=store,
                on_ready=ready,
            )
        )
    except BaseExceptionGroup as group:
        raise _sole_error(group) from None
    typer.echo("stopped", err=True)


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
