"""What a consumer did, for its closing line and for ``--once``'s exit code: one tally for
both transports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from engine.runtime.outcome import STATUSES


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    errors: int = 0  # deliveries the consumer could not hand to the executor (handed back)
    batches: int = 0  # Cloudflare pulls, an empty one included
    ack_failures: int = 0  # Cloudflare ack calls that failed (their leases lapse)
    released: int = 0  # local deliveries given back at stop

    @property
    def ok(self) -> bool:
        """Every message done (succeeded, duplicate, paused or superseded), and every ack
        call went through."""
        failed = self.statuses["retry"] + self.statuses["dead_lettered"]
        return failed == 0 and self.errors == 0 and self.ack_failures == 0

    def summary(self) -> str:
        total = sum(self.statuses.values()) + self.errors
        text = f"{total} message{'s' * (total != 1)}"
        if self.batches:
            text += f" in {self.batches} pull{'s' * (self.batches != 1)}"
        text += ": " + ", ".join(f"{s} {self.statuses[s]}" for s in STATUSES)
        if self.errors:
            text += f", not handled {self.errors}"
        if self.ack_failures:
            text += f", failed ack calls {self.ack_failures}"
        if self.released:
            text += f", released at stop {self.released}"
        return text
