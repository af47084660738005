"""The open-network defences a running node adds to its federation API (issue 10), in one place.

The running node (app/runtime_wiring.py) calls ``app_options(home, given)`` once and passes the
result to ``federation.app.federation_app``: what the caller gave (tests, `vrm serve` flags) wins;
the rest is filled with the defences' defaults, which need the node's home:

- ``nonces``: replay memory whose floor is persisted in the home, so a captured signed request is
  refused after a restart too (federation/noncecache.py);
- ``scoring``: persisted peer scores, gating and scoring every signed request (federation/scoring.py).

``bounded(app, given)`` then wraps the app in the request limits (federation/limits.py), from
``given["limits"]`` (a ``Limits``) or the defaults; that option is the wrapper's, not the app's; and
those in ``ForwardedClient``, which counts a request a trusted proxy forwarded as its client's. Its
refusals go to ``given["events"]`` (the runtime's one DaemonEvents), like the app's own.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp

from federation.limits import ForwardedClient, Limits, RequestLimits
from federation.noncecache import NonceCache, ReplayFloor
from federation.scoring import PeerScoring
from node.home import HomeInfo
from node.store import AsyncStore, Clock


def app_options(home: HomeInfo, given: dict[str, Any], store: AsyncStore, clock: Clock) -> dict[str, Any]:
    """The federation app's keyword arguments: ``given`` plus the defences it did not set."""
    options = dict(given)
    options.pop("limits", None)
    if "nonces" not in options:
        options["nonces"] = NonceCache(persist=ReplayFloor(home.replay_floor_path))
    if "scoring" not in options:
        options["scoring"] = PeerScoring(store, clock=clock)
    return options


def bounded(app: ASGIApp, given: dict[str, Any]) -> ForwardedClient:
    """``app`` behind the request limits, and those behind the client a trusted proxy forwarded
    (``given["trusted_proxies"]``: limits and budgets count each client, not the proxy)."""
    limited = RequestLimits(app, limits=given.get("limits") or Limits(), events=given.get("events"))
    return ForwardedClient(limited, trusted_proxies=given.get("trusted_proxies", frozenset()))
