"""A fuzz test of the HTTP API (issue 10, item 10): hypothesis over the federation port's ASGI app,
composed as a running node composes it (request limits, signature check, scoring, admission, routes).

Methods, paths, query strings, headers, bodies (raw bytes, random msgpack, batches of real and broken
envelopes) and signatures (none, valid, corrupted) are drawn; every answer must be a 4xx or a 2xx (a
503 only with its reason: ``busy`` or ``vault_locked``), nothing may raise out of the app or be
logged as an error, answers stay small and the process's memory stays bounded. A fixed, derandomized
budget (``EXAMPLES`` requests in batches) keeps it a few seconds in CI.
"""

from __future__ import annotations

import logging
import resource
import secrets
from pathlib import Path

import httpx
import msgpack
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.root import build_core, federation_app_for
from federation import defences, wire
from federation.auth import SignatureAuth
from federation.ratelimit import RateLimiter
from node import envelope
from node.home import init_home
from node.identity import Identity
from node.intents import parse_intent
from node.nodeid import encode_node_id
from node.store import Store
from tests.helpers import InlineStore

EXAMPLES = 300
ME = Identity.from_seed(b"\x42" * 32)
SIGNER = Identity.from_seed(b"\x43" * 32)
HOUR = 3_600_000
PATHS = ["/v1/gossip", "/v1/inbox", "/v1/node", "/v1/hello", "/v1/access", "/v1/access/push", "/", "/v1", "/v2/x"]


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def good_intent() -> bytes:
    return envelope.create(SIGNER, "intent", parse_intent("?flight SFO->JFK").body(()), ttl_ms=HOUR).raw


INTENT = good_intent()
msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=512),
    msgpack_values.map(msgpack.packb),
    st.lists(st.tuples(st.integers(-2, 300), st.sampled_from([INTENT, INTENT[:-3], INTENT + b"\x00", b"\x90"])), max_size=6).map(
        lambda pairs: msgpack.packb([[ttl, raw] for ttl, raw in pairs])
    ),
    st.builds(lambda g, f: wire.encode_access_ask(g, f), st.binary(min_size=32, max_size=32), st.none() | st.lists(st.text(max_size=10), max_size=3)),
    st.builds(lambda u, r: wire.encode_hello(u, r, "x"), st.sampled_from(["http://a.test", "ftp://x", "http://10.0.0.1:1", None]), st.sampled_from(["person", "vendor", "relay"])),
)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST"] * 4 + ["PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]),
        "path": st.sampled_from(PATHS[:6] * 3 + PATHS) | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20).map(lambda p: "/" + p),
        "query": st.none() | st.dictionaries(st.sampled_from(["after", "limit", "x"]), st.sampled_from(["0", "1", "-1", "99999999999999999999", "abc", "", "٣"]), max_size=2),
        "headers": st.dictionaries(
            st.sampled_from(["content-type", "accept", "x-a", "signature", "signature-input", "content-digest"]),
            header_text,
            max_size=3,
        ),
        "body": bodies,
        "sign": st.sampled_from(["none", "valid", "valid", "valid", "corrupt"]),
    }
)


@pytest.fixture(scope="module")
def node_app(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("fuzz")
    home = init_home(root / "home", None, "person")
    store = Store(home.db_path)
    inline = InlineStore(store)
    core = build_core(store, bytes.fromhex(home.public_key), "person")
    options = defences.app_options(home, {"limiter": RateLimiter(1e6, 10**6)}, inline, envelope.now_ms)
    app = federation_app_for(
        inline, core, node_id=encode_node_id(bytes.fromhex(home.public_key)), role="person", **options
    )
    try:
        yield defences.bounded(app, {})
    finally:
        store.close()


async def send_all(app, batch: list[dict]) -> list[tuple[int, bytes]]:
    answers = []
    transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as http:
        for spec in batch:
            request = http.build_request(
                spec["method"], spec["path"], params=spec["query"], headers=spec["headers"], content=spec["body"]
            )
            if spec["sign"] != "none":
                signer = Identity.generate()  # a fresh key each time: scoring would throttle one fuzzing key
                request = next(SignatureAuth(signer, nonce=lambda: secrets.token_urlsafe(16)).auth_flow(request))
                if spec["sign"] == "corrupt":
                    request.headers["signature"] = "vrm=:" + "B" * 86 + "==:"
            with trio.fail_after(10):
                response = await http.send(request)
            answers.append((response.status_code, response.content))
    return answers


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@settings(
    max_examples=EXAMPLES // 3,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(requests, min_size=3, max_size=3))
def test_no_request_gets_a_5xx_a_traceback_or_unbounded_memory(node_app, batch):
    errors = Errors()
    logging.getLogger().addHandler(errors)
    before = max_rss_mb()
    try:
        answers = trio.run(send_all, node_app, batch)
    finally:
        logging.getLogger().removeHandler(errors)
    for status, body in answers:
        assert 200 <= status < 500 or status == 503, (status, body[:200])
        if status == 503:
            assert any(reason in body for reason in (b"busy", b"vault_locked")), body[:200]
        assert len(body) <= 1 << 20
    assert not errors.records, [r.getMessage() for r in errors.records]
    assert max_rss_mb() - before <= 50  # no example grows the process by more than 50 MB
