"""The page's Starlette app: login, the session gate, CSRF, security headers, pages, the live stream.

``create_ui_app`` takes everything as explicit callables, so the node (whatever its composition root)
decides how an op runs and where the store's thread is:

- ``run_op(name, args)``: every change the page makes, the same operations `vrm` runs;
- ``read(fn, *args)``: ``fn(store, *args)`` on the store's thread, for the read-only queries of
  ``ui.queries`` (the node/ list and show functions the CLI prints);
- ``write(fn, *args)``: the same for her relationship records (notes, ratings, ending a
  relationship), which the CLI also writes to the store directly, not through an op;
- ``events``: a ``ui.live.Changes`` the node notifies when something changed;
- ``auth``: the ``ui.auth.UiAuth`` holding login tokens and sessions (one per node, shared by the
  loopback and the LAN listener);
- ``unlock_vault(passphrase)``: the vault key, or PassphraseError (shows a value only to her);
- ``link_token``: the admin API's bearer token, which `vrm ui` presents to get a login link
  (None on the LAN listener: links are minted on loopback only).

The app answers the paths under ``/ui/`` (and sends ``/`` there): route every request whose path is
``/ui`` or starts with ``/ui/`` to it, as they are.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qs, parse_qsl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from node.errors import (
    AccessRefused,
    ConflictError,
    IntentSyntaxError,
    NotFoundError,
    PassphraseError,
    ValidationError,
    VrmError,
)
from node.store import Clock, wall_clock_ms
from ui import filters, live
from ui.auth import COOKIE, SESSION_IDLE_S, Session, UiAuth, csrf_ok
from ui.pages import PAGES, Action, Ctx, Page

HERE = Path(__file__).parent
PREFIX = "/ui"
MAX_FORM = 64 * 1024  # forms are a few fields; the vault's values are short
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make the Origin of a POST "null"
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

RunOp = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
Read = Callable[..., Awaitable[Any]]


class Headers:
    """ASGI middleware: the security headers on every response; pages are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(PREFIX + "/static/")

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"cache-control"]
                headers += SECURITY_HEADERS
                headers.append((b"cache-control", b"max-age=3600" if static else b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def create_ui_app(
    *,
    run_op: RunOp,
    read: Read,
    write: Read,
    events: live.Changes,
    auth: UiAuth,
    role: str,
    node_id: str,
    public_key: bytes,
    name: str = "",
    unlock_vault: Callable[[str | None], bytes | None],
    link_token: str | None,
    lan: bool = False,
    clock: Clock = wall_clock_ms,
) -> ASGIApp:
    """The page (see the module docstring); give it the requests for ``/ui/…``."""
    ctx = Ctx(
        run_op=run_op, read=read, write=write, role=role, node_id=node_id, public_key=public_key,
        name=name, unlock_vault=unlock_vault, clock=clock,
    )
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "svg"]))
    filters.install(env)
    pages = [p for p in PAGES if p.role == role]
    nav = [p for p in pages if p.nav]

    def render(request: Request, template: str, code_: int = 200, **values: Any) -> HTMLResponse:
        session: Session | None = getattr(request.state, "session", None)
        doc = env.get_template(template).render(
            prefix=PREFIX, nav=nav, path=request.url.path, role=role, node_id=node_id, node_name=name,
            csrf=session.csrf if session else "", **{"errors": {}, "form": FormData(), **values},
        )
        return HTMLResponse(doc, code_)

    def session_of(request: Request) -> Session | None:
        return auth.session(request.cookies.get(COOKIE))

    def origin_ok(request: Request) -> bool:
        """A change comes from this page: same Origin (browsers send it on every POST), and not a
        cross-site fetch by Sec-Fetch-Site when the browser says so."""
        host = request.headers.get("host", "")
        origin = request.headers.get("origin")
        site = request.headers.get("sec-fetch-site")
        return origin == f"{request.url.scheme}://{host}" and site in (None, "same-origin")

    async def form_of(request: Request) -> FormData:
        """An urlencoded form (the only kind the page sends), at most MAX_FORM bytes."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                raise _Refused(413, "the form is too large")
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=200)
        return FormData(pairs)

    # -- login ------------------------------------------------------------------------------------

    async def login_page(request: Request) -> Response:
        token = request.query_params.get("t", "")
        return render(request, "login.html", token=token, lan=lan, title="Sign in")

    async def login(request: Request) -> Response:
        if not origin_ok(request):
            return render(request, "denied.html", 403, title="Refused", reason="a sign-in from another site")
        form = await form_of(request)
        session_id = auth.redeem(str(form.get("token", "")), lan=lan, pairing=str(form.get("pairing", "")))
        if session_id is None:
            reason = "this link was used already, has expired, or the pairing code is wrong"
            return render(request, "login.html", 401, token="", lan=lan, title="Sign in", failed=reason)
        response = RedirectResponse(PREFIX + "/", 303)
        response.set_cookie(
            COOKIE, session_id, max_age=int(SESSION_IDLE_S), path=PREFIX, httponly=True,
            samesite="strict", secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request) -> Response:
        auth.end(request.cookies.get(COOKIE))
        response = RedirectResponse(PREFIX + "/login", 303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    async def link(request: Request) -> Response:
        """`vrm ui`: a new one-time login token, for the admin token's holder only."""
        given = request.headers.get("authorization", "").encode()
        if link_token is None or not hmac.compare_digest(given, f"Bearer {link_token}".encode()):
            return JSONResponse({"error": "Unauthorized", "message": "give the admin token"}, 401)
        token, pairing = auth.mint()
        return JSONResponse({"path": f"{PREFIX}/login?t={token}", "pairing": pairing})

    # -- pages ------------------------------------------------------------------------------------

    def page_endpoint(page: Page) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            values: dict[str, Any] = {}
            status = 200
            if request.method == "POST":
                form = await form_of(request)
                act = page.actions.get(str(form.get("action", "")))
                if act is None:
                    raise _Refused(400, "unknown action")
                try:
                    outcome = await act.run(ctx, form, request.path_params)
                except VrmError as exc:
                    status = _status(exc)
                    values = {"errors": {_field(act, exc): _message(exc)}, "form": form, "failed": act.name}
                else:
                    if isinstance(outcome, dict):  # shown once, never in a URL (a vault value)
                        values = outcome
                    else:
                        target = outcome or request.url.path
                        return RedirectResponse(f"{target}?done={act.name}", 303)
            try:
                data = await page.load(ctx, request)
            except NotFoundError as exc:
                return render(request, "denied.html", 404, title="Not found", reason=str(exc))
            done = page.actions.get(request.query_params.get("done", ""))
            base = {"title": page.title, "now": clock(), "done": done.done if done else ""}
            return render(request, page.template, status, **{**base, **data, **values})

        return endpoint

    async def api_parse(request: Request) -> Response:
        return JSONResponse(await ctx.preview_intent(request.query_params.get("text", "")))

    async def api_subscription(request: Request) -> Response:
        return JSONResponse(await ctx.preview_subscription(request.query_params.get("text", "")))

    async def events_stream(request: Request) -> Response:
        return StreamingResponse(
            live.stream(read, events, role, clock),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def export(request: Request) -> Response:
        from ui import queries

        doc = await read(queries.export_receipts, clock)
        return Response(
            json.dumps(doc, indent=2, sort_keys=True), media_type="application/json",
            headers={"content-disposition": 'attachment; filename="receipts.json"'},
        )

    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/link", link, methods=["POST"]),
        Route("/api/parse", api_parse, methods=["GET"]),
        Route("/api/subscription", api_subscription, methods=["GET"]),
        Route("/events", events_stream, methods=["GET"]),
        Route("/access/export", export, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    routes += [Route(p.path, page_endpoint(p), methods=["GET", "POST"]) for p in pages]
    app = Starlette(routes=routes)

    public = {"/login", "/link"}

    async def gate(scope: Scope, receive: Receive, send: Send) -> None:
        """No page, no API, no stream without a session; no change without CSRF token and origin."""
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request = Request(scope, receive)
        path = scope["path"][len(PREFIX):] if scope["path"].startswith(PREFIX) else scope["path"]
        try:
            # DNS rebinding: a page of another site whose name points at 127.0.0.1 is not this page
            if not lan and request.url.hostname not in LOOPBACK_HOSTS:
                raise _Refused(421, "this page answers on 127.0.0.1 or localhost only")
            if path not in public and not path.startswith("/static/"):
                session = session_of(request)
                if session is None:
                    raise _Refused(401, "sign in first: run `vrm ui` for a login link")
                if session.lan != lan:
                    raise _Refused(401, "this session belongs to the other listener")
                if request.method not in ("GET", "HEAD"):
                    body = await _body(receive)
                    receive = _replay(body)
                    token = request.headers.get("x-csrf-token")
                    if token is None and request.headers.get("content-type", "").startswith(
                        "application/x-www-form-urlencoded"
                    ):
                        token = (parse_qs(body.decode("utf-8", "replace")).get("csrf") or [""])[0]
                    if not origin_ok(request) or not csrf_ok(session, token):
                        raise _Refused(403, "a change from outside this page (no valid CSRF token or origin)")
                scope.setdefault("state", {})["session"] = session
        except _Refused as refused:
            await _refusal(request, refused)(scope, receive, send)
            return
        await app(scope, receive, send)

    def _refusal(request: Request, refused: _Refused) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if wants_html and refused.status == 401:
            return render(request, "denied.html", 401, title="Sign in", reason=refused.message, login=True)
        if wants_html:
            return render(request, "denied.html", refused.status, title="Refused", reason=refused.message)
        return JSONResponse({"error": "Refused", "message": refused.message}, refused.status)

    async def to_page(request: Request) -> Response:
        return RedirectResponse(PREFIX + "/", 307)

    return Headers(Starlette(routes=[Route("/", to_page), Route(PREFIX, to_page), Mount(PREFIX, app=gate)]))


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if len(body) > MAX_FORM:
            raise _Refused(413, "the form is too large")
        if not message.get("more_body"):
            break
    return body


def _replay(body: bytes) -> Receive:
    """A receive that hands the app the body the gate already read, then waits for the disconnect."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    return receive


def _status(exc: VrmError) -> int:
    if isinstance(exc, ValidationError):
        return 400
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, (ConflictError, AccessRefused, PassphraseError)):
        return 409
    return 500


def _field(act: Action, exc: VrmError) -> str:
    name = getattr(exc, "field", None)
    name = act.fields.get(name, name) if name else None
    return name if name in act.inputs else act.inputs[0] if act.inputs else "_form"


def _message(exc: VrmError) -> str:
    if isinstance(exc, IntentSyntaxError):
        return str(exc)
    return getattr(exc, "message", None) or str(exc)

