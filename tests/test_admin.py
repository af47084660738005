"""The admin API: token required, errors cross it as the same exception classes, admin.json lifecycle.

The transport tests serve ``create_admin_app`` on loopback with an op runner that raises the project's
real error classes; the last tests drive a real NodeRuntime and ``serve_forever`` (stopped by SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from functools import partial

import httpx
import pytest
import trio

from federation.admin import (
    ADMIN_FILE,
    AdminClient,
    create_admin_app,
    error_from_json,
    error_to_json,
    read_admin_file,
    remove_admin_file,
    write_admin_file,
)
from app.runtime import NodeRuntime, serve_forever
from federation.server import serve
from node.errors import (
    ConflictError,
    EnvelopeError,
    IntentSyntaxError,
    NotFoundError,
    ValidationError,
    VrmError,
)
from node.home import init_home
from node.keystore import load_identity
from node.reasons import Reason
from node.store import Store
from tests.fednet import FedNet

TOKEN = "t0ken-for-tests"


async def _run_op(name: str, args: dict) -> dict:
    """Answers like the real ops do: results, or the project's own errors."""
    if name == "echo":
        return {"args": args}
    if name == "missing":
        raise NotFoundError("offer", "abc123")
    if name == "twice":
        raise ConflictError("intent abc is already withdrawn")
    if name == "bad":
        raise ValidationError("price_minor", "must be an integer")
    if name == "syntax":
        raise IntentSyntaxError("unknown constraint", "when:soon", 12)
    if name == "envelope":
        raise EnvelopeError(Reason.EXPIRED, "envelope 00ff")
    if name == "bug":
        raise RuntimeError("a bug")
    raise ValidationError("op", f"unknown operation {name!r}")


async def _status() -> dict:
    return {"node_id": "vrm1test", "role": "person"}


async def _start(nursery: trio.Nursery) -> str:
    app = create_admin_app(token=TOKEN, run_op=_run_op, status=_status)
    bound = await nursery.start(partial(serve, app, host="127.0.0.1", port=0))
    return bound.url


async def test_requests_without_the_token_get_401():
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            url = await _start(nursery)
            async with httpx.AsyncClient() as http:
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                    status = await http.get(url + "/admin/v1/status", headers=headers)
                    op = await http.post(url + "/admin/v1/ops/echo", json={}, headers=headers)
                    assert status.status_code == op.status_code == 401
                    assert status.json()["error"] == "Unauthorized"
                ok = await http.get(url + "/admin/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
                assert ok.status_code == 200 and ok.json()["node_id"] == "vrm1test"
            nursery.cancel_scope.cancel()


async def test_client_with_a_wrong_token_is_refused():
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            url = await _start(nursery)
            with pytest.raises(VrmError, match="refused the token"):
                await AdminClient(url, "not-the-token").run_op("echo", {})
            nursery.cancel_scope.cancel()


async def test_errors_come_back_as_the_same_classes():
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            client = AdminClient(await _start(nursery), TOKEN)
            assert await client.run_op("echo", {"ref": "abc", "n": 3}) == {"args": {"ref": "abc", "n": 3}}
            with pytest.raises(NotFoundError) as missing:
                await client.run_op("missing", {})
            assert (missing.value.kind, missing.value.key) == ("offer", "abc123")
            with pytest.raises(ConflictError, match="already withdrawn"):
                await client.run_op("twice", {})
            with pytest.raises(ValidationError) as bad:
                await client.run_op("bad", {})
            assert (bad.value.field, bad.value.message) == ("price_minor", "must be an integer")
            with pytest.raises(IntentSyntaxError) as syntax:
                await client.run_op("syntax", {})
            assert (syntax.value.word, syntax.value.offset) == ("when:soon", 12)
            with pytest.raises(EnvelopeError) as env:
                await client.run_op("envelope", {})
            assert env.value.reason is Reason.EXPIRED
            with pytest.raises(ValidationError, match="unknown operation"):
                await client.run_op("nope", {})
            with pytest.raises(VrmError, match="internal error"):  # a bug is a 500, not a dead daemon
                await client.run_op("bug", {})
            assert (await client.status())["role"] == "person"
            nursery.cancel_scope.cancel()


async def test_status_codes_follow_the_error_class():
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            url = await _start(nursery)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient() as http:
                for name, code in (("bad", 400), ("syntax", 400), ("missing", 404), ("twice", 409), ("envelope", 500)):
                    response = await http.post(f"{url}/admin/v1/ops/{name}", json={}, headers=headers)
                    assert response.status_code == code, name
                not_json = await http.post(f"{url}/admin/v1/ops/echo", content=b"{nope", headers=headers)
                assert not_json.status_code == 400 and not_json.json()["field"] == "args"
                a_list = await http.post(f"{url}/admin/v1/ops/echo", json=[1, 2], headers=headers)
                assert a_list.status_code == 400
            nursery.cancel_scope.cancel()


def test_error_json_round_trip_keeps_class_and_fields():
    for exc in (
        ValidationError("ttl_ms", "too short"),
        NotFoundError("lead", 7),
        ConflictError("already"),
        EnvelopeError(Reason.BAD_SIGNATURE, "x"),
        IntentSyntaxError("bad word", "?", 3),
        VrmError("plain"),
    ):
        back = error_from_json(json.loads(json.dumps(error_to_json(exc))))
        assert type(back) is type(exc) and str(back) == str(exc)
    assert type(error_from_json({"error": "SystemExit", "message": "no"})) is VrmError  # never a non-Vrm class
    assert type(error_from_json("garbage")) is VrmError


def test_admin_file_is_private_and_removed_only_by_its_writer(tmp_path):
    path = write_admin_file(tmp_path, url="http://127.0.0.1:1234", token="abc", pid=os.getpid())
    assert path == tmp_path / ADMIN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    info = read_admin_file(tmp_path)
    assert (info.url, info.token, info.pid) == ("http://127.0.0.1:1234", "abc", os.getpid())
    remove_admin_file(tmp_path, token="another daemon's")
    assert path.exists()
    remove_admin_file(tmp_path, token="abc")
    assert not path.exists() and read_admin_file(tmp_path) is None


async def test_from_home_finds_only_a_live_answering_daemon(tmp_path):
    with trio.fail_after(10):
        assert await AdminClient.from_home(tmp_path) is None  # no admin.json
        (tmp_path / ADMIN_FILE).write_text("{not json")
        assert await AdminClient.from_home(tmp_path) is None
        async with trio.open_nursery() as nursery:
            url = await _start(nursery)
            write_admin_file(tmp_path, url=url, token=TOKEN, pid=os.getpid())
            client = await AdminClient.from_home(tmp_path)
            assert client is not None and (await client.status())["node_id"] == "vrm1test"
            write_admin_file(tmp_path, url=url, token="stale", pid=os.getpid())  # someone else's port now
            assert await AdminClient.from_home(tmp_path) is None
            nursery.cancel_scope.cancel()
        write_admin_file(tmp_path, url=url, token=TOKEN, pid=os.getpid())  # daemon gone, port closed
        assert await AdminClient.from_home(tmp_path) is None
        write_admin_file(tmp_path, url=url, token=TOKEN, pid=_dead_pid())
        assert await AdminClient.from_home(tmp_path) is None


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


async def test_admin_api_of_a_running_node(nursery, tmp_path):
    with trio.fail_after(20):
        net = FedNet(nursery, tmp_path)
        alice = await net.node("alice")
        bob = await net.node("bob")
        info = read_admin_file(alice.home.path)
        assert info.url == alice.runtime.admin_url and info.url.startswith("http://127.0.0.1:")
        assert stat.S_IMODE((tmp_path / "alice" / ADMIN_FILE).stat().st_mode) == 0o600
        async with httpx.AsyncClient() as http:
            refused = await http.post(info.url + "/admin/v1/ops/intent.cast", json={"text": "?flight"})
            assert refused.status_code == 401
            other = {"Authorization": "Bearer " + read_admin_file(bob.home.path).token}
            stolen = await http.get(info.url + "/admin/v1/status", headers=other)
            assert stolen.status_code == 401  # another node's token opens nothing here
        assert await alice.read(lambda s: s.count("intents")) == 0

        await net.peer(alice, bob)
        cast = await alice.op("intent.cast", {"text": "?flight to:JFK", "ttl_ms": 3_600_000, "terms": []})
        status = await (await AdminClient.from_home(alice.home)).status()
        assert (status["node_id"], status["role"], status["url"]) == (alice.node_id, "person", alice.url)
        assert status["admin_url"] == info.url and status["public_url"] == alice.url and status["uptime_s"] >= 0
        assert [p["node_id"] for p in status["peers"]] == [bob.node_id]
        assert status["envelopes"] == {"intent": 1} and status["queues"]["dead"] == 0
        with pytest.raises(NotFoundError):
            await alice.op("intent.withdraw", {"ref": "0123456789"})
        with pytest.raises(ConflictError):
            await alice.op("peers.add", {"url": bob.url})  # already a peer
        assert (await alice.op("intent.withdraw", {"ref": cast["id"]}))["status"] == "withdrawn"

        with pytest.raises(ConflictError, match="already serving"):  # one daemon per home
            await NodeRuntime(alice.home, alice.identity).run()
        await net.stop(alice)
        assert not (tmp_path / "alice" / ADMIN_FILE).exists()
        assert await AdminClient.from_home(alice.home) is None
        assert read_admin_file(bob.home.path) is not None  # the other node is untouched


async def test_serve_forever_stops_gracefully_on_sigterm(tmp_path):
    import gc

    gc.unfreeze()
    with trio.fail_after(20):
        home = init_home(tmp_path / "alice", None, "person")
        ready: list[NodeRuntime] = []
        frozen: list[int] = []

        async with trio.open_nursery() as nursery:
            done = trio.Event()

            async def run() -> None:
                def on_ready(runtime: NodeRuntime) -> None:
                    frozen.append(gc.get_freeze_count())
                    ready.append(runtime)

                await serve_forever(home, load_identity(home.key_path, None), on_ready=on_ready)
                done.set()

            nursery.start_soon(run)
            while not ready:
                await trio.sleep(0.01)
            runtime = ready[0]
            # the started node's objects are out of the collector's generations (settle_heap)
            assert frozen[0] > 10_000
            gc.unfreeze()
            client = await AdminClient.from_home(home)
            assert (await client.status())["url"] == runtime.url
            os.kill(os.getpid(), signal.SIGTERM)
            await done.wait()
        assert not (tmp_path / "alice" / ADMIN_FILE).exists()
        assert await AdminClient.from_home(home) is None
        with Store(home.db_path) as store:  # closed cleanly: it opens and is sound
            assert store.integrity_check() == "ok"
