"""Consented access on a vendor node: `vrm access …` (request, list, show, fetch).

Writes go through ``NodeContext.run_op`` (the running daemon when there is one); lists and shows read
the store directly. A value held is printed only when asked (``--show-values``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import output
from cli.access_shared import (
    VENDOR_ONLY,
    AllOpt,
    FieldsOpt,
    GrantArg,
    PurposeOpt,
    ShowValuesOpt,
    SomeFieldsOpt,
    parse_fields,
    parse_for,
    _grant_row,
    _grant_rows,
    _Names,
    _node_id,
    _one_of,
    _person_key,
)
from cli.context import node
from cli.output import JsonOpt

access = typer.Typer(help="A vendor's access to people's data: request, list, show, fetch.", no_args_is_help=True)


# -- vendor side: vrm access … -------------------------------------------------------------------------


@access.command("request")
def access_request(
    ctx: typer.Context,
    person: Annotated[
        str,
        typer.Argument(
            metavar="PERSON_ID", help="The person's node id (vrm1…), or the number or URL of the peer it is."
        ),
    ],
    fields: FieldsOpt,
    purpose: PurposeOpt,
    for_: Annotated[
        str, typer.Option("--for", metavar="DURATION", help="How long you ask access for: 30m, 12h, 30d …")
    ] = "30d",
    intent: Annotated[
        str | None, typer.Option("--intent", metavar="ID", help="The person's intent this serves (its id).")
    ] = None,
    offer: Annotated[
        str | None, typer.Option("--offer", metavar="ID", help="Your offer this serves (its id).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask a person for access to fields of their vault; their node shows it in `vrm grants pending`.

    Example: vrm access request vrm1… --fields shipping_address,email --purpose "ship order 123" --for 30d
    """
    state = node(ctx)
    state.require_role("vendor", VENDOR_ONLY)
    names, duration = parse_fields(fields), parse_for(for_)
    serves = _one_of(intent, offer)
    args = {
        "person": _person_key(state, person),
        "fields": names,
        "purpose": purpose,
        "duration_ms": duration,
        "for": serves,
    }
    made = state.run_op("access.request", args)
    if as_json:
        output.print_json(made)
        return
    output.say(
        f"request {made['id'][:12]} sent to {_node_id(made['person'])}: {', '.join(made['fields'])} "
        f"for {output.duration(made['duration_ms'])}, \"{made['purpose']}\""
    )
    output.note("the person approves or denies it; a grant shows in `vrm access list`")


@access.command("list")
def access_list(ctx: typer.Context, all_: AllOpt = False, as_json: JsonOpt = False) -> None:
    """The grants people gave you, newest first; --all adds the ended ones."""
    from node.grants import Grants

    state = node(ctx)
    state.require_role("vendor", VENDOR_ONLY)
    store = state.store()
    book = Grants(store)
    rows = book.list(direction="received", status="all" if all_ else "live")
    if as_json:
        output.print_json(rows)
        return
    names = _Names(store)
    output.table(
        ("grant", "state", "person", "fields", "purpose", "uses", "expires", "data held"),
        (
            (*_grant_row(g, names(g.person)), ",".join(book.held_names(g.id)) or None)
            for g in rows
        ),
    )
    waiting = [r for r in book.requests(direction="sent", status="pending")]
    if not rows:
        output.note("no grants" + ("" if all_ else " live (--all shows ended ones)"))
    if waiting:
        output.note(f"{len(waiting)} request(s) still awaiting the person's answer")


@access.command("show")
def access_show(
    ctx: typer.Context, ref: GrantArg, show_values: ShowValuesOpt = False, as_json: JsonOpt = False
) -> None:
    """One grant you hold: its scope, its state and the data you hold under it (values with --show-values)."""
    from node.grants import Grants

    state = node(ctx)
    state.require_role("vendor", VENDOR_ONLY)
    store = state.store()
    # The values are sealed under the vault key: ask for the passphrase only to show them.
    book = Grants(store, held_key=state.vault_key() if show_values else None)
    grant = book.get(ref)
    held = book.held(grant.id) if show_values else dict.fromkeys(book.held_names(grant.id), "")
    if as_json:
        doc: dict[str, Any] = {**output.to_data(grant), "held": sorted(held)}
        if show_values:
            doc["values"] = held
        output.print_json(doc)
        return
    names = _Names(store)
    output.fields(_grant_rows(grant, ("person", names(grant.person, full=True))) + [("deleted", _vendor_deleted(grant))])
    _print_held(held, show_values)


def _vendor_deleted(grant: Any) -> str | None:
    if grant.status == "live":
        return None
    return "the data held was deleted" + (" and the deletion sent" if grant.deletion_id else "")


def _print_held(held: dict[str, str], show_values: bool) -> None:
    if not held:
        output.say("data held: none")
        return
    if show_values:
        output.table(("field", "value"), sorted(held.items()), title="data held")
    else:
        output.table(("field", "value"), ((name, "••••••") for name in sorted(held)), title="data held")
        output.note("values hidden; --show-values prints them")


@access.command("fetch")
def access_fetch(
    ctx: typer.Context,
    ref: GrantArg,
    fields: SomeFieldsOpt = None,
    show_values: ShowValuesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch the granted data from the person's node (a signed request; each fetch spends a use).

    The data is kept under the grant (`vrm access show ID`). A refusal exits with code 7 and its
    reason: no_grant, not_grantee, expired, revoked, out_of_scope or budget_spent.
    """
    state = node(ctx)
    state.require_role("vendor", VENDOR_ONLY)
    names = parse_fields(fields)
    # vault=True: without the daemon, the key seals what is fetched (a home without a passphrase: none)
    got = state.run_op("access.fetch", {"grant": ref, "fields": names}, vault=True)
    values: dict[str, str] = got["values"]
    if as_json:
        doc = {"grant": got["grant"], "fields": got["fields"]}
        if show_values:
            doc["values"] = values
        output.print_json(doc)
        return
    output.say(f"fetched {', '.join(got['fields']) or 'nothing'} under grant {got['grant'][:12]}")
    if values:
        _print_held(values, show_values)
    missing = sorted(set(names or ()) - set(values))
    if missing:
        output.note(f"not in the person's vault: {', '.join(missing)}")


def register(app: typer.Typer) -> None:
    app.add_typer(access, name="access")
