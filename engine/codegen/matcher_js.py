"""The Worker's matcher in JS: reads the data ``engine.codegen.matcher`` compiles."""

MATCHER_JS = """\
// The matcher. Its data (dispatch.json's "matcher") is compiled by cronwright from the same
// parsed expressions and zone transitions its Python runtime evaluates
// (engine/codegen/matcher.py): it needs no cron parser and no Intl.
const MINUTE_MS = 60000;

// The fields the matcher reads of wall time w (epoch ms whose UTC fields are the wall
// clock's): shape is (days in the month - 28) * 7 + the weekday of its 1st (0 = SUN).
function fieldsOf(w) {
  const d = new Date(w);
  const year = d.getUTCFullYear();
  const month = d.getUTCMonth();
  const days = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const first = new Date(Date.UTC(year, month, 1)).getUTCDay();
  return {
    minute: d.getUTCMinutes(),
    hour: d.getUTCHours(),
    month: month + 1,
    day: d.getUTCDate(),
    shape: (days - 28) * 7 + first,
  };
}

function bit(mask, i) {
  return ((mask >>> i) & 1) === 1;
}

function fieldsMatch(s, f, days) {
  const m = f.minute;
  return (
    (m < 30 ? bit(s.minutes[0], m) : bit(s.minutes[1], m - 30)) &&
    bit(s.hours, f.hour) &&
    bit(s.months, f.month) &&
    bit(days[s.days][f.shape], f.day)
  );
}

// One minute of UTC as the matcher sees it: its fields, and for each zone asked about, the
// wall clock's fields, whether this is a wall time's second occurrence (a fall-back fold),
// and the wall times a spring-forward gap that ends here swallowed. Worked out once per
// invocation, whatever the number of schedules.
class Minute {
  constructor(tables, ms) {
    this.tables = tables;
    this.t = Math.floor(Number(ms) / MINUTE_MS) * MINUTE_MS;
    this.utc = fieldsOf(this.t);
    this.zones = new Map();
  }

  // Does schedule s fire in this minute?
  matches(s) {
    const days = this.tables.days;
    if (s.zone === null) return fieldsMatch(s, this.utc, days);
    const z = this.zone(s.zone);
    if (fieldsMatch(s, z.fields, days)) return !(s.overlap === "first" && z.repeated);
    // The first minute after a spring-forward gap runs what the gap swallowed, once.
    return s.gap === "shift" && z.gap !== null && z.gap.some((f) => fieldsMatch(s, f, days));
  }

  zone(name) {
    let z = this.zones.get(name);
    if (z) return z;
    const [from, until] = this.tables.horizon;
    if (this.t < from || this.t >= until) {
      throw new Error(
        `cronwright: ${new Date(this.t).toISOString()} is outside the years this Worker's ` +
          `time zone tables cover (${new Date(from).toISOString()} to ` +
          `${new Date(until).toISOString()}); run cronwright generate with a cronwright ` +
          "whose horizon covers it, and redeploy",
      );
    }
    const table = this.tables.zones[name];
    let offset = table.offset;
    let last = null; // the latest offset change at or before t: [instant, before, after]
    for (const change of table.transitions) {
      if (change[0] > this.t) break;
      last = change;
      offset = change[2];
    }
    const wall = this.t + offset * MINUTE_MS;
    let gap = null; // or the fields of the wall times a gap ending here swallowed
    if (last !== null && last[0] === this.t && last[2] > last[1]) {
      gap = [];
      for (let x = this.t + last[1] * MINUTE_MS; x < wall; x += MINUTE_MS) gap.push(fieldsOf(x));
    }
    const fold = last === null ? 0 : (last[1] - last[2]) * MINUTE_MS;
    z = { fields: fieldsOf(wall), repeated: fold > 0 && this.t < last[0] + fold, gap };
    this.zones.set(name, z);
    return z;
  }
}

// Does schedule s (an entry pointing into tables) fire in the minute of instant ms? For
// tests and probes: scheduled() asks the same Minute about every schedule of its trigger.
export function scheduleMatches(tables, s, ms) {
  return new Minute(tables, ms).matches(s);
}
"""
