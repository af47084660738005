"""The store: durability settings, transactions, in-place migrations, a killed writer, one async writer."""

from __future__ import annotations

import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trio

from node.errors import StoreError
from node.records import Records
from node.search import search
from node.store import MIGRATIONS, AsyncStore, Store, joined

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "node.db", clock=lambda: 1_000) as s:
        yield s


def _vendor(i: int) -> dict:
    return {"handle": f"@v{i}", "name": f"Vendor {i}", "started_at": 1, "created_at": 1, "updated_at": 1}


def test_durability_settings(store):
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2  # FULL
    assert store.pragma("foreign_keys") == 1
    assert store.pragma("wal_autocheckpoint") == 10_000
    assert store.pragma("temp_store") == 2  # MEMORY: statement journals never spill to a temp file
    assert store.schema_version == len(MIGRATIONS)


def test_the_wal_is_not_checkpointed_before_10000_pages_and_a_truncate_empties_it(store):
    wal = store.path.with_name(store.path.name + "-wal")
    page = store.pragma("page_size")
    for batch in range(6):  # ~2,400 pages of rows over six commits: past the default's 1,000
        with store.transaction():
            store.execute_many(
                "INSERT INTO vendors (handle, name, started_at, created_at, updated_at) VALUES (?, ?, 1, 1, 1)",
                [(f"@v{batch}-{i}", "x" * 1500) for i in range(1500)],
            )
    assert wal.stat().st_size > 2_000 * page  # no checkpoint copied it back and restarted the WAL
    assert store.count("vendors") == 9_000
    store.checkpoint_truncate()
    assert wal.stat().st_size == 0


def test_a_failed_nested_block_of_thousands_of_pages_is_undone_and_the_outer_block_kept(store):
    """The journal that undoes a savepoint is held in memory (far past SQLite's 64 KB spill point)."""
    with store.transaction():
        store.insert("vendors", _vendor(0))
        with pytest.raises(sqlite3.IntegrityError), store.transaction():
            store.execute_many(
                "INSERT INTO vendors (handle, name, started_at, created_at, updated_at) VALUES (?, ?, 1, 1, 1)",
                [(f"@v{i}", "x" * 1500) for i in range(1, 3000)],  # ~1,100 pages
            )
            store.insert("vendors", _vendor(0))  # already held: the nested block fails
    assert store.count("vendors") == 1
    assert store.query_one("SELECT handle FROM vendors")["handle"] == "@v0"


def test_writes_outside_a_transaction_are_refused(store):
    with pytest.raises(StoreError):
        store.insert("vendors", _vendor(1))
    with pytest.raises(StoreError):
        store.execute("DELETE FROM vendors")
    assert store.count("vendors") == 0


def test_execute_many_runs_an_insert_as_a_few_statements_with_the_rows_in_order(store):
    """A plain INSERT over many rows runs as multi-row INSERTs (power-of-two chunks: a few steps, a
    few cached shapes) that keep the rows' order and their conflict rules: ON CONFLICT DO NOTHING counts
    only new rows, an upsert's WHERE still decides, a duplicate key fails the whole batch; any other
    statement runs row by row."""
    from node.store import values_insert

    with store.transaction():
        store.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER NOT NULL)")
    insert = "INSERT INTO items (name, n) VALUES (?, ?)"
    assert values_insert(insert) == ("INSERT INTO items (name, n)", 2, "")
    assert values_insert("UPDATE items SET n = ? WHERE name = ?") is None
    assert values_insert("INSERT INTO items (name, n) VALUES (?, 1)") is None  # a literal: row by row
    assert values_insert(insert + " ON CONFLICT (name) DO UPDATE SET n = ?") is None  # binds in its tail
    for count in (1, 7, 512, 1000, 1537):
        with store.transaction():
            store.execute("DELETE FROM items")
            rows = [(f"{count}-{i}", i) for i in range(count)]
            assert store.execute_many(insert, rows) == count
        assert [(r["name"], r["n"]) for r in store.query("SELECT name, n FROM items ORDER BY id")] == rows
    with store.transaction():
        skip = insert + " ON CONFLICT (name) DO NOTHING"
        assert store.execute_many(skip, [("1537-0", 9), ("new", 1), ("new", 2)]) == 1
    upsert = insert + " ON CONFLICT (name) DO UPDATE SET n = excluded.n WHERE excluded.n > items.n"
    with store.transaction():
        assert store.execute_many(upsert, [("1537-5", 4), ("1537-6", 60), ("other", 1)]) == 2
    assert [store.query_one("SELECT n FROM items WHERE name = ?", [k])["n"] for k in ("1537-5", "1537-6")] == [5, 60]
    before = store.count("items")
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.execute_many(insert, [("fresh", 1)] * 2)
    assert store.count("items") == before  # the failed batch left nothing
    with store.transaction():
        assert store.execute_many("UPDATE items SET n = ? WHERE name = ?", [(7, "new"), (8, "other")]) == 2


def test_insert_many_returns_the_keys_in_order_and_checks_its_rows(store):
    with pytest.raises(StoreError):
        store.insert_many("vendors", [_vendor(1)])  # outside a transaction
    with store.transaction():
        first = store.insert("vendors", _vendor(0))
        keys = store.insert_many("vendors", [_vendor(i) for i in range(1, 4)])
        assert store.insert_many("vendors", []) == []
    assert keys == [first + 1, first + 2, first + 3]
    assert [r["handle"] for r in store.query("SELECT handle FROM vendors WHERE id IN (?, ?, ?) ORDER BY id", keys)] == [
        "@v1",
        "@v2",
        "@v3",
    ]
    mixed = [_vendor(5), {"name": "Other", **_vendor(6)}]  # same columns, another order
    with pytest.raises(StoreError), store.transaction():
        store.insert_many("vendors", mixed)
    assert store.count("vendors") == 4


def test_a_failed_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.insert("vendors", _vendor(1))
            store.insert("vendors", _vendor(2))
            raise RuntimeError("boom")
    assert store.count("vendors") == 0
    assert store.query("SELECT * FROM search_index") == []  # the triggers' writes went too


def test_nested_transactions_are_savepoints(store):
    with store.transaction():
        store.insert("vendors", _vendor(1))
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.insert("vendors", _vendor(2))
                raise RuntimeError("inner")
    assert [r["handle"] for r in store.query("SELECT handle FROM vendors")] == ["@v1"]


def test_a_joined_block_is_part_of_the_callers_transaction_or_one_of_its_own(store):
    with joined(store):  # alone: a transaction of its own, committed
        store.insert("vendors", _vendor(1))
    with pytest.raises(RuntimeError):
        with store.transaction():
            with joined(store):  # no savepoint: the caller's rollback takes its rows too
                store.insert("vendors", _vendor(2))
            raise RuntimeError("caller")
    with pytest.raises(RuntimeError):
        with joined(store):
            store.insert("vendors", _vendor(3))
            raise RuntimeError("its own")
    # A caller that goes on after an error keeps what the block wrote: the rollback is the caller's.
    with store.transaction():
        with pytest.raises(RuntimeError):
            with joined(store):
                store.insert("vendors", _vendor(4))
                raise RuntimeError("kept")
    assert [r["handle"] for r in store.query("SELECT handle FROM vendors ORDER BY handle")] == ["@v1", "@v4"]


def test_a_select_reads_rows_as_dicts_and_other_statements_are_refused_by_query(store):
    with store.transaction():
        store.insert("vendors", _vendor(1))
        assert store.query("  select handle, 1 AS one FROM vendors WHERE handle = ?", ["@v1"]) == [
            {"handle": "@v1", "one": 1}
        ]
    with pytest.raises(ValueError):  # sqlite-utils' guard: query() is for reads
        store.query("DELETE FROM vendors")
    assert store.count("vendors") == 1


def test_foreign_keys_are_enforced(store):
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError):
        with store.transaction():
            store.insert("notes", {"vendor_id": 99, "text": "orphan", "at": 1})
    assert store.count("notes") == 0


def test_an_older_home_upgrades_in_place(tmp_path):
    path = tmp_path / "node.db"
    with Store(path, migrations=MIGRATIONS[:1]) as old:
        assert old.schema_version == 1
        assert "search_index" not in old.table_names() and "vault" not in old.table_names()
        records = Records(old, clock=lambda: 5)
        vendor = records.add_vendor("Acme Air", notes="the blue airline")
        records.add_note(vendor.id, "lost my luggage twice")
    with Store(path) as new:
        assert new.schema_version == len(MIGRATIONS)
        assert {"search_index", "vault"} <= set(new.table_names())
        assert [v.name for v in Records(new).list_vendors()] == ["Acme Air"]
        # rows written before the search index existed are searchable after the upgrade
        assert {h.kind for h in search(new, "luggage OR blue")} == {"note", "vendor"}
        assert [r["version"] for r in new.query("SELECT version FROM schema_migrations")] == list(
            range(1, len(MIGRATIONS) + 1)
        )


def test_a_store_newer_than_the_program_is_refused_untouched(tmp_path):
    path = tmp_path / "node.db"
    with Store(path) as s, s.transaction():
        s.insert("vendors", _vendor(1))
    with pytest.raises(StoreError, match="newer"):
        Store(path, migrations=MIGRATIONS[:1])
    with Store(path) as s:
        assert s.count("vendors") == 1


def test_a_failing_migration_is_rolled_back_whole(tmp_path):
    path = tmp_path / "node.db"
    broken = (*MIGRATIONS, (len(MIGRATIONS) + 1, "broken", ("CREATE TABLE half_done (x)", "THIS IS NOT SQL")))
    with pytest.raises(StoreError):
        Store(path, migrations=broken)
    with Store(path) as s:
        assert s.schema_version == len(MIGRATIONS)
        assert "half_done" not in s.table_names()


def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "node.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(path)


# -- a writer killed at a random moment --------------------------------------------------------------------


def _check_consistent(path: Path, acknowledged: set[int]) -> int:
    with Store(path) as s:
        assert s.integrity_check() == "ok"
        with s.transaction():
            s.execute("INSERT INTO search_index (search_index) VALUES ('integrity-check')")
        handles = {r["handle"] for r in s.query("SELECT handle FROM vendors")}
        notes_per_vendor = s.query(
            "SELECT v.handle, count(n.id) AS n FROM vendors v "
            "LEFT JOIN notes n ON n.vendor_id = v.id GROUP BY v.id"
        )
        assert all(r["n"] == 3 for r in notes_per_vendor), "a transaction was partly applied"
        assert s.count("notes") == 3 * len(handles)
        indexed = {
            r["kind"]: r["n"] for r in s.query("SELECT kind, count(*) AS n FROM search_index GROUP BY kind")
        }
        assert indexed.get("vendor", 0) == len(handles) and indexed.get("note", 0) == s.count("notes")
        lost = {i for i in acknowledged if f"@w-{i}" not in handles}
        assert not lost, f"acknowledged writes lost: {sorted(lost)[:10]}"
        # committed transactions are numbered 0..n-1 with no gaps
        assert handles == {f"@w-{i}" for i in range(len(handles))}
        return len(handles)


def test_a_writer_killed_at_random_leaves_a_consistent_store(tmp_path):
    path = tmp_path / "node.db"
    Store(path).close()
    rng = random.Random()
    acknowledged: set[int] = set()
    for _round in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests._writer_proc", str(path)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(stream=proc.stdout, lines=lines):
            for line in stream:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        wanted = rng.randint(5, 40)
        seen = 0
        try:
            while seen < wanted:
                line = lines.get(timeout=60)
                assert line is not None, f"writer died: {proc.stderr.read()}"
                acknowledged.add(int(line))
                seen += 1
            time.sleep(rng.uniform(0, 0.05))  # somewhere inside a later transaction, most likely
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        reader.join(timeout=30)
        while (line := lines.get_nowait()) is not None:  # acknowledged just before the kill
            acknowledged.add(int(line))
        committed = _check_consistent(path, acknowledged)
        assert committed >= len(acknowledged)


# -- one writer for trio -----------------------------------------------------------------------------------


async def test_async_store_serialises_calls_in_a_worker_thread(tmp_path):
    with trio.fail_after(30):
        astore = await AsyncStore.open(tmp_path / "node.db")
        active = 0
        most = 0
        lock = threading.Lock()

        def increment(store: Store) -> None:
            nonlocal active, most
            with lock:
                active += 1
                most = max(most, active)
            try:
                with store.transaction():
                    n = store.count("vendors")
                    time.sleep(0.005)  # widen the window a second writer would need
                    store.insert("vendors", _vendor(n))
            finally:
                with lock:
                    active -= 1

        async with astore:
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(astore.run, increment, astore.store)
            assert await astore.run(astore.store.count, "vendors") == 20
            assert most == 1


async def test_async_store_keeps_the_event_loop_free(tmp_path):
    with trio.fail_after(30):
        async with await AsyncStore.open(tmp_path / "node.db") as astore:
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await trio.sleep(0.01)
                    ticks += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                await astore.run(time.sleep, 0.3)  # a slow disk
                nursery.cancel_scope.cancel()
            assert ticks >= 10


def test_a_transaction_that_reads_then_writes_survives_another_connection_committing_meanwhile(tmp_path):
    # The CLI beside a running daemon: two connections to one file. A deferred BEGIN that had read
    # failed at its first write ("database is locked", at once) when the other committed in between.
    with Store(tmp_path / "node.db") as first, Store(tmp_path / "node.db") as second:
        errors: list[BaseException] = []

        def other_writer() -> None:
            try:
                with second.transaction():
                    second.insert("vendors", _vendor(2))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        with first.transaction():
            assert first.count("vendors") == 0
            writer = threading.Thread(target=other_writer)
            writer.start()
            time.sleep(0.3)  # the other connection waits for the lock (it committed here before)
            first.insert("vendors", _vendor(1))
        writer.join(10)
        assert errors == [] and first.count("vendors") == 2


def test_an_in_list_is_padded_to_a_power_of_two_with_its_last_value():
    from node.store import in_list

    assert in_list([b"a"]) == ("(?)", [b"a"])
    assert in_list([1, 2, 3]) == ("(?, ?, ?, ?)", [1, 2, 3, 3])  # IN ignores the repeat
    marks, params = in_list(list(range(1000)))
    assert marks.count("?") == len(params) == 1024 and params[1000:] == [999] * 24
    with pytest.raises(ValueError):
        in_list([])


def test_the_leads_migration_keeps_every_lead_and_what_still_refuses_bad_rows(tmp_path):
    """Migration 16 rebuilds ``leads`` without its hex and JSON CHECKs (each row is the native pass's or a
    verified intent's): the leads, their ids and states stay; a repeated intent is still one lead, an
    unknown status or reason still refused, and new leads get ids after the old."""
    from node import envelope
    from node.identity import Identity
    from node.intents import parse_intent
    from node.leads import Leads

    author = Identity.from_seed(bytes([9]) * 32)
    made = [envelope.create(author, "intent", parse_intent(f"?flight n{k}").body([]), created=1_000, ttl_ms=10**9)
            for k in range(4)]  # fmt: skip
    path = tmp_path / "node.db"
    with Store(path, migrations=MIGRATIONS[:15], clock=lambda: 2_000) as old:
        leads = Leads(old, clock=lambda: 2_000)
        assert leads.add_many([(made[0], [1]), (made[1], [2, 1]), (made[2], [3])]) == 3
        with old.transaction():
            old.execute("UPDATE leads SET status = 'withdrawn', withdrawn_at = 3000, closed_reason = 'fulfilled'"
                        " WHERE intent_id = ?", [made[1].id.hex()])  # fmt: skip
        assert leads.withdraw(made[2].id.hex(), 3_000)
        before = Leads(old, clock=lambda: 2_000).list(status="all")
    with Store(path, clock=lambda: 2_000) as new:
        assert new.schema_version == len(MIGRATIONS)
        leads = Leads(new, clock=lambda: 2_000)
        assert leads.list(status="all") == before
        assert [lead.status for lead in before] == ["live", "closed", "withdrawn"]
        sql = new.query_one("SELECT sql FROM sqlite_master WHERE name = 'leads'")["sql"]
        assert "GLOB" not in sql and "json_valid" not in sql
        assert leads.add_many([(made[0], [9]), (made[3], [4])]) == 1  # the old intent is a lead already
        assert leads.list(status="all")[-1].id > max(lead.id for lead in before)
        for column, value in (("status", "lost"), ("closed_reason", "bored")):
            with pytest.raises(sqlite3.IntegrityError), new.transaction():
                new.execute(f"UPDATE leads SET {column} = ? WHERE intent_id = ?", [value, made[0].id.hex()])
        assert leads.list()[0].status == "live"
        indexes = new.query("SELECT name FROM sqlite_master WHERE tbl_name = 'leads' AND type = 'index'")
        assert "leads_live" in {r["name"] for r in indexes}
