"""Intents meet vendors: `vrm subscribe` / `subscriptions` and `leads` (vendor nodes), `vrm offer`
(a vendor answers a lead) and `vrm offers …` (sent ones on a vendor node, received ones on a person's).

Writes go through ``NodeContext.run_op`` (the running daemon when there is one); lists and shows read
the store directly.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import output
from cli.context import node
from cli.output import JsonOpt

LeadArg = Annotated[
    str, typer.Argument(metavar="LEAD", help="The lead's number, or its intent id (a unique prefix of 6+).")
]
OfferArg = Annotated[str, typer.Argument(metavar="ID", help="The offer's id, or a unique prefix of 6+ characters.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Include withdrawn, closed, expired, decided and superseded ones.")]

subscriptions = typer.Typer(help="What your vendor node listens for: list, remove.", no_args_is_help=True)
leads = typer.Typer(
    help="Intents that matched your subscriptions: list, show. A lead is closed once the person took an offer.",
    no_args_is_help=True,
)
offers = typer.Typer(help="Offers: list, show; on a person node accept or decline.", no_args_is_help=True)


def subscribe(
    ctx: typer.Context,
    text: Annotated[
        str,
        typer.Argument(
            metavar="TEXT",
            help="Intents to listen for: ?token (one at least), #tag, key:value, key>=V / key<=V, near:PREFIX.",
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Listen for intents like these; each matching intent becomes a lead.

    Example: vrm subscribe "?flight from:SFO max>=300USD"
    """
    state = node(ctx)
    state.require_role("vendor", "subscriptions")
    try:
        sub = state.run_op("subscriptions.add", {"text": text})
    except Exception as exc:
        _point(exc, text)
        raise
    if as_json:
        output.print_json(sub)
        return
    output.say(f"subscription {sub['id']}: {sub['text']}")


def _point(exc: Exception, text: str) -> None:
    from node.errors import IntentSyntaxError

    if isinstance(exc, IntentSyntaxError) and exc.word:
        from cli.intents_cmd import point_at

        point_at(exc, text)


@subscriptions.command("list")
def subscriptions_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Your subscriptions, oldest first."""
    from node.subscriptions import Subscriptions

    state = node(ctx)
    state.require_role("vendor", "subscriptions")
    rows = Subscriptions(state.store()).list()
    if as_json:
        output.print_json(rows)
        return
    output.table(("id", "since", "text"), ((s.id, output.when(s.created_at), s.text) for s in rows))
    if not rows:
        output.note('no subscriptions yet: `vrm subscribe "?token …"`')


@subscriptions.command("remove")
def subscriptions_remove(
    ctx: typer.Context, sub_id: Annotated[int, typer.Argument(metavar="ID", help="The subscription's number.")]
) -> None:
    """Stop listening for a subscription (leads it brought stay)."""
    state = node(ctx)
    state.require_role("vendor", "subscriptions")
    sub = state.run_op("subscriptions.remove", {"id": sub_id})
    output.say(f"removed subscription {sub['id']}: {sub['text']}")


@leads.command("list")
def leads_list(ctx: typer.Context, all_: AllOpt = False, as_json: JsonOpt = False) -> None:
    """Live leads (intents that matched a subscription), oldest first.

    --all adds withdrawn, closed (the person accepted an offer: no more offers) and expired ones.
    """
    from node.leads import Leads

    state = node(ctx)
    state.require_role("vendor", "leads")
    rows = Leads(state.store()).list(status="all" if all_ else "live")
    if as_json:
        output.print_json(rows)
        return
    output.table(
        ("lead", "status", "received", "expires", "matched", "intent"),
        (
            (
                lead.id,
                lead.status,
                output.when(lead.received_at),
                output.when(lead.expires),
                " ".join(f"#{i}" for i in lead.subscription_ids),
                lead.text,
            )
            for lead in rows
        ),
    )
    if not rows:
        output.note("no leads" + ("" if all_ else " live (--all shows the others)"))


@leads.command("show")
def leads_show(ctx: typer.Context, ref: LeadArg, as_json: JsonOpt = False) -> None:
    """One lead: the intent's text, what it asks for, its author and the subscriptions it matched."""
    from cli.intents_cmd import constraint
    from node.leads import Leads
    from node.nodeid import encode_node_id

    state = node(ctx)
    state.require_role("vendor", "leads")
    lead = Leads(state.store()).get(ref)
    if as_json:
        output.print_json(lead)
        return
    body = lead.body
    output.fields(
        [
            ("lead", lead.id),
            ("intent", lead.intent_id),
            ("text", lead.text),
            ("status", lead.status),
            ("from", encode_node_id(bytes.fromhex(lead.author))),
            ("constraints", "  ".join(constraint(k, v) for k, v in body.get("constraints", {}).items()) or None),
            ("terms", ", ".join(body.get("terms", ())) or None),
            ("matched", " ".join(f"#{i}" for i in lead.subscription_ids) or None),
            ("received", output.when(lead.received_at)),
            ("expires", output.when(lead.expires)),
            ("withdrawn" if lead.status != "closed" else "closed", output.when(lead.withdrawn_at) if lead.withdrawn_at else None),
        ]
    )


def offer(
    ctx: typer.Context,
    lead: LeadArg,
    price: Annotated[str, typer.Option(metavar="AMOUNT", help="The price with its currency: 349USD, 12.50EUR.")],
    text: Annotated[str, typer.Option(metavar="TEXT", help="What you offer, 1 to 1000 characters.")],
    expires: Annotated[str, typer.Option(help="How long the offer stands: 30m, 12h, 2d …")] = "2d",
    terms: Annotated[
        str | None,
        typer.Option(
            metavar="TERMS",
            help="The person's terms you agree to, comma-separated (default: all of the intent's). "
            "An offer that leaves one out is refused by the person's node (terms_not_agreed).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a lead with a signed offer, sent to the person who cast the intent.

    The offer agrees to the intent's terms (vrm leads show LEAD); accepted, it is an agreement.

    Example: vrm offer 1 --price 349USD --text "SFO->JFK Dec 18, seat 12A" --expires 2d
    """
    from cli.money import parse_money
    from node.intents import parse_duration

    state = node(ctx)
    state.require_role("vendor", "offers you make")
    price_minor, currency = parse_money(price)
    ttl_ms = parse_duration(expires)
    args = {"lead": lead, "price_minor": price_minor, "currency": currency, "text": text, "ttl_ms": ttl_ms}
    if terms is not None:
        args["terms"] = [t for t in terms.replace(",", " ").split() if t]
    made = state.run_op("offers.make", args)
    if as_json:
        output.print_json(made)
        return
    output.say(
        f"offer {made['id']}: {output.money(made['price_minor'], made['currency'])}, "
        f"expires {output.when(made['expires'])}; terms agreed: {', '.join(made['terms']) or 'none asked'}"
    )
    if terms is not None:
        from node.leads import Leads
        from node.offers import missing_terms

        missing = missing_terms(Leads(state.store()).get(made["intent_id"]).body.get("terms"), tuple(made["terms"]))
        if missing:
            output.note(f"this offer leaves out {', '.join(missing)}: the person's node will refuse it")


@offers.command("list")
def offers_list(ctx: typer.Context, all_: AllOpt = False, as_json: JsonOpt = False) -> None:
    """Open offers, oldest first: received ones on a person node, the ones you sent on a vendor node.

    On a vendor node each shows its delivery: queued, delivered, refused (the person's node refused it:
    `vrm offers show` says why), accepted, declined, superseded, expired.
    """
    from node.offers import Offers

    state = node(ctx)
    direction = _direction(state.home().role)
    rows = Offers(state.store()).list(direction=direction, status="all" if all_ else "open")
    if as_json:
        output.print_json(rows)
        return
    counterpart = "vendor" if direction == "received" else "intent"
    output.table(
        ("id", "status" if direction == "received" else "delivery", counterpart, "price", "expires", "text"),
        (
            (
                o.id[:12],
                o.status if direction == "received" else o.delivery,
                _vendor(o) if direction == "received" else o.intent_id[:12],
                output.money(o.price_minor, o.currency),
                output.when(o.expires),
                o.text,
            )
            for o in rows
        ),
    )
    if not rows:
        output.note(f"no {'' if all_ else 'open '}offers {direction}")


@offers.command("show")
def offers_show(ctx: typer.Context, ref: OfferArg, as_json: JsonOpt = False) -> None:
    """One offer: who, what, how much, until when, and your decision."""
    from node.nodeid import encode_node_id
    from node.offers import Offers

    item = Offers(node(ctx).store()).get(ref)
    if as_json:
        output.print_json(item)
        return
    output.fields(
        [
            ("offer", item.id),
            ("direction", item.direction),
            ("status", item.status),
            ("vendor", f"{_vendor(item)} {encode_node_id(bytes.fromhex(item.vendor))}"),
            ("to", encode_node_id(bytes.fromhex(item.person))),
            ("intent", item.intent_id),
            ("price", output.money(item.price_minor, item.currency)),
            ("text", item.text),
            ("terms", ", ".join(item.terms) or ("none (a version 1 offer)" if item.version == 1 else "none")),
            ("delivery", f"refused: {item.refused_reason}" if item.delivery == "refused" else item.delivery),
            ("made", output.when(item.created)),
            ("expires", output.when(item.expires)),
            ("decided", output.when(item.decided_at) if item.decided_at else None),
            ("superseded", output.when(item.superseded_at) if item.superseded_at else None),
        ]
    )


@offers.command("accept")
def offers_accept(
    ctx: typer.Context,
    ref: OfferArg,
    keep_open: Annotated[
        bool,
        typer.Option(
            "--keep-open", help="Keep the intent live: do not withdraw it, other offers stay open."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Accept an offer: the vendor is told (signed) and the purchase goes on its timeline.

    The offer, with your terms it agreed to, becomes an agreement you both keep (vrm agreements).

    It closes the intent: a signed withdrawal (reason: fulfilled) tells vendors the deal is done.

    Their leads show closed and take no more offers; your other open offers on it are superseded.

    --keep-open keeps the intent live. Grants for it under delete-after-use end now.

    Refused, changing nothing: intent withdrawn or expired, offer expired, a term left out.
    """
    state = node(ctx)
    state.require_role("person", "accepting offers")
    done = state.run_op("offers.accept", {"ref": ref, "keep_open": keep_open})
    if as_json:
        output.print_json(done)
        return
    # The records may know this vendor under another handle (one taken before): ask them, not the offer.
    vendor = next(
        (v for v in state.records().list_vendors(status="all") if v.node_id == done["vendor_node_id"]), None
    )
    handle = vendor.handle if vendor is not None else f"@{done['vendor_handle']}"
    output.say(
        f"accepted offer {done['id'][:12]} from {handle} ({output.money(done['price_minor'], done['currency'])}); "
        f"the purchase is on its timeline: vrm vendors show {handle}"
    )
    if done["agreement"] is not None:
        terms = ", ".join(done["agreement"]["terms"]) or "no terms"
        output.say(f"agreement {done['agreement']['id'][:12]} ({terms}): vrm agreements show {done['agreement']['id'][:12]}")
    if done["intent_closed"]:
        superseded = len(done["superseded"])
        output.say(
            f"intent {done['intent_id'][:12]} closed (fulfilled)"
            + (f"; {superseded} other offer{'s' if superseded != 1 else ''} superseded" if superseded else "")
        )
    else:
        output.say(f"intent {done['intent_id'][:12]} stays open")
    if done["grants_ended"]:
        output.say(f"{done['grants_ended']} grant(s) under delete-after-use ended")


@offers.command("decline")
def offers_decline(ctx: typer.Context, ref: OfferArg, as_json: JsonOpt = False) -> None:
    """Decline an offer: the vendor is told (signed)."""
    state = node(ctx)
    state.require_role("person", "declining offers")
    done = state.run_op("offers.decline", {"ref": ref})
    if as_json:
        output.print_json(done)
        return
    output.say(f"declined offer {done['id'][:12]} from @{done['vendor_handle']}")


def _direction(role: str) -> str:
    return "sent" if role == "vendor" else "received"


def _vendor(item: Any) -> str:
    return f"@{item.vendor_handle} ({item.vendor_name})"


def register(app: typer.Typer) -> None:
    app.command("subscribe")(subscribe)
    app.add_typer(subscriptions, name="subscriptions")
    app.add_typer(leads, name="leads")
    app.command("offer")(offer)
    app.add_typer(offers, name="offers")
