"""`vrm fleet init`, `vrm fleet join`, `vrm fleet status`: one vendor served by several listeners
over one PostgreSQL database (fleet/).

``init`` creates or upgrades the database's schema, imports this vendor home's identity (so every
listener signs as the same vendor) and points the home at the database (node.toml ``store.url``);
run again it changes nothing. ``join`` makes a new home for one more listener from that identity.
``status`` reads what the listeners leave in the database: heartbeats, the outbox, the envelopes and
the leads.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import output
from cli.context import node
from cli.output import JsonOpt

# A listener beats every second (fleet.listener); one silent for this long is counted as gone.
ALIVE_WITHIN_MS = 10_000
SHOWN_STOPPED_MS = 86_400_000
LAG_SAMPLE = 1000  # newest envelopes whose created → received delay the lag figures describe

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", metavar="URL", help="The fleet's postgresql:// database (default: the home's store.url)."),
]

fleet = typer.Typer(
    help="A vendor fleet: several `vrm serve` listeners, one vendor identity, one PostgreSQL database.",
    no_args_is_help=True,
)


def _check_url(url: str) -> str:
    from fleet import is_postgres_url

    if not is_postgres_url(url):
        raise typer.BadParameter(f"{url!r}: give a postgresql:// URL", param_hint="--store")
    return url


@fleet.command("init")
def init(
    ctx: typer.Context,
    store: Annotated[str, typer.Option("--store", metavar="URL", help="The fleet's postgresql:// database.")],
    as_json: JsonOpt = False,
) -> None:
    """Create or upgrade the fleet's schema, import this vendor's identity, and use the database from
    now on (node.toml store.url). Safe to run again: it only does what is missing."""
    from fleet.home import import_identity, open_fleet_store, set_store_url
    from fleet.pgschema import PG_MIGRATIONS
    from node.errors import ConflictError

    url = _check_url(store)
    state = node(ctx)
    state.require_role("vendor", "fleets")
    home = state.home()
    previous = _configured(home)
    if previous not in (None, url):
        raise ConflictError(
            f"this home already uses the fleet database {_redacted(previous)}; `vrm config unset store.url` first"
        )
    pg = open_fleet_store(url, migrate=False)
    try:
        before = _schema_version(pg)
        pg.migrate()
        after = pg.schema_version
        imported = import_identity(pg, home)
    finally:
        pg.close()
    set_store_url(home, url)
    doc = {
        "store": _redacted(url),
        "schema_version": after,
        "schema_version_before": before,
        "schema_current": after == len(PG_MIGRATIONS),
        "identity_imported": imported,
        "node_id": home.node_id,
    }
    if as_json:
        output.print_json(doc)
        return
    schema = f"created (version {after})" if before == 0 else (
        f"upgraded {before} → {after}" if before != after else f"already at version {after}"
    )
    output.say(f"fleet database {doc['store']}: schema {schema}")
    output.say(f"vendor identity {home.node_id}: " + ("imported" if imported else "already the fleet's"))
    output.say("this home now uses it (node.toml store.url); more listeners: vrm --home DIR fleet join --store URL")


@fleet.command("join")
def join(
    ctx: typer.Context,
    store: Annotated[str, typer.Option("--store", metavar="URL", help="The fleet's postgresql:// database.")],
    as_json: JsonOpt = False,
) -> None:
    """Make a new home (--home, which must be empty) for one more listener of the fleet: the vendor
    identity `vrm fleet init` imported, and store.url pointing at the database. `vrm serve` it then."""
    from fleet.home import join_home, open_fleet_store

    url = _check_url(store)
    state = node(ctx)
    pg = open_fleet_store(url)
    try:
        home = join_home(state.home_path(), pg, url)
    finally:
        pg.close()
    if as_json:
        output.print_json({"home": home.path, "node_id": home.node_id, "encrypted": home.encrypted})
        return
    output.say(f"joined the fleet of {home.node_id} in {home.path}")
    if home.encrypted:
        output.note("its key is under the vendor's passphrase: `vrm serve` asks for it (or $VRM_PASSPHRASE)")


@fleet.command("status")
def status(ctx: typer.Context, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The fleet at a glance: listeners alive (from their heartbeats), ingest lag, the outbox's queue,
    claimed and dead deliveries, leads."""
    from fleet.home import open_fleet_store, store_url
    from node.clock import wall_clock_ms
    from node.errors import ValidationError

    state = node(ctx)
    if store is not None:
        url = _check_url(store)
    else:
        url = store_url(state.home())
        if url is None:
            raise ValidationError("store.url", "this home is not on a fleet database: give --store URL or run `vrm fleet init`")
    pg = open_fleet_store(url, migrate=False)
    try:
        doc = fleet_status(pg, wall_clock_ms())
    finally:
        pg.close()
    doc["store"] = _redacted(url)
    if as_json:
        output.print_json(doc)
        return
    alive = sum(1 for li in doc["listeners"] if li["alive"])
    output.say(f"fleet {doc['node_id'] or '(no identity: vrm fleet init)'} on {doc['store']} (schema {doc['schema_version']})")
    output.table(
        ("listener", "host", "pid", "url", "alive", "last seen", "up since"),
        [
            (li["id"], li["host"], li["pid"], li["url"] or "-", li["alive"],
             f"{output.duration(li['age_ms'])} ago", output.when(li["started_at"]))
            for li in doc["listeners"]
        ],
    )  # fmt: skip
    ingest, box = doc["ingest"], doc["outbox"]
    output.say(f"listeners alive: {alive} of {len(doc['listeners'])} known")
    last = "never" if ingest["last_received_age_ms"] is None else f"{output.duration(ingest['last_received_age_ms'])} ago"
    output.say(
        f"ingest: {ingest['envelopes']} envelopes, last {last}; lag (created → stored, newest {LAG_SAMPLE}) "
        f"p50 {_ms(ingest['lag_p50_ms'])}, max {_ms(ingest['lag_max_ms'])}"
    )
    output.say(f"outbox: {box['queued']} queued, {box['claimed']} claimed by a listener, {box['dead']} dead")
    output.say(f"leads: {doc['leads']['live']} live of {doc['leads']['total']}; subscriptions: {doc['subscriptions']}")


def fleet_status(pg: Any, now: int) -> dict[str, Any]:
    """What `vrm fleet status` shows, from the database alone (times in ms)."""
    if _schema_version(pg) == 0:
        from node.errors import StoreError

        raise StoreError("the database has no fleet schema yet: run `vrm fleet init --store URL`")
    # a stopped or silent listener stays listed for a day after its last beat, then drops out of view
    listeners = pg.query(
        "SELECT id, host, pid, url, started_at, beat_at, stopped_at FROM fleet_listeners "
        "WHERE beat_at > ? ORDER BY started_at, id",
        (now - SHOWN_STOPPED_MS,),
    )
    for li in listeners:
        li["age_ms"] = max(0, now - li["beat_at"])
        li["alive"] = li["stopped_at"] is None and li["age_ms"] <= ALIVE_WITHIN_MS
    identity = pg.query_one("SELECT node_id FROM fleet_identity")
    lag = pg.query_one(
        "SELECT count(*) AS n, percentile_disc(0.5) WITHIN GROUP (ORDER BY d) AS p50, max(d) AS mx FROM "
        f"(SELECT received_at - created_at AS d FROM envelopes ORDER BY seq DESC LIMIT {LAG_SAMPLE}) recent"
    )
    last = pg.query_one("SELECT max(received_at) AS at FROM envelopes")
    box = pg.query_one(
        "SELECT count(*) AS queued, count(*) FILTER (WHERE claim_until > ?) AS claimed FROM outbox", (now,)
    )
    leads = pg.query_one(
        "SELECT count(*) AS total, count(*) FILTER (WHERE expires_at > ?) AS live FROM leads", (now,)
    )
    return {
        "node_id": identity["node_id"] if identity else None,
        "schema_version": pg.schema_version,
        "listeners": listeners,
        "ingest": {
            "envelopes": pg.count("envelopes"),
            "last_received_age_ms": None if last["at"] is None else max(0, now - last["at"]),
            "lag_p50_ms": lag["p50"],
            "lag_max_ms": lag["mx"],
        },
        "outbox": {"queued": box["queued"], "claimed": box["claimed"], "dead": pg.count("outbox_dead")},
        "leads": {"total": leads["total"], "live": leads["live"]},
        "subscriptions": pg.count("subscriptions"),
    }


def _schema_version(pg: Any) -> int:
    row = pg.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
    return pg.schema_version if row and row["present"] else 0


def _configured(home: Any) -> str | None:
    from fleet.home import store_url

    return store_url(home)


def _redacted(url: str) -> str:
    from fleet.pgstore import _redact

    return _redact(url)


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def register(app: typer.Typer) -> None:
    app.add_typer(fleet, name="fleet")
