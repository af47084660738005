"""The federation API: the Starlette app other nodes talk to (every request RFC 9421-signed).

Routes (msgpack bodies, ``application/msgpack``):

- ``POST /v1/gossip``: a batch of ``[ttl, envelope]`` items → 200 ``{"reasons": bin}``, one reason
  byte per item; 400 ``malformed_batch``, 413 ``too_large``, 429 ``rate_limited`` + ``Retry-After``;
- ``GET /v1/gossip?after=&limit=`` and ``GET /v1/inbox?after=&limit=`` → ``{"items", "next"}``;
- ``GET /v1/node`` → ``{"node_id", "role", "name", "protocol"}`` (+ ``"gossip": ["reconcile/1",
  "reconcile-tokens/1", "plumtree/1"]``);
- ``POST /v1/reconcile`` ``{"filter": "" or "?token …", "msg": bin}`` → ``{"msg": bin}`` (node/reconcile.py) and
  ``POST /v1/gossip/ids`` ``{"ids": [bin 32]}`` → a pull page of those held (federation/catchup.py);
- ``GET /v1/peers`` → ``{"peers": [[node_id, url, role], …]}`` to a verified peer (federation/peerexchange.py);
- ``POST /v1/tree`` ``{"graft", "ihave", "prune"}`` → ``{}``: Plumtree's control messages
  (federation/tree.py; 404 on a node that floods);
- ``POST /v1/hello`` ``{"url", "role", "name"}`` → records the signer as an announced peer; answers
  like ``/v1/node``;
- ``POST /v1/access`` ``{"grant": bin 32, "fields": [names] or nil}`` → 200 ``{"grant", "fields",
  "sealed"}`` or 403 ``{"error": "access_refused", "reason": label}``; every answer appends a receipt
  whose copy is queued for the signer; 503 ``vault_locked`` when the node runs without its vault key;
- ``POST /v1/access/push``: an array of ``[grant, version, sealed]`` → 200 ``{"reasons": bin}``;
- ``GET /v1/health``, the one unsigned route (federation/health.py): ok/degraded for a load balancer.

Outside it all, the request limits (federation/limits.py, added by the composition root) bound
every connection's body, time and concurrency. ``SignatureMiddleware`` runs first: every request,
signed or not, spends a token of its source's and of the node's budget before anything else (503
``busy``, so forgeries cost their source too); an unsigned, forged, replayed request, or one signed
for another node's name, never reaches a route (401), and a body over the cap is refused before it
is hashed (413 ``request_too_large``). Then each signer has a token bucket: a request costs one token, a gossip batch one per item; items beyond the
budget are answered ``rate_limited`` (18) and a peer with no token left gets a 429. ``admission``
adds, per pushed item, the budgets of the source, of the node and of never-seen authors (``busy``, 31;
``pow_required``, 32; federation/admission.py); ``scoring`` gates and scores each signer
(federation/scoring.py). Store work runs
through ``AsyncStore.run``; after an ingest ``on_ingest`` gets the peers with new deliveries. Hostile
input gets a 4xx, and an unexpected error a 500 that is logged: no request can take the node down.

The handlers are module-level functions of ``(request, peer)``; what they use is the app's
``Federation`` (``request.app.state.federation``); ``ROUTES`` lists them all.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass, field

import trio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from federation import wire
from federation.admission import Admission, merge
from federation.catchup import CAPABILITIES, Builds, CatchUp
from federation.events import DaemonEvents, RefusalLog, note_signer
from federation import catchup, tree as plumtree_tree
from federation.auth import SignatureMiddleware, signed_body, verified_peer
from federation.health import Health, HealthMiddleware
from federation.limits import source_of
from federation.noncecache import NonceCache
from federation.access import Access
from federation.pages import Pages
from federation.peerexchange import Sharing, peers_answer
from federation.pipeline import Pipeline
from federation.ratelimit import RateLimiter
from federation.scoring import PeerScoring, ScoreMiddleware
from node import reconcile
from node.errors import ConflictError, PassphraseError, VaultError, VrmError, WireError
from node.peers import Peers
from node.reasons import Reason
from node.store import AsyncStore, Clock, Store, wall_clock_ms

LOGGER = logging.getLogger("vrm.federation")
DEFAULT_RATE = 2_000.0  # items per second per peer, sustained
DEFAULT_BURST = 5_000  # items a quiet peer may send at once (five full batches)
_MAX_SEQ = 2**63 - 1
RECONCILE_COST = 100  # rate tokens one reconciliation message costs

Handler = Callable[[Request], Awaitable[Response]]
PeerHandler = Callable[[Request, str], Awaitable[Response]]


def _msgpack(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status, headers, media_type=wire.MEDIA_TYPE)


def _refusal(status: int, error: str, detail: str | None = None, headers: dict[str, str] | None = None) -> Response:
    return _msgpack(wire.error_body(error, detail), status, headers)


def _seq_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) < low:
        raise WireError("malformed", f"{name} must be an integer >= {low}")
    return min(int(text), high)


@dataclass(frozen=True)
class Federation:
    """What the federation handlers use (one per app)."""

    store: AsyncStore
    pipeline: Pipeline
    pages: Pages
    access: Access
    peers: Peers
    me: str  # this node's hex key
    info: bytes  # the encoded /v1/node answer
    limiter: RateLimiter
    admission: Admission  # the budgets of sources, of the node and of never-seen authors
    notify: Callable[[frozenset[str]], None]
    on_hello: Callable[[str], Awaitable[None]] | None  # awaited with the signer: it verifies its claimed URL
    catchup: CatchUp | None = None  # reconciliation (None: /v1/reconcile and /v1/gossip/ids answer 404)
    builds: Builds = field(default_factory=Builds)  # how many sets peers may have built for filters not kept
    tree: plumtree_tree.TreeRelay | None = None  # Plumtree (None: /v1/tree answers 404; peers get floods)
    sharing: Sharing | None = None  # peer exchange (None: GET /v1/peers answers 404)
    clock: Clock = wall_clock_ms


def _federation(request: Request) -> Federation:
    return request.app.state.federation


def _guarded(handler: PeerHandler) -> Handler:
    """Rate-limit the signer, map refusals to 4xx and any surprise to a logged 500. The source's and
    the node's budgets were spent by ``SignatureMiddleware``, before the signature was checked."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        limiter = _federation(request).limiter
        peer = verified_peer(request).key.hex()
        note_signer(request.scope, peer)  # the refusal log names the signer
        if limiter.take(peer, 1) == 0:
            return _refusal(429, wire.RATE_LIMITED, headers={"Retry-After": limiter.retry_after_header(peer)})
        try:
            return await handler(request, peer)
        except WireError as exc:
            if exc.reason == "too_large":
                return _refusal(413, wire.TOO_LARGE, exc.detail)
            return _refusal(400, wire.MALFORMED_REQUEST, exc.detail)
        except VrmError as exc:  # ValidationError and friends from the domain: the request's fault
            return _refusal(400, wire.MALFORMED_REQUEST, str(exc))
        except Exception:
            LOGGER.exception("federation request %s %s failed", request.method, request.url.path)
            return _refusal(500, "internal_error")

    return endpoint


def _over_budget(request: Request, peer: str, refused: str) -> Response:
    """The answer to a request ``Admission.spend`` refused: 429 for the signer's budget, 503 ``busy``
    for the source's or the node's (both retryable, with Retry-After)."""
    fed = _federation(request)
    if refused == wire.RATE_LIMITED:
        return _refusal(429, wire.RATE_LIMITED, headers={"Retry-After": fed.limiter.retry_after_header(peer)})
    retry = fed.admission.retry_after_header(source_of(request.scope))
    return _refusal(503, "busy", "this node's budgets are spent", {"Retry-After": retry})


async def push(request: Request, peer: str) -> Response:
    fed = _federation(request)
    try:
        items = fed.pipeline.decode_push(signed_body(request))
    except WireError as exc:
        if exc.reason == "too_large":
            return _refusal(413, wire.TOO_LARGE, exc.detail)
        return _refusal(400, wire.MALFORMED_BATCH, exc.detail)
    verdicts = await fed.admission.judge(fed.store, fed.limiter, peer, source_of(request.scope), items)
    admitted = verdicts.count(0) == len(verdicts)  # the common case: no per-item filter
    granted = items if admitted else items.admitted(verdicts)
    reasons = b""
    if granted:
        # The native pass runs on a worker thread of its own, outside the store's: this batch is
        # verified while the store's thread commits the one before (federation/pipeline.py).
        prepared = await trio.to_thread.run_sync(fed.pipeline.prepare, granted)
        try:
            ingested = await fed.store.run(fed.pipeline.commit, prepared, peer)
        except ConflictError:  # a fleet's listeners raced past the retries: nothing stored, so later
            return _refusal(503, "busy", "the store was busy with the same envelopes", {"Retry-After": "1"})
        reasons = ingested.reasons
        if ingested.peers:
            fed.notify(ingested.peers)
    return _msgpack(wire.encode_reasons(merge(verdicts, reasons)))


async def _pull(request: Request, peer: str, *, inbox: bool) -> Response:
    fed = _federation(request)
    after = _seq_param(request, "after", 0, 0, _MAX_SEQ)
    limit = _seq_param(request, "limit", wire.MAX_ITEMS, 1, wire.MAX_ITEMS)
    page = await fed.store.run(fed.pages.page, after, limit, recipient=peer if inbox else None)
    return _msgpack(wire.encode_pull([(i.ttl, i.envelope) for i in page.items], page.next))


async def gossip_pull(request: Request, peer: str) -> Response:
    return await _pull(request, peer, inbox=False)


async def inbox_pull(request: Request, peer: str) -> Response:
    return await _pull(request, peer, inbox=True)


async def node(request: Request, peer: str) -> Response:
    return _msgpack(_federation(request).info)


async def hello(request: Request, peer: str) -> Response:
    fed = _federation(request)
    said = wire.decode_hello(signed_body(request))
    if peer == fed.me:
        raise WireError("malformed", "a node does not greet itself")

    def announce(s: Store) -> None:
        fed.peers.announce(public_key=bytes.fromhex(peer), url=said.url, role=said.role, name=said.name)

    await fed.store.run(announce, fed.store.store)
    if fed.on_hello is not None:  # answered once its own claimed URL is checked, or its wait is over
        await fed.on_hello(peer)
    return _msgpack(fed.info)


async def access(request: Request, peer: str) -> Response:
    fed = _federation(request)
    ask = wire.decode_access_ask(signed_body(request))
    try:
        answered = await fed.store.run(
            fed.access.answer_access, peer, ask.grant, ask.fields, source_of(request.scope)
        )
    except (PassphraseError, VaultError):  # nothing was spent nor receipted: the transaction rolled back
        LOGGER.warning("a fetch could not be answered: the vault is locked or unreadable")
        return _refusal(503, wire.VAULT_LOCKED, "this node cannot open its vault")
    if answered.peers:
        fed.notify(answered.peers)
    if answered.sealed is None:
        return _msgpack(wire.access_refusal_body(answered.outcome), 403)
    return _msgpack(wire.encode_access_answer(ask.grant, answered.fields, answered.sealed))


async def access_push(request: Request, peer: str) -> Response:
    fed = _federation(request)
    items = wire.decode_push_batch(signed_body(request))
    # an item opens a seal in the store's thread: it spends the source's and the node's budgets too
    admitted, allowed = fed.admission.allowed(fed.limiter, peer, source_of(request.scope), len(items))
    reasons = b""
    if allowed:
        reasons = await fed.store.run(fed.access.receive_pushes, peer, items[:allowed])
    reasons += bytes([Reason.BUSY]) * (admitted - allowed) + bytes([Reason.RATE_LIMITED]) * (len(items) - admitted)
    return _msgpack(wire.encode_reasons(reasons))


async def reconcile_range(request: Request, peer: str) -> Response:
    """One reconciliation message answered statelessly over this node's set (PROTOCOL.md section 13)."""
    fed = _federation(request)
    if fed.catchup is None:
        return _refusal(404, "not_found")
    filter_text, msg = catchup.decode_request(signed_body(request))
    # a message reads the whole set (up to catchup.MAX_SET rows): it costs what RECONCILE_COST pushed
    # items cost, of the signer's, the source's and the node's budgets, so neither one peer nor fresh
    # keys from one source can keep the store busy with cheap requests
    # a filter the node keeps no set for costs a build, which the peer chooses: few are allowed
    build = not fed.catchup.kept(filter_text)
    wait = fed.builds.refused(peer) if build else None
    if wait is not None:
        return _refusal(503, "busy", "this node builds few new reconciliation sets a second", {"Retry-After": wait})
    refused = fed.admission.spend(fed.limiter, peer, source_of(request.scope), RECONCILE_COST)
    if refused is not None:
        return _over_budget(request, peer, refused)
    if build:
        fed.builds.spend(peer)
    items = await fed.store.run(fed.catchup.items, filter_text)
    # pure CPU over up to MAX_SET ids (a message of thousands of ranges: ~0.15 s): off the event loop
    answer = await trio.to_thread.run_sync(reconcile.Reconciler(items).reconcile, msg)
    assert answer is not None  # a responder always answers
    return _msgpack(catchup.encode_answer(answer))


async def gossip_by_ids(request: Request, peer: str) -> Response:
    """The envelopes of the set among the ids asked (what reconciliation said the asker needs), as a
    pull page whose ``next`` is 0."""
    fed = _federation(request)
    if fed.catchup is None:
        return _refusal(404, "not_found")
    ids = catchup.decode_ids(signed_body(request))
    refused = fed.admission.spend(fed.limiter, peer, source_of(request.scope), len(ids))  # an id costs what an item does
    if refused is not None:
        return _over_budget(request, peer, refused)
    found = await fed.store.run(fed.catchup.by_ids, ids)
    return _msgpack(wire.encode_pull(found, 0))


# Every route of the federation API: (method, path, handler of (request, signer's hex key)).
ROUTES: tuple[tuple[str, str, PeerHandler], ...] = (
    ("POST", "/v1/access", access),
    ("POST", "/v1/access/push", access_push),
    ("POST", "/v1/gossip", push),
    ("GET", "/v1/gossip", gossip_pull),
    ("GET", "/v1/inbox", inbox_pull),
    ("GET", "/v1/node", node),
    ("POST", "/v1/hello", hello),
    ("POST", "/v1/reconcile", reconcile_range),
    ("POST", "/v1/gossip/ids", gossip_by_ids),
    ("GET", "/v1/peers", peers_answer),  # federation/peerexchange.py
    ("POST", plumtree_tree.PATH, plumtree_tree.tree),
)


def federation_app(
    *,
    store: AsyncStore,
    pipeline: Pipeline,
    pages: Pages,
    access: Access,
    peers: Peers,
    node_id: str,
    role: str,
    name: str = "",
    on_ingest: Callable[[frozenset[str]], None] | None = None,
    on_hello: Callable[[str], Awaitable[None]] | None = None,
    limiter: RateLimiter | None = None,
    nonces: NonceCache | None = None,
    signature_clock: Callable[[], float] = time.time,
    accept_key: Callable[[bytes], bool] | None = None,
    max_body: int = wire.MAX_BATCH_BYTES,
    clock: Clock = wall_clock_ms,
    admission: Admission | None = None,
    scoring: PeerScoring | None = None,
    trusted_proxies: frozenset[str] = frozenset(),
    authorities: Container[str] | None = None,
    catchup: CatchUp | None = None,
    events: DaemonEvents | None = None,
    sharing: Sharing | None = None,
    listener_id: str | None = None,
    tree: plumtree_tree.TreeRelay | None = None,
) -> Starlette:
    """The federation API of the node ``node_id`` (its ``role`` and display ``name``).

    ``limiter`` defaults to DEFAULT_RATE items/s with DEFAULT_BURST per peer; ``signature_clock`` is
    the Unix-seconds clock of signature checks; ``peers`` records announced peers (stamped by its
    clock); ``accept_key`` may restrict who can sign.
    ``on_ingest`` gets the peers given new deliveries by a push; ``on_hello`` is awaited with the signer's
    hex key after it announced itself (it verifies that peer's claimed URL). ``admission`` adds source,
    global and stranger budgets;
    ``scoring`` (clocked by ``clock``, ms) gates and scores each signer; ``trusted_proxies`` (see
    ``SignatureMiddleware``) are the reverse proxies whose forwarded host and scheme are believed;
    ``authorities`` this node's own ``@authority`` values (None: not checked; see ``SignatureMiddleware``).
    ``catchup`` serves reconciliation (advertised as ``"gossip": ["reconcile/1", "reconcile-tokens/1"]``
    in ``/v1/node``); ``sharing`` serves ``GET /v1/peers`` (peer exchange); ``tree`` Plumtree's
    ``POST /v1/tree`` (advertised as ``"plumtree/1"``).
    ``events``: where every refused request is logged, rate-limited (federation/events.py).
    ``listener_id`` names this fleet listener in ``GET /v1/health`` (answered before the signature check).
    """
    gossip = (CAPABILITIES if catchup is not None else ()) + ((plumtree_tree.CAPABILITY,) if tree is not None else ())
    admission = admission if admission is not None else Admission()
    fed = Federation(
        store=store,
        pipeline=pipeline,
        pages=pages,
        access=access,
        peers=peers,
        me=pipeline.me,
        info=admission.advertise(
            wire.encode_node_info(node_id, role, name, gossip=gossip)
        ),
        limiter=limiter if limiter is not None else RateLimiter(DEFAULT_RATE, DEFAULT_BURST),
        admission=admission,
        notify=on_ingest if on_ingest is not None else (lambda peers: None),
        on_hello=on_hello,
        catchup=catchup,
        builds=Builds(clock=clock),
        sharing=sharing,
        clock=clock,
        tree=tree,
    )
    routes = [Route(path, _guarded(handler), methods=[method]) for method, path, handler in ROUTES]
    nonces = nonces if nonces is not None else NonceCache()
    signed = Middleware(
        SignatureMiddleware, nonces=nonces, clock=signature_clock, accept_key=accept_key, max_body=max_body,
        trusted_proxies=trusted_proxies, authorities=authorities, admission=admission,
    )
    # scoring sits inside the signature check (it needs the signer)
    scored = [Middleware(ScoreMiddleware, scoring=scoring, clock=clock)] if scoring is not None else []
    # health outermost (unsigned, never logged as a refusal); then the refusal log, so it sees the
    # signature check's 401s and 413s too
    health = Middleware(HealthMiddleware, health=Health(store, listener_id=listener_id))
    logged = Middleware(RefusalLog, events=events)
    app = Starlette(routes=routes, middleware=[health, logged, signed, *scored])
    app.state.federation = fed
    return app
