"""Daily warmup counters: the key format (keys.py), the counter body (counter.py), the
store protocol (store.py) and the reset action (reset.py). The stores are adapters
(engine/adapters/s3.py for R2, engine/adapters/localstore.py for a local directory); which
one to use is chosen in engine/app/wiring.py."""

from engine.core.times import Clock, utc_day_start
from engine.runtime.warmup.counter import Counter, check_amount, utc_today
from engine.runtime.warmup.keys import KEY_PREFIX, OrgId, counter_key
from engine.runtime.warmup.reset import WarmupReset
from engine.runtime.warmup.store import WarmupCounterStore

__all__ = [
    "KEY_PREFIX",
    "Clock",
    "Counter",
    "OrgId",
    "WarmupCounterStore",
    "WarmupReset",
    "check_amount",
    "counter_key",
    "utc_day_start",
    "utc_today",
]
