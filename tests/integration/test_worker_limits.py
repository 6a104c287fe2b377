"""With 1,000 jobs due in one minute, the bundled Worker keeps each sendBatch within
Cloudflare's limits (at most 100 messages and 256 KB, 1 KB = 1000 bytes, counting about
100 bytes of metadata per message) and its Analytics Engine data point within that
service's (index at most 96 bytes, blobs at most 16 KB in all, at most 20 blobs and 20
doubles). The limits are checked here by Node's own byte counts, not the Worker's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.codegen import generate
from engine.manifest.loader import load
from tests.fixtures.worker_node import bundle, drive, fnv1a
from tests.fixtures.wrangler import Wrangler

pytestmark = pytest.mark.wrangler

JOBS = 1000
MAX_MESSAGES = 100
MAX_BATCH_BYTES = 256_000
MESSAGE_METADATA = 100
MAX_INDEX_BYTES = 96
MAX_BLOB_BYTES = 16_000
AT = datetime(2026, 11, 2, 4, 0, 9, tzinfo=UTC)
SLOT = "2026-11-02T04:00:00Z"
# A type as long as the schema allows a team to write: its message is about 2.6 KB, so a
# batch of 100 would pass 256 KB.
LONG = "reports." + "-".join(["quarterly"] * 260)


def write_project(root: Path, types: list[str], cron: str = "0 * * * *") -> Path:
    (root / "sql").mkdir(parents=True)
    (root / "sql" / "job.sql").write_text("SELECT {{ window_start }};\n")
    data: dict[str, Any] = {
        "version": 1,
        "plan": "free",
        "worker": {"name": "limits", "compatibility_date": "2026-04-01", "cron_flag": "RUN"},
        "queue": {"name": "limits-jobs", "binding": "JOBS", "dead_letter_queue": "limits-dlq"},
        "analytics_engine": {"binding": "LOGS", "dataset": "limits_logs"},
        "jobs": {
            f"job-{i:04d}": {
                "type": t,
                "cron": cron,
                "sql": "sql/job.sql",
                "window": {"period": "hour", "offset": -1},
            }
            for i, t in enumerate(types)
        },
    }
    (root / "jobs.yaml").write_text(yaml.safe_dump(data))
    return root / "jobs.yaml"


def dispatch(
    wrangler: Wrangler, root: Path, types: list[str], cron: str = "0 * * * *"
) -> dict[str, Any]:
    """Generate and bundle the project, and fire its one trigger at AT."""
    files = generate.render(load(write_project(root, types, cron)))
    generate.write(files, root / "generated")
    (trigger,) = json.loads(files[generate.DISPATCH])["triggers"]
    module = bundle(wrangler, root / "generated" / generate.WRANGLER, root / "out")
    calls = [(trigger, int(AT.timestamp() * 1000))]
    result: dict[str, Any] = drive(module, queue="JOBS", dataset="LOGS", calls=calls)["calls"][0]
    assert result["error"] is None, result["error"]
    return result


def greedy_batches(sizes: list[int]) -> list[int]:
    """How many messages each batch holds when each is filled in order until the next
    message would break a limit."""
    out: list[int] = []
    count = used = 0
    for size in sizes:
        if count == MAX_MESSAGES or (count and used + size > MAX_BATCH_BYTES):
            out.append(count)
            count = used = 0
        count += 1
        used += size
    return [*out, count]


def summary(types: list[str], room: int) -> str:
    """The types blob: all of them, or the longest prefix that fits with '+N more'."""
    if len(",".join(types).encode()) <= room:
        return ",".join(types)
    room -= len(f"+{len(types)} more")
    kept: list[str] = []
    while len(",".join([*kept, types[len(kept)], ""]).encode()) <= room:
        kept.append(types[len(kept)])
    return ",".join([*kept, f"+{len(types) - len(kept)} more"])


def test_a_thousand_long_types_due_at_once_are_sent_in_batches_within_both_limits(
    wrangler: Wrangler, tmp_path: Path
) -> None:
    types = sorted(f"{LONG}.job-{i:04d}" for i in range(JOBS))
    out = dispatch(wrangler, tmp_path, types)
    assert sorted(body["type"] for body in out["sent"]) == types
    assert {body["scheduledFor"] for body in out["sent"]} == {SLOT}
    body_bytes = [
        len(json.dumps({"type": t, "scheduledFor": SLOT}, separators=(",", ":"))) for t in types
    ]
    expected = greedy_batches([b + MESSAGE_METADATA for b in body_bytes])
    assert [b["messages"] for b in out["batches"]] == expected
    assert len(expected) > JOBS // MAX_MESSAGES  # the byte limit, not the count, split them
    for batch in out["batches"]:
        assert batch["messages"] <= MAX_MESSAGES
        assert batch["bytes"] + MESSAGE_METADATA * batch["messages"] <= MAX_BATCH_BYTES


def test_a_thousand_types_due_at_once_make_one_data_point_within_its_limits(
    wrangler: Wrangler, tmp_path: Path
) -> None:
    types = sorted(f"team-{i % 7}.rollups.job-{i:04d}" for i in range(JOBS))
    out = dispatch(wrangler, tmp_path, types)
    assert [b["messages"] for b in out["batches"]] == [MAX_MESSAGES] * (JOBS // MAX_MESSAGES)
    (point,) = out["points"]
    room = MAX_BLOB_BYTES - len(f"0 * * * *{SLOT}sent")
    blob = summary(types, room)
    assert point == {
        "indexes": ["0 * * * *"],
        "blobs": ["0 * * * *", SLOT, blob, "sent"],
        "doubles": [JOBS, int(AT.timestamp() * 1000)],
    }
    assert blob.endswith(" more") and len(blob) > MAX_BLOB_BYTES - 100  # summarised, not cut
    assert sum(len(b.encode()) for b in point["blobs"]) <= MAX_BLOB_BYTES
    # and every sent type is still named in the log line
    assert out["logs"] == [
        f'cronwright: dispatch trigger="0 * * * *" scheduledTime=2026-11-02T04:00:09.000Z '
        f"sent={','.join(types)}"
    ]


def test_a_trigger_over_96_bytes_is_indexed_by_its_first_80_bytes_and_a_digest(
    wrangler: Wrangler, tmp_path: Path
) -> None:
    primes = "2,3,5,7,11,13,17,19,23,29,31,37,41,43,47,53"
    cron = f"{primes} 0,2,3,5,7,11,13,17,19,23 1,2,4,7,11,16,22,29 1,2,4,7,11 *"
    out = dispatch(wrangler, tmp_path, ["long.cron"], cron)
    (trigger,) = [p["blobs"][0] for p in out["points"]]
    assert len(trigger) > MAX_INDEX_BYTES
    assert out["points"][0]["indexes"] == [f"{trigger[:80]}~{fnv1a(trigger)}"]
