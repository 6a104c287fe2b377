// Times a bundled Worker's module load and each scheduled() call (bench/worker_cpu.py).
// stdin: {"bundle": path, "queue": binding, "dataset": binding | null,
//         "calls": [[cron, scheduledTime ms], ...]}
// stdout: {"load": {"cpu": ms, "wall": ms}, "cpu": [ms...], "wall": [ms...],
//          "batches": {"count", "maxMessages", "maxBytes"}, "points": {"count",
//          "maxIndexBytes", "maxBlobBytes", "maxBlobs", "maxDoubles"}, "errors": [...]}
// Only the call is timed: the stub queue, dataset and console keep what one call gives
// them, and it is measured and dropped after the call (kept, it would grow the heap as a
// Worker's never does, and the collector's work would land in later calls). A batch's
// bytes are its JSON bodies' UTF-8 bytes plus 100 per message, as Cloudflare counts them.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";

const input = JSON.parse(readFileSync(0, "utf8"));
const ms = (usage) => (usage.user + usage.system) / 1000;
const bytes = (text) => Buffer.byteLength(text, "utf8");

const loadCpu = process.cpuUsage();
const loadStart = performance.now();
const worker = await import(pathToFileURL(input.bundle).href);
const load = { wall: performance.now() - loadStart, cpu: ms(process.cpuUsage(loadCpu)) };

let sent = [];
let points = [];
let logs = [];
console.log = (...args) => logs.push(args);
console.error = (...args) => logs.push(args);
const env = { [input.queue]: { async sendBatch(messages) { sent.push(messages); } } };
if (input.dataset) env[input.dataset] = { writeDataPoint: (p) => points.push(p) };

const batches = { count: 0, maxMessages: 0, maxBytes: 0 };
const pointStats = { count: 0, maxIndexBytes: 0, maxBlobBytes: 0, maxBlobs: 0, maxDoubles: 0 };
function measure() {
  for (const messages of sent) {
    const size = messages.reduce((n, m) => n + bytes(JSON.stringify(m.body)) + 100, 0);
    batches.count += 1;
    batches.maxMessages = Math.max(batches.maxMessages, messages.length);
    batches.maxBytes = Math.max(batches.maxBytes, size);
  }
  for (const p of points) {
    pointStats.count += 1;
    pointStats.maxIndexBytes = Math.max(pointStats.maxIndexBytes, ...p.indexes.map(bytes));
    const blobBytes = p.blobs.reduce((n, b) => n + bytes(b), 0);
    pointStats.maxBlobBytes = Math.max(pointStats.maxBlobBytes, blobBytes);
    pointStats.maxBlobs = Math.max(pointStats.maxBlobs, p.blobs.length);
    pointStats.maxDoubles = Math.max(pointStats.maxDoubles, p.doubles.length);
  }
  sent = [];
  points = [];
  logs = [];
}

const cpu = [];
const wall = [];
const errors = [];
for (const [cron, scheduledTime] of input.calls) {
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  try {
    await worker.default.scheduled({ cron, scheduledTime }, env, {});
  } catch (e) {
    errors.push(e.message);
  }
  wall.push(performance.now() - start);
  cpu.push(ms(process.cpuUsage(cpuStart)));
  measure();
}
process.stdout.write(JSON.stringify({ load, cpu, wall, batches, points: pointStats, errors }));
