"""One listener of a fleet: what a `vrm serve` over PostgreSQL runs beside the node's own loops.

- a heartbeat row in ``fleet_listeners`` every ``beat`` seconds (what `vrm fleet status` reads);
- ``LISTEN vrm_subscriptions`` on a connection of its own: a subscription changed on any listener
  invalidates this one's matcher index within the notification's round trip;
- a rescan of the shared outbox every ``beat``: deliveries queued by another listener (or left by a
  dead one, once its claims' lease expires) get a sending loop here too.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import trio

from fleet.pgstore import PgStore

CHANNEL = "vrm_subscriptions"
LOGGER = logging.getLogger("vrm.fleet")


def new_listener_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Listener:
    def __init__(self, pg: PgStore, *, listener_id: str | None = None, beat: float = 1.0) -> None:
        self.pg = pg
        self.id = listener_id or new_listener_id()
        self.beat = beat
        self.notified = 0  # subscription notifications received
        self.reconnects = 0  # LISTEN connections opened again after one broke

    def register(self, now: int, url: str | None) -> None:
        with self.pg.connection() as conn:
            conn.execute(
                "INSERT INTO fleet_listeners (id, host, pid, url, started_at, beat_at) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET url = excluded.url, beat_at = excluded.beat_at, stopped_at = NULL",
                (self.id, socket.gethostname(), os.getpid(), url, now, now),
            )

    def heartbeat(self, now: int) -> None:
        with self.pg.connection() as conn:
            # (fleet_listeners.ingested stays 0: per-listener ingest counts are not kept yet)
            conn.execute("UPDATE fleet_listeners SET beat_at = %s WHERE id = %s", (now, self.id))

    def running_urls(self) -> list[str]:
        """The URLs the fleet's running listeners announced (this one's too)."""
        with self.pg.connection() as conn:
            rows = conn.execute("SELECT url FROM fleet_listeners WHERE stopped_at IS NULL AND url IS NOT NULL").fetchall()
        return [row["url"] for row in rows]

    def stopped(self, now: int) -> None:
        with self.pg.connection() as conn:
            conn.execute("UPDATE fleet_listeners SET stopped_at = %s, beat_at = %s WHERE id = %s", (now, now, self.id))

    async def run(
        self,
        *,
        url: str | None,
        clock: Callable[[], int],
        on_subscriptions: Callable[[], None],
        rescan: Callable[[], Any],
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        await trio.to_thread.run_sync(self.register, clock(), url)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._listen, on_subscriptions)
                task_status.started()
                while True:
                    try:
                        await trio.to_thread.run_sync(self.heartbeat, clock())
                        await rescan()
                    except psycopg.Error as exc:
                        # The database is down or restarting: keep serving (GET /v1/health says
                        # degraded) and beat again when it is back; a listener never dies of it.
                        LOGGER.warning("fleet database unavailable (%s); retrying", type(exc).__name__)
                    await trio.sleep(self.beat)
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await trio.to_thread.run_sync(self.stopped, clock())
                except psycopg.Error:
                    pass

    async def _listen(self, on_change: Callable[[], None], *, task_status: trio.TaskStatus[None]) -> None:
        """The LISTEN loop in a worker thread; it checks for a stop twice a second.

        A LISTEN connection that breaks (the server restarted, a proxy dropped it) is opened again
        every ``beat`` until it is back, and the index is invalidated once it is: a change made
        meanwhile sent its notification to nobody, and the journal has it."""
        stop = threading.Event()
        token = trio.lowlevel.current_trio_token()
        first = await trio.to_thread.run_sync(self._connect_listening)

        def wake() -> None:
            self.notified += 1
            on_change()

        def loop() -> None:
            conn: psycopg.Connection[Any] | None = first
            try:
                while not stop.is_set():
                    if conn is None:
                        try:
                            conn = self._connect_listening()
                        except psycopg.Error:
                            stop.wait(self.beat)
                            continue
                        self.reconnects += 1
                        trio.from_thread.run_sync(on_change, trio_token=token)
                    try:
                        for _ in conn.notifies(timeout=0.5):
                            trio.from_thread.run_sync(wake, trio_token=token)
                    except psycopg.Error:
                        conn.close()
                        conn = None
            except trio.RunFinishedError:
                pass  # the node stopped while we were waking it
            finally:
                if conn is not None:
                    conn.close()

        task_status.started()
        try:
            # Abandoned on cancel: the thread sees ``stop`` within half a second and closes its connection.
            await trio.to_thread.run_sync(loop, abandon_on_cancel=True)
        finally:
            stop.set()

    def _connect_listening(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.pg.url, autocommit=True, connect_timeout=10)
        try:
            conn.execute(f"LISTEN {CHANNEL}")
            conn.execute("SELECT set_config('application_name', %s, false)", (f"vrm-listen {self.id}",))
        except BaseException:
            conn.close()
            raise
        return conn
