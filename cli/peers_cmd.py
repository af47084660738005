"""`vrm peers …`, `vrm sync`, `vrm block`/`unblock`, `vrm trends`: the nodes this one gossips with.

Writes go through ``NodeContext.run_op`` (the running daemon when there is one); lists and shows read
the store directly.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import output
from cli.complete import vendor_refs
from cli.context import node
from cli.output import JsonOpt

PeerArg = Annotated[
    str, typer.Argument(metavar="PEER", help="The peer's node id (vrm1…), public key, number or URL.")
]
NodeArg = Annotated[
    str, typer.Argument(metavar="NODE_ID", help="The node's id (vrm1…) or hex public key.")
]

peers = typer.Typer(help="The nodes this one exchanges gossip with: add, list, show, remove.", no_args_is_help=True)


@peers.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(metavar="URL", help="The peer's federation URL, e.g. http://host:8470.")],
    node_id: Annotated[
        str | None,
        typer.Option("--id", metavar="NODE_ID", help="The node id you expect there (refused if it differs)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Contact a node, pin its public key and gossip with it from now on."""
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r}: give an http:// or https:// URL", param_hint="URL")
    peer = node(ctx).run_op("peers.add", {"url": url, "node_id": node_id})
    if as_json:
        output.print_json(peer)
        return
    output.say(f"added peer {peer['node_id']} ({_who(peer)}) at {peer['url']}")


@peers.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every peer: its role, URL, last successful contact, recent failures and score (with why)."""
    from node.clock import wall_clock_ms
    from node.peers import Peers
    from node.scores import Scores

    store = node(ctx).store()
    rows = Peers(store).list()
    scores = Scores(store)
    now = wall_clock_ms()
    standings = {p.public_key: scores.get(p.public_key) for p in rows}
    if as_json:
        output.print_json([{**p.to_json(), **standings[p.public_key].to_json(now)} for p in rows])
        return
    output.table(
        ("id", "node id", "role", "name", "url", "source", "last contact", "failures", "score", "why"),
        (
            (
                p.id,
                p.node_id,
                p.role,
                p.name or None,
                p.url or (f"(claims {p.claimed_url})" if p.claimed_url else None),
                p.source,
                output.when(p.last_contact_at),
                p.failures,
                _score(standings[p.public_key], now),
                standings[p.public_key].why() or None,
            )
            for p in rows
        ),
    )
    if not rows:
        output.note("no peers yet: `vrm peers add URL`")


def _score(standing: Any, now: int) -> str:
    state = standing.state(now)
    score = f"{standing.current(now):.0f}"
    return score if state == "ok" else f"{score} ({state})"


@peers.command("show")
def show(ctx: typer.Context, ref: PeerArg, as_json: JsonOpt = False) -> None:
    """One peer: identity, announced role and name, contact history and gossip cursors."""
    from node.peers import Peers

    peer = Peers(node(ctx).store()).get(ref)
    if as_json:
        output.print_json(peer)
        return
    output.fields(
        [
            ("peer", peer.id),
            ("node id", peer.node_id),
            ("public key", peer.public_key),
            ("role", peer.role),
            ("name", peer.name or None),
            ("url", peer.url or "(none: it pulls from us)"),
            ("source", peer.source),
            ("added", output.when(peer.added_at)),
            ("last contact", output.when(peer.last_contact_at)),
            ("failures", peer.failures),
            ("last error", peer.last_error),
            ("pulled up to", peer.pull_cursor),
            ("inbox up to", peer.inbox_cursor),
        ]
    )


@peers.command("remove")
def remove(ctx: typer.Context, ref: PeerArg) -> None:
    """Stop gossiping with a peer (it may announce itself again; block it to refuse its offers)."""
    peer = node(ctx).run_op("peers.remove", {"ref": ref})
    output.say(f"removed peer {peer['node_id']} ({_who(peer)})")


@peers.command("resend")
def resend(ctx: typer.Context, ref: PeerArg) -> None:
    """Queue again the deliveries to a peer that were given up after their last attempt (the peer
    was away longer than the retries last); what expired or lost its consent since stays unsent."""
    result = node(ctx).run_op("peers.resend", {"ref": ref})
    output.say(f"queued {result['queued']} delivery(ies) again for {result['node_id']} ({_who(result)})"
               + (f"; {result['already_queued']} already queued" if result["already_queued"] else "")
               + (f"; {result['not_resent']} expired or no longer consented, not sent" if result["not_resent"] else ""))


@peers.command("discover")
def discover(
    ctx: typer.Context,
    timeout: Annotated[
        float, typer.Option(min=0.0, max=60.0, metavar="S", help="Seconds to listen on the LAN (0: do not).")
    ] = 3.0,
    as_json: JsonOpt = False,
) -> None:
    """What discovery found: nodes announcing _vrm._tcp on the LAN now, and the candidates of the
    running node (peer exchange and its own LAN browsing) with what became of them."""
    import trio

    from federation import mdns
    from federation.admin import AdminClient

    state = node(ctx)
    home = state.home()

    async def look() -> tuple[list[Any], list[dict[str, Any]] | None]:
        client = await AdminClient.from_home(home)
        daemon = None if client is None else (await client.status()).get("discovery", [])
        lan = await mdns.discover(timeout, home.node_id) if timeout > 0 else []
        return lan, daemon

    lan, daemon = trio.run(look)
    rows = [{"node_id": c.node_id, "url": c.url, "role": c.role, "source": "mdns (now)", "state": "seen",
             "detail": None, "at": None} for c in lan]
    rows += daemon or []
    if as_json:
        output.print_json({"lan": [r for r in rows if r["source"] == "mdns (now)"], "daemon": daemon})
        return
    output.table(
        ("node id", "role", "url", "source", "state", "detail", "when"),
        ((r["node_id"], r["role"], r["url"], r["source"], r["state"], r["detail"], output.when(r["at"])) for r in rows),
    )
    if daemon is None:
        output.note("no node is serving this home: only the LAN was looked at (`vrm serve` discovers continuously)")
    elif not rows:
        output.note("nothing found yet: peers are asked every federation.exchange_interval; `vrm serve --mdns` browses the LAN")


def sync(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Pull new gossip and your inbox from every peer now, instead of waiting for the next round.

    Exits 1 when you have peers and none of them could be reached."""
    result = node(ctx).run_op("sync", {})
    unreachable = result["peers"] > 0 and result["reached"] == 0
    if as_json:
        output.print_json(result)
    else:
        output.say(
            f"pulled from {result['reached']} of {result['peers']} peers: {result['received']} new envelopes"
        )
    if unreachable:
        if not as_json:
            typer.echo("error: no peer could be reached (see `vrm peers list` for their last errors)", err=True)
        raise typer.Exit(1)


BlockArg = Annotated[
    str,
    typer.Argument(
        metavar="VENDOR",
        help="The node's id (vrm1…) or hex public key, or a vendor of yours by handle (@acme-air) or number.",
        autocompletion=vendor_refs,
    ),
]


def block(
    ctx: typer.Context,
    ref: BlockArg,
    note: Annotated[str, typer.Option(help="Why (for you only).")] = "",
) -> None:
    """Refuse every offer from a node (a vendor's handle works, as in `grants create`); it is never told."""
    state = node(ctx)
    result = state.run_op("blocks.add", {"ref": _vendor_key(state, ref), "note": note})
    output.say(f"blocked {_named(state, ref, result)}: its offers are refused")


def unblock(ctx: typer.Context, ref: BlockArg) -> None:
    """Accept offers from a node (by node id, key or vendor handle) again."""
    state = node(ctx)
    result = state.run_op("blocks.remove", {"ref": _vendor_key(state, ref)})
    output.say(f"unblocked {_named(state, ref, result)}")


def _vendor_key(state: Any, ref: str) -> str:
    """The hex key of a node id, a hex key or a vendor of yours (its handle or number), as
    `grants create` resolves them; anything else is an invalid value (exit 6), as it always was."""
    from cli.access_shared import _vendor_key as resolve
    from node.errors import NotFoundError, ValidationError

    try:
        return resolve(state, ref)
    except NotFoundError:
        raise ValidationError(
            "ref", f"{ref!r} is neither a node id (vrm1…), a hex public key nor a vendor of yours"
        ) from None


def _named(state: Any, ref: str, result: dict[str, Any]) -> str:
    """``@acme-air (vrm1…)`` when the block was named by a vendor of yours, else the node id."""
    from cli.access_shared import _node_key

    if _node_key(ref) is not None:
        return result["node_id"]
    return f"{state.records().get_vendor(ref).handle} ({result['node_id']})"


def blocked(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The nodes you blocked, with your notes (and the vendor's handle when it is in your records)."""
    from node.blocks import Blocks
    from node.records import Records

    store = node(ctx).store()
    rows = Blocks(store).list()
    if as_json:
        output.print_json(rows)
        return
    handles = {v.node_id: v.handle for v in Records(store).list_vendors(status="all") if v.node_id}
    output.table(
        ("node id", "vendor", "since", "note"),
        ((b.node_id, handles.get(b.node_id), output.when(b.blocked_at), b.note or None) for b in rows),
    )


def trends_cmd(
    ctx: typer.Context,
    window: Annotated[str, typer.Option(help="How far back: 30m, 24h, 7d …")] = "24h",
    near: Annotated[
        str | None, typer.Option(metavar="PREFIX", help="Only intents near this geohash prefix, e.g. 9q8.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """What people want lately: intent tokens counted over the gossip this node holds, by area."""
    from node.errors import ValidationError
    from node.intents import parse_duration
    from node.store import wall_clock_ms
    from node.trends import trends

    try:
        window_ms = parse_duration(window)
    except ValidationError as exc:
        raise ValidationError("window", exc.message) from None
    rows = trends(node(ctx).store(), now=wall_clock_ms(), window_ms=window_ms, near=near)
    if as_json:
        output.print_json(rows)
        return
    output.table(("token", "area", "people"), ((f"?{r['token']}", r["area"] or "-", r["count"]) for r in rows))
    if not rows:
        output.note(f"no intents seen in the last {window}")


def _who(peer: dict[str, Any]) -> str:
    return " ".join(part for part in (peer.get("role"), peer.get("name")) if part)


def register(app: typer.Typer) -> None:
    app.add_typer(peers, name="peers")
    app.command("sync")(sync)
    app.command("block")(block)
    app.command("unblock")(unblock)
    app.command("blocked")(blocked)
    app.command("trends")(trends_cmd)
