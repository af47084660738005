"""Consented access: `vrm access …` on a vendor node (ask, list, show, fetch) and `vrm grants …` on a
person's node (pending requests, approve, deny, create, list, show, revoke, and the receipt log).

Writes go through ``NodeContext.run_op`` (the running daemon when there is one); lists, shows and the
receipt log read the store directly. A vault value is printed only when asked (``--show-values``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import output
from cli.context import node
from cli.output import JsonOpt

VENDOR_ONLY = "consented access commands (`vrm access …`)"
PERSON_ONLY = "grants (`vrm grants …`)"

GrantArg = Annotated[str, typer.Argument(metavar="ID", help="The grant's id, or a unique prefix of 6+ characters.")]
RequestArg = Annotated[
    str, typer.Argument(metavar="REQ", help="The request's id, or a unique prefix of 6+ characters.")
]
AllOpt = Annotated[bool, typer.Option("--all", help="Include ended grants (revoked, expired, spent).")]
FieldsOpt = Annotated[
    str,
    typer.Option(
        "--fields", metavar="A,B", help="Vault field names, comma-separated: shipping_address,email."
    ),
]
SomeFieldsOpt = Annotated[
    str | None,
    typer.Option("--fields", metavar="A,B", help="Only these of the granted fields, comma-separated."),
]
PurposeOpt = Annotated[
    str, typer.Option("--purpose", metavar="TEXT", help="What the data is for, 1 to 500 characters.")
]
UsesOpt = Annotated[
    int | None, typer.Option("--uses", min=1, metavar="N", help="How many fetches it allows (default: no limit).")
]
PushOpt = Annotated[
    bool,
    typer.Option("--push", help="Your node sends the data (and later changes of it) to the vendor itself."),
]
ShowValuesOpt = Annotated[
    bool, typer.Option("--show-values", help="Print the values of the data held (hidden otherwise).")
]

access = typer.Typer(help="A vendor's access to people's data: request, list, show, fetch.", no_args_is_help=True)
grants = typer.Typer(
    help="Who may see what of your vault: pending, approve, deny, create, list, show, revoke, log.",
    no_args_is_help=True,
)


# -- arguments ---------------------------------------------------------------------------------------


def parse_fields(text: str | None, option: str = "--fields") -> list[str] | None:
    """``"a, b,a"`` → ``["a", "b"]`` (duplicates dropped); None stays None. Names are checked by the node."""
    if text is None:
        return None
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise typer.BadParameter("name one vault field at least, e.g. shipping_address", param_hint=option)
    return names


def parse_for(text: str | None, option: str = "--for") -> int | None:
    """A grant's or request's duration (``30m``, ``12h``, ``7d``, ``2w``) in ms, 1 minute .. 365 days."""
    if text is None:
        return None
    from node.errors import ValidationError
    from node.intents import parse_duration

    try:
        return parse_duration(text)
    except ValidationError:
        raise ValidationError(
            option.lstrip("-"), f"{text!r}: give a duration from 1m to 365d, such as 30m, 12h, 7d or 2w"
        ) from None


def _one_of(intent: str | None, offer: str | None) -> str | None:
    if intent is not None and offer is not None:
        raise typer.BadParameter("a request serves an intent or an offer, not both", param_hint="--intent / --offer")
    return intent if intent is not None else offer


def _node_key(text: str) -> str | None:
    """The hex public key when ``text`` is a node id (vrm1…) or a 64-hex key; None otherwise."""
    from node.errors import IdentityError
    from node.nodeid import parse_node_key

    try:
        return parse_node_key(text.strip().lower()).hex()
    except IdentityError:
        return None


def _vendor_key(state: Any, ref: str) -> str:
    """A vendor named by node id, public key, or the handle (or number) of a vendor in your records."""
    from node.errors import ValidationError
    from node.nodeid import decode_node_id

    key = _node_key(ref)
    if key is not None:
        return key
    vendor = state.records().get_vendor(ref)  # NotFoundError: neither a node id nor a vendor of yours
    if vendor.node_id is None:
        raise ValidationError(
            "vendor", f"{vendor.handle} has no node id in your records; name the vendor's node (vrm1…)"
        )
    return decode_node_id(vendor.node_id).hex()


def _person_key(state: Any, ref: str) -> str:
    """A person named by node id, public key, or as one of your peers (its number or URL)."""
    from node.peers import Peers

    key = _node_key(ref)
    return key if key is not None else Peers(state.store()).get(ref).public_key


# -- how things read ---------------------------------------------------------------------------------


def _node_id(hex_key: str) -> str:
    from node.nodeid import encode_node_id

    return encode_node_id(bytes.fromhex(hex_key))


class _Names:
    """Who a key is, for people: a vendor of your records (@handle), else a peer's name, else its node id."""

    def __init__(self, store: Any) -> None:
        from node.nodeid import decode_node_id
        from node.peers import Peers
        from node.records import Records

        self._names: dict[str, str] = {}
        for peer in Peers(store).list():
            if peer.name:
                self._names[peer.public_key] = peer.name
        for vendor in Records(store).list_vendors(status="all"):
            if vendor.node_id:
                self._names[decode_node_id(vendor.node_id).hex()] = vendor.handle

    def __call__(self, hex_key: str, *, full: bool = False) -> str:
        node_id = _node_id(hex_key)
        name = self._names.get(hex_key)
        if full:
            return f"{name} ({node_id})" if name else node_id
        return name or node_id[:14] + "…"  # a table: the name alone when known (show gives the id)


def _state_of(grant: Any) -> str:
    if grant.status == "live":
        return "live"
    return f"ended: {grant.end_reason}" if grant.end_reason else "ended"


def _uses(grant: Any) -> str:
    allowed = "unlimited" if grant.uses_allowed is None else str(grant.uses_allowed)
    return f"{grant.uses_spent} of {allowed}"


def _deletion(grant: Any) -> str | None:
    """Whether the vendor confirmed deleting the data (a live grant: nothing to confirm yet)."""
    if grant.status == "live":
        return None
    if grant.deletion_confirmed_at:
        return f"confirmed {output.when(grant.deletion_confirmed_at)}"
    return "not confirmed yet"


def _serves(for_ref: str | None) -> str | None:
    return for_ref[:12] if for_ref else None


def _grant_row(grant: Any, who: str) -> tuple[Any, ...]:
    return (
        grant.id[:12],
        _state_of(grant),
        who,
        ",".join(grant.fields),
        grant.purpose,
        _uses(grant),
        output.when(grant.expires),
    )


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
            (*_grant_row(g, names(g.person)), ",".join(sorted(book.held(g.id))) or None)
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
    book = Grants(store)
    grant = book.get(ref)
    held = book.held(grant.id)
    if as_json:
        doc: dict[str, Any] = {**output.to_data(grant), "held": sorted(held)}
        if show_values:
            doc["values"] = held
        output.print_json(doc)
        return
    names = _Names(store)
    output.fields(_grant_rows(grant, ("person", names(grant.person, full=True))) + [("deleted", _vendor_deleted(grant))])
    _print_held(held, show_values)


def _grant_rows(grant: Any, party: tuple[str, str]) -> list[tuple[str, Any]]:
    """What `vrm access show` and `vrm grants show` both say of a grant; ``party`` is the other side."""
    return [
        ("grant", grant.id),
        ("state", _state_of(grant)),
        party,
        ("fields", ", ".join(grant.fields)),
        ("purpose", grant.purpose),
        ("terms", ", ".join(grant.terms) or None),
        ("uses", _uses(grant)),
        ("push", grant.push),
        ("serves", _serves(grant.for_ref)),
        ("granted", output.when(grant.created)),
        ("expires", output.when(grant.expires)),
        ("ended", output.when(grant.ended_at) if grant.ended_at else None),
    ]


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
    got = state.run_op("access.fetch", {"grant": ref, "fields": names})
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
    app.add_typer(access, name="access")
    app.add_typer(grants, name="grants")
