"""Requests that cost what many items cost (a reconciliation message, a fetch by ids, a batch of
access pushes) spend the source's and the node's budgets too, not only the signer's (PROTOCOL.md
section 12: "a flood with a fresh key per request from one source gets no more through than one key
does"); and the limits of section 13 and 11 are the ones the decoders apply.

The app is composed as a running node composes it (request limits, signature check, scoring,
admission, routes), over ``httpx.ASGITransport`` from one client address.
"""

from __future__ import annotations

import secrets

import httpx
import msgpack
import pytest
import trio

from app.root import build_core, federation_app_for
from federation import catchup, defences, wire
from federation.admission import Admission
from federation.auth import SignatureAuth
from federation.ratelimit import RateLimiter
from node import envelope, reconcile
from node.errors import WireError
from node.home import init_home
from node.identity import Identity
from node.keystore import load_identity
from node.nodeid import encode_node_id
from node.reasons import Reason
from node.seal import seal
from node.store import Store
from tests.helpers import InlineStore


def node_app(tmp_path, role: str, *, frozen: bool = False):
    """The node's app; ``frozen``: its clock stands still, so no budget refills during the test."""
    at = envelope.now_ms()
    clock = (lambda: at) if frozen else envelope.now_ms
    home = init_home(tmp_path / "home", None, role)
    identity = load_identity(home.key_path, None)
    store = Store(home.db_path)
    inline = InlineStore(store)
    core = build_core(store, bytes.fromhex(home.public_key), role, identity=identity)
    options = defences.app_options(home, {"admission": Admission(clock=clock), "clock": clock}, inline, clock)
    node_id = encode_node_id(bytes.fromhex(home.public_key))
    app = federation_app_for(inline, core, node_id=node_id, role=role, **options)
    return defences.bounded(app, {}), identity


async def statuses(app, path: str, body: bytes, signers: list[Identity]) -> list[tuple[int, bytes]]:
    """POST ``body`` to ``path`` once per signer, all from one source address."""
    answers = []
    transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as http:
        for signer in signers:
            request = http.build_request("POST", path, content=body, headers={"content-type": wire.MEDIA_TYPE})
            request = next(SignatureAuth(signer, nonce=lambda: secrets.token_urlsafe(16)).auth_flow(request))
            response = await http.send(request)
            answers.append((response.status_code, response.content))
    return answers


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/reconcile", catchup.encode_request("", reconcile.Reconciler(reconcile.ItemSet([])).initiate())),
        ("/v1/gossip/ids", catchup.encode_ids([i.to_bytes(2, "big") + bytes(30) for i in range(1000)])),
    ],
    ids=["reconcile", "ids"],
)
def test_fresh_keys_from_one_source_get_no_more_costly_requests_through_than_one_key(tmp_path, path, body):
    app, _ = node_app(tmp_path, "person")
    one = Identity.generate()
    same = trio.run(statuses, app, path, body, [one] * 60)
    fresh = trio.run(statuses, app, path, body, [Identity.generate() for _ in range(60)])
    answered = lambda got: sum(1 for status, _ in got if status == 200)  # noqa: E731
    assert 0 < answered(same) < 60 and {s for s, _ in same} == {200, 429}
    # the source's budget (the size of a key's) was spent by the key's requests and then these
    assert answered(fresh) <= answered(same)
    refused = [(s, msgpack.unpackb(b)) for s, b in fresh if s != 200]
    assert refused and all(s == 503 and body["error"] == "busy" for s, body in refused)


def test_a_refused_costly_request_spends_nothing():
    """All or nothing: a signer (or a source) with less than a request's cost left keeps what it has."""
    admission = Admission(clock=lambda: 0, source_burst=300)
    keys = RateLimiter(1.0, 150, clock=lambda: 0)
    assert admission.spend(keys, "k", "s", 100) is None  # 99 more of each: the request paid one
    assert admission.spend(keys, "k", "s", 100) == wire.RATE_LIMITED  # the key has 51 left
    assert keys.available("k") == 51 and admission.sources.available("s") == 201
    assert admission.spend(RateLimiter(1.0, 1000, clock=lambda: 0), "k2", "s", 250) == "busy"
    assert admission.sources.available("s") == 201
    assert admission.spend(keys, "k", "s", 52) is None and keys.available("k") == 0


def test_access_pushes_from_fresh_keys_spend_the_source_budget(tmp_path):
    """Every pushed item opens a seal in the store's thread: past the source's budget items are
    answered ``busy`` (retryable), whichever keys signed them."""
    app, identity = node_app(tmp_path, "vendor", frozen=True)
    grant = b"\x07" * 32
    sealed = seal(identity.public_key, b"\x81\xa1a\xa1b", info=grant)
    body = msgpack.packb([[grant, 1, sealed]] * 900, use_bin_type=True)
    answers = trio.run(statuses, app, "/v1/access/push", body, [Identity.generate() for _ in range(8)])
    reasons = [msgpack.unpackb(b)["reasons"] for s, b in answers if s == 200]
    looked_at = sum(sum(1 for r in rs if r not in (Reason.BUSY, Reason.RATE_LIMITED)) for rs in reasons)
    assert looked_at == 5_000  # the source's burst, not the 7,200 eight fresh keys' budgets allow
    assert sum(rs.count(Reason.BUSY) for rs in reasons) == 400  # the sixth request's rest
    assert [s for s, _ in answers[6:]] == [503, 503]  # then not even a request's token is left


def test_the_longest_canonical_filters_are_accepted():
    """PROTOCOL.md section 13: 64 tokens of up to 100 characters, in any script."""
    latin = catchup.token_filter([f"{i:02d}" + "x" * 98 for i in range(64)])
    cjk = catchup.token_filter([f"{i:02d}" + "漢" * 98 for i in range(64)])
    for text in (latin, cjk):
        assert len(text.split(" ")) == 64
        assert catchup.decode_request(catchup.encode_request(text, b"\x92\x01\x90")) == (text, b"\x92\x01\x90")
    with pytest.raises(WireError):
        catchup.decode_request(catchup.encode_request(latin + " ?zz", b""))  # 65 tokens


def test_an_access_ask_may_name_up_to_32_fields():
    names = [f"field{i}" for i in range(32)]
    ask = wire.decode_access_ask(wire.encode_access_ask(b"\x01" * 32, names))
    assert ask.fields == names
    with pytest.raises(WireError):
        wire.decode_access_ask(wire.encode_access_ask(b"\x01" * 32, names + ["one_more"]))


@pytest.mark.parametrize(
    "message",
    [[True, []], [1, [[[-1, b""], 0, None]]]],
    ids=["version-true", "negative-bound"],
)
def test_a_reconciliation_message_with_a_bad_version_or_bound_is_refused(message):
    from node.reference import codec

    with pytest.raises(WireError):
        reconcile.decode(codec.encode(message))


def test_sets_built_for_filters_not_kept_are_few_for_a_signer_and_for_the_node(tmp_path):
    """A filter the node keeps no set for costs a build the peer chose (a pass over every live
    intent): a signer gets BUILD_BURST of them at once, the node NODE_BUILD_BURST; past that a new
    filter is answered 503 busy with Retry-After, while a filter already kept is still answered."""
    app, _ = node_app(tmp_path, "person", frozen=True)
    msg = reconcile.Reconciler(reconcile.ItemSet([])).initiate()
    request = lambda f: catchup.encode_request(f, msg)  # noqa: E731
    one = Identity.generate()
    first = [trio.run(statuses, app, "/v1/reconcile", request(f), [one])[0][0] for f in ("?a", "?b", "?c", "?a")]
    assert first == [200] * catchup.BUILD_BURST + [503, 200]  # ?c refused; ?a is kept, so answered
    others = [Identity.generate() for _ in range(catchup.NODE_BUILD_BURST)]
    filters = [f"?t{k}" for k in range(catchup.NODE_BUILD_BURST)]
    got = [trio.run(statuses, app, "/v1/reconcile", request(f), [who])[0] for f, who in zip(filters, others)]
    left = catchup.NODE_BUILD_BURST - catchup.BUILD_BURST
    assert [status for status, _ in got] == [200] * left + [503] * (len(got) - left)
    assert msgpack.unpackb(got[-1][1])["error"] == "busy"
