"""Benchmark: folding 250 jobs with random schedules (a quarter of them zoned) onto 5, 25
and 250 Cloudflare triggers: the time to fold, against the time to compute the jobs' own
UTC covers in the same run, and the invocations and wasted invocations per day (averaged
over the reference year) next to a lower bound: the distinct minutes a day at which some
job fires, which no set of triggers can invoke less often than.

    .venv/bin/python bench/fold.py [--jobs 250] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.core.errors import CronError
from engine.core.model import Job, Period, Window
from engine.schedule import cron, fold

MINUTES = ["0", "15", "30", "45", "*/15", "5,35", "10", "*/20", "50"]
HOURS = ["*", "2", "9", "1-3", "*/6", "9,17", "0", "22-23", "12", "*/2", "8-18"]
MONTHS = ["*"] * 6 + ["1-6", "*/3", "11"]
DOMS = ["L", "LW", "15W", "1", "1,15", "10-20", "*/5"]
DOWS = ["MON-FRI", "FRIL", "MON#2", "SUN", "TUE,THU", "SAT-SUN", "MON"]
ZONES = ["America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata", "Asia/Tokyo"]


def random_jobs(n: int, rng: random.Random) -> list[Job]:
    out: list[Job] = []
    while len(out) < n:
        kind = rng.choice(["any", "any", "dom", "dow"])
        dom = rng.choice(DOMS) if kind == "dom" else "*"
        dow = rng.choice(DOWS) if kind == "dow" else "*"
        text = f"{rng.choice(MINUTES)} {rng.choice(HOURS)} {dom} {rng.choice(MONTHS)} {dow}"
        try:
            cron.parse(text)
        except CronError:
            continue
        i = len(out)
        zone = rng.choice(ZONES) if rng.random() < 0.25 else None
        out.append(
            Job(name=f"job-{i}", type=f"bench.job-{i}", cron=text,
                window=Window(period=Period.HOUR), timezone=zone)
        )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=250)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    jobs = random_jobs(args.jobs, random.Random(args.seed))

    started = time.perf_counter()
    distinct = len({fold.need_of(j).text for j in jobs})
    baseline = time.perf_counter() - started
    bound = fold.union_per_day(jobs)
    print(
        f"folding {len(jobs)} random jobs ({sum(j.timezone is not None for j in jobs)} zoned, "
        f"{distinct} distinct schedules); per day averaged over {fold.REFERENCE_YEAR}"
    )
    print(f"baseline: the jobs' own covers in {baseline:.3f} s")
    print(f"lower bound: {bound:.1f} invocations/day (distinct minutes at which some job fires)")
    print(
        f"{'budget':>7}{'triggers':>10}{'fold s':>9}{'x base':>8}"
        f"{'invoc/day':>11}{'x bound':>9}{'wasted/day':>12}"
    )
    for budget in (5, 25, 250):
        started = time.perf_counter()
        result = fold.fold(jobs, budget)
        seconds = time.perf_counter() - started
        figures = fold.stats(result, jobs)
        runs = sum(r for r, _ in figures.values())
        wasted = sum(w for _, w in figures.values())
        print(
            f"{budget:>7}{len(result.triggers):>10}{seconds:>9.2f}{seconds / baseline:>8.1f}"
            f"{runs:>11.1f}{runs / bound:>9.2f}{wasted:>12.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
