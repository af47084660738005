"""`vrm init`, `vrm id`, `vrm profile`, `vrm status`: the node's home, identity and daemon."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import output
from cli.context import new_passphrase, node
from cli.output import JsonOpt
from node.errors import ConflictError


def init(
    ctx: typer.Context,
    vendor: Annotated[
        bool, typer.Option("--vendor", help="Create a vendor node instead of a person node.")
    ] = False,
    role: Annotated[
        str | None, typer.Option("--role", metavar="ROLE", help="person or vendor (--vendor = --role vendor).")
    ] = None,
    name: Annotated[
        str, typer.Option(help='The name this node shows its peers, e.g. "Acme Air" (a vendor\'s offers carry it).')
    ] = "",
    handle: Annotated[
        str | None, typer.Option(help="A vendor's handle, e.g. acme-air; default derived from --name.")
    ] = None,
    no_passphrase: Annotated[
        bool, typer.Option("--no-passphrase", help="Store the secret key unencrypted (not recommended).")
    ] = False,
) -> None:
    """Create the node's home: a new Ed25519 identity and an empty store. Never overwrites a home.

    The passphrase comes from $VRM_PASSPHRASE, else it is asked twice on the terminal.
    """
    from node.home import KEY_FILE, ROLES, check_handle, check_name, init_home

    if role is not None and role not in ROLES:
        raise typer.BadParameter(f"{role!r}: choose {' or '.join(ROLES)}", param_hint="--role")
    if vendor and role == "person":
        raise typer.BadParameter("--vendor and --role person contradict each other")
    role = "vendor" if vendor else role or "person"
    name = check_name(name)
    if handle is None and name and role == "vendor":
        from node.records import handle_from_name

        handle = handle_from_name(name)
    handle = check_handle(handle or "")
    path = node(ctx).home_path()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        what = "holds a vrm node" if (path / KEY_FILE).exists() else "is not an empty directory"
        raise ConflictError(f"{path} {what}; init never overwrites it")
    passphrase = new_passphrase(no_passphrase)
    info = init_home(path, passphrase, role=role, name=name, handle=handle)
    output.say(f"Initialised a {info.role} node in {info.path}")
    output.say(f"node id: {info.node_id}")
    if info.name or info.handle:
        output.say(f"shown to peers as: {_presented(info.name, info.handle)}")
    if info.role == "vendor" and not info.handle:
        output.note("Offers carry a name and handle: set them with `vrm profile --name NAME --handle HANDLE`.")
    if info.encrypted:
        output.note("The secret key and the vault are encrypted with your passphrase; keep it safe.")
    else:
        output.note(
            f"WARNING: no passphrase: the secret key in {info.key_path} and the vault are stored "
            "UNENCRYPTED. Anyone who can read this directory can act as this node."
        )


def show_id(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Print this node's id, public key and home (no passphrase needed)."""
    info = node(ctx).home()
    if as_json:
        output.print_json(info)
        return
    output.fields(
        [
            ("node id", info.node_id),
            ("public key", info.public_key),
            ("role", info.role),
            ("name", info.name or None),
            ("handle", f"@{info.handle}" if info.handle else None),
            ("home", info.path),
            ("encrypted", info.encrypted),
            ("created", output.when(info.created_at)),
        ]
    )


def profile(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help='The name shown to peers ("" clears it).')] = None,
    handle: Annotated[str | None, typer.Option(help='The handle shown to peers ("" clears it).')] = None,
) -> None:
    """Set the name and handle this node presents to its peers (a vendor's offers carry both).

    A running `vrm serve` picks the change up when restarted.
    """
    from node.home import set_profile

    if name is None and handle is None:
        raise typer.BadParameter("give --name, --handle or both")
    info = set_profile(node(ctx).home_path(), name=name, handle=handle)
    output.say(f"shown to peers as: {_presented(info.name, info.handle) or '(no name, no handle)'}")


def _presented(name: str, handle: str) -> str:
    return " ".join(part for part in (name, f"@{handle}" if handle else "") if part)




EXIT_NO_DAEMON = 3  # `vrm status` when no daemon serves the home (what the store knows is still shown)


def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Is the daemon running, and how are its peers, queues and breakers? (Exit 3 when no daemon runs.)

    With `vrm serve` running: its pid, uptime and listeners; per peer its circuit breaker, failures,
    last success and deliveries queued and dead-lettered; the last sync.

    Without a daemon: what the store knows (peers, failures, last contact, queues), and exit code 3.
    """
    import trio

    from federation.admin import AdminClient

    state = node(ctx)
    info = state.home()

    async def ask() -> dict | None:
        client = await AdminClient.from_home(info)
        return None if client is None else await client.status()

    doc = trio.run(ask)
    if doc is None:
        doc = _store_status(state)
    else:
        doc["last_contact_at"] = _last_contact(doc["peers"])
    if as_json:
        output.print_json(doc)
    else:
        _print_status(doc, str(info.path))
    if not doc["running"]:
        raise typer.Exit(EXIT_NO_DAEMON)


def _store_status(state: object) -> dict:
    """What `vrm status` can say from the store alone (no daemon: no breakers, no listeners)."""
    from node.peers import Peers

    store = state.store()  # type: ignore[attr-defined]
    info = state.home()  # type: ignore[attr-defined]

    def per_peer(table: str) -> dict[str, int]:
        return {r["peer"]: r["n"] for r in store.query(f"SELECT peer, count(*) AS n FROM {table} GROUP BY peer")}

    queued, dead = per_peer("outbox"), per_peer("outbox_dead")
    peers = [
        {**p.to_json(), "queued": queued.get(p.public_key, 0), "dead": dead.get(p.public_key, 0), "breaker": None}
        for p in Peers(store).list()
    ]
    return {
        "node_id": info.node_id,
        "role": info.role,
        "name": info.name,
        "running": False,
        "pid": None,
        "peers": peers,
        "queues": {"outbox": sum(queued.values()), "dead": sum(dead.values())},
        "last_sync": None,
        "last_contact_at": _last_contact(peers),
    }


def _last_contact(peers: list) -> int | None:
    return max((p["last_contact_at"] for p in peers if p.get("last_contact_at")), default=None)


def _print_status(doc: dict, home: str) -> None:
    from node.clock import wall_clock_ms

    if doc["running"]:
        uptime = output.duration(int(doc["uptime_s"] * 1000))
        daemon = f"running, pid {doc['pid']}, up {uptime} (since {output.when(doc['started_at'])})"
    else:
        daemon = f"not running (no `vrm serve` for {home}); from the store:"
    sync = doc.get("last_sync")
    rows = [
        ("node", f"{doc['role']} {doc['node_id']}" + (f" ({doc['name']})" if doc.get("name") else "")),
        ("daemon", daemon),
    ]
    if doc["running"]:
        rows += [("federation", doc["url"]), ("public", doc["public_url"] or "(none: it pulls)"), ("admin", doc["admin_url"])]
        rows += [("page", doc["ui_url"])] + ([("page on the LAN", doc["ui_lan_url"])] if doc.get("ui_lan_url") else [])
        rows.append(
            (
                "last sync",
                f"{output.when(sync['synced_at'])}: {sync['reached']} of {sync['peers']} peers reached, "
                f"{sync['received']} new"
                if sync
                else "none yet",
            )
        )
    rows += [
        ("last contact", output.when(doc["last_contact_at"])),
        ("queues", f"{doc['queues']['outbox']} queued, {doc['queues']['dead']} dead-lettered"),
        ("peers", len(doc["peers"])),
    ]
    output.fields(rows)
    if not doc["peers"]:
        return
    now = wall_clock_ms()

    def breaker(b: dict | None) -> str:
        if b is None:
            return "-"
        if b["state"] == "open" and b.get("retry_at"):
            return f"open (probe in {output.duration(b['retry_at'] - now)})"
        return b["state"]

    typer.echo("")
    output.table(
        ("id", "node id", "name", "url", "breaker", "failures", "last success", "queued", "dead", "last error"),
        (
            (
                p["id"],
                p["node_id"],
                p.get("name") or None,
                p.get("url"),
                breaker(p.get("breaker")),
                p["failures"],
                output.when(p["last_contact_at"]),
                p["queued"],
                p["dead"],
                p.get("last_error"),
            )
            for p in doc["peers"]
        ),
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("id")(show_id)
    app.command("profile")(profile)
    app.command("status")(status)
