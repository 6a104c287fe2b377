"""engine/queries/schema.sql is what a fresh `cronwright db migrate` creates, so that a
reader can see cronwright's tables and functions in one file."""

from __future__ import annotations

import pytest

from devtools.pgserver import PgServer, admin
from devtools.schema_snapshot import SNAPSHOT, dump
from engine.adapters.migrate import migrate_url
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres


def test_the_schema_snapshot_is_what_a_fresh_migrate_creates(pg_server: PgServer) -> None:
    run(admin(pg_server, 'CREATE DATABASE "fresh_schema"'))
    try:
        dsn = pg_server.dsn("fresh_schema")
        run(migrate_url(dsn, None))
        assert dump(dsn) == SNAPSHOT.read_text("utf-8"), "stale: run make schema"
    finally:
        run(admin(pg_server, 'DROP DATABASE IF EXISTS "fresh_schema" WITH (FORCE)'))
