"""The Worker module wrangler deploys. scheduled() looks up controller.cron in the
dispatch table's matcher data, keeps the types of the trigger's schedules that match the
minute (a folded trigger fires more often than each of its jobs), sends one
{type, scheduledFor} message per type in sendBatch calls within Cloudflare's limits, logs
one line and writes one Analytics Engine data point within that service's limits."""

from __future__ import annotations

import json

from engine.codegen.matcher import MATCHER_JS
from engine.core import cronflag
from engine.core.model import Manifest

_WORKER = """\
// {header}
// Only what scheduled() reads: the bundler leaves dispatch.json's other keys out.
import {{ aliases, matcher }} from "./dispatch.json";
{consumer_import}
const CRON_FLAG = {flag};
const CRON_ENABLED_DEFAULT = {default};
const QUEUE_BINDING = {binding};
const DATASET_BINDING = {dataset};
// Cloudflare's limits (1 KB = 1000 bytes): a sendBatch holds at most 100 messages and
// 256 KB, counting about 100 bytes of metadata per message; an Analytics Engine data point
// holds an index of at most 96 bytes and blobs of at most 16 KB in all, of which the
// trigger's may take 1,000 (ours are far shorter) and the types what the others leave.
const MAX_BATCH = 100;
const MAX_BATCH_BYTES = 256000;
const MESSAGE_OVERHEAD_BYTES = 100;
const MAX_INDEX_BYTES = 96;
const MAX_BLOB_BYTES = 16000;
const MAX_CRON_BLOB_BYTES = 1000;
const ENCODER = new TextEncoder();
// Maps, not the objects: a trigger string such as "constructor" finds nothing, and one
// lookup site serves every trigger without V8 re-specialising it.
const TRIGGERS = new Map(Object.entries(matcher.triggers));
const ALIASES = new Map(Object.entries(aliases));

{matcher_js}
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

function knownTriggers() {{
  return [...TRIGGERS.keys()].map((t) => JSON.stringify(t)).join(", ");
}}

export function unknownTrigger(cron) {{
  const same = ALIASES.get(spelling(cron));
  const what = `cronwright: no jobs for cron trigger ${{JSON.stringify(cron)}}`;
  if (same !== undefined) {{
    return (
      `${{what}}: it is a non-canonical spelling of trigger ${{JSON.stringify(same)}}, and ` +
      "Cloudflare passes the trigger as written; deploy generated/wrangler.toml unchanged"
    );
  }}
  return `${{what}}; known triggers: ${{knownTriggers()}}; run cronwright generate and redeploy`;
}}

// The message types trigger `cron` sends at scheduledTime (sorted): the types of its
// schedules due in that minute, each distinct schedule tested once.
export function dueTypes(cron, scheduledTime) {{
  const schedules = TRIGGERS.get(cron);
  // A trigger we did not generate: fail loudly rather than drop the schedule.
  if (!schedules) throw new Error(unknownTrigger(cron));
  const minute = new Minute(matcher, scheduledTime);
  const types = [];
  for (const s of schedules) {{
    if (minute.matches(s)) for (const type of s.types) types.push(type);
  }}
  return types.sort();
}}

export function messagesFor(cron, scheduledTime) {{
  const scheduledFor = slotOf(scheduledTime);
  return dueTypes(cron, scheduledTime).map((type) => ({{
    body: {{ type, scheduledFor }},
    contentType: "json",
  }}));
}}

// The UTF-8 length of text, as TextEncoder would write it (a lone surrogate as U+FFFD),
// without encoding it: a message at a time, the allocations add up.
function bytesOf(text) {{
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {{
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c < 0xdc00 && c >= 0xd800 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {{
      bytes += 4; // a surrogate pair
      i += 1;
    }} else bytes += 3;
  }}
  return bytes;
}}

// The messages in sendBatch-sized batches: at most MAX_BATCH messages and MAX_BATCH_BYTES
// (JSON bodies plus metadata) each, in order.
export function batchesOf(messages) {{
  const batches = [];
  let batch = [];
  let bytes = 0;
  for (const message of messages) {{
    const size = bytesOf(JSON.stringify(message.body)) + MESSAGE_OVERHEAD_BYTES;
    if (batch.length === MAX_BATCH || (batch.length > 0 && bytes + size > MAX_BATCH_BYTES)) {{
      batches.push(batch);
      batch = [];
      bytes = 0;
    }}
    batch.push(message);
    bytes += size;
  }}
  if (batch.length > 0) batches.push(batch);
  return batches;
}}

// The longest prefix of text within maxBytes of UTF-8 (whole characters only).
function clip(text, maxBytes) {{
  const {{ read }} = ENCODER.encodeInto(text, new Uint8Array(maxBytes));
  return text.slice(0, read);
}}

// FNV-1a (32 bits) of text's UTF-8, in hex: tells apart two long crons that share a prefix.
function digest(text) {{
  let h = 0x811c9dc5;
  for (const byte of ENCODER.encode(text)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}}

// A data point's index: the cron, or when it is over MAX_INDEX_BYTES, its first 80 bytes
// and a digest of the whole.
export function indexFor(cron) {{
  if (bytesOf(cron) <= MAX_INDEX_BYTES) return cron;
  return `${{clip(cron, 80)}}~${{digest(cron)}}`;
}}

// The types joined by ",", or as many as fit in maxBytes followed by "+N more".
export function typesBlob(types, maxBytes) {{
  const all = types.join(",");
  if (bytesOf(all) <= maxBytes) return all;
  const room = maxBytes - bytesOf(`+${{types.length}} more`);
  const kept = [];
  let used = 0;
  for (const type of types) {{
    const size = bytesOf(type) + 1; // and its comma
    if (used + size > room) break;
    kept.push(type);
    used += size;
  }}
  return `${{kept.join(",")}}${{kept.length ? "," : ""}}+${{types.length - kept.length}} more`;
}}

// The Workers Analytics Engine data point of one dispatch, within the service's limits.
export function dataPoint(cron, scheduledTime, types, outcome) {{
  const head = [clip(String(cron), MAX_CRON_BLOB_BYTES), slotOf(scheduledTime)];
  const room = MAX_BLOB_BYTES - bytesOf(head.join("")) - bytesOf(outcome);
  return {{
    indexes: [indexFor(String(cron))],
    blobs: [...head, typesBlob(types, room), outcome],
    doubles: [types.length, Number(scheduledTime)],
  }};
}}

// One data point per dispatch, when the dataset is bound.
function record(env, cron, scheduledTime, types, outcome) {{
  const dataset = DATASET_BINDING && env[DATASET_BINDING];
  if (!dataset) return;
  dataset.writeDataPoint(dataPoint(cron, scheduledTime, types, outcome));
}}

async function scheduled(controller, env, ctx) {{
  const {{ cron, scheduledTime }} = controller;
  if (!cron) {{
    // Only local dev can fire without a cron; say how, without a stack trace.
    console.error(
      "cronwright: this scheduled event names no cron trigger; in wrangler dev fire one " +
        "with /__scheduled?cron=<trigger>&time=<epoch ms>; known triggers: " +
        knownTriggers(),
    );
    return;
  }}
  const at = new Date(Number(scheduledTime)).toISOString();
  if (!cronEnabled(env)) {{
    const types = TRIGGERS.has(cron) ? dueTypes(cron, scheduledTime) : [];
    console.log(`cronwright: ${{CRON_FLAG}} is not "true"; skipping ${{cron}}`);
    record(env, cron, scheduledTime, types, "skipped");
    return;
  }}
  const messages = messagesFor(cron, scheduledTime);
  for (const batch of batchesOf(messages)) {{
    await env[QUEUE_BINDING].sendBatch(batch);
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
        matcher_js=MATCHER_JS,
        cron_enabled=cronflag.WORKER_JS,
        spread=spread,
    )
