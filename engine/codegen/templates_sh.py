"""preflight.sh: the cutover runbook as an idempotent script, for http_pull consumers
(wrangler >= 4.78 rejects `type = "http_pull"` in wrangler.toml)."""

from __future__ import annotations

import shlex

from engine.core.model import Environment, Manifest

_HEAD = """\
#!/usr/bin/env bash
# {header}
#
# Creates what the Worker needs and (re)creates the HTTP pull consumer the Python
# runtime uses. Safe to run again: it checks before it creates.
#   usage: generated/preflight.sh [ENVIRONMENT]     (WRANGLER=... to pick the CLI)
set -euo pipefail

WRANGLER="${{WRANGLER:-npx --no-install wrangler}}"
ENVIRONMENT="${{1:-}}"

ensure_queue() {{
  if $WRANGLER queues info "$1" >/dev/null 2>&1; then
    echo "queue $1: exists"
  else
    $WRANGLER queues create "$1"
  fi
}}

ensure_bucket() {{
  if $WRANGLER r2 bucket info "$1" >/dev/null 2>&1; then
    echo "bucket $1: exists"
  else
    $WRANGLER r2 bucket create "$1"
  fi
}}

# Removing first (a no-op when there is none) makes the consumer's settings match the
# manifest even when it already existed.
ensure_http_consumer() {{
  local queue="$1"; shift
  $WRANGLER queues consumer http remove "$queue" >/dev/null 2>&1 || true
  $WRANGLER queues consumer http add "$queue" "$@"
}}

case "$ENVIRONMENT" in
"""


def _section(manifest: Manifest, env: Environment | None) -> list[str]:
    m = manifest.for_environment(env.name if env else None)
    q, c = m.queue, m.queue.consumer
    label = shlex.quote(env.name) if env else "''"
    out = [f"  {label})"]
    out.append(f"    ensure_queue {shlex.quote(q.name)}")
    out.append(f"    ensure_queue {shlex.quote(q.dead_letter_queue)}")
    if m.bucket:
        names = [m.bucket.bucket_name]
        if m.bucket.preview_bucket_name:
            names.append(m.bucket.preview_bucket_name)
        out += [f"    ensure_bucket {shlex.quote(n)}" for n in names]
    out.append(
        f"    ensure_http_consumer {shlex.quote(q.name)} "
        f"--batch-size {c.max_batch_size} "
        f"--message-retries {m.consumer_max_retries} "
        f"--retry-delay-secs {c.retry_delay_seconds} "
        f"--visibility-timeout-secs {c.visibility_timeout_seconds} "
        f"--dead-letter-queue {shlex.quote(q.dead_letter_queue)}"
    )
    out.append("    ;;")
    return out


def preflight_script(manifest: Manifest, header: str) -> str:
    lines = [_HEAD.format(header=header).rstrip("\n")]
    lines += _section(manifest, None)
    for env in manifest.environments:
        lines += _section(manifest, env)
    known = " ".join(["(none)"] + [e.name for e in manifest.environments])
    lines += [
        "  *)",
        f'    echo "unknown environment: $ENVIRONMENT (known: {known})" >&2',
        "    exit 2",
        "    ;;",
        "esac",
    ]
    return "\n".join(lines) + "\n"
