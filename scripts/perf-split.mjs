// Where a request's CPU goes inside workerd, measured with Linux perf rather than V8's own
// profiler: the inspector's sampling profiler credits the wasm and its JS glue with about half
// of the isolate's time, while perf, which samples the whole process, finds all JIT code (the
// wasm and every JS function) at ~15% of the gateway's CPU and the runtime's C++ (workerd's API
// objects, KJ's promises and I/O, V8's own runtime, the allocator) at ~75%. Each subject runs
// on a socket of its own, its workerd alone on one core, loaded at --c requests in flight
// from this process (with the mock) on the other; `perf record -e cpu-clock` samples the
// workerd process for --seconds while the load runs. Per request (µs of CPU, samples x period
// / requests answered):
//   - by where the code lives: JIT (wasm + JS), workerd's KJ, V8's runtime and builtins, the
//     runtime's API (workerd::api/jsg), tcmalloc, SQLite (Miniflare's D1 and Durable Objects),
//     the kernel, libc;
//   - inclusive, for the runtime operations a Worker asks for (fetch, Headers, Response,
//     timers, the Queue send and consumer, SQL), where perf's call graphs reach them;
//   - the functions whose self time differs most between the first two subjects.
//
//   node scripts/perf-split.mjs [--seconds=10] [--c=16] [--subjects=read-floor,gateway,gateway-json]
//                               [--top=30] [--json=PATH]
//   node scripts/perf-split.mjs --subjects=gateway-json:.bench/ab/before,gateway-json:.bench/ab/after
//
// Subjects: floor (bench/rust-floor), read-floor (bench/rust-read-floor: reads both bodies
// whole; scripts/build-rust-floor builds both), gateway (scripts/bench's JSON request: no
// max_tokens, so under load asked upstream as a stream and assembled), gateway-json (the same
// with max_tokens 100: asked as JSON), gateway-limited (the bench's key with rate limits and a
// budget). A gateway subject may name another build's directory after a colon (one saved by
// `scripts/ab.mjs save DIR`), so two builds are measured in one run. The gateway runs as
// scripts/bench runs it: usage store (Queue + D1) on, simulated in
// the same workerd, so its SQL and its consumer count here although in production D1's SQL runs
// on D1's side. Needs `perf` (Debian's linux-perf) and `taskset`; figures move ±15% between
// runs on a shared machine, so compare subjects within one run.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startGateway, startRustFloor, putConfig, benchSuiteConfig, DEV_GATEWAY_KEY, BENCH_LIMITED_KEY, ROOT } from "./lib/gateway.mjs";
import { immediateZeroTimeouts } from "./lib/immediate-timeouts.mjs";
import { withStartedWorkerd, pinToCore } from "./lib/workerd-process.mjs";
import { option } from "./lib/options.mjs";
import { startMockProvider } from "../tests/e2e/mock-providers.mjs";

const SECONDS = Number(option("seconds", 10));
const CONCURRENCY = Number(option("c", 16));
const TOP = Number(option("top", 30));
const SPECS = option("subjects", "read-floor,gateway,gateway-json").split(",");
const JSON_PATH = option("json", path.join(ROOT, ".bench/perf-split.json"));
const FREQUENCY = 4000; // samples a second: 250 µs of CPU each
const SUBJECT_CORE = 1;
const REST_CORE = 0;

for (const [tool, args] of [["perf", ["--version"]], ["taskset", ["-V"]]]) {
  try {
    execFileSync(tool, args, { stdio: "pipe" });
  } catch {
    console.error(`scripts/perf-split.mjs needs ${tool} (Debian: ${tool === "perf" ? "linux-perf" : "util-linux"})`);
    process.exit(2);
  }
}
if (os.cpus().length < 2) {
  console.error("scripts/perf-split.mjs needs two cores: the subject alone on one, the client and mock on the other");
  process.exit(2);
}
const KNOWN = ["floor", "read-floor", "gateway", "gateway-json", "gateway-limited"];
/** A subject's kind and, for the gateway, the build it runs (`kind:DIR`; default build/). */
const parse = (spec) => {
  const [kind, dir] = spec.split(/:(.*)/s);
  if (!KNOWN.includes(kind)) throw new Error(`--subjects: ${kind} is not one of ${KNOWN.join(", ")}`);
  if (dir && !kind.startsWith("gateway")) throw new Error(`--subjects: only a gateway subject takes a build directory (${spec})`);
  const script = path.resolve(ROOT, dir ?? "build", "index.js");
  if (dir && (path.relative(ROOT, script).startsWith("..") || !existsSync(script))) {
    throw new Error(`--subjects: ${dir} must be a build directory inside ${ROOT} with an index.js (scripts/ab.mjs save DIR)`);
  }
  return { spec, kind, script };
};
const SUBJECTS = SPECS.map(parse);

immediateZeroTimeouts();
pinToCore(process.pid, REST_CORE);
const mock = await startMockProvider({ name: "bench", gapMs: 0 });
const upstream = new URL(mock.baseUrl).origin;

async function start({ kind, script }) {
  if (kind === "floor" || kind === "read-floor") {
    const crate = kind === "floor" ? "rust-floor" : "rust-read-floor";
    if (!existsSync(path.join(ROOT, `bench/${crate}/build/index.js`))) execFileSync("scripts/build-rust-floor", { cwd: ROOT, stdio: "inherit" });
    return withStartedWorkerd(() => startRustFloor(upstream, { direct: true, crate }));
  }
  return withStartedWorkerd(async () => {
    const started = await startGateway({ direct: true, scriptPath: script });
    await putConfig(started.url, benchSuiteConfig(mock.baseUrl));
    return started;
  });
}

function requestOf({ kind }) {
  const body = { model: "bench", messages: [{ role: "user", content: "Say hello" }], stream: false };
  if (kind === "gateway-json") body.max_tokens = 100;
  const key = kind === "gateway-limited" ? BENCH_LIMITED_KEY : DEV_GATEWAY_KEY;
  return { body: JSON.stringify(body), headers: { "content-type": "application/json", authorization: `Bearer ${key}` } };
}

/** Loads `url` at CONCURRENCY until `done()`; the number of 2xx answers. */
async function load(url, { body, headers }, done) {
  let answered = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (!done()) {
        const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers, body });
        await res.arrayBuffer();
        if (res.status < 200 || res.status > 299) throw new Error(`status ${res.status}`);
        answered++;
        mock.calls.length = 0; // the mock keeps every call: let them go
      }
    }),
  );
  return answered;
}

/** perf's rows as { samples, dso, symbol } (self time) or { percent, symbol } (inclusive). */
function report(file, inclusive) {
  const args = ["report", "-i", file, "--stdio", "-g", "none", "-n"];
  args.push(...(inclusive ? ["--children", "--sort", "sym"] : ["--no-children", "--sort", "dso,sym"]));
  const text = execFileSync("perf", args, { maxBuffer: 256 * 1024 * 1024, stdio: ["ignore", "pipe", "ignore"] }).toString();
  const rows = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || !line.trim()) continue;
    if (inclusive) {
      const m = /^\s*([\d.]+)%\s+[\d.]+%\s+\d+\s+\[.\]\s+(.*)$/.exec(line);
      if (m) rows.push({ percent: Number(m[1]), symbol: m[2].trim() });
    } else {
      const m = /^\s*[\d.]+%\s+(\d+)\s+(\S.*?)\s+\[.\]\s+(.*)$/.exec(line);
      if (m) rows.push({ samples: Number(m[1]), dso: m[2].trim(), symbol: m[3].trim() });
    }
  }
  return rows;
}

function category({ dso, symbol }) {
  if (dso.startsWith("[JIT]")) return "JIT code (wasm + JS)";
  if (dso.startsWith("[kernel")) return "kernel";
  if (dso.startsWith("lib")) return "libc, libm";
  if (/sqlite|^json/i.test(symbol)) return "SQLite (D1, Durable Objects)";
  if (/tcmalloc|^TCMalloc/.test(symbol)) return "allocator (tcmalloc)";
  if (/^Builtins_Wasm|v8::internal::wasm::/.test(symbol)) return "V8: wasm runtime (Liftoff frames, copies)";
  if (/^Builtins_/.test(symbol)) return "V8: builtins";
  if (/^v8::|^_ZN2v8/.test(symbol)) return "V8: runtime";
  if (/^workerd::|^_ZN7workerd|^_ZZN7workerd/.test(symbol)) return "workerd: API and bindings";
  if (/^kj::|capnp::/.test(symbol)) return "KJ: promises, I/O, HTTP";
  return "other (workerd binary)";
}

// Runtime operations a Worker asks for, by the workerd function perf finds them under.
const OPERATIONS = [
  ["fetch (upstream call)", /^workerd::api::fetchImpl$/],
  ["new Headers", /^workerd::api::Headers::constructor$/],
  ["Headers.set", /^workerd::api::Headers::set$/],
  ["Headers.get", /^workerd::api::Headers::get$/],
  ["Headers freed", /^workerd::api::Headers::~Headers$/],
  ["Headers copied", /^workerd::api::Headers::Header::clone$/],
  ["Response sent", /^workerd::api::Response::send$/],
  ["body read whole", /^workerd::api::Body::arrayBuffer$/],
  ["setTimeout", /^workerd::api::ServiceWorkerGlobalScope::setTimeout$/],
  ["clearTimeout", /^workerd::api::ServiceWorkerGlobalScope::clearTimeout$/],
  ["Date.now", /^v8::internal::Runtime_DateCurrentTime$/],
  ["queueMicrotask", /^workerd::api::ServiceWorkerGlobalScope::queueMicrotask$/],
  ["waitUntil", /^workerd::api::ExecutionContext::waitUntil$/],
  ["Queue send (sendBatch)", /^workerd::api::WorkerQueue::sendBatch$/],
  ["Queue consumer", /^workerd::IoContext::run<workerd::api::QueueCustomEvent::run/],
  ["SQL (D1, Durable Objects)", /^workerd::api::SqlStorage::exec$/],
  ["service binding / object fetch", /^workerd::api::Fetcher::fetch$/],
];

async function measure(subject) {
  const { mf, url, pids } = await start(subject);
  if (pids.length !== 1) throw new Error(`${subject.spec}: expected one workerd, found ${pids.length}`);
  const [pid] = pids;
  pinToCore(pid, SUBJECT_CORE);
  const request = requestOf(subject);
  const warmUntil = Date.now() + 3000;
  await load(url, request, () => Date.now() > warmUntil);
  mkdirSync(path.join(ROOT, ".bench"), { recursive: true });
  const file = path.join(ROOT, `.bench/perf-split.${subject.spec.replace(/[^\w.-]+/g, "_")}.data`);
  const perf = spawn("perf", ["record", "-g", "-e", "cpu-clock", "-F", String(FREQUENCY), "-o", file, "-p", String(pid), "--", "sleep", String(SECONDS)], { stdio: ["ignore", "ignore", "pipe"] });
  let recording = true;
  let complaint = "";
  perf.stderr.on("data", (chunk) => (complaint += chunk));
  const ended = new Promise((resolve) => perf.on("exit", (code) => resolve(((recording = false), code))));
  await new Promise((resolve) => setTimeout(resolve, 200)); // perf attached
  const requests = await load(url, request, () => !recording);
  const code = await ended;
  await mf.dispose();
  if (code !== 0 || requests === 0) {
    throw new Error(`perf record failed (exit ${code}; kernel.perf_event_paranoid may forbid it): ${complaint.trim()}`);
  }
  const usPerSample = 1e6 / FREQUENCY;
  const self = report(file, false);
  const samples = self.reduce((sum, r) => sum + r.samples, 0);
  const perRequest = (n) => (n * usPerSample) / requests;
  const byCategory = {};
  const bySymbol = {};
  for (const row of self) {
    const c = category(row);
    byCategory[c] = (byCategory[c] ?? 0) + perRequest(row.samples);
    const name = row.dso.startsWith("[JIT]") ? "(JIT code)" : row.symbol;
    bySymbol[name] = (bySymbol[name] ?? 0) + perRequest(row.samples);
  }
  const inclusive = report(file, true);
  const operations = {};
  for (const [label, pattern] of OPERATIONS) {
    const found = inclusive.filter((r) => pattern.test(r.symbol)).reduce((max, r) => Math.max(max, r.percent), 0);
    operations[label] = perRequest((found / 100) * samples);
  }
  return { subject: subject.spec, requests, cpu_us_per_request: perRequest(samples), byCategory, operations, bySymbol };
}

const results = [];
for (const subject of SUBJECTS) {
  console.error(`[perf-split] ${subject.spec}: ${SECONDS} s at c=${CONCURRENCY}`);
  results.push(await measure(subject));
}
await mock.close();

const pad = (s, n) => String(s).padEnd(n);
const width = Math.max(16, ...results.map((r) => r.subject.length + 2));
const num = (v) => (v ?? 0).toFixed(1).padStart(width);
const names = () => results.map((r) => r.subject.padStart(width)).join("");
const header = pad("µs of CPU per request", 44) + names();
const table = (rows) => rows.map(([label, get]) => pad(label, 44) + results.map((r) => num(get(r))).join("")).join("\n");
const categories = [...new Set(results.flatMap((r) => Object.keys(r.byCategory)))].sort(
  (a, b) => Math.max(...results.map((r) => r.byCategory[b] ?? 0)) - Math.max(...results.map((r) => r.byCategory[a] ?? 0)),
);
console.log(`\nrequests answered while perf recorded (${SECONDS} s, c=${CONCURRENCY}): ${results.map((r) => `${r.subject} ${r.requests}`).join(", ")}`);
console.log(`\n${header}\n${table(categories.map((c) => [c, (r) => r.byCategory[c]]))}`);
console.log(table([["total (workerd process)", (r) => r.cpu_us_per_request]]));
console.log(`\n${pad("inclusive, runtime operations", 44)}${names()}`);
console.log(table(OPERATIONS.map(([label]) => [label, (r) => r.operations[label]])));
if (results.length >= 2) {
  const [a, b] = results;
  const symbols = new Set([...Object.keys(a.bySymbol), ...Object.keys(b.bySymbol)]);
  const diffs = [...symbols].map((n) => [n, (b.bySymbol[n] ?? 0) - (a.bySymbol[n] ?? 0)]).sort((x, y) => y[1] - x[1]);
  console.log(`\nself time, ${b.subject} minus ${a.subject} (µs of CPU per request), the largest:`);
  for (const [name, d] of diffs.slice(0, TOP)) console.log(`${d.toFixed(1).padStart(8)}  ${name.slice(0, 130)}`);
}
writeFileSync(JSON_PATH, JSON.stringify({ seconds: SECONDS, concurrency: CONCURRENCY, results }, null, 2));
console.log(`\nwritten: ${path.relative(ROOT, JSON_PATH)}`);
process.exit(0);
