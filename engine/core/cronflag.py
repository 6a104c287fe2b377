"""The cron flag: one definition of "is scheduled dispatch on", for the generated Worker,
the local scheduler and the reconciler.

The variable named by ``worker.cron_flag`` turns dispatch on or off. Unset or empty, the
manifest's default (``worker.cron_enabled``) decides; any other value means on exactly
when, trimmed and in any case, it reads ``true``. The Worker's ``cronEnabled`` is
generated from the constants below (:data:`WORKER_JS`), so the two readings cannot drift.
"""

from __future__ import annotations

import json

#: The one value that turns dispatch on (compared trimmed and case-insensitively).
ON = "true"
#: Values that mean "not set": the manifest's default decides.
UNSET = ("",)
#: What JavaScript's String.prototype.trim removes (Python's str.strip differs: it keeps
#: U+FEFF and removes U+001C-U+001F and U+0085).
WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def is_on(value: str | None, default: bool) -> bool:
    """The flag's reading of ``value`` (None: the variable is not set)."""
    if value is None or value in UNSET:
        return default
    return value.strip(WHITESPACE).lower() == ON


# The same rule in JavaScript, for the Worker (CRON_FLAG and CRON_ENABLED_DEFAULT are
# constants of the generated module). JSON literals are JavaScript literals.
WORKER_JS = f"""export function cronEnabled(env) {{
  const raw = env[CRON_FLAG];
  if (raw === undefined || raw === null || {json.dumps(list(UNSET))}.includes(raw)) {{
    return CRON_ENABLED_DEFAULT;
  }}
  return String(raw).trim().toLowerCase() === {json.dumps(ON)};
}}"""
