// Times a bundled Worker's module load and each scheduled() call (bench/worker_cpu.py).
// stdin: {"bundle": path, "queue": binding, "dataset": binding | null,
//         "calls": [[cron, scheduledTime ms], ...]}
// stdout: {"load": {"cpu": ms, "wall": ms}, "cpu": [ms...], "wall": [ms...],
//          "batches": {"count", "maxMessages", "maxBytes"}, "points": {"count", "maxIndexBytes",
//          "maxBlobBytes", "maxBlobs", "maxDoubles"}, "errors": [...]}
// A batch's bytes are its JSON bodies' UTF-8 bytes plus 100 per message, as Cloudflare
// counts them.
// Only the call is timed: the stub queue and dataset keep what they are given, and their
// sizes are counted after the loop.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";

const input = JSON.parse(readFileSync(0, "utf8"));
const ms = (usage) => (usage.user + usage.system) / 1000;

const loadCpu = process.cpuUsage();
const loadStart = performance.now();
const worker = await import(pathToFileURL(input.bundle).href);
const load = { wall: performance.now() - loadStart, cpu: ms(process.cpuUsage(loadCpu)) };

const logs = [];
console.log = (...args) => logs.push(args);
console.error = (...args) => logs.push(args);
const sent = [];
const points = [];
const env = { [input.queue]: { async sendBatch(messages) { sent.push(messages); } } };
if (input.dataset) env[input.dataset] = { writeDataPoint: (p) => points.push(p) };

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
}
const bytes = (text) => Buffer.byteLength(text, "utf8");
const batchBytes = (messages) =>
  messages.reduce((n, m) => n + bytes(JSON.stringify(m.body)) + 100, 0);
const most = (values) => values.reduce((a, b) => Math.max(a, b), 0);
const batches = {
  count: sent.length,
  maxMessages: most(sent.map((messages) => messages.length)),
  maxBytes: most(sent.map(batchBytes)),
};
const pointStats = {
  count: points.length,
  maxIndexBytes: most(points.flatMap((p) => p.indexes.map(bytes))),
  maxBlobBytes: most(points.map((p) => p.blobs.reduce((n, b) => n + bytes(b), 0))),
  maxBlobs: most(points.map((p) => p.blobs.length)),
  maxDoubles: most(points.map((p) => p.doubles.length)),
};
process.stdout.write(JSON.stringify({ load, cpu, wall, batches, points: pointStats, errors }));
