"""`vrm agreements list|show`: the deals made by accepting offers, as both sides keep them.

An agreement is the vendor's signed offer (with the person's terms it agreed to) and the person's
signed acceptance of it (node.agreements). A person's node makes one when she accepts; the vendor's
node when the acceptance arrives. Reads the store directly.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli import output
from cli.context import node
from cli.output import JsonOpt

AgreementArg = Annotated[
    str, typer.Argument(metavar="ID", help="The agreement's id (its acceptance's), or a unique prefix of 6+.")
]

agreements = typer.Typer(
    help="Accepted offers with the terms agreed, signed by both sides: list, show.", no_args_is_help=True
)


@agreements.command("list")
def agreements_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every agreement, oldest first: with whom, the price and the terms agreed."""
    from node.agreements import Agreements
    from node.nodeid import encode_node_id

    state = node(ctx)
    vendor_side = state.home().role == "vendor"
    rows = Agreements(state.store()).list()
    if as_json:
        output.print_json(rows)
        return
    output.table(
        ("id", "made", "person" if vendor_side else "vendor", "price", "terms", "text"),
        (
            (
                a.id[:12],
                output.when(a.made_at),
                encode_node_id(bytes.fromhex(a.person))[:16] + "…" if vendor_side else f"@{a.vendor_handle}",
                output.money(a.price_minor, a.currency),
                ", ".join(a.terms) or "-",
                a.text,
            )
            for a in rows
        ),
    )
    if not rows:
        output.note("no agreements yet: accepting an offer makes one (vrm offers accept ID)")


@agreements.command("show")
def agreements_show(ctx: typer.Context, ref: AgreementArg, as_json: JsonOpt = False) -> None:
    """One agreement: intent, offer, terms agreed, both parties, and whether both signatures verify."""
    from node.agreements import Agreements
    from node.nodeid import encode_node_id

    store = Agreements(node(ctx).store())
    item = store.get(ref)
    verified = store.verify(item)
    if as_json:
        output.print_json(item.to_json() | {"verified": verified})
        return
    output.fields(
        [
            ("agreement", item.id),
            ("intent", item.intent_id),
            ("offer", item.offer_id),
            ("vendor", f"@{item.vendor_handle} ({item.vendor_name}) {encode_node_id(bytes.fromhex(item.vendor))}"),
            ("person", encode_node_id(bytes.fromhex(item.person))),
            ("price", output.money(item.price_minor, item.currency)),
            ("text", item.text),
            ("terms", ", ".join(item.terms) or "none"),
            ("made", output.when(item.made_at)),
            ("signatures", "both verify" if verified else "DO NOT VERIFY"),
        ]
    )


def register(app: typer.Typer) -> None:
    app.add_typer(agreements, name="agreements")
