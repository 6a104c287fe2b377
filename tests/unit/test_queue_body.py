"""The body the local queue stores for a slot is the Worker's, byte for byte: the one
JSON.stringify writes for {type, scheduledFor} (and rerun, when set)."""

import json
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from devtools.manifests import probe_manifest
from engine.adapters.pgqueue import body_json
from engine.runtime.dispatch import Slot
from tests.integration.executor_support import make_job

JOB = make_job()


@given(
    type_=st.text(min_size=1),
    slot=st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)),
    rerun=st.none() | st.text(min_size=1),
)
def test_the_body_is_the_compact_json_of_the_slot_s_fields_in_the_worker_s_order(
    type_: str, slot: datetime, rerun: str | None
) -> None:
    s = Slot(replace(JOB, type=type_), slot.replace(second=0, microsecond=0), rerun=rerun)
    text = body_json(s)
    assert text == json.dumps(s.body(), separators=(",", ":"))
    assert list(json.loads(text)) == ["type", "scheduledFor"] + (["rerun"] if rerun else [])


def test_a_slot_body_reads_like_the_worker_s() -> None:
    job = probe_manifest(make_job(name="probe")).jobs[0]
    s = Slot(job, datetime(2026, 10, 31, 10, 0, tzinfo=UTC))
    assert body_json(s) == f'{{"type":"{job.type}","scheduledFor":"2026-10-31T10:00:00Z"}}'
