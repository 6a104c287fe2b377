-- The example job's tables, in a schema of their own: signups (its source: your
-- application would write it) and signup_counts (what count-signups writes, one row
-- per minute). Add your own tables in new files: 0002_<what>.sql, and so on.
CREATE SCHEMA example;

CREATE TABLE example.signups (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signups_created_at ON example.signups (created_at);

CREATE TABLE example.signup_counts (
    minute     timestamptz PRIMARY KEY,
    signups    bigint      NOT NULL,
    counted_at timestamptz NOT NULL DEFAULT now()
);
