"""The node's SQLite store: one narrow class over sqlite-utils, numbered migrations, one writer.

Durability settings (the brief's "no acknowledged write is lost"): WAL journal, ``synchronous=FULL`` so a
commit is on disk before it returns, foreign keys enforced. Every write runs inside
``with store.transaction():`` (nested blocks become savepoints); a write outside one is refused rather
than silently auto-committed on its own, so a batch can never be half applied.

Schema changes are numbered migrations (``node.schema``) applied in order on open, each in its own
transaction together with its row in ``schema_migrations``: an older home upgrades in place, and a
crash during an upgrade leaves the previous version intact. Never edit a shipped migration; append a
new one.

``AsyncStore`` is the trio face: every call runs in a worker thread, one at a time, so the event loop
never blocks on disk and there is exactly one writer.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlite_utils

from node.clock import Clock, wall_clock_ms  # re-exported: modules take both from the store
from node.errors import StoreError

from node.schema import (  # re-exported
    ENGAGEMENT_LEVELS,
    ISSUE_STATES,
    MIGRATIONS,
    SUBSCRIPTION_JOURNAL_KEEP,
    Migration,
    spec_hash,
)

if TYPE_CHECKING:  # trio is imported where it is used: the CLI opens stores without it
    import trio

T = TypeVar("T")


# ``INSERT INTO t (cols) VALUES (?, …)`` with nothing after it but an optional ``ON CONFLICT`` clause
_VALUES_INSERT = re.compile(r"(INSERT INTO \w+ \([\w, ]+\))\s+VALUES\s+\(([?, ]+)\)(\s+ON CONFLICT\b[^?]*)?", re.S)
_SELECT = re.compile(r"\s*SELECT\s", re.IGNORECASE)  # a read that cannot write (one statement: sqlite3 runs no more)
_MAX_ROWS_PER_INSERT = 512  # rows of one multi-row INSERT (SQLite binds 32,766 parameters at most)


@functools.lru_cache(maxsize=256)
def values_insert(sql: str) -> tuple[str, int, str] | None:
    """(head, values per row, tail) of a one-row ``INSERT INTO t (…) VALUES (?, …)`` with at most an
    ``ON CONFLICT`` clause (binding nothing) after it: what a store runs for many rows as a few
    multi-row INSERTs. None for any other statement."""
    insert = _VALUES_INSERT.fullmatch(sql.strip())
    if insert is None:
        return None
    return insert.group(1), insert.group(2).count("?"), insert.group(3) or ""


@functools.lru_cache(maxsize=256)
def _rows_insert(head: str, width: int, count: int, tail: str) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"{head} VALUES {', '.join([row] * count)}{tail}"


def joined(store: Any) -> contextlib.AbstractContextManager[Any]:
    """Writes that are part of the caller's transaction when there is one, with no savepoint of their
    own (an error leaves that transaction to be rolled back, as the ingest pipeline's is), else a
    transaction of their own. For the ingest transaction's inserts: a savepoint is two more statements,
    each handing the GIL away and waiting for it again, and it copies every page it touches.
    ``store``: a Store or a fleet's PgStore."""
    return contextlib.nullcontext(store) if store.in_transaction else store.transaction()


def blobs(values: Iterable[bytes]) -> list[bytearray]:
    """``values`` as bytearrays, to bind as BLOBs on a hot path: sqlite3 binds a bytearray at once but
    looks for an adapter for every bytes value (and every None: a tuple built, a dict and two attribute
    lookups), ~1.4 µs each on a 2 GHz core, which made up half the cost of storing an envelope's row."""
    return [bytearray(v) for v in values]


def in_list(values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``(?, ?, …)`` and its parameters for ``column IN`` a list (ids are BLOBs, so no JSON array can
    carry them). The list is padded to a power of two with its last value (IN ignores repeats), so a
    query has a dozen shapes for the statement cache instead of one per length. At least one value;
    callers keep lists at most a few thousand long (SQLite binds 32,766 parameters at most)."""
    if not values:
        raise ValueError("in_list needs at least one value")
    params = list(values)
    params += [params[-1]] * ((1 << (len(params) - 1).bit_length()) - len(params))
    return "(" + ", ".join("?" * len(params)) + ")", params


class Store:
    """The node database. Not safe for concurrent use from several threads: use AsyncStore for that."""

    def __init__(
        self, path: str | Path, *, migrations: Sequence[Migration] = MIGRATIONS, clock: Clock = wall_clock_ms
    ):
        self.path = Path(path)
        self._clock = clock
        try:
            # check_same_thread=False: AsyncStore hands calls to trio's worker threads one at a time.
            # cached_statements: room for every shape of the multi-row INSERTs (execute_many) and IN lists.
            conn = sqlite3.connect(self.path, check_same_thread=False, cached_statements=512)
            self._db = sqlite_utils.Database(conn, execute_plugins=False)
            self._db.execute("PRAGMA busy_timeout = 5000")  # another process (the CLI) may hold the lock
            self._db.enable_wal()
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            # 32 MB of page cache instead of SQLite's 2 MB: the gossip log's id and author indexes
            # take random keys, and at a million rows each insert otherwise re-reads index pages.
            self._db.execute("PRAGMA cache_size = -32768")
            # Checkpoint after ~40 MB of WAL (10,000 pages) instead of SQLite's 1,000 pages: one ingest
            # batch of 1,000 new envelopes dirties about that many random-key index pages, so the
            # default copied them back into the database (and synced it) on almost every commit,
            # pages the next batches dirty again (in process: 34 vs 40 µs per new intent). Every
            # commit still syncs the WAL; a WAL that grew past 64 MB is cut back after a checkpoint.
            self._db.execute("PRAGMA wal_autocheckpoint = 10000")
            self._db.execute("PRAGMA journal_size_limit = 67108864")
            # Deleted vault values and records should not linger in free pages.
            self._db.execute("PRAGMA secure_delete = ON")
            # Savepoints and multi-row statements inside a transaction journal every page they touch, so
            # that they can be undone alone; past 64 KB SQLite spilled that journal into a temp file, two
            # write calls per page (an ingest commit: ~1,100 pages, a third of the store thread's
            # syscalls). Kept in memory, it costs a copy per page; sorts and temp tables stay in memory.
            self._db.execute("PRAGMA temp_store = MEMORY")
            self._migrate(migrations)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ------------------------------------------------------------------------------------

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        versions = [m[0] for m in migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise StoreError("migrations must be numbered 1, 2, 3, … without gaps")
        with self._db.atomic():
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
        applied = [
            r["version"] for r in self._db.query("SELECT version FROM schema_migrations ORDER BY version")
        ]
        if applied != list(range(1, len(applied) + 1)):
            raise StoreError(f"schema history is damaged: applied versions {applied}")
        if len(applied) > len(migrations):
            raise StoreError(
                f"this store has schema version {len(applied)}, newer than this program knows "
                f"({len(migrations)}); upgrade vrm-node"
            )
        for version, name, step in migrations[len(applied) :]:
            with self._db.atomic():
                if callable(step):
                    step(self._db)
                else:
                    for statement in step:
                        self._db.execute(statement)
                self._db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, self._clock()),
                )

    @property
    def schema_version(self) -> int:
        return self._db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]

    def table_names(self) -> list[str]:
        """What can be read by name: the tables and the views (``outbox`` is one since migration 11)."""
        return self._db.table_names() + self._db.view_names()

    # -- transactions and writes ---------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """All writes inside commit together or not at all; nested blocks are savepoints. The outermost
        block takes the write lock at once (BEGIN IMMEDIATE, waiting up to the busy timeout): a deferred
        BEGIN that read first failed at its first write with "database is locked", without waiting, when
        another connection (the CLI beside the daemon) had committed in between."""
        if self._db.conn.in_transaction:
            with self._db.atomic():  # a savepoint
                yield self
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self._db.conn.rollback()  # a no-op when the error already ended the transaction
            raise
        try:
            self._db.execute("COMMIT")
        except BaseException:
            self._db.conn.rollback()
            raise

    @property
    def in_transaction(self) -> bool:
        return self._db.conn.in_transaction

    def checkpoint_truncate(self) -> None:
        """Copy the WAL into the database and empty it (after deleting data that must not linger:
        with secure_delete on, the freed pages are zeroed, and the WAL's old frames go with it).
        Outside a transaction only; a no-op inside one (the caller's commit comes later)."""
        if not self._db.conn.in_transaction:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _require_transaction(self) -> None:
        if not self._db.conn.in_transaction:
            raise StoreError("writes must run inside `with store.transaction():`")

    def insert(self, table: str, row: dict[str, Any]) -> int:
        """Insert one row into an existing table; returns its integer primary key."""
        self._require_transaction()
        columns = ", ".join(sqlite_utils.db.quote_identifier(c) for c in row)
        marks = ", ".join("?" for _ in row)
        cursor = self._db.execute(
            f"INSERT INTO {sqlite_utils.db.quote_identifier(table)} ({columns}) VALUES ({marks})",
            list(row.values()),
        )
        return cursor.lastrowid

    def insert_many(self, table: str, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert rows that share their columns with one prepared statement; returns their integer
        primary keys in order. They are consecutive: the transaction holds the only write lock."""
        self._require_transaction()
        if not rows:
            return []
        columns = list(rows[0])
        if any(list(row) != columns for row in rows):
            raise StoreError(f"insert_many into {table}: every row needs the same columns in the same order")
        names = ", ".join(sqlite_utils.db.quote_identifier(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        self._db.conn.executemany(
            f"INSERT INTO {sqlite_utils.db.quote_identifier(table)} ({names}) VALUES ({marks})",
            [list(row.values()) for row in rows],
        )
        last = self._db.execute("SELECT last_insert_rowid()").fetchone()[0]
        return list(range(last - len(rows) + 1, last + 1))

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run one write statement for each of ``rows`` inside the current transaction; returns the
        number of rows changed in all. A plain INSERT (``values_insert``) runs as a few multi-row
        INSERTs (chunks of a power of two rows, so a dozen statement shapes are cached), anything else
        as one executemany. Why: sqlite3 lets go of the GIL for every step, and under load each step
        of an executemany waited for it again (up to the 5 ms switch interval) behind the event loop."""
        self._require_transaction()
        if not rows:
            return 0
        conn = self._db.conn
        before = conn.total_changes
        insert = values_insert(sql)
        if insert is None:
            conn.executemany(sql, rows)
            return conn.total_changes - before
        head, width, tail = insert
        most = min(_MAX_ROWS_PER_INSERT, 1 << ((32_766 // width).bit_length() - 1))
        at, count = 0, len(rows)
        while at < count:
            size = most if count - at >= most else 1 << ((count - at).bit_length() - 1)
            conn.execute(_rows_insert(head, width, size, tail), [v for row in rows[at : at + size] for v in row])
            at += size
        return conn.total_changes - before

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one write statement inside the current transaction; returns the number of rows changed."""
        self._require_transaction()
        return self._db.execute(sql, params).rowcount

    # -- reads -------------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """The rows of one read (a dict per row). A plain SELECT runs as it is: sqlite-utils wraps every
        query in a savepoint (to refuse writes), two more statements for each read, each handing the
        GIL away and waiting for it again (the ingest transaction's reads); anything else goes
        through sqlite-utils and its guard."""
        if not _SELECT.match(sql):
            return list(self._db.query(sql, params))
        cursor = self._db.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def query_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def count(self, table: str) -> int:
        return self._db.execute(f"SELECT count(*) FROM {sqlite_utils.db.quote_identifier(table)}").fetchone()[
            0
        ]

    def quote_fts(self, text: str) -> str:
        """``text`` as a literal FTS5 query: every word quoted, no operators."""
        return self._db.quote_fts(text)

    def integrity_check(self) -> str:
        """``"ok"`` for a sound database file, else SQLite's list of problems."""
        rows = self._db.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(r[0] for r in rows)

    def pragma(self, name: str) -> Any:
        """Read one PRAGMA value (``journal_mode``, ``synchronous``, ``foreign_keys`` …)."""
        if not name.replace("_", "").isalpha():
            raise StoreError(f"not a pragma name: {name!r}")
        return self._db.execute(f"PRAGMA {name}").fetchone()[0]


class AsyncStore:
    """Runs calls against one Store in a worker thread, strictly one at a time.

    ``await astore.run(fn, *args)`` calls ``fn(*args)`` off the event loop; the limiter of one makes
    it the node's single writer. Cancellation waits for a running call to finish, so a transaction is
    never abandoned half way.
    """

    def __init__(self, store: Store, limiter: trio.CapacityLimiter) -> None:
        self.store = store
        self._limiter = limiter

    @classmethod
    async def open(cls, path: str | Path, **store_kwargs: Any) -> AsyncStore:
        import trio

        limiter = trio.CapacityLimiter(1)
        store = await trio.to_thread.run_sync(functools.partial(Store, path, **store_kwargs), limiter=limiter)
        return cls(store, limiter)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import trio

        return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._limiter)

    async def aclose(self) -> None:
        await self.run(self.store.close)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
