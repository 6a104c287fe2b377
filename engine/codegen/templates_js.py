"""The Worker module wrangler deploys: scheduled() looks up controller.cron in the
dispatch table and sends one {type, scheduledFor} message per job in sendBatch calls."""

from __future__ import annotations

import json

from engine.core.model import Manifest

# Cloudflare caps sendBatch at 100 messages.
_WORKER = """\
// {header}
import dispatch from "./dispatch.json";
{consumer_import}
const CRON_FLAG = {flag};
const CRON_ENABLED_DEFAULT = {default};
const MAX_BATCH = 100;

// The slot is controller.scheduledTime (not the time the run started), floored to the
// minute: replays and late invocations of one slot send the same scheduledFor.
export function slotOf(scheduledTime) {{
  const t = Math.floor(Number(scheduledTime) / 60000) * 60000;
  return new Date(t).toISOString().replace(/\\.\\d{{3}}Z$/, "Z");
}}

export function cronEnabled(env) {{
  const raw = env[CRON_FLAG];
  if (raw === undefined || raw === null || raw === "") return CRON_ENABLED_DEFAULT;
  return String(raw).trim().toLowerCase() === "true";
}}

export function messagesFor(cron, scheduledTime) {{
  const types = dispatch.triggers[cron];
  if (!types) {{
    // A trigger we did not generate: fail loudly rather than drop the schedule.
    throw new Error(
      `cronwright: no jobs for cron trigger ${{JSON.stringify(cron)}}; ` +
        "run make generate and redeploy",
    );
  }}
  const scheduledFor = slotOf(scheduledTime);
  return types.map((type) => ({{ body: {{ type, scheduledFor }}, contentType: "json" }}));
}}

async function scheduled(controller, env, ctx) {{
  if (!cronEnabled(env)) {{
    console.log(`cronwright: ${{CRON_FLAG}} is not "true"; skipping ${{controller.cron}}`);
    return;
  }}
  const messages = messagesFor(controller.cron, controller.scheduledTime);
  for (let i = 0; i < messages.length; i += MAX_BATCH) {{
    await env[{binding}].sendBatch(messages.slice(i, i + MAX_BATCH));
  }}
}}

export default {{ {spread}scheduled }};
"""


def worker_module(manifest: Manifest, header: str, *, consumer_import: str | None) -> str:
    if consumer_import:
        imp = f"import consumer from {json.dumps(consumer_import)};\n"
        spread = "...consumer, "
    else:
        imp, spread = "", ""
    return _WORKER.format(
        header=header,
        consumer_import=imp,
        flag=json.dumps(manifest.worker.cron_flag),
        default="true" if manifest.worker.cron_enabled else "false",
        binding=json.dumps(manifest.queue.binding),
        spread=spread,
    )
