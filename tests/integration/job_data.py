"""Generated source rows for the daily, monthly, score, enrichment and warmup jobs, and
the values each job must produce, computed here in plain Python (independently of
the SQL), with the window edges deliberately populated."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.integration import jobs_support as js

EMAIL = {
    "email_sent": "sent",
    "email_delivered": "delivered",
    "email_opened": "opened",
    "email_clicked": "clicked",
    "email_bounced": "bounced",
    "email_complained": "complained",
    "email_unsubscribed": "unsubscribed",
}
OTHER = ("page_view", "form_submitted")


def _ids(rnd: random.Random, n: int) -> list[uuid.UUID]:
    return [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(n)]


def activity(start: datetime, end: datetime, *, n: int, seed: int) -> list[js.Event]:
    """Events in [start - 1 day, end + 1 day), campaign ids on most email events (one
    campaign id shared by two orgs), and events on both edges of [start, end)."""
    rnd = random.Random(seed)
    orgs = _ids(rnd, 3)
    contacts = {o: _ids(rnd, 15) for o in orgs}
    campaigns = {o: [f"cmp-{i}-{rnd.randrange(10**6)}" for i in range(2)] for o in orgs}
    campaigns[orgs[1]].append(campaigns[orgs[0]][0])
    span = (end - start).total_seconds() + 2 * 86400
    first = start - timedelta(days=1)

    def event(at: datetime) -> js.Event:
        org = rnd.choice(orgs)
        etype = rnd.choice([*EMAIL, *OTHER])
        source = None
        if etype in EMAIL and rnd.random() < 0.9:
            source = rnd.choice(campaigns[org])
        return js.Event(org, contacts[org][int(15 * rnd.random() ** 2)], etype, source, at)

    edges = [start, start - timedelta(microseconds=1), end, end - timedelta(microseconds=1)]
    out = [event(first + timedelta(seconds=rnd.uniform(0, span))) for _ in range(n)]
    return out + [event(at) for at in edges for _ in range(3)]


def campaign_stats(events: list[js.Event], start: datetime, end: datetime) -> dict[Any, Any]:
    """(campaign_id, org, date) -> the nine counters."""
    counts: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(EMAIL.values(), 0))
    opened: dict[Any, set[uuid.UUID]] = defaultdict(set)
    clicked: dict[Any, set[uuid.UUID]] = defaultdict(set)
    for e in events:
        if not (start <= e.created_at < end) or e.event_source is None or e.event_type not in EMAIL:
            continue
        key = (e.event_source, e.organization_id, start.date())
        counts[key][EMAIL[e.event_type]] += 1
        if e.event_type == "email_opened":
            opened[key].add(e.contact_id)
        if e.event_type == "email_clicked":
            clicked[key].add(e.contact_id)
    return {
        k: (
            c["sent"],
            c["delivered"],
            c["opened"],
            len(opened[k]),
            c["clicked"],
            len(clicked[k]),
            c["bounced"],
            c["complained"],
            c["unsubscribed"],
        )
        for k, c in counts.items()
    }


def monthly_usage(events: list[js.Event], start: datetime, end: datetime) -> dict[Any, Any]:
    """(org, first of month, 'monthly:type', 'monthly_summary') -> (count, unique)."""
    counts: dict[Any, int] = defaultdict(int)
    contacts: dict[Any, set[uuid.UUID]] = defaultdict(set)
    for e in events:
        if start <= e.created_at < end:
            key = (e.organization_id, start.date(), f"monthly:{e.event_type}", "monthly_summary")
            counts[key] += 1
            contacts[key].add(e.contact_id)
    return {k: (counts[k], len(contacts[k])) for k in counts}


@dataclass(frozen=True)
class Score:
    id: uuid.UUID
    organization_id: uuid.UUID
    contact_id: uuid.UUID
    total_score: int
    scored_at: datetime

    def row(self) -> tuple[Any, ...]:
        grade = "A" if self.total_score >= 80 else "B" if self.total_score >= 50 else "C"
        return (
            self.id,
            self.organization_id,
            self.contact_id,
            self.total_score,
            grade,
            self.scored_at,
        )


SCORE_COLUMNS = ("id", "organization_id", "contact_id", "total_score", "grade", "scored_at")


def scores(slot: datetime, *, seed: int) -> list[Score]:
    """A scoring history: several rows per contact, some of them after the slot, and
    a contact scored only after it."""
    rnd = random.Random(seed)
    out = []
    for org in _ids(rnd, 3):
        for contact in _ids(rnd, rnd.randint(5, 30)):
            for _ in range(rnd.randint(1, 4)):
                at = slot + timedelta(seconds=rnd.uniform(-20 * 86400, 86400))
                out.append(Score(uuid.uuid4(), org, contact, rnd.randint(0, 100), at))
        late = uuid.uuid4()
        out.append(Score(uuid.uuid4(), org, late, 100, slot))  # at the slot: not before it
        out.append(Score(uuid.uuid4(), org, late, 100, slot + timedelta(hours=1)))
    return out


def percentile_cont(values: list[int], p: float) -> float:
    ordered = sorted(values)
    pos = p * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])


def score_distribution(rows: list[Score], slot: datetime) -> dict[Any, Any]:
    """(org, slot's date) -> (avg, min, max, p50, p90, p95, total_contacts)."""
    latest: dict[tuple[uuid.UUID, uuid.UUID], Score] = {}
    for s in rows:
        key = (s.organization_id, s.contact_id)
        if s.scored_at < slot and (key not in latest or s.scored_at > latest[key].scored_at):
            latest[key] = s
    per_org: dict[uuid.UUID, list[int]] = defaultdict(list)
    for (org, _), s in latest.items():
        per_org[org].append(s.total_score)
    return {
        (org, slot.date()): (
            js.money(Decimal(sum(v)) / len(v), "0.01"),
            min(v),
            max(v),
            percentile_cont(v, 0.5),
            percentile_cont(v, 0.9),
            percentile_cont(v, 0.95),
            len(v),
        )
        for org, v in per_org.items()
    }


@dataclass(frozen=True)
class Enrichment:
    organization_id: uuid.UUID
    contact_id: uuid.UUID
    status: str
    total_cost: Decimal | None
    total_latency_ms: int | None
    created_at: datetime
    completed_at: datetime | None

    def row(self) -> tuple[Any, ...]:
        return (
            uuid.uuid4(),
            self.organization_id,
            self.contact_id,
            self.status,
            self.total_cost,
            self.total_latency_ms,
            self.created_at,
            self.completed_at,
        )


ENRICHMENT_COLUMNS = (
    "id",
    "organization_id",
    "contact_id",
    "status",
    "total_cost",
    "total_latency_ms",
    "created_at",
    "completed_at",
)
STATUSES = ("pending", "running", "completed", "completed", "completed", "failed", "exhausted")


def enrichment_jobs(start: datetime, end: datetime, *, seed: int) -> list[Enrichment]:
    """Jobs created the day before, during and after [start, end), on its edges too,
    with and without a cost."""
    rnd = random.Random(seed)
    orgs = _ids(rnd, 4)
    out = []
    created = [start - timedelta(microseconds=1), start, end - timedelta(microseconds=1), end]
    created += [start + timedelta(seconds=rnd.uniform(-86400, 2 * 86400)) for _ in range(160)]
    for at in created:
        status = rnd.choice(STATUSES)
        done = status in ("completed", "failed", "exhausted")
        cost = None if rnd.random() < 0.2 else Decimal(rnd.randrange(0, 500_000)) / 10_000
        out.append(
            Enrichment(
                rnd.choice(orgs),
                uuid.uuid4(),
                status,
                cost,
                rnd.randrange(50, 5000) if done else None,
                at,
                at + timedelta(seconds=rnd.uniform(1, 3 * 86400)) if done else None,
            )
        )
    return out


def enrichment_metrics(
    jobs: list[Enrichment], start: datetime, end: datetime, slot: datetime
) -> dict[Any, Any]:
    """(org, date) -> (total_enriched, success_rate, avg_cost, avg_freshness); a job
    counts as completed when it completed before the slot."""
    per_org: dict[uuid.UUID, list[Enrichment]] = defaultdict(list)
    for j in jobs:
        if start <= j.created_at < end:
            per_org[j.organization_id].append(j)
    out = {}
    for org, js_ in per_org.items():
        completed = [
            j
            for j in js_
            if j.status == "completed" and j.completed_at is not None and j.completed_at < slot
        ]
        costs = [j.total_cost for j in js_ if j.total_cost is not None]
        hours = [
            Decimal(round((j.completed_at - j.created_at).total_seconds() * 1_000_000))
            / 3_600_000_000
            for j in completed
            if j.completed_at is not None
        ]
        out[(org, start.date())] = (
            len(js_),
            js.money(Decimal(100 * len(completed)) / len(js_), "0.01"),
            js.money(sum(costs, Decimal(0)) / len(costs), "0.0001") if costs else None,
            js.money(sum(hours, Decimal(0)) / len(hours), "0.01") if hours else None,
        )
    return out


DOMAIN_COLUMNS = ("id", "organization_id", "domain", "status", "verified_at", "created_at")


def sending_domains(slot: datetime, *, seed: int) -> list[tuple[Any, ...]]:
    """Domains of every status, created around the 30-day edge and the slot."""
    rnd = random.Random(seed)
    out = []
    edge = slot - timedelta(days=30)
    times = [edge - timedelta(microseconds=1), edge, slot - timedelta(microseconds=1), slot]
    times += [slot - timedelta(days=rnd.uniform(0, 60)) for _ in range(40)]
    for i, at in enumerate(times):
        status = rnd.choice(("pending", "verified", "verified", "failed"))
        verified_at = at + timedelta(hours=1) if status == "verified" else None
        org = uuid.UUID(int=rnd.getrandbits(128))
        out.append((uuid.uuid4(), org, f"mail{i}.example.com", status, verified_at, at))
    return out


def warmup_domains(rows: list[tuple[Any, ...]], slot: datetime) -> list[tuple[Any, ...]]:
    edge = slot - timedelta(days=30)
    return sorted(
        (r[1], r[2])
        for r in rows
        if r[3] == "verified" and r[4] is not None and r[4] < slot and edge <= r[5] < slot
    )


def day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)
