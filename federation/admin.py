"""The admin API of a running node: how `vrm` commands reach the daemon instead of the store.

Bound to 127.0.0.1 only. A bearer token, random per run, is written with the admin URL and the
daemon's pid to ``<home>/admin.json`` (mode 0600) when the node starts and removed when it stops, so
only someone who can read the home (the owner) can drive the node.

Routes (JSON in and out):

- ``POST /admin/v1/ops/{name}``: body = the op's arguments (an object); 200 = the op's result
  (``app.ops``).
- ``GET /admin/v1/status``: what the node is doing (``app.runtime.NodeRuntime.status``): ids, URLs,
  pid and uptime; each peer with its circuit breaker (state, consecutive failures, ``retry_at``), last
  contact and error, deliveries queued, delivered and dead-lettered; queue totals; the last sync.

Errors are ``{"error": <class name>, "message", "field"?, "kind"?, "key"?, …}`` with 400
(ValidationError and its subclasses), 404 (NotFoundError), 409 (ConflictError), 500 (any other
VrmError), 401 (no or wrong token). ``AdminClient`` turns them back into the same exception classes,
so a command fails the same way whether a daemon ran it or the CLI did.
"""

from __future__ import annotations

import enum
import hmac
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from node import errors
from node.errors import AccessRefused, ConflictError, NotFoundError, ValidationError, VrmError

ADMIN_FILE = "admin.json"
PREFIX = "/admin/v1"
MAX_BODY = 1 << 20  # op arguments are a few fields; anything bigger is a mistake
LOGGER = logging.getLogger("vrm.admin")

RunOp = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
Status = Callable[[], Awaitable[dict[str, Any]]]


# -- errors over the wire ----------------------------------------------------------------------------


def error_status(exc: VrmError) -> int:
    if isinstance(exc, ValidationError):
        return 400
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, AccessRefused):  # the person's node said no: not the daemon's failure
        return 403
    return 500


def error_to_json(exc: VrmError) -> dict[str, Any]:
    """The JSON form of ``exc``: its class name, message and the fields needed to raise it again."""
    out: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, errors.IntentSyntaxError):
        out.update(message=exc.message, field=exc.field, word=exc.word, offset=exc.offset)
    elif isinstance(exc, ValidationError):
        out.update(message=exc.message, field=exc.field)
    elif isinstance(exc, NotFoundError):
        out.update(kind=exc.kind, key=exc.key if isinstance(exc.key, (str, int, float)) else str(exc.key))
    for name in ("reason", "detail", "retry"):  # EnvelopeError, RequestSignatureError, WireError, …
        value = getattr(exc, name, None)
        if isinstance(value, enum.Enum):
            value = value.value
        if isinstance(value, (str, int, bool)):
            out[name] = value
    return out


def error_from_json(doc: object) -> VrmError:
    """The exception ``error_to_json`` described (a plain VrmError when the class is unknown here)."""
    if not isinstance(doc, dict):
        return VrmError(f"the node answered with an unreadable error: {doc!r}")
    name, message = str(doc.get("error", "")), str(doc.get("message", ""))
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, VrmError)):
        return VrmError(message or name)
    try:
        if issubclass(cls, errors.IntentSyntaxError):
            return cls(message, str(doc.get("word", "")), int(doc.get("offset", 0)))
        if issubclass(cls, ValidationError):
            return cls(str(doc.get("field", "")), message)
        if issubclass(cls, NotFoundError):
            return cls(str(doc.get("kind", "")), doc.get("key"))
        if issubclass(cls, errors.DeliveryError):
            return cls(str(doc.get("detail", message)), retry=bool(doc.get("retry", True)))
        if "reason" in doc:  # EnvelopeError, RequestSignatureError, WireError: (reason, detail)
            return cls(doc["reason"], str(doc.get("detail", "")))
        return cls(message)
    except (TypeError, ValueError):
        return VrmError(message or name)


# -- the app -----------------------------------------------------------------------------------------


class BearerAuth:
    """ASGI middleware: a request without ``Authorization: Bearer <token>`` gets a 401 (compared in
    constant time, so the token cannot be guessed byte by byte from response times)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = next((v for k, v in scope.get("headers", ()) if k.lower() == b"authorization"), b"")
            if not hmac.compare_digest(given, self._expected):
                body = {"error": "Unauthorized", "message": "the admin API needs the token in admin.json"}
                response = JSONResponse(body, 401, {"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        elif scope["type"] != "lifespan":
            return
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Admin:
    """What the admin handlers use (``request.app.state.admin``)."""

    run_op: RunOp
    status: Status


async def op(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    try:
        args = await _json_args(request)
        result = await request.app.state.admin.run_op(name, args)
    except VrmError as exc:
        return JSONResponse(error_to_json(exc), error_status(exc))
    except Exception:  # a bug must not take the daemon down; the CLI gets a 500
        LOGGER.exception("admin op %s failed", name)
        return JSONResponse({"error": "VrmError", "message": f"internal error running {name}"}, 500)
    return JSONResponse(result)


async def get_status(request: Request) -> JSONResponse:
    return JSONResponse(await request.app.state.admin.status())


# Every route of the admin API: (method, path, handler).
ROUTES = (
    ("POST", PREFIX + "/ops/{name}", op),
    ("GET", PREFIX + "/status", get_status),
)


def create_admin_app(*, token: str, run_op: RunOp, status: Status, ui: ASGIApp | None = None) -> ASGIApp:
    """The admin Starlette app; ``run_op(name, args)`` runs an op, ``status()`` describes the node.
    ``ui``: the person's page (ui.create_ui_app), served at ``/ui/`` behind its own login."""
    app = Starlette(routes=[Route(path, handler, methods=[method]) for method, path, handler in ROUTES])
    app.state.admin = Admin(run_op, status)
    admin = BearerAuth(app, token)
    # -- the page (ui/): /ui/… goes to it, with its own login and sessions instead of the token ----
    if ui is None:
        return admin
    page = ui

    async def with_page(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        await (page if path == "/ui" or path.startswith("/ui/") else admin)(scope, receive, send)

    return with_page


async def _json_args(request: Request) -> dict[str, Any]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ValidationError("args", f"more than {MAX_BODY} bytes")
    if not body:
        return {}
    try:
        args = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError("args", f"not JSON: {exc}") from None
    if not isinstance(args, dict):
        raise ValidationError("args", "must be a JSON object")
    return args


# -- admin.json --------------------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(32)


def admin_file(home_path: str | os.PathLike[str]) -> Path:
    return Path(home_path) / ADMIN_FILE


def write_admin_file(home_path: str | os.PathLike[str], *, url: str, token: str, pid: int) -> Path:
    """Write admin.json (0600 from the first byte, then renamed into place, so no reader ever sees a
    partial file or a readable token)."""
    path = admin_file(home_path)
    tmp = path.with_name(f".{ADMIN_FILE}.{pid}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, json.dumps({"url": url, "token": token, "pid": pid}).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def remove_admin_file(home_path: str | os.PathLike[str], *, token: str) -> None:
    """Remove admin.json if it is still ours (another daemon may have replaced it)."""
    path = admin_file(home_path)
    info = read_admin_file(home_path)
    if info is not None and hmac.compare_digest(info.token, token):
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class AdminInfo:
    url: str
    token: str
    pid: int


def read_admin_file(home_path: str | os.PathLike[str]) -> AdminInfo | None:
    try:
        doc = json.loads(admin_file(home_path).read_text("utf-8"))
        return AdminInfo(url=str(doc["url"]), token=str(doc["token"]), pid=int(doc["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


# -- the client --------------------------------------------------------------------------------------


class AdminClient:
    """Runs ops on the daemon of a home (what the CLI uses while `vrm serve` runs)."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout

    @classmethod
    async def from_home(cls, home: Any, *, timeout: float = 30.0) -> AdminClient | None:
        """The client for the daemon serving ``home`` (a HomeInfo or a path), or None when there is no
        admin.json, its process is gone, or it does not answer as that daemon."""
        info = read_admin_file(getattr(home, "path", home))
        if info is None or not _pid_alive(info.pid):
            return None
        client = cls(info.url, info.token, timeout=timeout)
        try:
            await client.status(timeout=2.0)
        except (httpx.HTTPError, VrmError):  # not listening, or someone else on that port
            return None
        return client

    async def run_op(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", f"/ops/{name}", args, self._timeout)

    async def status(self, *, timeout: float | None = None) -> dict[str, Any]:
        return await self._request("GET", "/status", None, timeout or self._timeout)

    async def _request(
        self, method: str, path: str, args: dict[str, Any] | None, timeout: float
    ) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.request(method, self.url + PREFIX + path, json=args, headers=self._headers)
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if response.status_code == 401:
            raise VrmError("the admin API refused the token in admin.json (is it another node's?)")
        if not response.is_success:
            raise error_from_json(doc if doc is not None else {"message": f"HTTP {response.status_code}"})
        if not isinstance(doc, dict):
            raise VrmError(f"the node answered {method} {path} with something that is not a JSON object")
        return doc
