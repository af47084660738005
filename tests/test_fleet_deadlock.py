"""Two writers of one fleet database locking rows in opposite orders: PostgreSQL breaks the deadlock
by rolling one transaction back. That one is raised as ``StoreBusy`` (a ConflictError: nothing of it
was written, run it again), never a raw psycopg error answered 500; the other commits."""

from __future__ import annotations

import threading

from fleet.pgstore import PgStore
from node.errors import ConflictError, StoreBusy


def test_the_transaction_rolled_back_for_a_deadlock_is_store_busy_and_wrote_nothing(pg_url):
    with PgStore(pg_url) as setup, setup.transaction():
        setup.execute("CREATE TABLE counters (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        setup.execute("INSERT INTO counters (k, v) VALUES (1, 0), (2, 0)")
    with PgStore(pg_url) as one, PgStore(pg_url) as two:
        both_hold_one = threading.Barrier(2, timeout=10)
        outcomes: dict[str, BaseException | None] = {}

        def writer(name: str, store: PgStore, first: int, second: int) -> None:
            try:
                with store.transaction():
                    store.execute("UPDATE counters SET v = v + 1 WHERE k = ?", [first])
                    both_hold_one.wait()
                    store.execute("UPDATE counters SET v = v + 10 WHERE k = ?", [second])
                outcomes[name] = None
            except BaseException as exc:  # noqa: BLE001 - asserted below
                outcomes[name] = exc

        threads = [threading.Thread(target=writer, args=("one", one, 1, 2)),
                   threading.Thread(target=writer, args=("two", two, 2, 1))]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
        failed = [exc for exc in outcomes.values() if exc is not None]
        assert len(outcomes) == 2 and len(failed) == 1, outcomes
        assert isinstance(failed[0], StoreBusy) and isinstance(failed[0], ConflictError)
        assert "40P01" in str(failed[0])
        # the winner's two updates, none of the loser's
        values = sorted(r["v"] for r in one.query("SELECT v FROM counters"))
        assert values == [1, 10]

