"""The Worker module wrangler deploys. scheduled() looks up controller.cron in the
dispatch table, keeps the trigger's jobs whose own schedule matches the minute (a folded
trigger fires more often than each of its jobs), sends one {type, scheduledFor} message
per job in sendBatch calls, logs one line and writes one Analytics Engine data point."""

from __future__ import annotations

import json

from engine.codegen.matcher import MATCHER_JS
from engine.core import cronflag
from engine.core.model import Manifest

# Cloudflare caps sendBatch at 100 messages.
_WORKER = """\
// {header}
import dispatch from "./dispatch.json";
{consumer_import}
const CRON_FLAG = {flag};
const CRON_ENABLED_DEFAULT = {default};
const QUEUE_BINDING = {binding};
const DATASET_BINDING = {dataset};
const MAX_BATCH = 100;

{matcher}
// The slot is controller.scheduledTime (not the time the run started), floored to the
// minute: replays and late invocations of one slot send the same scheduledFor.
export function slotOf(scheduledTime) {{
  const t = Math.floor(Number(scheduledTime) / 60000) * 60000;
  return new Date(t).toISOString().replace(/\\.\\d{{3}}Z$/, "Z");
}}

// The cron flag's one definition (engine/core/cronflag.py): unset or empty, the
// manifest's default; otherwise on exactly when it reads "true", trimmed, in any case.
{cron_enabled}

function spelling(cron) {{
  return String(cron).trim().split(/\\s+/).join(" ").toUpperCase();
}}

// Own keys only: a trigger string such as "constructor" must not find Object's members.
function lookup(table, key) {{
  return Object.hasOwn(table, key) ? table[key] : undefined;
}}

export function unknownTrigger(cron) {{
  const known = Object.keys(dispatch.triggers).map((t) => JSON.stringify(t)).join(", ");
  const same = lookup(dispatch.aliases, spelling(cron));
  const what = `cronwright: no jobs for cron trigger ${{JSON.stringify(cron)}}`;
  if (same !== undefined) {{
    return (
      `${{what}}: it is a non-canonical spelling of trigger ${{JSON.stringify(same)}}, and ` +
      "Cloudflare passes the trigger as written; deploy generated/wrangler.toml unchanged"
    );
  }}
  return `${{what}}; known triggers: ${{known}}; run make generate and redeploy`;
}}

// The message types trigger `cron` sends at scheduledTime: its jobs due in that minute.
export function dueTypes(cron, scheduledTime) {{
  const types = lookup(dispatch.triggers, cron);
  // A trigger we did not generate: fail loudly rather than drop the schedule.
  if (!types) throw new Error(unknownTrigger(cron));
  const minute = Math.floor(Number(scheduledTime) / 60000) * 60000;
  return types.filter((type) => matches(dispatch.jobs[type].match, minute));
}}

export function messagesFor(cron, scheduledTime) {{
  const scheduledFor = slotOf(scheduledTime);
  return dueTypes(cron, scheduledTime).map((type) => ({{
    body: {{ type, scheduledFor }},
    contentType: "json",
  }}));
}}

// One Workers Analytics Engine data point per dispatch, when the dataset is bound.
function record(env, cron, scheduledTime, types, outcome) {{
  const dataset = DATASET_BINDING && env[DATASET_BINDING];
  if (!dataset) return;
  dataset.writeDataPoint({{
    indexes: [cron],
    blobs: [cron, slotOf(scheduledTime), types.join(","), outcome],
    doubles: [types.length, Number(scheduledTime)],
  }});
}}

async function scheduled(controller, env, ctx) {{
  const {{ cron, scheduledTime }} = controller;
  if (!cron) {{
    // Only local dev can fire without a cron; say how, without a stack trace.
    console.error(
      "cronwright: this scheduled event names no cron trigger; in wrangler dev fire one " +
        "with /__scheduled?cron=<trigger>&time=<epoch ms>; known triggers: " +
        Object.keys(dispatch.triggers).map((t) => JSON.stringify(t)).join(", "),
    );
    return;
  }}
  const at = new Date(Number(scheduledTime)).toISOString();
  if (!cronEnabled(env)) {{
    const types = lookup(dispatch.triggers, cron) ? dueTypes(cron, scheduledTime) : [];
    console.log(`cronwright: ${{CRON_FLAG}} is not "true"; skipping ${{cron}}`);
    record(env, cron, scheduledTime, types, "skipped");
    return;
  }}
  const messages = messagesFor(cron, scheduledTime);
  for (let i = 0; i < messages.length; i += MAX_BATCH) {{
    await env[QUEUE_BINDING].sendBatch(messages.slice(i, i + MAX_BATCH));
  }}
  const types = messages.map((m) => m.body.type);
  console.log(
    `cronwright: dispatch trigger=${{JSON.stringify(cron)}} scheduledTime=${{at}} ` +
      `sent=${{types.length ? types.join(",") : "none"}}`,
  );
  record(env, cron, scheduledTime, types, "sent");
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
        dataset=json.dumps(manifest.dataset.binding) if manifest.dataset else "null",
        matcher=MATCHER_JS,
        cron_enabled=cronflag.WORKER_JS,
        spread=spread,
    )
