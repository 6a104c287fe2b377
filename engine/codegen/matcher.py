"""The Worker's schedule matcher: data generated from the parsed cron, plus the JS that
reads it. The data is what ``engine.schedule.cron.Cron`` evaluates with (minutes, hours,
months, and the matching days for every month length and weekday of the 1st), so the
whole dialect (lists, ranges, steps, L, LW, W, #, xL, the day-field OR rule) reaches the
Worker already compiled, and the JS needs no parser. Zoned jobs read the fields on the
zone's wall clock (``Intl``) with the DST rules of ``engine.schedule.zones``.
"""

from __future__ import annotations

from typing import Any

from engine.core.model import Job
from engine.schedule import cron


def spec(
    c: cron.Cron, *, timezone: str | None = None, gap: str = "shift", overlap: str = "first"
) -> dict[str, Any]:
    """The matcher data for one schedule. ``days[dim - 28][w]`` is a bit mask of the days
    (bit d for day d) that match in a month of ``dim`` days whose 1st is weekday ``w``
    (0 = SUN)."""
    out: dict[str, Any] = {
        "minutes": list(c.minutes),
        "hours": list(c.hours),
        "months": sorted(c.months),
        "days": [[sum(1 << d for d in days) for days in by_weekday] for by_weekday in c.days],
    }
    if timezone is not None:
        out |= {"zone": timezone, "gap": gap, "overlap": overlap}
    return out


def job_spec(job: Job) -> dict[str, Any]:
    c = cron.parse(job.cron, allow_both_day_fields=job.allow_both_day_fields)
    return spec(c, timezone=job.timezone, gap=job.dst.gap.value, overlap=job.dst.overlap.value)


MATCHER_JS = """\
// The matcher. Each job's "match" data in dispatch.json is compiled by cronwright from the
// same parsed expression its Python runtime evaluates (engine/codegen/matcher.py).
const MINUTE_MS = 60000;
const FOLD_PROBE_MS = 12 * 3600000; // before any fold that contains the instant
const FORMATS = new Map();

// The wall-clock fields of instant ms in zone, as the epoch ms of those fields in UTC.
function wallOf(ms, zone) {
  let format = FORMATS.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
    });
    FORMATS.set(zone, format);
  }
  const f = {};
  for (const { type, value } of format.formatToParts(new Date(ms))) f[type] = Number(value);
  return Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute);
}

// Do the cron's fields match these (UTC-read) fields?
export function fieldsMatch(spec, fieldsMs) {
  const d = new Date(fieldsMs);
  const year = d.getUTCFullYear();
  const month = d.getUTCMonth() + 1;
  if (!spec.minutes.includes(d.getUTCMinutes())) return false;
  if (!spec.hours.includes(d.getUTCHours())) return false;
  if (!spec.months.includes(month)) return false;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const firstWeekday = new Date(Date.UTC(year, month - 1, 1)).getUTCDay();
  return ((spec.days[daysInMonth - 28][firstWeekday] >>> d.getUTCDate()) & 1) === 1;
}

// Is instant t the second occurrence of its wall time w (a fall-back fold)?
function repeated(zone, t, w) {
  const probe = t - FOLD_PROBE_MS;
  const fold = wallOf(probe, zone) - probe - (w - t); // offset then minus offset now
  return fold > 0 && wallOf(t - fold, zone) === w;
}

// Does the job's schedule fire in the minute of instant ms?
export function matches(spec, ms) {
  const t = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
  if (!spec.zone) return fieldsMatch(spec, t);
  const w = wallOf(t, spec.zone);
  if (fieldsMatch(spec, w)) return !(spec.overlap === "first" && repeated(spec.zone, t, w));
  if (spec.gap === "skip") return false;
  // The first minute after a spring-forward gap runs what the gap swallowed, once.
  const before = wallOf(t - MINUTE_MS, spec.zone);
  for (let x = before + MINUTE_MS; x < w; x += MINUTE_MS) {
    if (fieldsMatch(spec, x)) return true;
  }
  return false;
}
"""
