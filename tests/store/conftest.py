"""Fixtures for the store tests: one real PostgreSQL cluster per session, one database per test."""

from __future__ import annotations

import itertools

import pytest

from tests.store.pgcluster import Cluster, binaries

psycopg2 = pytest.importorskip("psycopg2")

_serial = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster():
    bindir = binaries()
    if bindir is None:
        pytest.skip(
            "PostgreSQL binaries (initdb, pg_ctl) not installed; .ci/postgres installs them"
        )
    cluster = Cluster(bindir)
    try:
        cluster.start()
    except Exception as e:  # e.g. no `nobody` user to run it as
        cluster.destroy()
        pytest.skip(f"could not start a throwaway PostgreSQL: {e}")
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_dsn(pg_cluster):
    """A DSN to a fresh, empty database."""
    name = f"t{next(_serial)}"
    conn = psycopg2.connect(pg_cluster.dsn())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    return pg_cluster.dsn(name)
