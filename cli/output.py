"""Output for people and for scripts.

``--json``: one JSON document on stdout (sorted keys), nothing else on stdout. Times follow one scheme
in every command: a point in time is integer milliseconds since the epoch under a key ``at`` or ending
in ``_at`` (``created_at``, ``expires_at``); a duration's key ends with its unit (``ttl_ms``,
``uptime_s``). Records that name a time otherwise (an envelope's ``created``/``expires``, an offer's
``received``) are renamed here, in the one place JSON leaves the CLI. Otherwise rich tables on stdout: fitted to a terminal's width, and never wrapped
off a terminal (one line per row, for grep and cut). Notes and warnings always go to stderr, so a
script reading stdout never sees them. rich is imported only when a table is printed.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON (stable keys) on stdout instead of a table.")
]


# Time keys of records (and of envelope bodies) that predate the ``*_at`` scheme.
_OLD_TIME_KEYS = frozenset({"created", "expires", "received", "ended", "sent", "updated", "decided"})
_AFTER_1973_MS = 10**11  # an integer this large under one of those keys is a time, not a count


def time_key(key: str, value: Any) -> str:
    """``key`` under the CLI's scheme: ``expires`` → ``expires_at`` when ``value`` is a time (integer
    ms, or None for one not set); a count or flag under such a name (sync's ``received``) stays."""
    if key not in _OLD_TIME_KEYS:
        return key
    is_time = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= _AFTER_1973_MS)
    return f"{key}_at" if is_time else key


def to_data(value: Any) -> Any:
    """Plain JSON values from records (dataclasses, objects with ``to_json()``, tuples, dicts), with
    time keys named by the scheme above."""
    if hasattr(value, "to_json"):
        return to_data(value.to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_data(dataclasses.asdict(value))
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = time_key(str(k), v)
            out[key if key not in value else str(k)] = to_data(v)  # never overwrite a key already there
        return out
    if isinstance(value, (list, tuple)):
        return [to_data(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(to_data(value), indent=2, sort_keys=True, ensure_ascii=False))


def say(message: str) -> None:
    """A result line for people (stdout)."""
    typer.echo(message)


def note(message: str) -> None:
    """A remark or warning (stderr)."""
    typer.echo(message, err=True)


# Off a terminal (a pipe, a file, `grep`), lines are never wrapped: a row stays one line, whatever
# its length, so no word, id or URL is cut in two. rich would otherwise assume 80 columns.
UNWRAPPED_WIDTH = 100_000


def console() -> Any:
    from rich.console import Console

    # markup off: vendor names and notes are the person's text, "[x]" in them must print as typed.
    out = Console(markup=False, highlight=False, emoji=False)
    if not out.is_terminal:
        out = Console(markup=False, highlight=False, emoji=False, width=UNWRAPPED_WIDTH)
    return out


def _print(renderable: Any) -> None:
    """Print a table or grid; off a terminal without the padding rich adds at the end of each line."""
    out = console()
    if out.is_terminal:
        out.print(renderable)
        return
    with out.capture() as captured:
        out.print(renderable)
    typer.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> None:
    from rich import box
    from rich.table import Table

    # gh-style: a rule under the header, no cell borders, so eight columns still fit in 80.
    grid = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True
    )
    for index, name in enumerate(columns):
        # Never "…": a cut handle or id is useless. The first column (the key) stays on one line.
        grid.add_column(name, overflow="fold", no_wrap=index == 0, min_width=len(name))
    for row in rows:
        grid.add_row(*(cell if _is_text(cell) else _cell(cell) for cell in row))
    _print(grid)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """A two-column "name  value" block, for `show` commands."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for name, value in pairs:
        grid.add_row(name, value if _is_text(value) else _cell(value))
    _print(grid)


def _is_text(value: Any) -> bool:
    from rich.text import Text

    return isinstance(value, Text)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def when(ms: int | None) -> str:
    """A time in milliseconds as local ``YYYY-MM-DD HH:MM``."""
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000))


def duration(ms: int | None) -> str:
    """``90061000`` → ``1d 1h``: the two largest units, enough to read at a glance."""
    if ms is None:
        return "-"
    seconds = max(0, ms) // 1000
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def money(minor: int | None, currency: str | None) -> str:
    if minor is None or currency is None:
        return "-"
    from cli.money import format_money

    return format_money(minor, currency)
