"""preflight.sh: the cutover runbook as an idempotent script, for http_pull consumers
(wrangler >= 4.78 rejects `type = "http_pull"` in wrangler.toml)."""

from __future__ import annotations

import shlex

from engine.model import Environment, Manifest

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
    q = manifest.queue
    c = q.consumer
    queue = (env.queue if env else None) or q.name
    dlq = (env.dead_letter_queue if env else None) or q.dead_letter_queue
    label = env.name if env else ""
    out = [f"  {shlex.quote(label) if label else chr(39) * 2})"]
    out.append(f"    ensure_queue {shlex.quote(queue)}")
    out.append(f"    ensure_queue {shlex.quote(dlq)}")
    if manifest.bucket:
        b = manifest.bucket
        names = [(env.bucket_name if env else None) or b.bucket_name]
        preview = (env.preview_bucket_name if env else None) or b.preview_bucket_name
        if preview:
            names.append(preview)
        out += [f"    ensure_bucket {shlex.quote(n)}" for n in names]
    out.append(
        f"    ensure_http_consumer {shlex.quote(queue)} "
        f"--batch-size {c.max_batch_size} "
        f"--message-retries {manifest.consumer_max_retries} "
        f"--retry-delay-secs {c.retry_delay_seconds} "
        f"--visibility-timeout-secs {c.visibility_timeout_seconds} "
        f"--dead-letter-queue {shlex.quote(dlq)}"
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
