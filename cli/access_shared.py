"""What `vrm access` (cli.access_cmd) and `vrm grants` (cli.grants_cmd) share: their options, the
parsing of fields, of what a grant serves and of whom it names, and how a grant reads."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import output

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
