"""A vendor fleet: several `vrm serve` listeners sharing one identity and one PostgreSQL database.

``pgstore`` is the Store over PostgreSQL (the domain's narrow interface, SQLite dialect translated in
one place), ``pgschema`` its numbered migrations, ``outbox`` the claimed deliveries, ``nonces`` the
shared replay memory, ``listener`` the heartbeat and the subscription NOTIFY loop, ``cluster`` a
throwaway cluster for tests and the demo.
"""


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))
