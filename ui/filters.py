"""Template filters: times, durations, money and ids as a person reads them."""

from __future__ import annotations

import datetime as dt

from jinja2 import Environment
from markupsafe import Markup, escape


def when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = max(0, int(ms // 1000))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def left(expires: int, now: int) -> str:
    return "expired" if expires <= now else duration(expires - now) + " left"


def money(minor: int | None, currency: str | None = "") -> str:
    if minor is None:
        return "-"
    return f"{minor / 100:,.2f} {currency or ''}".strip()


def short(value: str | None, n: int = 12) -> str:
    return "-" if not value else value[:n]


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def marked(snippet: str) -> Markup:
    """A search snippet with its hits (between \\x02 and \\x03) in <mark>, the rest escaped."""
    out = []
    bold = False
    for chunk in snippet.replace("\x03", "\x02").split("\x02"):
        out.append(f"<mark>{escape(chunk)}</mark>" if bold else str(escape(chunk)))
        bold = not bold
    return Markup("".join(out))


def install(env: Environment) -> None:
    env.filters.update(when=when, duration=duration, money=money, short=short, percent=percent, marked=marked)
    env.globals.update(left=left)


