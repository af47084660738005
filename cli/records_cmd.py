"""What happened with a vendor: `vrm purchases`, `vrm notes`, `vrm rate`, `vrm recommend`."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import output
from cli.complete import vendor_refs
from cli.context import node
from cli.output import JsonOpt
from cli.vendors_cmd import VendorArg

purchases = typer.Typer(help="Products you bought.", no_args_is_help=True)
notes = typer.Typer(help="Notes and opinions about vendors.", no_args_is_help=True)


@purchases.command("add")
def add_purchase(
    ctx: typer.Context,
    ref: VendorArg,
    product: Annotated[str, typer.Argument(metavar="PRODUCT", help="What you bought.")],
    price: Annotated[
        str | None, typer.Option(help='Amount with currency: 349.00USD, 1200JPY, "EUR 12.50".')
    ] = None,
    note: Annotated[str, typer.Option(help="A remark about the purchase.")] = "",
) -> None:
    """Record a product bought from a vendor."""
    from cli.money import parse_money

    minor, currency = parse_money(price) if price is not None else (None, None)
    bought = node(ctx).records().add_purchase(ref, product, price_minor=minor, currency=currency, note=note)
    cost = f" for {output.money(bought.price_minor, bought.currency)}" if bought.currency else ""
    output.say(f"recorded purchase {bought.id}: {bought.product}{cost}")


@purchases.command("list")
def list_purchases(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="VENDOR",
            help="Only this vendor's purchases: its handle (@acme-air or acme-air) or number. Default: every vendor's.",
            autocompletion=vendor_refs,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Purchases, newest first: every vendor's (ended relationships too), or one vendor's."""
    records = node(ctx).records()
    vendors = records.list_vendors(status="all")
    if ref is None:
        rows = sorted(
            (p for v in vendors for p in records.list_purchases(v.id)), key=lambda p: (p.bought_at, p.id), reverse=True
        )
    else:
        rows = records.list_purchases(ref)
    handles = {v.id: v.handle for v in vendors}
    if as_json:
        output.print_json([{**output.to_data(p), "vendor": handles.get(p.vendor_id)} for p in rows])
        return
    output.table(
        ("id", "vendor", "when", "product", "price", "note"),
        (
            (
                p.id,
                handles.get(p.vendor_id),
                output.when(p.bought_at),
                p.product,
                output.money(p.price_minor, p.currency),
                p.note,
            )
            for p in rows
        ),
    )
    if not rows:
        output.note("no purchases yet: `vrm purchases add VENDOR PRODUCT`")


@notes.command("add")
def add_note(
    ctx: typer.Context,
    ref: VendorArg,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The note or opinion.")],
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A tag (repeat for several); '#' optional.")
    ] = None,
) -> None:
    """Record a note or opinion about a vendor."""
    saved = node(ctx).records().add_note(ref, text, tags=tag or ())
    tags = " ".join(f"#{t}" for t in saved.tags)
    output.say(f"noted ({saved.id}){' ' + tags if tags else ''}")


@notes.command("list")
def list_notes(
    ctx: typer.Context,
    vendor: Annotated[str | None, typer.Option(help="Only this vendor's notes.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only notes with this tag.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Notes, newest first."""
    records = node(ctx).records()
    rows = records.list_notes(vendor, tag=tag)
    if as_json:
        output.print_json(rows)
        return
    handles = {v.id: v.handle for v in records.list_vendors(status="all")}
    output.table(
        ("id", "vendor", "when", "note", "tags"),
        (
            (n.id, handles[n.vendor_id], output.when(n.at), n.text, " ".join(f"#{t}" for t in n.tags))
            for n in rows
        ),
    )


def rate(
    ctx: typer.Context,
    ref: VendorArg,
    stars: Annotated[int, typer.Argument(metavar="STARS", help="1 to 5.")],
    comment: Annotated[str, typer.Option(help="Why this rating.")] = "",
) -> None:
    """Rate a vendor from 1 to 5 stars (the newest rating counts; older ones stay on the timeline)."""
    rating = node(ctx).records().rate(ref, stars, comment=comment)
    output.say(f"rated {rating.stars}/5")


def recommend(
    ctx: typer.Context,
    ref: VendorArg,
    no: Annotated[bool, typer.Option("--no", help="I would NOT recommend this vendor.")] = False,
    text: Annotated[str, typer.Option(help="Why.")] = "",
) -> None:
    """Record whether you would recommend a vendor to a friend."""
    rec = node(ctx).records().recommend(ref, not no, text=text)
    output.say("would recommend" if rec.would_recommend else "would not recommend")


def register(app: typer.Typer) -> None:
    app.add_typer(purchases, name="purchases")
    app.add_typer(notes, name="notes")
    app.command("rate")(rate)
    app.command("recommend")(recommend)
