"""At run time a template's render is bounded too: one whose cost grows with the slot
(valid at validation's sample slot) stops at its budget and is dead-lettered with the
reason, at once, rather than hanging the consumer."""

from __future__ import annotations

import time

import pytest

from engine.core.model import RetryPolicy
from tests.fixtures.aio import run
from tests.integration.executor_support import SLOT, body, harness, make_job

pytestmark = pytest.mark.postgres

# At 10:00 this is 100,000 x 100,000 iterations; at validation's 00:00 sample, none.
GROWS_WITH_THE_HOUR = (
    "{% for a in range(slot.hour * 10000) %}{% for b in range(slot.hour * 10000) %}"
    "{% endfor %}{% endfor %}\nSELECT 1;\n"
)


def test_a_render_over_its_budget_is_dead_lettered_at_once(pg_dsn: str) -> None:
    job = make_job(retry=RetryPolicy(max_attempts=10))
    reason = (
        "permanent error: probe.sql: line 1: render stopped: took more than 100000 steps "
        "(loop iterations, calls and filters); a template shapes one statement: loop over "
        "params, and leave bulk work to the SQL"
    )

    async def main() -> None:
        async with harness(pg_dsn, [(job, GROWS_WITH_THE_HOUR)]) as h:
            started = time.process_time()
            outcome = await h.executor.handle(body(job, SLOT), message_id="m-1", attempt=1)
            assert time.process_time() - started < 5
            assert (outcome.status, outcome.error_class, outcome.reason) == (
                "dead_lettered",
                "template_error",
                reason,
            )
            assert [(d["reason"], d["attempts"]) for d in await h.dead_letters()] == [(reason, 1)]

    run(main())
