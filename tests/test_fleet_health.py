"""`GET /v1/health` on the federation port: unsigned, tiny, and honest about the store — what a load
balancer in front of a fleet's listeners polls. Real nodes on loopback; a real PostgreSQL cluster that
is stopped and started again under a running listener."""

from __future__ import annotations

import httpx
import pytest
import trio

from app.runtime import NodeRuntime
from fleet.pgschema import PG_MIGRATIONS
from node.home import init_home
from node.keystore import load_identity
from tests.pgcluster import PgCluster

KEYS = {"status", "store", "listener", "schema"}


async def _get(url: str, method: str = "GET") -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.request(method, f"{url}/v1/health")


async def test_a_node_answers_health_unsigned_and_nothing_else_unsigned(tmp_path):
    home = init_home(tmp_path / "v", None, "vendor")
    runtime = NodeRuntime(home, load_identity(home.key_path, None), port=0)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run)
            answer = await _get(runtime.url)
            assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
            body = answer.json()
            assert set(body) == KEYS  # nothing more: no key, no peer, no path
            assert body == {"status": "ok", "store": "ok", "listener": None, "schema": runtime.store.store.schema_version}
            head = await _get(runtime.url, "HEAD")  # what some balancers send
            assert (head.status_code, head.content) == (200, b"")
            assert (await _get(runtime.url, "POST")).status_code == 405
            async with httpx.AsyncClient(timeout=10) as client:
                unsigned = await client.get(f"{runtime.url}/v1/node")
            assert unsigned.status_code == 401  # the other routes still need a signature
            # a burst of checks is answered from one probe a second, every one of them
            answers: list[int] = []

            async def check() -> None:
                answers.append((await _get(runtime.url)).status_code)

            async with trio.open_nursery() as burst:
                for _ in range(50):
                    burst.start_soon(check)
            assert answers == [200] * 50
            runtime.stop()


def _pg_ctl(pg: PgCluster, *args: str) -> None:
    pg._run(pg.bindir / "pg_ctl", "-D", pg.datadir, *args)


async def test_a_listener_reports_its_database_down_and_back(tmp_path):
    with PgCluster() as pg:
        home = init_home(tmp_path / "v", None, "vendor")
        runtime = NodeRuntime(home, load_identity(home.key_path, None), store=pg.url, port=0)
        with trio.fail_after(90):
            async with trio.open_nursery() as nursery:
                await nursery.start(runtime.run)
                body = (await _get(runtime.url)).json()
                assert body == {"status": "ok", "store": "ok", "listener": runtime.listener.id, "schema": len(PG_MIGRATIONS)}

                await trio.to_thread.run_sync(_pg_ctl, pg, "-m", "fast", "-w", "stop")
                while (answer := await _get(runtime.url)).status_code == 200:
                    await trio.sleep(0.2)
                assert answer.status_code == 503
                assert answer.json() == {"status": "degraded", "store": "unreachable", "listener": runtime.listener.id, "schema": None}

                options = f"-c listen_addresses=127.0.0.1 -c port={pg.port} -c unix_socket_directories={pg.root}"
                await trio.to_thread.run_sync(_pg_ctl, pg, "-o", options, "-l", str(pg.root / "log"), "-w", "start")
                while (answer := await _get(runtime.url)).status_code != 200:
                    await trio.sleep(0.2)
                assert answer.json()["status"] == "ok"  # back in the balancer without a restart
                runtime.stop()


@pytest.mark.parametrize("path", ["/v1/health/", "/v1/healthz", "/v1/Health"])
async def test_only_the_exact_path_is_unsigned(tmp_path, path):
    home = init_home(tmp_path / "v", None, "vendor")
    runtime = NodeRuntime(home, load_identity(home.key_path, None), port=0)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run)
            async with httpx.AsyncClient(timeout=10) as client:
                assert (await client.get(f"{runtime.url}{path}")).status_code == 401
            runtime.stop()
