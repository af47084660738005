"""`vrm vendors …`, `vrm engagement set`, `vrm scorecard`, `vrm search`: the companies I deal with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli import complete, output
from cli.context import node
from cli.output import JsonOpt

if TYPE_CHECKING:
    from node.scorecard import Scorecard

VendorArg = Annotated[
    str,
    typer.Argument(
        metavar="VENDOR",
        help="The vendor's handle (@acme-air or acme-air) or number.",
        autocompletion=complete.vendor_refs,
    ),
]

vendors = typer.Typer(help="The companies you deal with: add, list, show, end.", no_args_is_help=True)
engagement = typer.Typer(help="How engaged you choose to be with a vendor.", no_args_is_help=True)


@vendors.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help='The vendor\'s name, e.g. "Acme Air".')],
    handle: Annotated[str | None, typer.Option(help="Short handle; default derived from the name.")] = None,
    website: Annotated[str | None, typer.Option(help="The vendor's website.")] = None,
    node_id: Annotated[
        str | None, typer.Option("--node-id", help="The vendor node's id (vrm1…), if known.")
    ] = None,
    notes: Annotated[str, typer.Option(help="Free-form notes about the vendor.")] = "",
    level: Annotated[
        str,
        typer.Option(
            "--engagement",
            help="none, transactional, casual, engaged or advocate.",
            autocompletion=complete.engagement_levels,
        ),
    ] = "none",
) -> None:
    """Start a relationship with a vendor."""
    records = node(ctx).records()
    vendor = records.add_vendor(
        name, handle=handle, website=website, node_id=node_id, notes=notes, engagement=level
    )
    output.say(f"added {vendor.handle} ({vendor.name}), vendor {vendor.id}")


@vendors.command("list")
def list_(
    ctx: typer.Context,
    ended: Annotated[bool, typer.Option("--ended", help="Only ended relationships.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Active and ended relationships.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List vendors by name (active ones unless --ended or --all)."""
    if ended and all_:
        raise typer.BadParameter("give --ended or --all, not both")
    rows = node(ctx).records().list_vendors(status="all" if all_ else "ended" if ended else "active")
    if as_json:
        output.print_json(rows)
        return
    output.table(
        ("id", "handle", "name", "engagement", "since", "ended"),
        (
            (v.id, v.handle, v.name, v.engagement, output.when(v.started_at), output.when(v.ended_at))
            for v in rows
        ),
    )


@vendors.command("show")
def show(ctx: typer.Context, ref: VendorArg, as_json: JsonOpt = False) -> None:
    """A vendor's details, notes, timeline (newest first) and scorecard."""
    from node.scorecard import scorecard

    state = node(ctx)
    records = state.records()
    vendor = records.get_vendor(ref)
    timeline = records.timeline(vendor.id)
    card = scorecard(state.store(), vendor.id)
    notes = records.list_notes(vendor.id)
    if as_json:
        output.print_json({"vendor": vendor, "notes": notes, "timeline": timeline, "scorecard": card})
        return
    ended = f"{output.when(vendor.ended_at)}" + (f" ({vendor.end_reason})" if vendor.end_reason else "")
    output.fields(
        [
            ("vendor", f"{vendor.handle} ({vendor.name}), vendor {vendor.id}"),
            ("website", vendor.website),
            ("node id", vendor.node_id),
            ("engagement", vendor.engagement),
            ("since", output.when(vendor.started_at)),
            ("ended", ended if vendor.ended else None),
            ("notes", vendor.notes or None),
            ("scorecard", _card_summary(card)),
        ]
    )
    if notes:
        rows = ((output.when(n.at), n.text, " ".join(f"#{t}" for t in n.tags)) for n in notes)
        output.table(("when", "note", "tags"), rows, title="Notes")
    output.table(("when", "what"), ((output.when(e.at), e.summary) for e in timeline), title="Timeline")


def _card_summary(card: Scorecard) -> str:
    rating = f"{card.average_rating}/5 from {card.ratings_count}" if card.ratings_count else "not rated"
    recommend = {None: "no recommendation", True: "would recommend", False: "would not recommend"}
    fcr = "-" if card.first_contact_resolution is None else f"{card.first_contact_resolution:.0%}"
    return (
        f"{card.issues_opened} issues ({card.issues_resolved} resolved, {card.issues_open} open), "
        f"first reply in {output.duration(card.median_first_reply_ms)} (median), "
        f"resolved at first contact {fcr}; {rating}; {recommend[card.would_recommend]}"
    )


@vendors.command("end")
def end(
    ctx: typer.Context,
    ref: VendorArg,
    reason: Annotated[str | None, typer.Option(help="Why the relationship ended.")] = None,
) -> None:
    """End a relationship; its history stays."""
    vendor = node(ctx).records().end_relationship(ref, reason=reason)
    output.say(f"ended the relationship with {vendor.handle}; its history is kept")


@engagement.command("set")
def set_engagement(
    ctx: typer.Context,
    ref: VendorArg,
    level: Annotated[
        str,
        typer.Argument(
            metavar="LEVEL",
            help="none, transactional, casual, engaged or advocate.",
            autocompletion=complete.engagement_levels,
        ),
    ],
) -> None:
    """Choose how engaged to be with a vendor (every change stays on its timeline)."""
    vendor = node(ctx).records().set_engagement(ref, level)
    output.say(f"engagement with {vendor.handle} is now {vendor.engagement}")


def scorecard_cmd(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="VENDOR",
            help="One vendor; default every active one.",
            autocompletion=complete.vendor_refs,
        ),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include ended relationships.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Vendor scorecards computed from your own records: issues, reply times, first-contact resolution."""
    from node.scorecard import scorecard, scorecards

    store = node(ctx).store()
    cards: Any = (
        scorecard(store, ref) if ref is not None else scorecards(store, status="all" if all_ else "active")
    )
    if as_json:
        output.print_json(cards)
        return
    output.table(
        ("vendor", "issues", "resolved", "open", "reply in", "1st contact", "stars", "recommend"),
        (
            (
                c.vendor_handle + (" (ended)" if c.ended else ""),
                c.issues_opened,
                c.issues_resolved,
                c.issues_open,
                output.duration(c.median_first_reply_ms),
                "-" if c.first_contact_resolution is None else f"{c.first_contact_resolution:.0%}",
                "-" if c.average_rating is None else f"{c.average_rating} ({c.ratings_count})",
                c.would_recommend,
            )
            for c in ([cards] if ref is not None else cards)
        ),
    )


def search_cmd(
    ctx: typer.Context,
    query: Annotated[
        str, typer.Argument(metavar="QUERY", help="Words to find (taken literally unless --fts).")
    ],
    fts: Annotated[
        bool, typer.Option("--fts", help="Use SQLite FTS5 query syntax (OR, NEAR, prefix*).")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many results.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Full-text search across every record (not the vault), best matches first."""
    from node.search import search

    store = node(ctx).store()
    if as_json:
        output.print_json(search(store, query, limit=limit, literal=not fts))
        return
    from rich.text import Text

    start, stop = "\x02", "\x03"  # marks no record text contains, turned into bold below
    hits = search(store, query, limit=limit, literal=not fts, mark=(start, stop))
    output.table(
        ("vendor", "kind", "id", "match"),
        ((h.vendor_handle, h.kind, h.ref_id, _highlight(Text, h.snippet, start, stop)) for h in hits),
    )
    if not hits:
        output.note(f"nothing matches {query!r}")


def _highlight(text_cls: Any, snippet: str, start: str, stop: str) -> Any:
    text = text_cls()
    bold = False
    for chunk in snippet.replace(stop, start).split(start):
        text.append(chunk, style="bold" if bold else "")
        bold = not bold
    return text


def register(app: typer.Typer) -> None:
    app.add_typer(vendors, name="vendors")
    app.add_typer(engagement, name="engagement")
    app.command("scorecard")(scorecard_cmd)
    app.command("search")(search_cmd)
