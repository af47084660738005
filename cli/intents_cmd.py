"""`vrm intent "…"` casts a signed, expiring intent; `vrm intents list|show|withdraw` manage them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import typer

from cli import complete, output
from cli.context import node
from cli.output import JsonOpt
from node.errors import IntentSyntaxError

IntentArg = Annotated[
    str, typer.Argument(metavar="ID", help="The intent's id, or a unique prefix of 6+ characters.")
]

intents = typer.Typer(help="Your intents: list, show, withdraw.", no_args_is_help=True)


def cast(
    ctx: typer.Context,
    text: Annotated[
        str,
        typer.Argument(
            metavar="TEXT", help="What you want: ?token #tag @handle key:value constraints and free words."
        ),
    ],
    expires: Annotated[str, typer.Option(help="Lifetime: 30m, 12h, 7d, 2w …")] = "7d",
    terms: Annotated[
        list[str] | None,
        typer.Option(
            "--terms",
            help="Your terms, comma-separated: contact-only-about-this,no-resale,…",
            autocompletion=complete.intent_terms,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Parse, sign, store and send an intent to your peers; shows what was understood, then its id.

    Example: vrm intent "?flight SFO->JFK before:2026-12-20 max:400USD #work" --terms no-resale
    """
    from node.intents import parse_duration, parse_intent

    try:
        parsed = parse_intent(text)  # refuse bad text before asking for a passphrase
        ttl_ms = parse_duration(expires)
        chosen = [t.strip() for item in terms or () for t in item.split(",") if t.strip()]
        record = node(ctx).run_op("intent.cast", {"text": text, "ttl_ms": ttl_ms, "terms": chosen})
    except IntentSyntaxError as exc:
        if exc.word:
            point_at(exc, text)
        raise
    if as_json:
        output.print_json(record)
        return
    _understood(parsed, record)
    output.say(f"intent {record['id']}")


def point_at(exc: IntentSyntaxError, text: str) -> None:
    """Attach the text with a caret line under the offending word (printed after the error line)."""
    from rich.cells import cell_len

    # One display line: line breaks and tabs become spaces, so the offset still lines up.
    line = "".join(" " if c.isspace() else c for c in text)
    exc.add_note(f"  {line}")
    exc.add_note("  " + " " * cell_len(line[: exc.offset]) + "^" * max(1, cell_len(exc.word)))


def _understood(parsed: Any, record: dict[str, Any]) -> None:
    output.fields(
        [
            ("tokens", _join("?", parsed.tokens)),
            ("tags", _join("#", parsed.tags)),
            ("handles", _join("@", parsed.handles)),
            ("constraints", "  ".join(constraint(k, v) for k, v in parsed.constraints.items()) or None),
            ("words", " ".join(parsed.words) or None),
            ("terms", ", ".join(record["terms"]) or None),
            (
                "expires",
                f"{output.when(record['expires'])} "
                f"(in {output.duration(record['expires'] - record['created'])})",
            ),
        ]
    )


def _join(sigil: str, names: Iterable[str]) -> str | None:
    return " ".join(sigil + n for n in names) or None


def constraint(key: str, value: dict[str, Any]) -> str:
    """``("max", {"money": 40000, "cur": "USD"})`` → ``max:400.00 USD``."""
    from cli.money import format_money

    currency = value.get("cur")
    if "range" in value:
        lo, hi = value["range"]
        if currency:
            return f"{key}:{format_money(lo, currency).split()[0]}..{format_money(hi, currency)}"
        return f"{key}:{lo}..{hi}"
    if "money" in value:
        return f"{key}:{format_money(value['money'], currency)}"
    return f"{key}:{next(iter(value.values()))}"


@intents.command("list")
def list_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Live, withdrawn and expired intents.")] = False,
    withdrawn: Annotated[bool, typer.Option("--withdrawn", help="Only withdrawn intents.")] = False,
    expired: Annotated[bool, typer.Option("--expired", help="Only expired intents.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Your intents, live ones unless a flag says otherwise."""
    if all_ + withdrawn + expired > 1:
        raise typer.BadParameter("give at most one of --all, --withdrawn, --expired")
    status = "all" if all_ else "withdrawn" if withdrawn else "expired" if expired else "live"
    rows = node(ctx).intents().list(status=status)
    if as_json:
        output.print_json(rows)
        return
    output.table(
        ("id", "status", "created", "expires", "text"),
        ((r.id[:12], r.status, output.when(r.created), output.when(r.expires), r.text) for r in rows),
    )


@intents.command("show")
def show(ctx: typer.Context, ref: IntentArg, as_json: JsonOpt = False) -> None:
    """One intent: its text, what it means, terms, times and state."""
    record = node(ctx).intents().get(ref)
    if as_json:
        output.print_json(record)
        return
    output.fields(
        [
            ("intent", record.id),
            ("text", record.text),
            ("status", record.status),
            ("tokens", _join("?", record.tokens)),
            ("tags", _join("#", record.tags)),
            ("handles", _join("@", record.handles)),
            ("constraints", "  ".join(constraint(k, v) for k, v in record.constraints.items()) or None),
            ("words", " ".join(record.words) or None),
            ("terms", ", ".join(record.terms) or None),
            ("created", output.when(record.created)),
            ("expires", output.when(record.expires)),
            ("withdrawn", output.when(record.withdrawn_at) if record.withdrawn_at else None),
        ]
    )


@intents.command("withdraw")
def withdraw(ctx: typer.Context, ref: IntentArg) -> None:
    """Withdraw an intent with a signed withdrawal sent to your peers: vendors may no longer contact you.
    """
    record = node(ctx).run_op("intent.withdraw", {"ref": ref})
    output.say(f"withdrew intent {record['id']} (withdrawal {record['withdrawal_id']})")


def register(app: typer.Typer) -> None:
    app.command("intent")(cast)
    app.add_typer(intents, name="intents")
