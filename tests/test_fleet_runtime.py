"""A vendor node served over the fleet's PostgreSQL database: it starts as a listener and beats."""

from __future__ import annotations

import trio

from app.runtime import NodeRuntime
from node.home import init_home
from node.keystore import load_identity


async def test_a_vendor_node_serves_as_a_fleet_listener(pg_url, tmp_path):
    home = init_home(tmp_path / "v", None, "vendor")
    runtime = NodeRuntime(home, load_identity(home.key_path, None), store=pg_url, port=0)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run)
            rows = await runtime.store.run(runtime.store.store.query, "SELECT id, stopped_at FROM fleet_listeners")
            assert rows == [{"id": runtime.listener.id, "stopped_at": None}]
            runtime.stop()
