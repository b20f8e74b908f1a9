// Two builds of the gateway compared side by side in one run: what one change costs or saves.
// scripts/bench compares the gateway with floors and a peer; this compares the gateway with
// itself. Each build runs in its own Miniflare (its own workerd) with its own mock provider.
//
//   node scripts/ab.mjs save DIR            copy the current build (build/index.js, .wasm) to DIR
//   node scripts/ab.mjs A_DIR B_DIR [options]
//
// The directories must be inside the repository (Miniflare's root), e.g. .bench/ab/before and
// .bench/ab/after (.bench/ is ignored by git).
//
// Options:
//   --together        load both builds at the same time (each at --c): other load on the
//                     machine then hits both alike. Without it they take turns (A B, B A, ...).
//   --c=32            concurrent requests per build          --seconds=3  per case and round
//   --rounds=6        rounds (medians and min–max over them)
//   --bodies=json,stream   json: max_tokens 100 (asked as JSON); sa: no max_tokens (JSON or a
//                     stream assembled, by the learned-speed rule); sa1m: max_tokens 1,000,000
//                     (always a stream assembled); stream: a client stream
//   --events=N        answers N events long (default 9: the mock's answer to "Say hello")
//   --lat=N           instead of load: c=1 latency, N requests per build per round, the builds
//                     alternating request by request (for streams: time to the first chunk)
//   --bind-a=NAME:VALUE[;NAME:VALUE]  --bind-b=...   extra Worker vars for one build
//   --no-usage-b      build B without the usage store (Queue and D1)
//   --direct          serve both builds on their own sockets, not through Miniflare's entry
//                     Worker (as scripts/bench does); --direct-b: build B only
//   --sdk-headers     send the headers an official SDK and Cloudflare's edge add (the OpenAI JS
//                     SDK's user-agent and x-stainless-*, cf-ray, cf-ipcountry, x-forwarded-*, ...):
//                     about 25 headers a request, as production requests carry, not 5
//   --key-a=limited   --key-b=limited   send one build's requests with scripts/bench's key with
//                     rate limits and a budget (default: the unlimited key); the same directory
//                     twice with --key-b=limited measures what a limited key costs
//
// CPU per request is the build's workerd process time (user + system, from /proc) over the
// requests it answered: it counts Miniflare's simulators (Queue, D1, Durable Objects) too. An
// A/A run (the same directory twice, --together) gives ratios of 1.00 ± ~0.05.
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startGateway, putConfig, benchSuiteConfig, DEV_GATEWAY_KEY, BENCH_LIMITED_KEY, promptForEvents } from "./lib/gateway.mjs";
import { immediateZeroTimeouts } from "./lib/immediate-timeouts.mjs";
import { withStartedWorkerd } from "./lib/workerd-process.mjs";
import { option, flag, positional as positionalArguments } from "./lib/options.mjs";
import { startMockProvider } from "../tests/e2e/mock-providers.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const positional = positionalArguments();

const inside = (dir) => !path.relative(ROOT, path.resolve(dir)).startsWith("..");
if (positional.slice(positional[0] === "save" ? 1 : 0).some((dir) => !inside(dir))) {
  console.error(`the build directories must be inside ${ROOT} (e.g. .bench/ab/before)`);
  process.exit(2);
}
if (positional[0] === "save") {
  const dir = path.resolve(positional[1] ?? "");
  mkdirSync(dir, { recursive: true });
  for (const file of ["index.js", "index_bg.wasm"]) copyFileSync(path.join(ROOT, "build", file), path.join(dir, file));
  console.log(`saved build/ to ${dir}`);
  process.exit(0);
}
if (positional.length !== 2) {
  console.error("usage: node scripts/ab.mjs save DIR | node scripts/ab.mjs A_DIR B_DIR [--together] [--c=32] ...");
  process.exit(2);
}

// As in the bench's mock process: the mock's stream events go out back to back.
immediateZeroTimeouts();

const CONCURRENCY = Number(option("c", 32));
const SECONDS = Number(option("seconds", 3));
const ROUNDS = Number(option("rounds", 6));
const BODIES = option("bodies", "json,stream").split(",").filter(Boolean);
const LATENCY_REQUESTS = Number(option("lat", 0));
const PROMPT = promptForEvents(Number(option("events", 0)));

function cpuMs(subject) {
  let ticks = 0;
  for (const pid of subject.pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The process is gone: it adds nothing more.
    }
  }
  return ticks * 10;
}

const subjects = [];
for (const [label, dir] of [["A", positional[0]], ["B", positional[1]]]) {
  const mock = await startMockProvider({ name: "bench", gapMs: 0 });
  const vars = option(`bind-${label.toLowerCase()}`, "");
  const bindings = vars ? Object.fromEntries(vars.split(";").map((pair) => pair.split(":"))) : {};
  const usage = !(label === "B" && flag("no-usage-b"));
  const direct = flag("direct") || (label === "B" && flag("direct-b"));
  const { mf, url, pids } = await withStartedWorkerd(() =>
    startGateway({ scriptPath: path.resolve(dir, "index.js"), usage, bindings, direct }),
  );
  await putConfig(url, benchSuiteConfig(mock.baseUrl));
  const key = option(`key-${label.toLowerCase()}`, "") === "limited" ? BENCH_LIMITED_KEY : DEV_GATEWAY_KEY;
  subjects.push({ label, mock, mf, url, pids, key });
}

const body = (kind) =>
  JSON.stringify({
    model: "bench",
    messages: [{ role: "user", content: PROMPT }],
    ...(kind === "json" ? { max_tokens: 100 } : {}),
    ...(kind === "sa1m" ? { max_tokens: 1_000_000 } : {}),
    ...(kind === "stream" ? { stream: true } : {}),
  });
// What the OpenAI JS SDK sends, and what Cloudflare's edge adds before a Worker sees it.
const SDK_HEADERS = flag("sdk-headers")
  ? {
      accept: "application/json",
      "user-agent": "OpenAI/JS 5.23.2",
      "x-stainless-lang": "js",
      "x-stainless-package-version": "5.23.2",
      "x-stainless-os": "Linux",
      "x-stainless-arch": "x64",
      "x-stainless-runtime": "node",
      "x-stainless-runtime-version": "v22.20.0",
      "x-stainless-retry-count": "0",
      "x-stainless-timeout": "600",
      "cf-ray": "8f1e2d3c4b5a6978-FRA",
      "cf-ipcountry": "DE",
      "cf-visitor": '{"scheme":"https"}',
      "x-forwarded-proto": "https",
      "x-real-ip": "203.0.113.7",
      "cdn-loop": "cloudflare; loops=1",
      "accept-language": "*",
    }
  : {};
const post = (subject, text) =>
  fetch(`${subject.url}/v1/chat/completions`, {
    method: "POST",
    headers: { ...SDK_HEADERS, "content-type": "application/json", authorization: `Bearer ${subject.key}` },
    body: text,
  });

/** ms to the whole answer, or for a stream to its first chunk (the rest is still read). */
async function timed(subject, text, toFirstChunk) {
  const started = performance.now();
  const res = await post(subject, text);
  if (!toFirstChunk) {
    await res.arrayBuffer();
    return performance.now() - started;
  }
  const reader = res.body.getReader();
  await reader.read();
  const elapsed = performance.now() - started;
  while (!(await reader.read()).done);
  return elapsed;
}

async function load(subject, kind) {
  const text = body(kind);
  const until = Date.now() + SECONDS * 1000;
  const cpuBefore = cpuMs(subject);
  let answered = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < until) {
        const res = await post(subject, text);
        await res.arrayBuffer();
        res.status === 200 ? answered++ : failed++;
      }
    }),
  );
  return { rps: answered / SECONDS, cpuUs: ((cpuMs(subject) - cpuBefore) * 1000) / Math.max(1, answered), failed };
}

// Warm-up: every body, both builds (the isolates learn the mock's pace).
for (const subject of subjects) for (const kind of BODIES) for (let i = 0; i < 300; i++) await (await post(subject, body(kind))).arrayBuffer();

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const spread = (xs, digits) => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
const results = {};
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 ? [...subjects].reverse() : subjects;
  for (const kind of BODIES) {
    const row = (results[kind] ??= { A: [], B: [] });
    if (LATENCY_REQUESTS) {
      const samples = { A: [], B: [] };
      for (let i = 0; i < LATENCY_REQUESTS; i++) {
        for (const subject of order) samples[subject.label].push(await timed(subject, body(kind), kind === "stream"));
      }
      for (const subject of subjects) row[subject.label].push({ p50: median(samples[subject.label]) });
      console.log(`round ${round} ${kind}: p50 A ${median(samples.A).toFixed(3)} ms, B ${median(samples.B).toFixed(3)} ms`);
      continue;
    }
    const measured = flag("together")
      ? await Promise.all(order.map((subject) => load(subject, kind)))
      : await order.reduce(async (done, subject) => [...(await done), await load(subject, kind)], Promise.resolve([]));
    order.forEach((subject, i) => {
      const m = measured[i];
      row[subject.label].push(m);
      const failures = m.failed ? `, ${m.failed} not 200` : "";
      console.log(`round ${round} ${kind} ${subject.label}: ${m.rps.toFixed(0)} req/s, ${m.cpuUs.toFixed(0)} µs CPU/request${failures}`);
    });
  }
}

console.log(`--- medians over ${ROUNDS} rounds (min–max)${flag("together") ? ", loaded together" : ""}`);
for (const [kind, row] of Object.entries(results)) {
  if (LATENCY_REQUESTS) {
    const a = row.A.map((x) => x.p50);
    const b = row.B.map((x) => x.p50);
    const delta = b.map((x, i) => x - a[i]);
    console.log(`${kind} c=1 p50: A ${spread(a, 3)} ms, B ${spread(b, 3)} ms, B−A ${spread(delta, 3)} ms`);
  } else {
    const ratio = row.B.map((b, i) => b.cpuUs / row.A[i].cpuUs);
    const describe = (xs) => `${spread(xs.map((x) => x.rps), 0)} req/s, ${spread(xs.map((x) => x.cpuUs), 0)} µs`;
    console.log(`${kind} c=${CONCURRENCY}: A ${describe(row.A)} | B ${describe(row.B)} | B/A CPU ${spread(ratio, 3)}`);
  }
}
for (const subject of subjects) {
  await subject.mf.dispose();
  await subject.mock.close();
}
process.exit(0);
