// Benchmark (issue 13, "The benchmark"): what the gateway adds over a direct call to the same
// mock, against two floors (an empty JS and an empty workers-rs pass-through Worker in the same
// workerd) and a peer (Portkey's open-source gateway), all in the same run on 127.0.0.1.
//
// Subjects, interleaved in every round (D F R G GL P, D F R G GL P, ...):
//   D  direct: client -> mock
//   F  JS floor: a four-line JS pass-through Worker (Miniflare/workerd)
//   FJ JS relay floor (stream cases only): a JS Worker that reads each chunk of the upstream
//      stream and writes it on, what any relay that looks at events pays in workerd (F and R
//      hand the body to the runtime, which pipes it without waking the isolate per chunk)
//   R  Rust floor: an empty workers-rs pass-through (bench/rust-floor, same toolchain and profile)
//   FB, RB (JSON cases only, with --reading-floors): the JS and the Rust reading floors, which
//      read the request's body and the answer whole and send each on anew (bench/rust-read-floor):
//      what relaying costs once the Worker must see the bytes, as a gateway that counts tokens must
//   G  the gateway, key without limits
//   GL the gateway, key with rate limits and a monthly budget far above what the run uses
//   P  Portkey 1.15.2 (Node build from npm, in .bench/), unless --peer none
// Each workerd subject serves on a socket of its own (Miniflare's `unsafeDirectSockets`): a
// deployed Worker has no entry Worker in front of it, and Miniflare's costs about as much CPU as
// a pass-through Worker (`--via-entry` measures through it, as runs before 2026-12-03 did).
// Placement: during its turn the subject's processes (Miniflare's workerd child, every thread;
// or Portkey's node) are alone on --subject-core; every other subject, this process, the mock
// (its own process) and the load generator (another process) are on --rest-core.
// Cases: JSON at c=1 (p50/p99), c=16 and c=64 (req/s, non-2xx counted), streams of 20 and 200
// events (first byte, last byte, added cost per event), Anthropic /v1/messages in -> OpenAI-kind
// target, a request that fails over once (gateway only). Medians over rounds with min-max; the
// issue's ratios; a JSON file with every figure. Every loop is bounded in count and in time.
//
// Run through scripts/bench (it builds the gateway first; this script builds the Rust floor
// with scripts/build-rust-floor, cached). `--quick`: one short round, to check it works.
import { parseArgs } from "node:util";
import { execFileSync, fork, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Miniflare } from "miniflare";
import { isolateMemory } from "./lib/isolate-memory.mjs";
import { pinToCore } from "./lib/workerd-process.mjs";
import { startGateway, startRustFloor, putConfig, ownSocket, servedUrl, ROOT, COMPATIBILITY_DATE, DEV_GATEWAY_KEY, BENCH_LIMITED_KEY, benchSuiteConfig, promptForEvents } from "./lib/gateway.mjs";

// ---------------------------------------------------------------------------------------------
// Options

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string" },
    requests: { type: "string" }, // sequential timed requests per latency case
    warmup: { type: "string" },
    seconds: { type: "string" }, // per throughput case
    "stream-requests": { type: "string" },
    "max-case-seconds": { type: "string" }, // bound on one latency case
    peer: { type: "string", default: "portkey" },
    "failover-status": { type: "string", default: "503" },
    quick: { type: "boolean", default: false },
    verbose: { type: "boolean", short: "v", default: false },
    json: { type: "string" },
    "via-entry": { type: "boolean", default: false },
    "reading-floors": { type: "boolean", default: false },
    "subject-core": { type: "string", default: "0" },
    "rest-core": { type: "string", default: "1" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (args.help) {
  console.log(`scripts/bench [--rounds N] [--requests N] [--warmup N] [--seconds S] [--stream-requests N]
              [--max-case-seconds S] [--peer portkey|none] [--failover-status 503|500]
              [--quick] [--json PATH] [-v] [--via-entry] [--reading-floors]
              [--subject-core C] [--rest-core C]
  --quick: 1 round, 100 requests, 1 s per throughput case (a smoke run; its figures mean little)`);
  process.exit(0);
}
const Q = args.quick;
const num = (value, fallback, min, max) => {
  const n = Number(value ?? fallback);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`option value ${value} out of range ${min}..${max}`);
  return n;
};
const OPT = {
  rounds: num(args.rounds, Q ? 1 : 5, 1, 50),
  requests: num(args.requests, Q ? 100 : 2000, 10, 100_000),
  warmup: num(args.warmup, Q ? 20 : 200, 0, 10_000),
  seconds: num(args.seconds, Q ? 1 : 5, 0.5, 120),
  streamRequests: num(args["stream-requests"], Q ? 20 : 200, 5, 10_000),
  maxCaseSeconds: num(args["max-case-seconds"], Q ? 20 : 90, 5, 900),
  peer: args.peer,
  // 503: no same-endpoint retry, so exactly one failover. 500 is retried once on the same
  // endpoint after a jittered backoff (U(0, 100 ms)) while the retry budget lasts.
  failoverStatus: [500, 503].includes(Number(args["failover-status"])) ? Number(args["failover-status"]) : (() => { throw new Error("--failover-status: 500 or 503"); })(),
  quick: Q,
  verbose: args.verbose,
  // Through Miniflare's entry Worker (a JS Worker in front of every request, with a service
  // binding call, request logging and header rewriting) as before 2026-12-03; by default each
  // workerd subject serves on a socket of its own, as a deployed Worker has no such Worker.
  viaEntry: args["via-entry"],
  readingFloors: args["reading-floors"],
  subjectCore: num(args["subject-core"], 0, 0, 1023),
  restCore: num(args["rest-core"], 1, 0, 1023),
};
if (!["portkey", "none"].includes(OPT.peer)) throw new Error(`--peer ${OPT.peer}: portkey or none`);
const STREAM_EVENTS = [20, 200];
const CONCURRENCY = [16, 64];

// ---------------------------------------------------------------------------------------------
// Placement: taskset on whole processes (every thread, `-a`), found through /proc

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
const PINNING = (() => {
  const cpus = os.cpus().length;
  try {
    execFileSync("taskset", ["-V"], { stdio: "pipe" });
  } catch {
    return { enabled: false, why: "taskset is not installed" };
  }
  if (OPT.subjectCore === OPT.restCore) return { enabled: false, why: "--subject-core equals --rest-core" };
  if (Math.max(OPT.subjectCore, OPT.restCore) >= cpus) return { enabled: false, why: `this machine has ${cpus} cores` };
  return { enabled: true };
})();

function procStat(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

function comm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return null;
  }
}

/** Every live descendant of `root` (children, grandchildren, ...). */
function descendants(root) {
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { ppid } = procStat(entry);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {} // gone meanwhile
  }
  const out = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length && out.length < 10_000) {
    const pid = queue.shift();
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

const workerdPids = () => descendants(process.pid).filter((pid) => comm(pid) === "workerd");

function pin(pid, core) {
  if (PINNING.enabled) pinToCore(pid, core);
}

/** The cores each thread of `pid` may run on (from /proc/<pid>/task/<tid>/status), deduplicated. */
function affinity(pid) {
  const lists = new Set();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      lists.add(/Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1] ?? "?");
    } catch {}
  }
  return [...lists];
}

const cpuTicks = (pids) => pids.reduce((sum, pid) => sum + (() => { try { return procStat(pid).cpuTicks; } catch { return 0; } })(), 0);

function memory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (name) => Number(new RegExp(`${name}:\\s*(\\d+) kB`).exec(status)?.[1] ?? NaN);
    return { rss_mb: kb("VmRSS") / 1024, hwm_mb: kb("VmHWM") / 1024 };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Helper processes: the mock and the load generator, each forked, each on the rest core

function forkHelper(file) {
  const child = fork(path.join(ROOT, "scripts/lib", file), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let nextId = 1;
  const pending = new Map();
  let readyResolve;
  const ready = new Promise((resolve, reject) => {
    readyResolve = resolve;
    setTimeout(() => reject(new Error(`${file} did not start within 20 s`)), 20_000).unref();
  });
  child.on("message", (message) => {
    if (message.ready) return readyResolve(message);
    const entry = pending.get(message.id);
    if (!entry) return;
    if (message.started) return entry.onStarted?.();
    pending.delete(message.id);
    clearTimeout(entry.timer);
    if (message.error) entry.reject(new Error(message.error));
    else entry.resolve(message.result);
  });
  child.on("exit", (code) => {
    for (const entry of pending.values()) entry.reject(new Error(`${file} exited (${code})`));
    pending.clear();
  });
  const call = (op, job = {}, { timeoutMs = 60_000, onStarted } = {}) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${file} ${op}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer, onStarted });
      child.send({ id, op, job });
    });
  return { child, ready, call };
}

// ---------------------------------------------------------------------------------------------
// Subjects

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts one Miniflare and returns its URL and the workerd process it started. */
async function startWorkerd(start) {
  const before = new Set(workerdPids());
  const started = await start();
  const pids = workerdPids().filter((pid) => !before.has(pid));
  if (pids.length === 0) throw new Error("could not find the workerd process Miniflare started");
  return { ...started, pids };
}

/** A JS floor: a module Worker `script` relaying to `upstream` (its `UP` var), in its own workerd. */
const jsWorker = (script, upstream) =>
  startWorkerd(async () => {
    const mf = new Miniflare({
      modules: true,
      script,
      bindings: { UP: upstream },
      compatibilityDate: COMPATIBILITY_DATE,
      ...ownSocket(!OPT.viaEntry),
    });
    return { url: await servedUrl(mf, !OPT.viaEntry), close: () => mf.dispose() };
  });

const jsFloor = (upstream) =>
  jsWorker(
    `export default { fetch(req, env) { const u = new URL(req.url); return fetch(env.UP + u.pathname, { method: req.method, headers: req.headers, body: req.body }); } };`,
    upstream,
  );

// The least a Worker that sees each chunk can do: read it, write it into the runtime's own
// stream (cheaper per chunk than a JS ReadableStream the runtime pulls from), waiting until
// the client took it.
const jsRelayFloor = (upstream) =>
  jsWorker(
    `export default { async fetch(req, env) {
      const u = new URL(req.url);
      const up = await fetch(env.UP + u.pathname, { method: req.method, headers: req.headers, body: req.body });
      const reader = up.body.getReader();
      const { readable, writable } = new IdentityTransformStream();
      const writer = writable.getWriter();
      (async () => { for (;;) { const r = await reader.read(); if (r.done) return writer.close(); await writer.write(r.value); } })().catch((e) => writer.abort(e).catch(() => {}));
      return new Response(readable, { status: up.status, headers: up.headers });
    } };`,
    upstream,
  );

// The least a JS Worker does that sees the bytes it relays: the request's body and the answer
// read whole, each sent on anew (the JS twin of bench/rust-read-floor).
const jsReadingFloor = (upstream) =>
  jsWorker(
    `export default { async fetch(req, env) {
      const u = new URL(req.url);
      const body = await req.arrayBuffer();
      const headers = { "content-type": "application/json", authorization: req.headers.get("authorization") ?? "" };
      const up = await fetch(env.UP + u.pathname, { method: "POST", headers, body });
      const answer = await up.arrayBuffer();
      return new Response(answer, { status: up.status, headers: { "content-type": "application/json" } });
    } };`,
    upstream,
  );

const rustFloor = (upstream, crate) =>
  startWorkerd(async () => {
    const { mf, url } = await startRustFloor(upstream, { direct: !OPT.viaEntry, crate });
    return { url, close: () => mf.dispose() };
  });

const gateway = (mockBaseUrl) =>
  startWorkerd(async () => {
    // Production shape: the usage store (Queue + D1) on, request logs off (benchConfig).
    // The inspector reads the isolate's own memory after the run (scripts/lib/isolate-memory.mjs).
    const inspectorPort = await freePort();
    const { mf, url } = await startGateway({ usageBatchTimeoutMs: 1000, inspectorPort, direct: !OPT.viaEntry });
    await putConfig(url, benchSuiteConfig(mockBaseUrl, { failoverStatus: OPT.failoverStatus }));
    return { url, inspectorPort, close: () => mf.dispose() };
  });

const PORTKEY_VERSION = "1.15.2";
async function portkey() {
  const dir = path.join(ROOT, ".bench");
  const entry = path.join(dir, "node_modules/@portkey-ai/gateway/build/start-server.js");
  if (!existsSync(entry)) {
    mkdirSync(dir, { recursive: true });
    execFileSync("npm", ["install", "--prefix", dir, "--no-save", "--no-audit", "--no-fund", `@portkey-ai/gateway@${PORTKEY_VERSION}`], { stdio: "inherit" });
  }
  const port = await freePort();
  const child = spawn(process.execPath, [entry, `--port=${port}`, "--headless"], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 150; i++) {
    try {
      await fetch(url);
      return { url, pids: [child.pid, ...descendants(child.pid)], close: () => child.kill("SIGKILL") };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill("SIGKILL");
  throw new Error("Portkey did not answer within 15 s");
}

// ---------------------------------------------------------------------------------------------
// Requests of each case

const chatBody = (extra = {}) => ({ model: "bench", messages: [{ role: "user", content: "Say hello" }], ...extra });
const streamBody = (events) => ({
  model: "bench",
  stream: true,
  messages: [{ role: "user", content: promptForEvents(events) }],
});
const anthropicBody = { model: "bench", max_tokens: 256, messages: [{ role: "user", content: "Say hello" }] };

/** What each subject is sent for each case; a case a subject has no entry for is not run on it. */
function casesFor(subject) {
  const chat = { url: `${subject.url}${subject.chatPath}`, headers: subject.headers };
  const cases = {
    json: { ...chat, body: chatBody(), expect: "Hello from bench" },
  };
  for (const events of STREAM_EVENTS) cases[`stream${events}`] = { ...chat, body: streamBody(events), expect: "data:", stream: true };
  if (subject.streamsOnly) delete cases.json;
  if (subject.jsonOnly) return { json: cases.json };
  if (subject.anthropic) cases.anthropic = { url: `${subject.url}/v1/messages`, headers: subject.anthropic, body: anthropicBody, expect: "Hello from bench" };
  if (subject.gateway) {
    cases.failover = {
      ...chat,
      body: chatBody({ model: "bench-failover" }),
      expect: "Hello from bench",
      // One untimed request on the healthy model after each failover keeps the shared
      // provider's failure ratio at 1/3, under the circuit breaker's 50%.
      after: { ...chat, body: chatBody() },
    };
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Statistics

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const summary = (xs) => {
  const finite = xs.filter(Number.isFinite);
  return finite.length ? { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), n: finite.length } : null;
};

// ---------------------------------------------------------------------------------------------
// Run

const processes = [];
let subjects = [];
async function cleanup() {
  await Promise.allSettled(subjects.map((s) => s.close?.()));
  for (const child of processes) {
    try {
      child.kill("SIGKILL");
    } catch {}
  }
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await cleanup();
    process.exit(130);
  });
}

const say = (line) => process.stderr.write(`[bench] ${line}\n`);
const startedAt = new Date();
const loadBefore = os.loadavg();

// The Rust floor's Worker: built once, then only when bench/rust-floor changes.
execFileSync(path.join(ROOT, "scripts/build-rust-floor"), { stdio: "inherit" });

// This process (Miniflare's Node side) and everything it forks start on the rest core.
pin(process.pid, OPT.restCore);
if (!PINNING.enabled) say(`WARNING: not pinning processes to cores (${PINNING.why}): figures are less comparable`);

const mock = forkHelper("bench-mock.mjs");
const load = forkHelper("bench-load.mjs");
processes.push(mock.child, load.child);
const mockInfo = await mock.ready;
await load.ready;
pin(mock.child.pid, OPT.restCore);
pin(load.child.pid, OPT.restCore);

say("starting the subjects");
subjects = [{ key: "D", name: "direct (client -> mock)", url: mockInfo.url, chatPath: "/v1/chat/completions", headers: {}, pids: [mock.child.pid] }];
const addSubject = async (key, name, start, extra) => {
  try {
    // Cold start, indicative (every process is on the rest core then): from starting the
    // subject (for the gateway: Miniflare, then the config PUT) to its first 2xx chat answer.
    const t0 = performance.now();
    const started = await start();
    const subject = { key, name, chatPath: "/v1/chat/completions", headers: {}, ...started, ...extra };
    const cases = casesFor(subject);
    const first = await load.call("probe", cases.json ?? cases.stream20, { timeoutMs: 45_000 });
    subject.cold = first.ok ? { first_answer_ms: performance.now() - t0, first_request_ms: first.total_ms } : { error: first.error };
    subjects.push(subject);
  } catch (err) {
    say(`${name}: not started (${err.message.split("\n")[0]})`);
    subjects.push({ key, name, failed: err.message, pids: [] });
  }
};
await addSubject("F", "JS floor (empty JS pass-through Worker)", () => jsFloor(mockInfo.url));
await addSubject("FJ", "JS relay floor (reads and writes on each chunk; streams only)", () => jsRelayFloor(mockInfo.url), { streamsOnly: true });
await addSubject("R", "Rust floor (empty workers-rs pass-through)", () => rustFloor(mockInfo.url));
if (OPT.readingFloors) {
  await addSubject("FB", "JS reading floor (reads both bodies, sends each anew; JSON only)", () => jsReadingFloor(mockInfo.url), { jsonOnly: true });
  await addSubject("RB", "Rust reading floor (the same in workers-rs; JSON only)", () => rustFloor(mockInfo.url, "rust-read-floor"), { jsonOnly: true });
}
const gatewayAuth = (key) => ({
  gateway: true,
  headers: { authorization: `Bearer ${key}` },
  anthropic: { "x-api-key": key, "anthropic-version": "2023-06-01" },
});
await addSubject("G", "gateway, key without limits", () => gateway(mockInfo.baseUrl), gatewayAuth(DEV_GATEWAY_KEY));
await addSubject("GL", "gateway, key with rate limits + budget", () => gateway(mockInfo.baseUrl), gatewayAuth(BENCH_LIMITED_KEY));
if (OPT.peer === "portkey") {
  const headers = { "x-portkey-provider": "openai", "x-portkey-custom-host": mockInfo.baseUrl, authorization: "Bearer mock" };
  await addSubject("P", `Portkey ${PORTKEY_VERSION} (Node)`, portkey, {
    headers,
    anthropic: { ...headers, "x-api-key": "mock", "anthropic-version": "2023-06-01" },
  });
}
// Every subject process waits on the rest core until its turn.
for (const s of subjects) if (s.key !== "D") for (const pid of s.pids) pin(pid, OPT.restCore);
const live = subjects.filter((s) => !s.failed);

/** Moves `subject` alone onto the subject core (the direct subject needs no core of its own). */
function place(subject) {
  for (const other of live) if (other !== subject && other.key !== "D") for (const pid of other.pids) pin(pid, OPT.restCore);
  if (subject.key === "D") return null;
  for (const pid of subject.pids) pin(pid, OPT.subjectCore);
  return Object.fromEntries(subject.pids.map((pid) => [pid, affinity(pid)]));
}

const rounds = [];
const deadlineMs = (seconds) => (seconds + 60) * 1000;
for (let round = 0; round < OPT.rounds; round++) {
  const results = {};
  for (const subject of live) {
    say(`round ${round + 1}/${OPT.rounds}: ${subject.key} ${subject.name}`);
    const placement = place(subject);
    const r = (results[subject.key] = { placement });
    const cases = casesFor(subject);
    for (const [name, c] of Object.entries(cases)) {
      if (OPT.verbose) say(`  ${subject.key} ${name}`);
      const requests = c.stream ? OPT.streamRequests : name === "failover" ? Math.ceil(OPT.requests / 2) : OPT.requests;
      try {
        const probe = await load.call("probe", c, { timeoutMs: 45_000 });
        if (!probe.ok) {
          r[name] = { error: `not served: ${probe.error}` };
          continue;
        }
        await mock.call("counts"); // reset the mock's tally
        const job = { ...c, n: requests, warmup: c.stream ? Math.ceil(OPT.warmup / 10) : OPT.warmup, maxSeconds: OPT.maxCaseSeconds };
        const ticks0 = cpuTicks(subject.pids);
        const stats = await load.call("latency", job, { timeoutMs: deadlineMs(OPT.maxCaseSeconds) });
        // CPU of the subject's processes per request (warmup included; 10 ms ticks, so coarse
        // in short runs). Unlike the last byte, it does not hide work overlapped with the mock.
        const sent = (stats.n + stats.non2xx + stats.errors) * (c.after ? 2 : 1) + job.warmup * (c.after ? 2 : 1);
        const cpu_us_per_request = (((cpuTicks(subject.pids) - ticks0) / CLK_TCK) * 1e6) / Math.max(1, sent);
        r[name] = { ...stats, events: probe.events, bytes: probe.bytes, cpu_us_per_request };
        if (name === "failover") {
          const counts = await mock.call("counts");
          r[name].upstream_failures = counts[`fault-${OPT.failoverStatus}`] ?? 0;
          r[name].requests_sent = stats.n + job.warmup; // warmup requests fail over too
        }
      } catch (err) {
        r[name] = { error: err.message.split("\n")[0] };
      }
      if (name === "json") {
        // Throughput right after the JSON latency case, same request.
        for (const concurrency of CONCURRENCY) {
          let startTicks = 0;
          try {
            const job = { ...c, concurrency, seconds: OPT.seconds, warmupSeconds: Math.min(1, OPT.seconds / 4) };
            const t = await load.call("throughput", job, {
              timeoutMs: deadlineMs(OPT.seconds + 2),
              onStarted: () => (startTicks = cpuTicks(subject.pids)),
            });
            const ticks = cpuTicks(subject.pids) - startTicks;
            t.cpu_us_per_request = t.done ? ((ticks / CLK_TCK) * 1e6) / (t.done + t.non2xx) : null;
            t.cpu_share = ticks / CLK_TCK / t.seconds;
            r[`c${concurrency}`] = t;
          } catch (err) {
            r[`c${concurrency}`] = { error: err.message.split("\n")[0] };
          }
        }
      }
    }
  }
  rounds.push(results);
}
const memoryAfter = Object.fromEntries(live.filter((s) => s.key !== "D").map((s) => [s.key, s.pids.map(memory)]));
// The gateway's isolate alone (its JS heap and wasm memory), apart from workerd's RSS, which
// also holds Miniflare's simulators of the usage store and Durable Objects.
const isolateAfter = {};
for (const s of live.filter((s) => s.inspectorPort)) {
  try {
    const isolate = await isolateMemory(s.inspectorPort);
    isolateAfter[s.key] = await isolate.measure();
    isolate.close();
  } catch (err) {
    isolateAfter[s.key] = { error: err.message };
  }
}
const loadAfter = os.loadavg();
await cleanup();

// ---------------------------------------------------------------------------------------------
// Figures: every figure per round, then median and min-max over rounds

const get = (round, key, name, field) => {
  const v = rounds[round]?.[key]?.[name];
  return v && !v.error && Number.isFinite(v[field]) ? v[field] : NaN;
};
const perRound = (fn) => rounds.map((_, i) => fn(i));
/** The direct case a subject's case is compared with. */
const baselineCase = (name) => (name === "anthropic" || name === "failover" ? "json" : name);
const added = (key, name, field) => perRound((i) => get(i, key, name, field) - get(i, "D", baselineCase(name), field));

const figures = {};
for (const s of live) {
  const f = (figures[s.key] = { name: s.name });
  for (const name of ["json", "anthropic", "failover"]) {
    f[name] = {
      p50: summary(perRound((i) => get(i, s.key, name, "p50"))),
      p99: summary(perRound((i) => get(i, s.key, name, "p99"))),
      added_p50: s.key === "D" ? null : summary(added(s.key, name, "p50")),
      added_p99: s.key === "D" ? null : summary(added(s.key, name, "p99")),
    };
  }
  for (const c of CONCURRENCY) {
    f[`c${c}`] = {
      rps: summary(perRound((i) => get(i, s.key, `c${c}`, "rps"))),
      non2xx: perRound((i) => get(i, s.key, `c${c}`, "non2xx")).filter(Number.isFinite).reduce((a, b) => a + b, 0),
      errors: perRound((i) => get(i, s.key, `c${c}`, "errors")).filter(Number.isFinite).reduce((a, b) => a + b, 0),
      cpu_us_per_request: summary(perRound((i) => get(i, s.key, `c${c}`, "cpu_us_per_request"))),
    };
  }
  for (const events of STREAM_EVENTS) {
    const name = `stream${events}`;
    const lastAdded = added(s.key, name, "p50");
    f[name] = {
      ttfb_p50: summary(perRound((i) => get(i, s.key, name, "ttfb_p50"))),
      last_p50: summary(perRound((i) => get(i, s.key, name, "p50"))),
      ttfb_added_p50: s.key === "D" ? null : summary(added(s.key, name, "ttfb_p50")),
      ttfc_p50: summary(perRound((i) => get(i, s.key, name, "ttfc_p50"))),
      ttfc_added_p50: s.key === "D" ? null : summary(added(s.key, name, "ttfc_p50")),
      last_added_p50: s.key === "D" ? null : summary(lastAdded),
      // (last-byte added over direct) / events, in µs
      us_per_event: s.key === "D" ? null : summary(lastAdded.map((ms) => (ms * 1000) / events)),
      events_seen: rounds.map((r) => r[s.key]?.[name]?.events).find(Number.isFinite) ?? null,
    };
  }
  // CPU per event, marginal: (CPU per 200-event stream − CPU per 20-event stream) / 180, in µs.
  f.cpu_us_per_event_marginal = summary(
    perRound((i) => (get(i, s.key, "stream200", "cpu_us_per_request") - get(i, s.key, "stream20", "cpu_us_per_request")) / 180),
  );
  f.json.cpu_us_per_request = summary(perRound((i) => get(i, s.key, "json", "cpu_us_per_request")));
  // The marginal cost of an event: (added at 200 events − added at 20) / 180, in µs.
  f.us_per_event_marginal =
    s.key === "D"
      ? null
      : summary(perRound((i) => (((get(i, s.key, "stream200", "p50") - get(i, "D", "stream200", "p50")) - (get(i, s.key, "stream20", "p50") - get(i, "D", "stream20", "p50"))) * 1000) / 180));
  const errors = {};
  for (const [i, r] of rounds.entries()) for (const [name, v] of Object.entries(r[s.key] ?? {})) if (v?.error) errors[name] ??= `round ${i + 1}: ${v.error}`;
  f.errors = errors;
}

const ratio = (fn, { target, better, unit }) => ({ ...summary(perRound(fn)), target, better, unit });
const addedP50 = (i, key, name = "json") => get(i, key, name, "p50") - get(i, "D", baselineCase(name), "p50");
const rps = (i, key, c = 64) => get(i, key, `c${c}`, "rps");
const cpuAt64 = (i, key) => get(i, key, "c64", "cpu_us_per_request");
const perEvent = (i, key) => ((get(i, key, "stream200", "p50") - get(i, "D", "stream200", "p50")) * 1000) / 200;
const cpuPerEvent = (i, key) => (get(i, key, "stream200", "cpu_us_per_request") - get(i, key, "stream20", "cpu_us_per_request")) / 180;
const ttfbAdded = (i, key, name = "stream20") => get(i, key, name, "ttfb_p50") - get(i, "D", name, "ttfb_p50");
const ttfcAdded = (i, key, name = "stream20") => get(i, key, name, "ttfc_p50") - get(i, "D", name, "ttfc_p50");
const ratios = {
  "unlimited − Rust floor, added p50 (ms)": ratio((i) => addedP50(i, "G") - addedP50(i, "R"), { target: 0.3, better: "lower", unit: "ms" }),
  "unlimited / Rust floor, req/s at c=64": ratio((i) => rps(i, "G") / rps(i, "R"), { target: 0.85, better: "higher", unit: "%" }),
  "unlimited / Portkey, req/s at c=64": ratio((i) => rps(i, "G") / rps(i, "P"), { target: 1.5, better: "higher", unit: "×" }),
  "unlimited / Portkey, added p50": ratio((i) => addedP50(i, "G") / addedP50(i, "P"), { better: "lower", unit: "×" }),
  "limited − unlimited, added p50 (ms)": ratio((i) => addedP50(i, "GL") - addedP50(i, "G"), { target: 0.3, better: "lower", unit: "ms" }),
  "limited / unlimited, req/s at c=64": ratio((i) => rps(i, "GL") / rps(i, "G"), { target: 0.8, better: "higher", unit: "%" }),
  "limited / Portkey, req/s at c=64": ratio((i) => rps(i, "GL") / rps(i, "P"), { better: "higher", unit: "×" }),
  "limited / Portkey, added p50": ratio((i) => addedP50(i, "GL") / addedP50(i, "P"), { better: "lower", unit: "×" }),
  "stream µs/event (200 events): unlimited": ratio((i) => perEvent(i, "G"), { target: 15, better: "lower", unit: "µs" }),
  "stream µs/event (200 events): limited": ratio((i) => perEvent(i, "GL"), { target: 15, better: "lower", unit: "µs" }),
  "stream µs/event (200 events): JS floor": ratio((i) => perEvent(i, "F"), { better: "lower", unit: "µs" }),
  "stream µs/event (200 events): Rust floor": ratio((i) => perEvent(i, "R"), { better: "lower", unit: "µs" }),
  "stream µs/event (200 events): JS relay floor": ratio((i) => perEvent(i, "FJ"), { better: "lower", unit: "µs" }),
  "stream CPU µs/event (marginal 20→200): unlimited": ratio((i) => cpuPerEvent(i, "G"), { target: 15, better: "lower", unit: "µs" }),
  "stream CPU µs/event (marginal 20→200): limited": ratio((i) => cpuPerEvent(i, "GL"), { target: 15, better: "lower", unit: "µs" }),
  "stream CPU µs/event (marginal 20→200): JS floor": ratio((i) => cpuPerEvent(i, "F"), { better: "lower", unit: "µs" }),
  "stream CPU µs/event (marginal 20→200): Rust floor": ratio((i) => cpuPerEvent(i, "R"), { better: "lower", unit: "µs" }),
  "stream CPU µs/event (marginal 20→200): JS relay floor": ratio((i) => cpuPerEvent(i, "FJ"), { better: "lower", unit: "µs" }),
  "stream CPU µs/event, unlimited − JS relay floor": ratio((i) => cpuPerEvent(i, "G") - cpuPerEvent(i, "FJ"), { better: "lower", unit: "µs" }),
  "stream first byte, unlimited − Rust floor (ms)": ratio((i) => ttfbAdded(i, "G") - ttfbAdded(i, "R"), { target: 0.3, better: "lower", unit: "ms" }),
  // The gateway's first byte is its first content; the floor's, the provider's opening event.
  "stream first content, unlimited − Rust floor (ms)": ratio((i) => ttfcAdded(i, "G") - ttfcAdded(i, "R"), { better: "lower", unit: "ms" }),
  "Rust floor − JS floor, added p50 (ms)": ratio((i) => addedP50(i, "R") - addedP50(i, "F"), { better: "lower", unit: "ms" }),
  "Rust floor / JS floor, req/s at c=64": ratio((i) => rps(i, "R") / rps(i, "F"), { better: "higher", unit: "%" }),
  ...(OPT.readingFloors && {
    "JS reading floor / Rust floor, req/s at c=64": ratio((i) => rps(i, "FB") / rps(i, "R"), { better: "higher", unit: "%" }),
    "Rust reading floor / Rust floor, req/s at c=64": ratio((i) => rps(i, "RB") / rps(i, "R"), { better: "higher", unit: "%" }),
    "Rust floor / Rust reading floor, CPU per request at c=64": ratio((i) => cpuAt64(i, "R") / cpuAt64(i, "RB"), { better: "higher", unit: "%" }),
    "unlimited / Rust reading floor, req/s at c=64": ratio((i) => rps(i, "G") / rps(i, "RB"), { better: "higher", unit: "%" }),
  }),
};

// ---------------------------------------------------------------------------------------------
// Report

const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "–");
const spread = (s, digits = 2, scale = 1) => (s ? `${fmt(s.median * scale, digits)} (${fmt(s.min * scale, digits)}–${fmt(s.max * scale, digits)})` : "–");
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–");
const spreadInt = (s) => (s ? `${int(s.median)} (${int(s.min)}–${int(s.max)})` : "–");
function table(title, header, rows) {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells) => cells.map((cell, c) => (c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c]))).join("  ");
  console.log(`\n${title}`);
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}
const label = (s) => `${s.key.padEnd(2)} ${s.name}`;
/** "not served" when the subject refused the case in every round (e.g. Portkey's streams). */
const notServed = (key, name) => rounds.every((r) => String(r[key]?.[name]?.error ?? "").startsWith("not served"));
/** A row's cells, or "not served" in each when the subject does not serve the case. */
const cells = (key, name, list) => (notServed(key, name) ? list.map(() => "not served") : list);
const shown = live;

console.log(
  `\nscripts/bench: ${OPT.rounds} interleaved round(s) (${live.map((s) => s.key).join(" ")}), medians over rounds with (min–max)${OPT.quick ? " — QUICK SMOKE RUN, figures not meaningful" : ""}`,
);
console.log(
  `placement: ${PINNING.enabled ? `each subject alone on core ${OPT.subjectCore}; mock, load generator and this process on core ${OPT.restCore}` : `none (${PINNING.why})`}; client: node:http keep-alive Agent, TCP_NODELAY; mock answers at once`,
);
console.log(`workerd subjects reached ${OPT.viaEntry ? "through Miniflare's entry Worker (--via-entry)" : "on sockets of their own (no Miniflare entry Worker in front, as deployed)"}`);
console.log(`load average before/after: ${loadBefore.map((x) => x.toFixed(2)).join(" ")} / ${loadAfter.map((x) => x.toFixed(2)).join(" ")}`);

table(
  `JSON, c=1 (${OPT.requests} sequential after ${OPT.warmup} warmup), ms`,
  ["subject", "p50", "p99", "added p50", "added p99", "CPU µs/req"],
  shown.map((s) => {
    const f = figures[s.key].json;
    return [label(s), spread(f.p50), spread(f.p99), spread(f.added_p50), spread(f.added_p99), `${spreadInt(f.cpu_us_per_request)}${s.key === "D" ? " (mock)" : ""}`];
  }),
);
table(
  `JSON throughput (${OPT.seconds} s each, closed loop), req/s; CPU of the subject's processes per request at c=64`,
  ["subject", "c=16", "c=64", "non-2xx/errors", "CPU µs/req c=64"],
  shown.map((s) => {
    const f = figures[s.key];
    const bad = CONCURRENCY.map((c) => `${f[`c${c}`].non2xx}/${f[`c${c}`].errors}`).join(" ");
    return [label(s), spreadInt(f.c16.rps), spreadInt(f.c64.rps), bad, s.key === "D" ? `${spreadInt(f.c64.cpu_us_per_request)} (mock)` : spreadInt(f.c64.cpu_us_per_request)];
  }),
);
table(
  `Streams (${OPT.streamRequests} sequential each), ms added over direct; µs/ev = (last-byte added) / events; marginal = (added at 200 − added at 20) / 180; CPU µs/ev = the subject's CPU, (per 200-event stream − per 20-event stream) / 180`,
  ["subject", "20: first byte +", "20: first content +", "20: last byte +", "20: µs/ev", "200: first byte +", "200: last byte +", "200: µs/ev", "marginal µs/ev", "CPU µs/ev"],
  shown.map((s) => {
    const f = figures[s.key];
    if (s.key === "D") return [label(s), `${fmt(f.stream20.ttfb_p50?.median)} abs`, `${fmt(f.stream20.ttfc_p50?.median)} abs`, `${fmt(f.stream20.last_p50?.median)} abs`, "", `${fmt(f.stream200.ttfb_p50?.median)} abs`, `${fmt(f.stream200.last_p50?.median)} abs`, "", "", `${spread(f.cpu_us_per_event_marginal, 1)} (mock)`];
    return [
      label(s),
      ...cells(s.key, "stream20", [spread(f.stream20.ttfb_added_p50), spread(f.stream20.ttfc_added_p50), spread(f.stream20.last_added_p50), spread(f.stream20.us_per_event, 1)]),
      ...cells(s.key, "stream200", [spread(f.stream200.ttfb_added_p50), spread(f.stream200.last_added_p50), spread(f.stream200.us_per_event, 1)]),
      notServed(s.key, "stream200") ? "not served" : spread(f.us_per_event_marginal, 1),
      notServed(s.key, "stream200") ? "not served" : spread(f.cpu_us_per_event_marginal, 1),
    ];
  }),
);
table(
  `Anthropic /v1/messages in -> OpenAI-kind target, and a request that fails over once (${OPT.failoverStatus}, then the next target), c=1, ms added over direct JSON`,
  ["subject", "anthropic p50", "added p50", "added p99", "failover p50", "added p50", "added p99", "failed over"],
  shown
    .filter((s) => s.key === "D" || s.anthropic || s.gateway)
    .map((s) => {
      const f = figures[s.key];
      if (s.key === "D") return [label(s), `${fmt(f.json.p50?.median)} (JSON)`, "", "", "", "", "", ""];
      const fo = rounds.map((r) => r[s.key]?.failover).filter((v) => v && !v.error);
      const failedOver = fo.length ? `${fo.reduce((a, v) => a + v.upstream_failures, 0)}/${fo.reduce((a, v) => a + v.requests_sent, 0)}` : "–";
      const failover = s.gateway ? [spread(f.failover.p50), spread(f.failover.added_p50), spread(f.failover.added_p99), failedOver] : ["", "", "", ""];
      return [label(s), ...cells(s.key, "anthropic", [spread(f.anthropic.p50), spread(f.anthropic.added_p50), spread(f.anthropic.added_p99)]), ...failover];
    }),
);

console.log("\nRatios (computed per round; median (min–max)); targets from issue 13");
for (const [name, r] of Object.entries(ratios)) {
  if (!r.n) {
    console.log(`  ${name.padEnd(52)} –`);
    continue;
  }
  const scale = r.unit === "%" ? 100 : 1;
  const digits = r.unit === "µs" ? 1 : 2;
  const unit = r.unit === "%" ? "%" : r.unit === "×" ? "×" : ` ${r.unit}`;
  const shownValue = `${fmt(r.median * scale, r.unit === "%" ? 0 : digits)}${unit} (${fmt(r.min * scale, r.unit === "%" ? 0 : digits)}–${fmt(r.max * scale, r.unit === "%" ? 0 : digits)})`;
  let verdict = "";
  if (r.target !== undefined) {
    const meets = r.better === "lower" ? r.median <= r.target : r.median >= r.target;
    verdict = `  target ${r.better === "lower" ? "≤" : "≥"} ${fmt(r.target * scale, r.unit === "%" ? 0 : digits)}${unit}: ${meets ? "meets" : "MISSES"}`;
  }
  console.log(`  ${name.padEnd(52)} ${shownValue}${verdict}`);
}

console.log("\nMemory of each subject's process after the run (RSS / peak, MB); cold start (start -> first 2xx chat answer, and that first request alone, ms; indicative)");
for (const s of live.filter((s) => s.key !== "D")) {
  const mem = (memoryAfter[s.key] ?? []).map((m) => (m ? `${fmt(m.rss_mb, 0)} / ${fmt(m.hwm_mb, 0)}` : "–")).join(", ");
  const cold = s.cold?.first_answer_ms ? `${fmt(s.cold.first_answer_ms, 0)} ms, first request ${fmt(s.cold.first_request_ms, 1)} ms` : (s.cold?.error ?? "–");
  const isolate = isolateAfter[s.key];
  const own = isolate?.heap_mb != null ? `; isolate: JS heap ${fmt(isolate.heap_mb, 1)} MB, wasm memory ${fmt(isolate.wasm_mb, 1)} MB` : "";
  console.log(`  ${s.key.padEnd(3)}${mem.padEnd(12)}  cold start ${cold}${own}`);
}

// The headline table of issue 13 / the README, in Markdown.
console.log("\nMarkdown (README performance table):\n");
console.log("| subject | added p50 over direct (c=1) | added p99 | req/s at c=64 | CPU per request at c=64 | stream µs/event (200) |");
console.log("|---|---|---|---|---|---|");
for (const s of shown) {
  const f = figures[s.key];
  const cpu = f.c64.cpu_us_per_request ? `~${int(f.c64.cpu_us_per_request.median)} µs` : "–";
  if (s.key === "D") {
    console.log(`| ${s.name} | (p50 ${fmt(f.json.p50?.median)} ms) | (p99 ${fmt(f.json.p99?.median)} ms) | ${int(f.c64.rps?.median)} | ${cpu} (mock) | – |`);
    continue;
  }
  console.log(`| ${s.name} | ${fmt(f.json.added_p50?.median)} ms | ${fmt(f.json.added_p99?.median)} ms | ${int(f.c64.rps?.median)} | ${cpu} | ${notServed(s.key, "stream200") ? "not served" : fmt(f.stream200.us_per_event?.median, 1)} |`);
}

// Checks: what would make the figures wrong.
const warnings = [];
const notes = [];
for (const s of shown) {
  for (const c of CONCURRENCY) {
    const f = figures[s.key][`c${c}`];
    if (f.non2xx || f.errors) warnings.push(`${s.key} c=${c}: ${f.non2xx} non-2xx answers and ${f.errors} transport errors (must be 0)`);
  }
  for (const [name, error] of Object.entries(figures[s.key].errors)) (notServed(s.key, name) ? notes : warnings).push(`${s.key} ${name}: ${error}`);
  for (const [i, r] of rounds.entries()) {
    for (const [name, v] of Object.entries(r[s.key] ?? {})) {
      if (v && !v.error && (v.non2xx || v.errors) && !name.startsWith("c")) warnings.push(`${s.key} ${name} round ${i + 1}: ${v.non2xx} non-2xx, ${v.errors} errors (${v.last_failure})`);
      if (v?.timed_out) warnings.push(`${s.key} ${name} round ${i + 1}: stopped at --max-case-seconds after ${v.n} requests`);
    }
    const fo = r[s.key]?.failover;
    if (fo && !fo.error && fo.upstream_failures !== fo.requests_sent) warnings.push(`${s.key} failover round ${i + 1}: ${fo.upstream_failures} upstream failures for ${fo.requests_sent} requests (expected one each: the circuit breaker opened${OPT.failoverStatus === 500 ? ", or retries of the 500" : ""})`);
  }
  for (const events of STREAM_EVENTS) {
    const seen = figures[s.key][`stream${events}`].events_seen;
    if (seen !== null && seen !== events) warnings.push(`${s.key} stream${events}: the client saw ${seen} events (the mock sends ${events})`);
  }
}
for (const [i, r] of rounds.entries()) {
  for (const [key, v] of Object.entries(r)) {
    for (const [pid, lists] of Object.entries(v.placement ?? {})) {
      if (PINNING.enabled && lists.some((l) => l !== String(OPT.subjectCore))) warnings.push(`${key} round ${i + 1}: workerd/peer pid ${pid} threads allowed on ${lists.join(", ")}, not only core ${OPT.subjectCore}`);
    }
  }
}
const fastest = Math.max(...shown.filter((s) => s.key !== "D").map((s) => figures[s.key].c64.rps?.median ?? 0));
const directRps = figures.D.c64.rps?.median ?? 0;
if (fastest && directRps < 3 * fastest) warnings.push(`direct c=64 (${int(directRps)} req/s) is under 3× the fastest subject (${int(fastest)}): the mock or the client may be limiting`);
if (Math.max(loadBefore[0], loadAfter[0]) > 1.5) warnings.push(`load average ${fmt(loadBefore[0])} / ${fmt(loadAfter[0])}: other work was running, figures are noisy`);
for (const s of subjects.filter((s) => s.failed)) warnings.push(`${s.key} ${s.name}: not started (${s.failed.split("\n")[0]})`);
if (notes.length) {
  console.log("\nCases a subject does not serve (no figure, not an error of the bench)");
  for (const n of notes) console.log(`  - ${n}`);
}
if (warnings.length) {
  console.log("\nWarnings");
  for (const w of warnings) console.log(`  - ${w}`);
}

// JSON file
const version = (pkg) => {
  try {
    return JSON.parse(readFileSync(path.join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return null;
  }
};
const git = (...a) => {
  try {
    return execFileSync("git", a, { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    return null;
  }
};
const result = {
  started_at: startedAt.toISOString(),
  finished_at: new Date().toISOString(),
  options: OPT,
  git: { commit: git("rev-parse", "HEAD"), dirty: Boolean(git("status", "--porcelain")) },
  machine: {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model,
    load_average_before: loadBefore,
    load_average_after: loadAfter,
    node: process.version,
    miniflare: version("miniflare"),
    workerd: version("workerd"),
    portkey: OPT.peer === "portkey" ? PORTKEY_VERSION : null,
    pinning: PINNING,
    client: "node:http, keep-alive http.Agent (one socket per worker), TCP_NODELAY",
  },
  subjects: subjects.map(({ key, name, url, pids, failed, cold }) => ({ key, name, url, pids, cold_start: cold ?? null, failed: failed ?? null })),
  memory_after_mb: memoryAfter,
  isolate_memory_after_mb: isolateAfter,
  figures,
  ratios,
  warnings,
  not_served: notes,
  rounds,
};
const outDir = path.join(ROOT, ".bench");
mkdirSync(outDir, { recursive: true });
const outFile = path.join(outDir, `results-${startedAt.toISOString().replace(/[:.]/g, "-")}${OPT.quick ? "-quick" : ""}.json`);
writeFileSync(outFile, JSON.stringify(result, null, 2));
if (args.json) writeFileSync(path.resolve(args.json), JSON.stringify(result, null, 2));
console.log(`\nEvery figure: ${path.relative(process.cwd(), outFile)}${args.json ? ` and ${args.json}` : ""}`);
process.exit(0);
