"""Tests import the throwaway cluster from here; it lives in the package for `make demo-fleet`."""

from fleet.cluster import PgCluster, PostgresUnavailable, free_port, pg_bindir

__all__ = ["PgCluster", "PostgresUnavailable", "free_port", "pg_bindir"]
