"""Consented access on a person's node: `vrm grants …` (pending requests, approve, deny, create, list,
show, revoke, and the receipt log). The vendor's side is `vrm access` (cli.access_cmd).

Writes go through ``NodeContext.run_op`` (the running daemon when there is one); lists, shows and the
receipt log read the store directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import output
from cli.access_shared import (
    PERSON_ONLY,
    AllOpt,
    FieldsOpt,
    GrantArg,
    PurposeOpt,
    PushOpt,
    RequestArg,
    UsesOpt,
    parse_fields,
    parse_for,
    _deletion,
    _grant_row,
    _grant_rows,
    _Names,
    _node_id,
    _serves,
    _vendor_key,
)
from cli.context import node
from cli.output import JsonOpt

grants = typer.Typer(
    help="Who may see what of your vault: pending, approve, deny, create, list, show, revoke, log.",
    no_args_is_help=True,
)


# -- person side: vrm grants … ---------------------------------------------------------------------------


@grants.command("pending")
def grants_pending(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Access requests from vendors that wait for your answer, oldest first."""
    from node.grants import Grants

    state = node(ctx)
    state.require_role("person", PERSON_ONLY)
    store = state.store()
    rows = Grants(store).pending()
    if as_json:
        output.print_json(rows)
        return
    names = _Names(store)
    output.table(
        ("request", "from", "fields", "purpose", "for", "serves", "asked"),
        (
            (
                r.id[:12],
                names(r.vendor),
                ",".join(r.fields),
                r.purpose,
                output.duration(r.duration_ms),
                _serves(r.for_ref),
                output.when(r.created),
            )
            for r in rows
        ),
    )
    if rows:
        output.note("answer with `vrm grants approve REQ` (maybe narrower: --fields, --for, --uses) or `deny REQ`")
    else:
        output.note("no pending requests")


@grants.command("approve")
def grants_approve(
    ctx: typer.Context,
    ref: RequestArg,
    fields: Annotated[
        str | None, typer.Option("--fields", metavar="A,B", help="Grant only these of the fields asked.")
    ] = None,
    for_: Annotated[
        str | None, typer.Option("--for", metavar="DURATION", help="A shorter time than asked: 7d, 12h …")
    ] = None,
    uses: UsesOpt = None,
    push: PushOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Grant what a vendor asked, or less of it; the signed grant is sent to the vendor.

    Example: vrm grants approve 3f9a1c --fields shipping_address --for 7d --uses 1
    """
    state = node(ctx)
    state.require_role("person", PERSON_ONLY)
    args = {
        "request": ref,
        "fields": parse_fields(fields),
        "duration_ms": parse_for(for_),
        "uses": uses,
        "push": push,
    }
    made = state.run_op("grants.approve", args, vault=push)
    if as_json:
        output.print_json(made)
        return
    _granted(made)


@grants.command("deny")
def grants_deny(ctx: typer.Context, ref: RequestArg, as_json: JsonOpt = False) -> None:
    """Refuse a vendor's request (it stays in your records as denied)."""
    state = node(ctx)
    state.require_role("person", PERSON_ONLY)
    done = state.run_op("grants.deny", {"request": ref})
    if as_json:
        output.print_json(done)
        return
    output.say(f"denied request {done['id'][:12]} from {_node_id(done['vendor'])}")


@grants.command("create")
def grants_create(
    ctx: typer.Context,
    vendor: Annotated[
        str,
        typer.Argument(metavar="VENDOR_ID", help="The vendor's node id (vrm1…), or its handle in your records."),
    ],
    fields: FieldsOpt,
    purpose: PurposeOpt,
    for_: Annotated[str, typer.Option("--for", metavar="DURATION", help="How long the grant lasts: 30m, 12h, 7d …")],
    uses: UsesOpt = None,
    intent: Annotated[
        str | None,
        typer.Option("--intent", metavar="ID", help="Your intent it serves: the grant ends when the intent does."),
    ] = None,
    terms: Annotated[
        str | None, typer.Option("--terms", metavar="T,U", help="Your terms, comma-separated: no-resale,…")
    ] = None,
    push: PushOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Grant a vendor access without being asked; the signed grant is sent to the vendor.

    Example: vrm grants create acme-air --fields shipping_address --purpose "deliver my order" --for 7d --uses 1
    """
    state = node(ctx)
    state.require_role("person", PERSON_ONLY)
    names, duration = parse_fields(fields), parse_for(for_)
    chosen = [t.strip() for t in (terms or "").split(",") if t.strip()]
    args = {
        "vendor": _vendor_key(state, vendor),
        "fields": names,
        "purpose": purpose,
        "duration_ms": duration,
        "uses": uses,
        "for": intent,
        "push": push,
        "terms": chosen,
    }
    made = state.run_op("grants.create", args, vault=push)
    if as_json:
        output.print_json(made)
        return
    _granted(made)


def _granted(made: dict[str, Any]) -> None:
    uses = "unlimited uses" if made["uses_allowed"] is None else f"{made['uses_allowed']} use(s)"
    output.say(
        f"granted {made['id'][:12]} to {_node_id(made['grantee'])}: {', '.join(made['fields'])}, "
        f"{uses}, until {output.when(made['expires'])}" + (" (pushed to the vendor)" if made["push"] else "")
    )


@grants.command("list")
def grants_list(ctx: typer.Context, all_: AllOpt = False, as_json: JsonOpt = False) -> None:
    """The grants you gave, newest first; --all adds the ended ones."""
    from node.grants import Grants

    state = node(ctx)
    state.require_role("person", PERSON_ONLY)
    store = state.store()
    rows = Grants(store).list(direction="given", status="all" if all_ else "live")
    if as_json:
        output.print_json(rows)
        return
    names = _Names(store)
    output.table(
        ("grant", "state", "vendor", "fields", "purpose", "uses", "expires", "deletion"),
        ((*_grant_row(g, names(g.grantee)), _deletion(g)) for g in rows),
    )
    if not rows:
        output.note("no grants" + ("" if all_ else " live (--all shows ended ones)"))


@grants.command("show")
def grants_show(ctx: typer.Context, ref: GrantArg, as_json: JsonOpt = False) -> None:
    """One grant you gave: scope, uses, state, its accesses, and whether the vendor confirmed deletion."""
    from node.grants import Grants
    from node.receipts import Receipts

    state = node(ctx)
    state.require_role("person", PERSON_ONLY)
    store = state.store()
    grant = Grants(store).get(ref)
    receipts = [r for r in Receipts(store).list() if r.grant == grant.id]
    if as_json:
        doc = output.to_data(grant)
        doc["receipts"] = output.to_data(receipts)
        output.print_json(doc)
        return
    names = _Names(store)
    outcomes: dict[str, int] = {}
    for receipt in receipts:
        outcomes[receipt.outcome] = outcomes.get(receipt.outcome, 0) + 1
    output.fields(
        _grant_rows(grant, ("vendor", names(grant.grantee, full=True)))
        + [
            ("request", grant.request_id[:12] if grant.request_id else None),
            ("accesses", ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())) or "none"),
            ("deletion", _deletion(grant)),
        ]
    )


@grants.command("revoke")
def grants_revoke(ctx: typer.Context, ref: GrantArg, as_json: JsonOpt = False) -> None:
    """End a grant now: every access is refused from this moment; the vendor is asked to delete the data."""
    state = node(ctx)
    state.require_role("person", PERSON_ONLY)
    done = state.run_op("grants.revoke", {"ref": ref})
    if as_json:
        output.print_json(done)
        return
    output.say(f"revoked {done['id'][:12]}: every access is refused from now on")
    output.note("the vendor is asked to delete the data; `vrm grants show` tells when it confirms")


@grants.command("log")
def grants_log(
    ctx: typer.Context,
    vendor: Annotated[
        str | None,
        typer.Option("--vendor", metavar="X", help="Only this vendor: node id, or its handle in your records."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The receipt log: who saw what, when and why; every access, push and refusal, oldest first."""
    from node.receipts import Receipts

    state = node(ctx)
    state.require_role("person", PERSON_ONLY)
    store = state.store()
    key = None if vendor is None else _vendor_key(state, vendor)
    rows = Receipts(store).list(vendor=key)
    if as_json:
        output.print_json(rows)
        return
    names = _Names(store)
    output.table(
        ("#", "when", "vendor", "outcome", "fields", "purpose", "grant"),
        (
            (
                r.seq,
                output.when(r.at),
                names(r.vendor),
                r.outcome,
                ",".join(r.fields),
                r.purpose or None,
                None if r.grant.strip("0") == "" else r.grant[:12],
            )
            for r in rows
        ),
    )
    if not rows:
        output.note("no receipts" + ("" if vendor is None else " for this vendor"))


@grants.command("verify-log")
def grants_verify_log(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check the receipt log's chain and signatures; exit 1 naming the first edited, removed or moved entry."""
    from node.receipts import Receipts

    state = node(ctx)
    state.require_role("person", PERSON_ONLY)
    report = Receipts(state.store()).verify(bytes.fromhex(state.home().public_key))
    if as_json:
        output.print_json(report)
    elif report.ok:
        output.say(f"receipt log verified: {report.count} receipt(s), chain and signatures intact")
    else:
        output.say(f"receipt log BROKEN at #{report.seq}: {report.problem}")
    if not report.ok:
        raise typer.Exit(1)


@grants.command("export-receipts")
def grants_export_receipts(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", dir_okay=False, help="Write to FILE (never overwritten), else stdout."),
    ] = None,
) -> None:
    """Every receipt in an open JSON format: each with its signed envelope (hex) and decoded fields."""
    from node.errors import ConflictError, NotFoundError
    from node.receipts import Receipts

    state = node(ctx)
    state.require_role("person", PERSON_ONLY)
    if out is not None:
        if out.exists():
            raise ConflictError(f"{out} exists; export never overwrites a file")
        if not out.absolute().parent.is_dir():
            raise NotFoundError("directory", str(out.absolute().parent))
    document = Receipts(state.store()).export()
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    from node.keystore import write_new_file

    write_new_file(out, text.encode("utf-8"), mode=0o644)
    output.say(f"exported {len(document.get('receipts', ()))} receipt(s) to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(grants, name="grants")
