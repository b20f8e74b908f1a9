// Soak run: sustained concurrent load for a bounded time against a mix of healthy,
// flaky (random 500 / 429 / connection cut / hang) and slow mock providers, with a key
// that has rate limits, a concurrency cap and a monthly budget, mixing JSON and
// streamed chat requests. 127.0.0.1 only. Run through `scripts/bench --soak`.
//
// It reports responses by status and error class, and fails (exit 1) unless:
//   - no response is a gateway 500 (the gateway's own bug) or a non-JSON error;
//   - no 200 stream ends silently (neither a clean end with a finish reason nor an error event);
//   - afterwards no concurrency slot is held (`GET /admin/limits`: nothing in flight);
//   - the spend the key's limiter recorded equals the sum of what the answers cost
//     (`x-gateway-cost-usd`, a stream's usage at the target's price; for a stream cut
//     after it started, the cost its request log line charged), within micro-dollar rounding;
//   - the workerd process's memory stays roughly flat (RSS sampled from /proc).
//
// Options: --seconds N (180), --concurrency C (32), --stream-share F (0.5),
// --abort-share F (that share of streams: the client disconnects after the first content), --seed S,
// --usage-store (also run the local Queue + D1 usage store; memory is then reported only).
import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { startGateway, putConfig, DEV_ADMIN_TOKEN } from "./lib/gateway.mjs";
import { workerdChildren, statusMb } from "./lib/workerd-process.mjs";
import { startMockProvider } from "../tests/e2e/mock-providers.mjs";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "180" },
    concurrency: { type: "string", default: "32" },
    "stream-share": { type: "string", default: "0.5" },
    // Streams the client walks away from after their first content (a disconnect).
    "abort-share": { type: "string", default: "0.05" },
    seed: { type: "string", default: "1" },
    // With the local usage store (Queue + D1 simulators in the same workerd process).
    "usage-store": { type: "boolean", default: false },
    soak: { type: "boolean", default: false }, // passed through by scripts/bench
  },
});
const SECONDS = Number(values.seconds);
const C = Number(values.concurrency);
const STREAM_SHARE = Number(values["stream-share"]);
const ABORT_SHARE = Number(values["abort-share"]);
// Off by default: Miniflare's local Queue and D1 grow workerd's memory by themselves
// (about 1 MB/s at 60 messages/s, measured with a trivial JS worker), which would hide
// the gateway's own memory in the RSS check. With it, memory is reported, not checked.
const USAGE_STORE = values["usage-store"];
if (!(SECONDS > 0 && C > 0 && STREAM_SHARE >= 0 && STREAM_SHARE <= 1)) {
  console.error("usage: scripts/bench --soak [--seconds N] [--concurrency C] [--stream-share 0..1] [--seed S] [--usage-store]");
  process.exit(2);
}

// A small seeded PRNG (mulberry32): a run's fault sequence can be replayed.
let seed = Number(values.seed) >>> 0 || 1;
function random() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (weighted) => {
  let r = random() * weighted.reduce((n, [w]) => n + w, 0);
  for (const [w, value] of weighted) if ((r -= w) < 0) return value;
  return weighted.at(-1)[1];
};

const SOAK_KEY = "gw_soak_limited_key";
const sha256 = (s) => createHash("sha256").update(s).digest("hex");
// USD per million tokens, per target (the serving target's price is what is charged).
const PRICES = {
  healthy: { input_per_mtok: 2, output_per_mtok: 8 },
  flaky: { input_per_mtok: 1, output_per_mtok: 4 },
  slow: { input_per_mtok: 3, output_per_mtok: 12 },
};

const mocks = {
  healthy: await startMockProvider({ name: "healthy", gapMs: 2 }),
  flaky: await startMockProvider({ name: "flaky", gapMs: 2 }),
  slow: await startMockProvider({ name: "slow", gapMs: 20 }),
};

// The mocks take faults from a queue, one per request: keep each queue topped up with
// random faults (a plain answer is `kind: "ok"`).
const FAULTS = {
  healthy: () => ({ kind: "ok" }),
  flaky: () =>
    pick([
      [55, { kind: "ok" }],
      [12, { kind: "status", status: 500 }],
      [8, { kind: "status", status: 429, retryAfter: "1" }],
      [5, { kind: "status", status: 503 }],
      [10, { kind: "cut_stream", afterChunks: 2 }],
      [5, { kind: "hang" }],
      [5, { kind: "slow_first_byte", delayMs: 3000 }],
    ]),
  slow: () =>
    pick([
      [70, { kind: "ok", delayMs: 200 + Math.floor(random() * 1200) }],
      [30, { kind: "slow_body", delayMs: 300 + Math.floor(random() * 700) }],
    ]),
};
const queued = { healthy: 0, flaky: 0, slow: 0 };
function topUp() {
  for (const [name, mock] of Object.entries(mocks)) {
    while (queued[name] - mock.calls.length < 256) {
      mock.fault({ ...FAULTS[name](), times: 1 });
      queued[name]++;
    }
  }
}
topUp();
const topping = setInterval(topUp, 50);

const logs = new Map(); // request id -> the gateway's request log line
const otherLines = new Map(); // anything else the Worker logged (warnings, panics), by its start
function onLogLine(message) {
  for (const text of String(message).split("\n")) {
    if (!text.trim()) continue;
    let line = null;
    try {
      line = JSON.parse(text);
    } catch {}
    if (line?.request_id) logs.set(line.request_id, line);
    else {
      const key = line?.event ? `${line.event}${line.detail ? `: ${String(line.detail).slice(0, 80)}` : ""}` : text.slice(0, 400);
      otherLines.set(key, (otherLines.get(key) ?? 0) + 1);
    }
  }
}

const config = {
  version: 1,
  revision: "soak",
  settings: {
    allow_http_providers: true,
    first_byte_timeout_ms: 2000,
    request_timeout_ms: 15000,
    stream_idle_timeout_ms: 3000,
    limiter_timeout_ms: 3000,
    circuit_breaker: { consecutive_failures: 5, base_open_ms: 2000, max_open_ms: 8000 },
  },
  providers: Object.fromEntries(Object.entries(mocks).map(([name, mock]) => [name, { kind: "openai", base_url: mock.baseUrl, region: "us" }])),
  models: {
    soak: {
      strategy: "weighted",
      targets: Object.keys(mocks).map((name) => ({ provider: name, model: `soak-${name}`, weight: 1, price: PRICES[name] })),
    },
  },
  keys: {
    [sha256(SOAK_KEY)]: {
      name: "soak",
      models: ["soak"],
      team: "soakers",
      limits: { requests_per_minute: 20000, tokens_per_minute: 20000000, max_concurrent: 24 },
      monthly_budget_usd: 1000,
    },
  },
  teams: { soakers: { limits: { max_concurrent: 28 } } },
};

const { mf, url } = await startGateway({ onLogLine, usage: USAGE_STORE });
await putConfig(url, config);

/** Usage records the queue consumer has written to D1 so far. */
async function usageRows() {
  if (!USAGE_STORE) return "no";
  try {
    const db = await mf.getD1Database("USAGE");
    return (await db.prepare("SELECT COUNT(*) AS n FROM usage_requests").first()).n;
  } catch (error) {
    return `? (${error.message})`;
  }
}

// workerd is Miniflare's child process: its RSS (or another field), from /proc.
const rssMb = (field = "VmRSS") => workerdChildren().reduce((sum, pid) => sum + (statusMb(pid, field) ?? 0), 0);
const sample = () => ({ at: Math.round((Date.now() - started) / 1000), mb: rssMb(), anon: rssMb("RssAnon") });

const counts = new Map(); // class -> count
const count = (cls) => counts.set(cls, (counts.get(cls) ?? 0) + 1);
const problems = [];
const problem = (text) => {
  if (problems.length < 20) problems.push(text);
};
let answeredCost = 0; // what the answers said they cost
let answeredCount = 0;
const unseenCost = []; // request ids of answers whose cost the client could not see (cut streams)
let requests = 0;

const priceOf = (provider) => PRICES[provider];
const costOf = (provider, usage) => {
  const p = priceOf(provider);
  if (!p || !usage) return null;
  return (usage.prompt_tokens * p.input_per_mtok + usage.completion_tokens * p.output_per_mtok) / 1e6;
};

async function one() {
  const stream = random() < STREAM_SHARE;
  const walkAway = stream && random() < ABORT_SHARE;
  const controller = new AbortController();
  const words = 3 + Math.floor(random() * 40);
  const body = {
    model: "soak",
    messages: [{ role: "user", content: Array.from({ length: words }, (_, i) => `word${i}`).join(" ") }],
    max_tokens: 64 + Math.floor(random() * 256),
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  };
  requests++;
  let res;
  try {
    res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${SOAK_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.any([controller.signal, AbortSignal.timeout(60000)]),
    });
  } catch (error) {
    count(`client_error:${error.name}`);
    problem(`fetch failed: ${error.message}`);
    return;
  }
  const id = res.headers.get("x-request-id");
  const provider = res.headers.get("x-gateway-provider");
  const type = res.headers.get("content-type") ?? "";
  if (res.status !== 200 || !stream || !type.includes("text/event-stream")) {
    const text = await res.text().catch(() => "");
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {}
    if (res.status === 200) {
      if (!json?.choices) {
        count("200:not_a_completion");
        problem(`${id}: 200 without a completion: ${text.slice(0, 200)}`);
        return;
      }
      count(stream ? "200:stream_as_json" : "200:json");
      const header = res.headers.get("x-gateway-cost-usd");
      const cost = header !== null ? Number(header) : costOf(provider, json.usage);
      answeredCost += cost ?? 0;
      answeredCount++;
      return;
    }
    const code = json?.error?.code ?? json?.error?.type;
    if (!code) {
      count(`${res.status}:not_json`);
      problem(`${id}: HTTP ${res.status} that is not a JSON error: ${text.slice(0, 200)}`);
      return;
    }
    count(`${res.status}:${code}`);
    if (res.status === 429) await new Promise((r) => setTimeout(r, 50 + Math.floor(random() * 200)));
    if (res.status >= 500 && (res.status === 500 || code === "internal_error")) {
      problem(`${id}: gateway error ${res.status} ${code}: ${json.error.message}`);
    }
    return;
  }
  // A 200 stream: read it to the end.
  const decoder = new TextDecoder();
  let buffer = "";
  let usage = null;
  let finished = false;
  let done = false;
  let errorCode = null;
  try {
    for await (const piece of res.body) {
      buffer += decoder.decode(piece, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split("\n")
          .filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trimStart())
          .join("\n");
        if (!data) continue;
        if (data === "[DONE]") {
          done = true;
          continue;
        }
        let event;
        try {
          event = JSON.parse(data);
        } catch {
          problem(`${id}: stream event that is not JSON: ${data.slice(0, 120)}`);
          continue;
        }
        if (event.error) errorCode = event.error.code ?? event.error.type ?? "error";
        if (walkAway && event.choices?.some((c) => c.delta?.content)) {
          controller.abort();
          count("200:stream_client_disconnected");
          unseenCost.push(id); // charged what was generated: its log line says how much
          return;
        }
        if (event.usage) usage = event.usage;
        if (event.choices?.some((c) => c.finish_reason)) finished = true;
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
    count(`200:stream_read_failed:${error.name}`);
    problem(`${id}: stream read failed: ${error.message}`);
    return;
  }
  if (errorCode) {
    count(`200:stream_error:${errorCode}`);
    unseenCost.push(id);
  } else if (done && finished && usage) {
    count("200:stream");
    answeredCost += costOf(provider, usage) ?? 0;
    answeredCount++;
  } else {
    count("200:stream_silent_end");
    problem(`${id}: stream ended without an error event (done=${done}, finish_reason=${finished}, usage=${!!usage})`);
  }
}

async function adminLimits() {
  const res = await fetch(`${url}/admin/limits`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
  if (res.status !== 200) throw new Error(`/admin/limits: HTTP ${res.status}`);
  return res.json();
}

// --- the run ---
console.log(`soak: ${SECONDS} s at concurrency ${C}, ${Math.round(STREAM_SHARE * 100)}% streams, seed ${values.seed}, usage store ${USAGE_STORE ? "on" : "off"}, gateway ${url}`);
const started = Date.now();
const until = started + SECONDS * 1000;
const rss = [];
const sampleEvery = Math.max(2000, Math.min(10000, (SECONDS * 1000) / 12));
const sampler = setInterval(() => rss.push(sample()), sampleEvery);
const progress = setInterval(async () => {
  const ok = [...counts].filter(([k]) => k.startsWith("200:")).reduce((n, [, v]) => n + v, 0);
  const rows = USAGE_STORE ? `, ${await usageRows()} usage rows in D1` : "";
  console.log(`  ${Math.round((Date.now() - started) / 1000)} s: ${requests} requests, ${ok} answered 200${rows}`);
}, 15000);
await Promise.all(
  Array.from({ length: C }, async () => {
    while (Date.now() < until) await one();
  }),
);
const elapsed = (Date.now() - started) / 1000;
clearInterval(progress);
clearInterval(sampler);
rss.push(sample());

// Settlements run after the answers (wait_until): give them a moment, then read the limiter.
let limits = null;
let inFlight = null;
for (let i = 0; i < 40; i++) {
  limits = await adminLimits();
  inFlight = [
    ...Object.entries(limits.keys).map(([n, v]) => [`key ${n}`, v.now?.in_flight]),
    ...Object.entries(limits.teams).map(([n, v]) => [`team ${n}`, v.now?.in_flight]),
  ];
  if (inFlight.every(([, n]) => n === 0)) break;
  await new Promise((r) => setTimeout(r, 250));
}
// The usage queue's consumer catches up (its backlog lives in workerd's memory locally).
let rows = await usageRows();
for (let i = 0; i < 60 && typeof rows === "number"; i++) {
  await new Promise((r) => setTimeout(r, 1000));
  const now = await usageRows();
  if (now === rows) break;
  rows = now;
}
rss.push(sample());

if (USAGE_STORE) console.log(`usage rows in D1 after the run: ${rows}`);
// Log lines of cut streams are written when their pump ends.
for (let i = 0; i < 40 && unseenCost.some((id) => !logs.has(id)); i++) await new Promise((r) => setTimeout(r, 250));
const unseen = unseenCost.reduce((n, id) => n + (logs.get(id)?.cost_usd ?? 0), 0);
const unseenMissing = unseenCost.filter((id) => !logs.has(id)).length;
const recorded = limits.keys.soak?.now?.spent_usd_this_month?.all ?? 0;
const expected = answeredCost + unseen;
const tolerance = 1e-6 * (answeredCount + unseenCost.length) + 1e-9;

clearInterval(topping);
await mf.dispose();
await Promise.all(Object.values(mocks).map((m) => m.close()));

// --- the report ---
console.log(`\n${requests} requests in ${elapsed.toFixed(1)} s (${(requests / elapsed).toFixed(1)}/s)`);
console.log("responses by status and class:");
for (const [cls, n] of [...counts].sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(7)}  ${cls}`);
if (otherLines.size) {
  console.log("other log lines of the Worker:");
  for (const [text, n] of [...otherLines].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${String(n).padStart(7)}  ${text}`);
}
console.log("provider calls:", Object.fromEntries(Object.entries(mocks).map(([n, m]) => [n, m.calls.length])));
console.log(`memory (workerd RSS, MB; anonymous in brackets): ${rss.map((s) => `${s.at}s ${s.mb.toFixed(0)} [${s.anon.toFixed(0)}]`).join(", ")}`);

const checks = [];
const check = (name, ok, detail) => checks.push({ name, ok, detail });
const gateway500s = [...counts].filter(([k]) => /^500:|:internal_error$|:not_json$/.test(k)).reduce((n, [, v]) => n + v, 0);
check("no gateway 500s or non-JSON errors", gateway500s === 0, `${gateway500s}`);
const silent = (counts.get("200:stream_silent_end") ?? 0) + (counts.get("200:not_a_completion") ?? 0);
check("no silent or malformed 200s", silent === 0 && problems.length === 0, `${silent}`);
const panics = [...otherLines].filter(([t]) => /panicked|RuntimeError|unreachable|Uncaught/i.test(t)).reduce((n, [, v]) => n + v, 0);
check("no panics or uncaught errors in the Worker's log", panics === 0, `${panics}`);
check("no concurrency slot held afterwards", inFlight.every(([, n]) => n === 0), inFlight.map(([k, n]) => `${k}: ${n}`).join(", "));
check(
  "spend recorded = sum of answered costs",
  Math.abs(recorded - expected) <= tolerance && unseenMissing === 0,
  `recorded $${recorded.toFixed(6)}, answers $${answeredCost.toFixed(6)} + cut streams $${unseen.toFixed(6)} (${unseenCost.length}, ${unseenMissing} without a log line) = $${expected.toFixed(6)}, tolerance $${tolerance.toFixed(6)}`,
);
// The first sample after warm-up against the last: allow 50% and 64 MB of growth.
const steady = rss.length > 2 ? rss[1] : rss[0];
const last = rss.at(-1);
const flat = !steady || !last || last.mb <= Math.max(steady.mb * 1.5, steady.mb + 64);
const detail = steady && last ? `${steady.mb.toFixed(0)} MB at ${steady.at} s → ${last.mb.toFixed(0)} MB at ${last.at} s` : "no samples";
if (USAGE_STORE) console.log(`memory (not checked with the local usage store): ${detail}`);
else check("memory roughly flat", flat && (steady?.mb ?? 0) > 0, detail);
check("enough load", (counts.get("200:json") ?? 0) + (counts.get("200:stream") ?? 0) > 0, `${answeredCount} answered`);

console.log("\nchecks:");
for (const c of checks) console.log(`  ${c.ok ? "PASS" : "FAIL"}  ${c.name}: ${c.detail}`);
if (problems.length) {
  console.log("\nfirst problems:");
  for (const p of problems) console.log(`  ${p}`);
}
process.exit(checks.every((c) => c.ok) ? 0 : 1);
