"""The analytics source table the benchmarks and tests load events into."""

from __future__ import annotations

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
