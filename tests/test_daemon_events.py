"""The daemon's operator log (federation/events.py) on real nodes on loopback: each refused request,
failed pull, failed delivery, breaker change and dead letter is said once, at its level, rate-limited
under a flood, and never with a secret in it; `vrm status` shows the same breakers and queues."""

from __future__ import annotations

import json
import logging
from functools import partial

import httpx
import pytest
import trio
from typer.testing import CliRunner

from cli.main import app
from federation import wire
from federation.auth import SignatureAuth
from federation.breaker import CircuitBreaker
from federation.events import DaemonEvents, RateLimitedLog, clean
from node.identity import Identity
from tests.fednet import FedNet, eventually
from tests.logcheck import FakeClock, lines, logged

TIMEOUT = 30
HOUR = 3_600_000
SECRETS = ("Bearer s3cret-token-value", "session=c00kie-value", "b0dy-secret-marker")


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.DEBUG, logger="vrm")
    return caplog


def assert_no_secret(caplog, *more: str) -> None:
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (*SECRETS, *more):
        assert secret not in text


async def test_refused_requests_are_logged_once_rate_limited_and_without_secrets(net, log):
    clock = FakeClock()
    events = DaemonEvents(interval_s=60.0, clock=clock)
    with trio.fail_after(TIMEOUT):
        air = await net.node("acme", "vendor", events=events)
        mallory = Identity.generate()
        headers = {"Authorization": SECRETS[0], "Cookie": SECRETS[1], "Content-Type": wire.MEDIA_TYPE}
        async with httpx.AsyncClient() as http:
            # a flood of unsigned requests carrying a token, a cookie and a body: one line says it
            for _ in range(25):
                answer = await http.post(air.url + "/v1/gossip", content=SECRETS[2].encode(), headers=headers)
                assert answer.status_code == 401
        [refused] = lines(log, "vrm.federation", ": 401 ")
        assert refused.levelno == logging.WARNING
        message = refused.getMessage()
        assert "POST /v1/gossip" in message and "missing_signature" in message and "from 127.0.0.1" in message

        # a signed but malformed batch: its own line, naming the signer's node id and the reason code
        async with httpx.AsyncClient(auth=SignatureAuth(mallory)) as signed:
            answer = await signed.post(air.url + "/v1/gossip", content=b"\xc1" + SECRETS[2].encode(),
                                       headers={"Content-Type": wire.MEDIA_TYPE, "Cookie": SECRETS[1]})
            assert answer.status_code == 400
            signature = answer.request.headers["Signature"]
        from node.nodeid import encode_node_id

        [malformed] = lines(log, "vrm.federation", ": 400 ")
        assert "malformed_batch" in malformed.getMessage()
        assert encode_node_id(mallory.public_key) in malformed.getMessage()

        # the window ends: the next refusal of that kind says how many were held back
        clock.now += 61
        async with httpx.AsyncClient() as http:
            assert (await http.get(air.url + "/v1/node")).status_code == 401
        [again] = lines(log, "vrm.federation", "24 similar suppressed")
        assert again.getMessage().startswith("refused GET /v1/node: 401")
        assert len(lines(log, "vrm.federation", ": 401 ")) == 2  # the first line, then one more after the window
        assert_no_secret(log, signature.split(":")[1], air.runtime._token)


async def test_failed_deliveries_breaker_dead_letters_and_pulls_are_each_said_once(net, log, tmp_path):
    breaker = partial(CircuitBreaker, threshold=2, cooldown_ms=150)
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice", new_breaker=breaker, max_attempts=3)
        air = await net.node("acme", "vendor")
        await air.op("subscriptions.add", {"text": "?flight"})
        await net.peer(alice, air)
        port = air.port
        await net.stop(air)
        for i in range(3):  # three intents queued for a peer that is down
            await alice.op("intent.cast", {"text": f"?flight SFO->JFK seat {i}", "ttl_ms": HOUR, "terms": []})
        await eventually(lambda: alice.read(lambda s: s.count("outbox_dead") > 0))
        await eventually(logged(log, "vrm.delivery", "dead-lettered"))
        sync = await alice.op("sync", {})
        assert sync["reached"] == 0

        [failed] = lines(log, "vrm.delivery", "failed (will retry)")  # at least three attempts, one line
        assert failed.levelno == logging.WARNING and air.node_id in failed.getMessage()
        [opened] = lines(log, "vrm.delivery", "closed -> open")
        assert opened.levelno == logging.WARNING and "2 consecutive" in opened.getMessage()
        [dead] = lines(log, "vrm.delivery", "dead-lettered")
        assert dead.levelno == logging.ERROR
        [pull] = lines(log, "vrm.sync", "pull from peer")
        assert pull.levelno == logging.WARNING and air.node_id in pull.getMessage()

        # `vrm status` (through the daemon's admin API) shows the open breaker, the failures and the dead
        result = await trio.to_thread.run_sync(
            lambda: CliRunner().invoke(app, ["--home", str(alice.home.path), "status", "--json"])
        )
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["running"] is True and doc["pid"] > 0 and doc["uptime_s"] >= 0
        [peer] = doc["peers"]
        assert peer["breaker"]["state"] in ("open", "half_open") and peer["breaker"]["failures"] >= 2
        assert peer["dead"] >= 1 and peer["failures"] >= 1 and peer["last_error"]
        assert doc["queues"]["dead"] >= 1 and doc["last_sync"]["reached"] == 0
        text = await trio.to_thread.run_sync(
            lambda: CliRunner().invoke(app, ["--home", str(alice.home.path), "status"])
        )
        assert text.exit_code == 0 and "running, pid" in text.stdout and air.node_id in text.stdout

        # the peer comes back: its breaker closes, said at info
        await net.start(air, port=port)
        await alice.op("intent.cast", {"text": "?flight SFO->LAX", "ttl_ms": HOUR, "terms": []})
        await eventually(logged(log, "vrm.delivery", "answers again"))
        [closed] = lines(log, "vrm.delivery", "answers again")
        assert closed.levelno == logging.INFO


def test_status_without_a_daemon_says_so_and_shows_the_store(tmp_path):
    from node.home import init_home

    home = init_home(tmp_path / "home", None)
    result = CliRunner().invoke(app, ["--home", str(home.path), "status", "--json"])
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["running"] is False and doc["peers"] == [] and doc["queues"] == {"outbox": 0, "dead": 0}
    text = CliRunner().invoke(app, ["--home", str(home.path), "status"])
    assert text.exit_code == 3 and "not running" in text.stdout and home.node_id in text.stdout


def test_a_quiet_key_has_its_suppressed_count_said_after_the_window(caplog):
    clock = FakeClock()
    logger = logging.getLogger("vrm.test.events")
    caplog.set_level(logging.INFO, logger="vrm.test.events")
    limited = RateLimitedLog(logger, interval_s=10, clock=clock, max_keys=2)
    assert limited.log(logging.WARNING, "a", "peer a down")
    for _ in range(5):
        assert not limited.log(logging.WARNING, "a", "peer a down")
    # keys beyond max_keys share one window, so a flood of new keys cannot grow memory
    assert limited.log(logging.INFO, "b", "b")
    assert limited.log(logging.INFO, "c", "c") and not limited.log(logging.INFO, "d", "d")
    clock.now += 11
    limited.log(logging.INFO, "e", "something else")
    said = [r.getMessage() for r in caplog.records]
    assert "5 similar suppressed in 10s; last: peer a down" in said
    assert said.count("peer a down") == 1


def test_free_text_loses_credentials_and_control_characters():
    assert clean("GET http://user:pw@host:1/x failed\n\x1b[31m") == "GET http://host:1/x failed\\x0a\\x1b[31m"
    assert len(clean("x" * 1000)) == 160


def test_vrm_serve_logs_refusals_as_json_once_and_never_the_passphrase(tmp_path):
    """The real daemon: `vrm serve --log-format json` at the default level, an encrypted home."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from node.home import init_home

    passphrase = "pass-phrase-never-logged"
    home = init_home(tmp_path / "home", passphrase)
    env = {**os.environ, "VRM_HOME": str(home.path), "VRM_PASSPHRASE": passphrase}
    vrm = Path(sys.executable).with_name("vrm")
    process = subprocess.Popen(
        [str(vrm), "serve", "--port", "0", "--log-format", "json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            word, _, rest = process.stdout.readline().strip().partition(" ")
            url = rest if word == "federation" else None
        assert url, "vrm serve did not start"
        with httpx.Client() as http:
            for _ in range(10):
                headers = {"Authorization": SECRETS[0], "Cookie": SECRETS[1]}
                assert http.post(url + "/v1/gossip", content=SECRETS[2].encode(), headers=headers).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    docs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    refused = [d for d in docs if d["logger"] == "vrm.federation" and ": 401 " in d["message"]]
    assert len(refused) == 1 and refused[0]["level"] == "warning" and isinstance(refused[0]["at"], int)
    for secret in (*SECRETS, passphrase):
        assert secret not in err


async def test_deliveries_dropped_with_a_removed_peer_are_said_dead_lettered(net, log):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        bob = await net.node("bob")
        await net.peer(alice, bob)
        await net.stop(bob)
        await alice.op("intent.cast", {"text": "?flight SFO->JFK", "ttl_ms": HOUR, "terms": []})
        await eventually(lambda: alice.read(lambda s: s.query_one("SELECT 1 FROM outbox WHERE attempts > 0")))
        await alice.op("peers.remove", {"ref": bob.node_id})
        [dead] = await eventually(logged(log, "vrm.delivery", "dead-lettered"))
        assert dead.levelno == logging.ERROR and "peer removed" in dead.getMessage() and bob.node_id in dead.getMessage()
