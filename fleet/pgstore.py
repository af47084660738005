"""The vendor's Store over PostgreSQL: the same narrow interface as ``node.store.Store`` (``query``,
``query_one``, ``execute``, ``insert``, ``insert_many``, ``count``, ``transaction``), so the domain
modules run unchanged on either.

The domain writes SQLite's dialect; ``pg_sql`` translates it here and nowhere else (``?`` and
``:name`` placeholders, ``json_each``, ``last_insert_rowid``), cached per statement. Integrity errors
are raised as ``PgIntegrityError``, a ``sqlite3.IntegrityError``, so the domain's duplicate handling
(``except sqlite3.IntegrityError``) is the same on both engines. A transaction PostgreSQL rolls back
to settle a deadlock or a serialization failure (SQLSTATE class 40) is raised as ``StoreBusy``, a
ConflictError: nothing was written, so the pipeline runs the batch again, and an op says "try again".

Connections come from a psycopg_pool pool (psycopg 3's sync API, called in trio's worker threads by
``AsyncStore``). A transaction holds one connection for the thread that opened it (nested blocks are
savepoints); a read outside one borrows a connection for that statement. Writes outside a
transaction are refused, as on SQLite.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from fleet.pgschema import PG_MIGRATIONS
from node.clock import Clock, wall_clock_ms
from node.errors import StoreBusy, StoreError
from node.store import values_insert


class PgIntegrityError(sqlite3.IntegrityError):
    """A unique, check or foreign-key violation in PostgreSQL, seen by the domain as SQLite's."""


# Tables whose integer key ``insert`` returns (SQLite's rowid); the others have text keys.
_INT_KEYS = {
    "outbox": "id",
    "outbox_dead": "id",
    "peers": "id",
    "envelopes": "seq",
    "subscriptions": "id",
    "leads": "id",
    "receipts": "seq",
}

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_JSON_EACH = re.compile(r"json_each\(\?\)")
_MAX_PARAMS = 32_000  # PostgreSQL binds at most 65 535 parameters in one statement
_NULL_TEST = re.compile(r"\?\s+(IS\s+(?:NOT\s+)?NULL)")


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """A statement of the domain's (SQLite) dialect in PostgreSQL's, for psycopg's placeholders."""
    s = sql.replace("%", "%%")
    s = _JSON_EACH.sub("json_array_elements_text(?::json)", s)
    s = s.replace("last_insert_rowid()", "lastval()")
    # ``? IS NULL`` (an optional filter): PostgreSQL cannot type a bare parameter, a cast to text can
    s = _NULL_TEST.sub(r"?::text \1", s)
    s = s.replace("?", "%s")
    s = _NAMED.sub(r"%(\1)s", s)
    return s


_RawCursor = getattr(psycopg, "RawCursor", None)  # psycopg >= 3.2


@functools.lru_cache(maxsize=64)
def _multi_insert(head: str, width: int, count: int, tail: str) -> str:
    """``head VALUES ($1, …), ($n+1, …) tail`` for ``count`` rows of ``width`` values."""
    rows = ("(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")" for r in range(count))
    return f"{head} VALUES {', '.join(rows)}{tail}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PgStore:
    """The fleet database behind the Store interface. Safe for use from several threads."""

    engine = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = wall_clock_ms,
        min_size: int = 1,
        max_size: int = 8,
        migrate: bool = True,
    ) -> None:
        self.url = url
        self.path = url
        self._clock = clock
        self._local = threading.local()
        try:
            # One connection first: a wrong URL, a missing database or a refused login is an error
            # now, with PostgreSQL's own message, not a pool that retries for its whole timeout.
            psycopg.connect(url, connect_timeout=10).close()
            self._pool = ConnectionPool(
                url,
                min_size=min_size,
                max_size=max_size,
                kwargs={"autocommit": True, "row_factory": dict_row},
                open=True,
                timeout=30,
            )
            self._pool.wait(timeout=30)
        except (psycopg.Error, Exception) as exc:
            raise StoreError(f"cannot open the fleet store {_redact(url)}: {exc}") from exc
        if migrate:
            self.migrate()

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()
            self._pool = None

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection of its own (autocommit), for what runs beside the domain (nonces,
        heartbeats, LISTEN); ``timeout``: seconds to wait for one (the pool's 30 by default)."""
        with self._pool.connection(timeout=timeout) as conn:
            yield conn

    # -- schema ------------------------------------------------------------------------------------

    def migrate(self) -> None:
        with self._pool.connection() as conn:
            # One migrator at a time across the fleet: listeners started together must not race.
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(4711)")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
                )
                applied = [r["version"] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
                if applied != list(range(1, len(applied) + 1)):
                    raise StoreError(f"fleet schema history is damaged: applied versions {applied}")
                if len(applied) > len(PG_MIGRATIONS):
                    raise StoreError(
                        f"the fleet store has schema version {len(applied)}, newer than this program knows "
                        f"({len(PG_MIGRATIONS)}); upgrade vrm-node"
                    )
                for version, name, statements in PG_MIGRATIONS[len(applied) :]:
                    with conn.transaction():
                        for statement in statements:
                            conn.execute(statement)
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                            (version, name, self._clock()),
                        )

    @property
    def schema_version(self) -> int:
        row = self.query_one("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")
        return int(row["v"]) if row else 0

    def table_names(self) -> list[str]:
        rows = self.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
        return [r["tablename"] for r in rows]

    # -- transactions ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PgStore]:
        """All writes inside commit together or not at all; nested blocks are savepoints."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None:
            with _translated_errors(), conn.transaction():
                yield self
            return
        with self._pool.connection() as conn:
            local.conn = conn
            try:
                with _translated_errors(), conn.transaction():
                    yield self
            finally:
                local.conn = None

    def checkpoint_truncate(self) -> None:
        """SQLite's step after deleting data that must not linger (held data of an ended grant).
        PostgreSQL has no secure_delete: VACUUM of the held data removes the deleted rows from its
        pages' live tuples and its indexes now instead of at some autovacuum; their bytes may stay in
        freed page space and old WAL segments until reused (values are sealed under the vault key
        when the vendor has a passphrase). Outside a transaction only; a no-op inside one."""
        if self.in_transaction:
            return
        with self._pool.connection() as conn:
            conn.execute("VACUUM held_data")

    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    def _tx_conn(self) -> psycopg.Connection[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            raise StoreError("writes must run inside `with store.transaction():`")
        return conn

    # -- writes ------------------------------------------------------------------------------------

    def insert(self, table: str, row: dict[str, Any]) -> int | None:
        conn = self._tx_conn()
        columns = ", ".join(_quote(c) for c in row)
        marks = ", ".join("%s" for _ in row)
        key = _INT_KEYS.get(table)
        returning = f" RETURNING {_quote(key)} AS k" if key else ""
        with _translated_errors():
            cur = conn.execute(
                f"INSERT INTO {_quote(table)} ({columns}) VALUES ({marks}){returning}", list(row.values())
            )
            return cur.fetchone()["k"] if key else None

    def insert_many(self, table: str, rows: Sequence[dict[str, Any]]) -> list[int]:
        """One statement for the batch; the keys in row order (RETURNING keeps VALUES order)."""
        conn = self._tx_conn()
        if not rows:
            return []
        columns = list(rows[0])
        if any(list(row) != columns for row in rows):
            raise StoreError(f"insert_many into {table}: every row needs the same columns in the same order")
        names = ", ".join(_quote(c) for c in columns)
        one = "(" + ", ".join("%s" for _ in columns) + ")"
        params = [v for row in rows for v in row.values()]
        key = _INT_KEYS.get(table)
        returning = f" RETURNING {_quote(key)} AS k" if key else ""
        with _translated_errors():
            cur = conn.execute(
                f"INSERT INTO {_quote(table)} ({names}) VALUES {', '.join([one] * len(rows))}{returning}", params
            )
            return [r["k"] for r in cur.fetchall()] if key else []

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        conn = self._tx_conn()
        with _translated_errors():
            return conn.execute(pg_sql(sql), _params(params)).rowcount

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """The statement for each row; rows changed in all. A plain ``INSERT … VALUES (…)`` (perhaps
        ``ON CONFLICT … DO NOTHING``) becomes one multi-row INSERT per chunk: a batch of envelopes or
        leads is one round trip, not one per row. Anything else: one prepared statement per row,
        pipelined."""
        conn = self._tx_conn()
        if not rows:
            return 0
        insert = values_insert(sql) if _RawCursor is not None else None
        # Only ``ON CONFLICT … DO NOTHING`` (or no tail): PostgreSQL refuses a multi-row DO UPDATE
        # that meets one key twice, which one row at a time would not.
        if insert is not None and "DO UPDATE" not in insert[2]:
            head, width, tail = insert
            step = max(1, _MAX_PARAMS // max(width, 1))
            changed = 0
            # A raw cursor ($1 … $n placeholders): psycopg need not parse a statement this long.
            with _translated_errors(), _RawCursor(conn) as cur:
                for at in range(0, len(rows), step):
                    chunk = rows[at : at + step]
                    params = [bytes(v) if isinstance(v, memoryview) else v for r in chunk for v in r]
                    cur.execute(_multi_insert(head, width, len(chunk), tail), params, prepare=False)
                    changed += max(cur.rowcount, 0)
            return changed
        with _translated_errors(), conn.cursor() as cur:
            cur.executemany(pg_sql(sql), [list(r) for r in rows], returning=False)
            return max(cur.rowcount, 0)

    # -- reads -------------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with _translated_errors():
                return conn.execute(pg_sql(sql), _params(params)).fetchall()
        with self._pool.connection() as conn, _translated_errors():
            return conn.execute(pg_sql(sql), _params(params)).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT count(*) AS n FROM {_quote(table)}")[0]["n"])

    def quote_fts(self, text: str) -> str:
        raise StoreError("full-text search of records is on the person's SQLite store, not a fleet")


def _params(params: Sequence[Any] | dict[str, Any]) -> Any:
    if isinstance(params, dict):
        return params
    return [bytes(p) if isinstance(p, memoryview) else p for p in params]


@contextlib.contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.errors.IntegrityError as exc:
        raise PgIntegrityError(str(exc)) from exc
    except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:  # 40P01, 40001
        raise StoreBusy(f"the database rolled the transaction back ({exc.sqlstate}): try again") from exc


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
