"""Every page: what it loads, which template shows it, and the form actions it takes.

An action reads its form, then makes its one change through ``ctx.run_op`` (an op, as `vrm` does) or
``ctx.write`` (her relationship records). A refusal is a VrmError: the page is shown again with the
reason next to the input it names (``Action.fields`` maps an error's field to the input) and nothing
has changed, because every op and record method validates everything before it writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio
from starlette.datastructures import FormData
from starlette.requests import Request

from node.errors import VrmError
from node.intents import parse_intent, parse_duration
from node.records import Records
from node.store import Clock
from ui import forms, queries
from ui.chart import bar_chart

DAY_MS = 86_400_000
WINDOWS = {"1h": 3_600_000, "24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS}


@dataclass
class Ctx:
    """What the pages may use (see ui.app.create_ui_app)."""

    run_op: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
    read: Callable[..., Awaitable[Any]]
    write: Callable[..., Awaitable[Any]]
    role: str
    node_id: str
    public_key: bytes
    name: str
    unlock_vault: Callable[[str | None], bytes | None]
    clock: Clock

    async def q(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.read(fn, self.clock, *args)

    async def preview_intent(self, text: str) -> dict[str, Any]:
        """What the tokenizer understood, or the error and the word it points at."""
        if len(text) > 4096:
            return {"ok": False, "message": "longer than 4096 characters", "word": "", "offset": 0}
        try:
            parsed = parse_intent(text)
        except VrmError as exc:
            return {
                "ok": False,
                "message": getattr(exc, "message", str(exc)),
                "word": getattr(exc, "word", ""),
                "offset": getattr(exc, "offset", 0),
            }
        return {
            "ok": True,
            "tokens": list(parsed.tokens),
            "tags": list(parsed.tags),
            "handles": list(parsed.handles),
            "constraints": {k: _show(v) for k, v in parsed.constraints.items()},
            "words": list(parsed.words),
        }

    async def preview_subscription(self, text: str) -> dict[str, Any]:
        if len(text) > 4096:
            return {"ok": False, "message": "longer than 4096 characters"}
        try:
            doc = await self.q(queries.subscription_preview, text)
        except VrmError as exc:
            return {"ok": False, "message": str(exc)}
        doc["constraints"] = {k: _show(v) for k, v in doc["constraints"].items()}
        return {"ok": True, **doc}


def _show(value: Mapping[str, Any]) -> str:
    if "money" in value:
        return f"{value['money'] / 100:g} {value.get('cur', '')}".strip()
    if "from" in value and "to" in value:
        return f"{value['from']} → {value['to']}"
    return ", ".join(str(v) for v in value.values())


ActionFn = Callable[[Ctx, FormData, Mapping[str, Any]], Awaitable[str | dict[str, Any] | None]]


@dataclass
class Action:
    name: str
    run: ActionFn
    done: str  # what the page says after it
    inputs: tuple[str, ...] = ()  # the form's inputs; a refusal is shown next to the first by default
    fields: dict[str, str] = field(default_factory=dict)  # an error's field -> the input it is about


@dataclass
class Page:
    role: str
    path: str
    template: str
    title: str
    load: Callable[[Ctx, Request], Awaitable[dict[str, Any]]]
    actions: dict[str, Action] = field(default_factory=dict)
    nav: str = ""  # its label in the navigation, if it is in it


def _actions(*items: Action) -> dict[str, Action]:
    return {a.name: a for a in items}


# -- the person --------------------------------------------------------------------------------------


async def _home(ctx: Ctx, request: Request) -> dict[str, Any]:
    return await ctx.q(queries.home)


async def _intents(ctx: Ctx, request: Request) -> dict[str, Any]:
    return await ctx.q(queries.intents)


async def _cast(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    text = forms.text(form, "text")
    ttl = parse_duration(forms.text(form, "expires", "7d"))
    terms = forms.text(form, "terms", "")
    await ctx.run_op("intent.cast", {"text": text, "ttl_ms": ttl, "terms": terms.replace(",", " ").split()})


async def _withdraw(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("intent.withdraw", {"ref": forms.text(form, "ref")})


async def _offers(ctx: Ctx, request: Request) -> dict[str, Any]:
    status = request.query_params.get("status", "open")
    if status not in ("open", "accepted", "declined", "expired", "all"):
        status = "open"
    return await ctx.q(queries.offers, status)


async def _accept(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("offers.accept", {"ref": forms.text(form, "ref")})


async def _decline(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("offers.decline", {"ref": forms.text(form, "ref")})


async def _vendors(ctx: Ctx, request: Request) -> dict[str, Any]:
    return await ctx.q(queries.vendors)


async def _vendor(ctx: Ctx, request: Request) -> dict[str, Any]:
    data = await ctx.q(queries.vendor, request.path_params["ref"])
    data["levels"] = ("none", "transactional", "casual", "engaged", "advocate")
    return data


def _records(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(records, *args)`` over the store, for ``ctx.write``."""

    def run(store: Any, clock: Clock, *args: Any) -> Any:
        return fn(Records(store, clock=clock), *args)

    return run


async def _note(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    text = forms.text(form, "note")
    await ctx.write(_records(lambda r, ref, t: r.add_note(ref, t)), ctx.clock, params["ref"], text)


async def _rate(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    stars, comment = forms.integer(form, "stars"), forms.text(form, "comment", "")
    await ctx.write(_records(lambda r, ref, s, c: r.rate(ref, s, comment=c)), ctx.clock, params["ref"], stars, comment)


async def _recommend(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    would = forms.text(form, "would") == "yes"
    why = forms.text(form, "why", "")
    await ctx.write(_records(lambda r, ref, w, t: r.recommend(ref, w, text=t)), ctx.clock, params["ref"], would, why)


async def _engagement(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    level = forms.text(form, "level")
    await ctx.write(_records(lambda r, ref, lv: r.set_engagement(ref, lv)), ctx.clock, params["ref"], level)


async def _reply(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    issue, author, text = forms.integer(form, "issue"), forms.text(form, "author", "me"), forms.text(form, "reply")
    await ctx.write(_records(lambda r, i, a, t: r.add_reply(i, a, t)), ctx.clock, issue, author, text)


async def _end(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    reason = forms.text(form, "reason", "") or None
    await ctx.write(_records(lambda r, ref, why: r.end_relationship(ref, reason=why)), ctx.clock, params["ref"], reason)


async def _search(ctx: Ctx, request: Request) -> dict[str, Any]:
    query = request.query_params.get("q", "").strip()
    if not query:
        return {"hits": None, "query": ""}
    try:
        return await ctx.q(queries.find, query)
    except VrmError as exc:
        return {"hits": None, "query": query, "errors": {"q": str(exc)}}


async def _vault(ctx: Ctx, request: Request) -> dict[str, Any]:
    return await ctx.q(queries.vault)


async def _vault_set(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("vault.set", {"name": forms.text(form, "name"), "value": forms.text(form, "value")})


async def _vault_delete(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("vault.delete", {"name": forms.text(form, "name")})


async def _vault_reveal(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> dict[str, Any]:
    name, passphrase = forms.text(form, "name"), forms.text(form, "passphrase", "")
    key = await trio.to_thread.run_sync(ctx.unlock_vault, passphrase or None)  # scrypt: off the loop
    value = await ctx.read(queries.vault_value, key, name)
    return {"revealed": {"name": name, "value": value}}


async def _access(ctx: Ctx, request: Request) -> dict[str, Any]:
    data = await ctx.q(queries.access)
    data["verified"] = await ctx.q(queries.verify_receipts, ctx.public_key)
    return data


async def _approve(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    args: dict[str, Any] = {"request": forms.text(form, "request"), "fields": form.getlist("fields")}
    if not args["fields"]:
        raise forms.refused("fields", "choose at least one field (or deny the request)")
    days = forms.optional_number(form, "days")
    if days is not None:
        args["duration_ms"] = int(days * DAY_MS)
    args["uses"] = forms.optional_integer(form, "uses")
    args["push"] = form.get("push") == "on"
    await ctx.run_op("grants.approve", args)


async def _deny(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("grants.deny", {"request": forms.text(form, "request")})


async def _revoke(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("grants.revoke", {"ref": forms.text(form, "ref")})


async def _peers(ctx: Ctx, request: Request) -> dict[str, Any]:
    return await ctx.q(queries.peers)


async def _peer_add(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    node_id = forms.text(form, "node_id", "").strip() or None
    await ctx.run_op("peers.add", {"url": forms.text(form, "url").strip(), "node_id": node_id})


async def _peer_remove(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("peers.remove", {"ref": forms.text(form, "ref")})


async def _sync(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("sync", {})


PEERS_ACTIONS = _actions(
    Action("add", _peer_add, "Peer added.", ("url", "node_id")),
    Action("remove", _peer_remove, "Peer removed.", ("ref",)),
    Action("sync", _sync, "Pulled from every peer.", ()),
)

PERSON = [
    Page("person", "/", "home.html", "Home", _home, nav="Home"),
    Page(
        "person", "/intents", "intents.html", "Intents", _intents,
        _actions(
            Action("cast", _cast, "Intent cast.", ("text", "expires", "terms"), {"intent": "text"}),
            Action("withdraw", _withdraw, "Intent withdrawn.", ("ref",)),
        ),
        nav="Intents",
    ),
    Page(
        "person", "/offers", "offers.html", "Offers", _offers,
        _actions(Action("accept", _accept, "Offer accepted.", ("ref",)), Action("decline", _decline, "Offer declined.", ("ref",))),
        nav="Offers",
    ),
    Page("person", "/vendors", "vendors.html", "Vendors", _vendors, nav="Vendors"),
    Page(
        "person", "/vendors/{ref}", "vendor.html", "Vendor", _vendor,
        _actions(
            Action("note", _note, "Note added.", ("note",), {"text": "note"}),
            Action("rate", _rate, "Rating recorded.", ("stars", "comment")),
            Action("recommend", _recommend, "Recommendation recorded.", ("would", "why"), {"text": "why"}),
            Action("engagement", _engagement, "Engagement changed.", ("level",), {"engagement": "level"}),
            Action("reply", _reply, "Reply added.", ("reply", "issue"), {"text": "reply"}),
            Action("end", _end, "Relationship ended; its history is kept.", ("reason",)),
        ),
    ),
    Page("person", "/search", "search.html", "Search", _search, nav="Search"),
    Page(
        "person", "/vault", "vault.html", "Vault", _vault,
        _actions(
            Action("set", _vault_set, "Field saved.", ("name", "value")),
            Action("delete", _vault_delete, "Field deleted.", ("name",)),
            Action("reveal", _vault_reveal, "", ("passphrase", "name"), {"vault": "passphrase"}),
        ),
        nav="Vault",
    ),
    Page(
        "person", "/access", "access.html", "Access", _access,
        _actions(
            Action("approve", _approve, "Access granted.", ("fields", "days", "uses"), {"duration_ms": "days"}),
            Action("deny", _deny, "Request denied.", ("request",)),
            Action("revoke", _revoke, "Grant revoked; the vendor is told to delete.", ("ref",)),
        ),
        nav="Access",
    ),
    Page("person", "/peers", "peers.html", "Peers", _peers, PEERS_ACTIONS, nav="Peers"),
]


# -- the vendor --------------------------------------------------------------------------------------


async def _leads(ctx: Ctx, request: Request) -> dict[str, Any]:
    return await ctx.q(queries.leads)


async def _offer(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    price = forms.money(form, "price")
    args = {
        "lead": forms.text(form, "lead"),
        "price_minor": price,
        "currency": forms.text(form, "currency", "USD").strip().upper(),
        "text": forms.text(form, "text"),
        "ttl_ms": int((forms.optional_number(form, "days") or 2) * DAY_MS),
    }
    await ctx.run_op("offers.make", args)


async def _sent(ctx: Ctx, request: Request) -> dict[str, Any]:
    return await ctx.q(queries.offers_sent)


async def _subscriptions(ctx: Ctx, request: Request) -> dict[str, Any]:
    return await ctx.q(queries.subscriptions)


async def _sub_add(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("subscriptions.add", {"text": forms.text(form, "text")})


async def _sub_remove(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("subscriptions.remove", {"id": forms.integer(form, "id")})


async def _trends(ctx: Ctx, request: Request) -> dict[str, Any]:
    window = request.query_params.get("window", "7d")
    window = window if window in WINDOWS else "7d"
    near = request.query_params.get("near", "").strip() or None
    errors: dict[str, str] = {}
    try:
        rows = await ctx.q(queries.trend_rows, WINDOWS[window], near)
    except VrmError as exc:
        rows, errors = [], {"near": getattr(exc, "message", str(exc))}
    labels = [f"{r['token']} · {r['area'] or 'anywhere'}" for r in rows]
    chart = bar_chart(labels, [r["count"] for r in rows], title=f"People asking, last {window}")
    return {"rows": rows, "chart": chart, "window": window, "windows": list(WINDOWS), "near": near or "", "errors": errors}


async def _held(ctx: Ctx, request: Request) -> dict[str, Any]:
    return await ctx.q(queries.access_held)


async def _request(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    days = forms.optional_number(form, "days") or 30
    args = {
        "person": forms.text(form, "person").strip(),
        "fields": forms.text(form, "fields").replace(",", " ").split(),
        "purpose": forms.text(form, "purpose"),
        "duration_ms": int(days * DAY_MS),
        "for": forms.text(form, "for", "").strip() or None,
    }
    await ctx.run_op("access.request", args)


async def _fetch(ctx: Ctx, form: FormData, params: Mapping[str, Any]) -> None:
    await ctx.run_op("access.fetch", {"grant": forms.text(form, "grant")})


VENDOR = [
    Page("vendor", "/", "leads.html", "Leads", _leads, _actions(
        Action("offer", _offer, "Offer sent.", ("price", "currency", "text", "days", "lead"),
               {"price_minor": "price", "ttl_ms": "days"}),
    ), nav="Leads"),
    Page("vendor", "/sent", "sent.html", "Offers sent", _sent, nav="Offers sent"),
    Page("vendor", "/subscriptions", "subscriptions.html", "Subscriptions", _subscriptions, _actions(
        Action("add", _sub_add, "Subscription added.", ("text",), {"intent": "text", "subscription": "text"}),
        Action("remove", _sub_remove, "Subscription removed.", ("id",)),
    ), nav="Subscriptions"),
    Page("vendor", "/trends", "trends.html", "Trends", _trends, nav="Trends"),
    Page("vendor", "/held", "held.html", "Access held", _held, _actions(
        Action("request", _request, "Request sent.", ("person", "fields", "purpose", "days", "for"),
               {"duration_ms": "days"}),
        Action("fetch", _fetch, "Fetched.", ("grant",)),
    ), nav="Access held"),
    Page("vendor", "/peers", "peers.html", "Peers", _peers, PEERS_ACTIONS, nav="Peers"),
]

PAGES = PERSON + VENDOR
