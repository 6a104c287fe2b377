"""What one delivery came to. The statuses are the project's one vocabulary: the ledger,
the metrics, the consumer's tally and the CLI all use these words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

#: A delivery's outcome. ``succeeded``, ``dead_lettered``, ``paused`` and ``superseded``
#: are also ledger statuses. ``paused``: the slot lies inside a runtime pause;
#: ``superseded``: a newer slot of a ``latest`` job succeeded. Both are acked, never run.
Status = Literal["succeeded", "retry", "dead_lettered", "duplicate", "paused", "superseded"]
STATUSES: tuple[Status, ...] = (
    "succeeded",
    "retry",
    "dead_lettered",
    "duplicate",
    "paused",
    "superseded",
)
#: The outcomes that end a delivery without a failure: the transport acks them.
DONE: frozenset[Status] = frozenset({"succeeded", "duplicate", "paused", "superseded"})


@dataclass(frozen=True, kw_only=True)
class Outcome:
    status: Status
    job: str | None
    type: str | None
    slot: datetime | None
    attempt: int
    rows: int | None = None
    delay_seconds: float | None = None  # for retry: when the transport should redeliver
    error_class: str | None = None
    reason: str | None = None
    duration_ms: float = 0.0
    # A retry that is not a failure of the job (its slot is not due yet, or its dead
    # letter could not be written): it must not use up the job's attempt budget.
    handback: bool = False

    @property
    def succeeded(self) -> bool:
        """The slot's effect is in place (now or by an earlier delivery)."""
        return self.status in ("succeeded", "duplicate")
