"""`vrm ui`: a one-time login link to the page of the running node (`vrm serve`)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import node
from node.errors import ConflictError


def ui(
    ctx: typer.Context,
    open_: Annotated[bool, typer.Option("--open", help="Open the link in the default browser.")] = False,
) -> None:
    """Print a link that signs you in to your node's page once (it cannot be used again).

    The page is served by `vrm serve` at /ui/ of its admin listener (127.0.0.1). With `vrm serve
    --ui-lan` it is reachable from your phone too: the LAN link needs the pairing code printed here.
    """
    import trio

    state = node(ctx)
    home = state.home()
    link, lan_link, pairing = trio.run(_mint, home)
    typer.echo(link)
    if lan_link:
        typer.echo(f"from your phone: {lan_link}  (pairing code {pairing})")
    typer.echo("the link works once, for 5 minutes", err=True)
    if open_:
        import webbrowser

        webbrowser.open(link)


async def _mint(home: object) -> tuple[str, str | None, str]:
    import httpx

    from federation.admin import AdminClient, read_admin_file

    client = await AdminClient.from_home(home)
    info = read_admin_file(getattr(home, "path", home))  # type: ignore[arg-type]
    if client is None or info is None:
        raise ConflictError("no node is serving this home: start it with `vrm serve`, then run `vrm ui`")
    status = await client.status()
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(info.url + "/ui/link", headers={"Authorization": f"Bearer {info.token}"})
    if answer.status_code != 200:
        raise ConflictError(f"the node did not give a login link (HTTP {answer.status_code})")
    doc = answer.json()
    lan = status.get("ui_lan_url")
    lan_link = None
    if lan:
        lan_link = lan.replace("0.0.0.0", _lan_address()).removesuffix("/ui/") + doc["path"]
    return info.url + doc["path"], lan_link, str(doc["pairing"])


def _lan_address() -> str:
    """This machine's address on the LAN (the interface a route to the outside leaves by; a UDP
    "connect" sends nothing)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never answered, only routed
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
