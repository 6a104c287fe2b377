"""The body the local queue stores for a slot is the Worker's, byte for byte: the one
JSON.stringify writes for {type, scheduledFor}."""

from datetime import UTC, datetime

from devtools.manifests import probe_manifest
from engine.adapters.pgqueue import body_json
from engine.runtime.dispatch import Slot
from tests.integration.executor_support import make_job


def test_a_slot_body_reads_like_the_worker_s() -> None:
    job = probe_manifest(make_job(name="probe")).jobs[0]
    s = Slot(job, datetime(2026, 10, 31, 10, 0, tzinfo=UTC))
    assert body_json(s) == f'{{"type":"{job.type}","scheduledFor":"2026-10-31T10:00:00Z"}}'
