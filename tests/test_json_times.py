"""One naming scheme for times in every command's ``--json``: a point in time is an integer number of
milliseconds since the epoch under a key ``at`` or ending in ``_at``; a duration's key ends with its
unit (``_ms``, ``_s``). The test fills a person's and a vendor's node through real daemons on loopback
(records, vault, intent, lead, offer, acceptance, access request, grant, fetch, receipts, blocks,
peers) and walks the JSON of every command that has ``--json``."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
import trio
from typer.testing import CliRunner

from cli.main import app
from node.identity import Identity
from node.nodeid import encode_node_id
from tests.fednet import FedNet, eventually

TIMEOUT = 90
HOUR = 3_600_000
EPOCH_2001, EPOCH_2200 = 978_307_200_000, 7_258_118_400_000  # what an ms timestamp here looks like
OLD_NAMES = {"created", "expires", "received", "ended", "sent", "updated", "decided", "when", "since", "until"}


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


def vrm(home: Any, *args: str, code: int | None = 0) -> Any:
    result = CliRunner().invoke(app, ["--home", str(home.path), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if code is not None:
        assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    return result


async def run(home: Any, *args: str, code: int | None = 0) -> Any:
    return await trio.to_thread.run_sync(partial(vrm, home, *args, code=code))


async def as_json(home: Any, *args: str, code: int | None = 0) -> Any:
    return json.loads((await run(home, *args, "--json", code=code)).stdout)


def time_keys_wrong(doc: Any, path: str = "") -> list[str]:
    """Where ``doc`` breaks the scheme: a timestamp under another key, an old name, a *_at that is
    not an integer."""
    wrong = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            here = f"{path}.{key}"
            is_time_key = key == "at" or key.endswith("_at")
            if key in OLD_NAMES and (value is None or isinstance(value, int) and not isinstance(value, bool)
                                     and value >= EPOCH_2001):  # a count or flag may keep such a name
                wrong.append(f"{here}: old name")
            if isinstance(value, int) and not isinstance(value, bool) and EPOCH_2001 <= value <= EPOCH_2200:
                if not is_time_key:
                    wrong.append(f"{here}: a timestamp under a key that is not *_at")
            if is_time_key and value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                wrong.append(f"{here}: {value!r} is not integer milliseconds")
            wrong += time_keys_wrong(value, here)
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            wrong += time_keys_wrong(value, f"{path}[{index}]")
    return wrong


async def test_every_json_output_names_its_times_one_way(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        acme = await net.node("acme", "vendor")
        await acme.op("subscriptions.add", {"text": "?flight"})
        await net.peer(alice, acme)
        outputs: dict[str, Any] = {}

        async def record(home: Any, *args: str, code: int | None = 0) -> Any:
            doc = await as_json(home, *args, code=code)
            outputs[f"{home.role}: vrm {' '.join(args)}"] = doc
            return doc

        # the person's records
        await run(alice.home, "vendors", "add", "Acme Air", "--handle", "acme", "--node-id", acme.node_id)
        await run(alice.home, "purchases", "add", "acme", "SFO->JFK", "--price", "349USD")
        await run(alice.home, "notes", "add", "acme", "friendly crew", "--tag", "crew")
        await run(alice.home, "rate", "acme", "4")
        await run(alice.home, "recommend", "acme")
        await run(alice.home, "issues", "open", "acme", "bag late")
        await run(alice.home, "issues", "reply", "1", "sorry", "--from", "vendor")
        await run(alice.home, "vault", "set", "email", "alice@example.org")
        spammer = encode_node_id(Identity.generate().public_key)
        await run(alice.home, "block", spammer, "--note", "spam")

        # an intent, its lead at the vendor, an offer, the acceptance
        intent = await record(alice.home, "intent", "?flight SFO->JFK max:400USD", "--expires", "2d")
        [lead] = await eventually(partial(as_json, acme.home, "leads", "list"))
        await record(acme.home, "offer", str(lead["id"]), "--price", "349USD", "--text", "seat 12A", "--expires", "1d")
        [offer] = await eventually(partial(as_json, alice.home, "offers", "list"))
        await record(alice.home, "offers", "accept", offer["id"][:10])

        # consented access: a request, a narrower grant, a fetch, a receipt
        request = await record(
            acme.home, "access", "request", alice.node_id, "--fields", "email", "--purpose", "mail", "--for", "7d"
        )
        await eventually(partial(as_json, alice.home, "grants", "pending"))
        await record(alice.home, "grants", "pending")
        grant = await record(alice.home, "grants", "approve", request["id"][:10], "--uses", "3")
        await eventually(partial(as_json, acme.home, "access", "list"))
        await record(acme.home, "access", "fetch", grant["id"][:10])
        await record(alice.home, "grants", "create", "acme", "--fields", "email", "--purpose", "news", "--for", "1d")

        for home, args in [
            (alice.home, ("id",)),
            (alice.home, ("status",)),
            (alice.home, ("scorecard",)),
            (alice.home, ("search", "crew")),
            (alice.home, ("vendors", "list")),
            (alice.home, ("vendors", "show", "acme")),
            (alice.home, ("purchases", "list")),
            (alice.home, ("notes", "list")),
            (alice.home, ("issues", "list")),
            (alice.home, ("issues", "show", "1")),
            (alice.home, ("vault", "list")),
            (alice.home, ("intents", "list")),
            (alice.home, ("intents", "show", intent["id"][:10])),
            (alice.home, ("offers", "list", "--all")),
            (alice.home, ("offers", "show", offer["id"][:10])),
            (alice.home, ("peers", "list")),
            (alice.home, ("peers", "show", "1")),
            (alice.home, ("blocked",)),
            (alice.home, ("grants", "list", "--all")),
            (alice.home, ("grants", "show", grant["id"][:10])),
            (alice.home, ("grants", "log")),
            (alice.home, ("grants", "verify-log")),
            (alice.home, ("sync",)),
            (alice.home, ("config", "show")),
            (acme.home, ("id",)),
            (acme.home, ("status",)),
            (acme.home, ("subscriptions", "list")),
            (acme.home, ("leads", "list", "--all")),
            (acme.home, ("leads", "show", str(lead["id"]))),
            (acme.home, ("offers", "list", "--all")),
            (acme.home, ("access", "list", "--all")),
            (acme.home, ("access", "show", grant["id"][:10])),
            (acme.home, ("trends",)),
            (acme.home, ("peers", "list")),
        ]:
            await record(home, *args)

        wrong = {name: problems for name, doc in outputs.items() if (problems := time_keys_wrong(doc))}
        assert wrong == {}
        # the walk saw the times it is about (not a vacuous pass)
        seen = json.dumps(outputs)
        for key in ("created_at", "expires_at", "received_at", "bought_at", "blocked_at", "started_at"):
            assert f'"{key}"' in seen, key


def test_the_walker_finds_what_breaks_the_scheme():
    assert time_keys_wrong({"created_at": 1_796_000_000_000, "at": None, "ttl_ms": 60_000}) == []
    assert time_keys_wrong({"expires": 1_796_000_000_000}) == [
        ".expires: old name",
        ".expires: a timestamp under a key that is not *_at",
    ]
    assert time_keys_wrong([{"x": {"stamp": 1_796_000_000_000}}]) == ["[0].x.stamp: a timestamp under a key that is not *_at"]
    assert time_keys_wrong({"received": 3, "ended": False}) == []  # a count and a flag, not times
    assert time_keys_wrong({"ended": None}) == [".ended: old name"]
    assert time_keys_wrong({"seen_at": "2026-12-01"}) == [".seen_at: '2026-12-01' is not integer milliseconds"]
