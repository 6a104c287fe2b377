"""The analytics source table the benchmarks and tests load events into, and days of
generated events for the benchmarks.

A generated day has the shape the hourly rollup meets in production: org sizes follow a
Zipf-like law (org i weighs 1/(i+1)^0.7), each org has about one contact per five of its
events in a day (at least 20), a few contacts do most of an org's activity (contact
index = pool size * r^2.5), ten event types with fixed shares, a campaign (one of five
per org) on email events, and created_at uniform over the day, rows inserted in
created_at order as an append-only table receives them. Scaling the events scales the
orgs with their square root (:func:`default_orgs`) and the contacts with the events, so
that 10x the events is about 3.2x the orgs with 3.2x the events each.

The rows are made by the server (``generate_series``), not built in Python and sent over
the wire, into the table without its indexes, which are built afterwards
(:func:`bulk_load`): a 10M-event day loads, indexes included, in about 3 minutes on 2
shared cores (14 s for 1M, where the Python generator with COPY into the indexed table
took 55 s). Ids are stable (an org's and a contact's uuid depend on their index only),
and each day's random draws on its ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the tooling that loads events pays for the import
    import asyncpg

# analytics.contact_activity's columns, in COPY order (sql/migrations/).
EVENT_COLUMNS = (
    "id",
    "organization_id",
    "contact_id",
    "event_type",
    "event_source",
    "event_data",
    "created_at",
)
TABLE = "analytics.contact_activity"
EVENT_TYPES = (  # name, share of the day's events in percent
    ("email_sent", 30.0),
    ("email_delivered", 28.0),
    ("email_opened", 15.0),
    ("page_view", 10.0),
    ("email_clicked", 6.0),
    ("sms_sent", 4.5),
    ("form_submitted", 3.0),
    ("email_bounced", 2.0),
    ("email_unsubscribed", 1.0),
    ("email_complained", 0.5),
)
EVENTS_PER_CONTACT = 5  # a day's events per contact, in every org
BATCHES = 24  # one INSERT per hour of the day: short statements, steady progress

# One batch of a day starting at $1: rows $6 <= i < $7 of $8, in created_at order. Each
# row draws its org and type by the cumulative shares in $4 and $5 (width_bucket), and its
# contact among the org's $2 contacts; $3 names the types. The subquery (never pulled up:
# it calls random()) keeps to one draw per column per row.
INSERT_SQL = f"""
INSERT INTO {TABLE} ({", ".join(EVENT_COLUMNS)})
SELECT gen_random_uuid(),
       md5('org/' || e.org)::uuid,
       md5('contact/' || e.org || '/' || floor(($2::int[])[e.org] * e.r_contact ^ 2.5))::uuid,
       ($3::text[])[e.type],
       CASE WHEN ($3::text[])[e.type] LIKE 'email%'
            THEN md5('campaign/' || e.org || '/' || e.campaign)::uuid::text END,
       '{{"ua": "Mozilla/5.0", "ip": "203.0.113.7"}}'::jsonb,
       $1::timestamp + (e.i + e.r_time) * (86400.0 / $8::float8) * interval '1 second'
FROM (SELECT i,
             width_bucket(random(), $4::float8[]) AS org,
             width_bucket(random(), $5::float8[]) AS type,
             random() AS r_contact,
             floor(random() * 5)::int AS campaign,
             random() AS r_time
      FROM generate_series($6::bigint, $7::bigint - 1) AS i) AS e
"""
# The table's indexes and constraint-backed indexes, to drop before a bulk load and build
# after it (one sorted build instead of an insert per row and index).
INDEXES_SQL = """
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition,
       c.conname AS constraint_name, pg_get_constraintdef(c.oid) AS constraint_definition
FROM pg_index AS i
LEFT JOIN pg_constraint AS c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
WHERE i.indrelid = $1::regclass
ORDER BY i.indexrelid
"""
TIMEOUT = 3600.0


def default_orgs(events: int) -> int:
    """Orgs for a day of ``events``: 1,000 at 1M, with the square root of the events
    (a user's 10x is both more orgs and more events per org): 3,162 at 10M."""
    return max(1, round(1000 * math.sqrt(events / 1_000_000)))


def lower_bounds(weights: Sequence[float]) -> list[float]:
    """Each bucket's lower bound on [0, 1): width_bucket(r, bounds) is bucket k
    (1-based) with probability weights[k-1] / sum(weights)."""
    total = sum(weights)
    bounds, acc = [], 0.0
    for w in weights:
        bounds.append(acc / total)
        acc += w
    return bounds


def org_weights(orgs: int) -> list[float]:
    return [1 / (i + 1) ** 0.7 for i in range(orgs)]


def contacts_per_org(events: int, orgs: int) -> list[int]:
    weights = org_weights(orgs)
    total = sum(weights)
    return [max(20, int(events / EVENTS_PER_CONTACT * w / total)) for w in weights]


async def insert_day(
    conn: asyncpg.Connection, day: date, events: int, orgs: int, *, seed: int
) -> None:
    """Insert one UTC day of ``events`` generated events for ``orgs`` orgs; the same
    arguments give the same rows, ids apart (0 <= seed < 2**31)."""
    await conn.execute("SELECT setseed($1)", seed / 2**31, timeout=TIMEOUT)
    start = datetime(day.year, day.month, day.day)
    contacts = contacts_per_org(events, orgs)
    types = [name for name, _ in EVENT_TYPES]
    org_bounds = lower_bounds(org_weights(orgs))
    type_bounds = lower_bounds([share for _, share in EVENT_TYPES])
    for b in range(BATCHES):
        lo, hi = events * b // BATCHES, events * (b + 1) // BATCHES
        await conn.execute(
            INSERT_SQL,
            start,
            contacts,
            types,
            org_bounds,
            type_bounds,
            lo,
            hi,
            events,
            timeout=TIMEOUT,
        )


@asynccontextmanager
async def bulk_load(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Drop the events table's indexes (its primary key too) for the block, then build
    each again as the migrations defined it and VACUUM ANALYZE the table (the visibility
    map for index-only scans, the statistics of the index expressions).

    A sorted build is many times faster than an insert per row and index, and leaves each
    index packed; an index grown by inserts at random places keeps its pages about 70%
    full, so the built ones are about a quarter smaller than a production table's."""
    found = await conn.fetch(INDEXES_SQL, TABLE, timeout=TIMEOUT)
    for ix in found:
        if ix["constraint_name"]:
            await conn.execute(
                f'ALTER TABLE {TABLE} DROP CONSTRAINT "{ix["constraint_name"]}"', timeout=TIMEOUT
            )
        else:
            await conn.execute(f"DROP INDEX {ix['name']}", timeout=TIMEOUT)
    yield
    await conn.execute("SET maintenance_work_mem = '512MB'", timeout=TIMEOUT)
    for ix in found:
        if ix["constraint_name"]:
            await conn.execute(
                f'ALTER TABLE {TABLE} ADD CONSTRAINT "{ix["constraint_name"]}" '
                f"{ix['constraint_definition']}",
                timeout=TIMEOUT,
            )
        else:
            await conn.execute(ix["definition"], timeout=TIMEOUT)
    await conn.execute("RESET maintenance_work_mem", timeout=TIMEOUT)
    await conn.execute(f"VACUUM ANALYZE {TABLE}", timeout=TIMEOUT)
