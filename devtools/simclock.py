"""An accelerated clock shared by several processes, for the demo and the real-process
tests: every process reads the same real start time from a file, and its clock runs
``speed`` times faster than real time from ``start`` on.

Before the file holds a time the clock stands at ``start``, so processes can start up
and register with the database at the simulated start, then all move together.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path


class SimClock:
    def __init__(self, start: datetime, speed: float, start_file: Path) -> None:
        self.start = start
        self.speed = speed
        self._file = Path(start_file)
        self._wall0: float | None = None

    def go(self) -> None:
        """Start the clocks of every process reading this file (the conductor's call)."""
        self._file.write_text(repr(time.time()))

    def __call__(self) -> datetime:
        if self._wall0 is None:
            try:
                self._wall0 = float(self._file.read_text())
            except (OSError, ValueError):
                return self.start
        return self.start + timedelta(seconds=max(0.0, time.time() - self._wall0) * self.speed)

    async def sleep(self, seconds: float) -> None:
        """A wait in simulated seconds."""
        await asyncio.sleep(max(seconds, 0.0) / self.speed)
