-- The migrator's own statements (engine/adapters/migrate.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: bootstrap
-- Created before any migration, so that the record of 0001 has somewhere to go.
CREATE SCHEMA IF NOT EXISTS cronwright;
CREATE TABLE IF NOT EXISTS cronwright.schema_migrations (
    source      text        NOT NULL,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, name)
);

-- name: lock
-- Serialises concurrent migrators; works through a pooler (transaction-scoped).
SELECT pg_advisory_xact_lock(hashtextextended('cronwright:migrate', 0))
-- name: checksum
-- An applied migration's checksum, if it was applied.
SELECT checksum FROM cronwright.schema_migrations WHERE source = $1 AND name = $2

-- name: record
-- A migration applied now.
INSERT INTO cronwright.schema_migrations (source, name, checksum) VALUES ($1, $2, $3)
