// Benchmark: added latency and throughput of the gateway against a direct call
// to the same mock, the platform floor (a trivial pass-through worker in the same
// workerd), and a peer (Portkey's open-source gateway) measured in the same run.
// Run through scripts/bench. Every loop is bounded in count and time.
import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { spawn } from "node:child_process";
import path from "node:path";
import { Miniflare } from "miniflare";
import { startGateway, putConfig, ROOT, DEV_GATEWAY_KEY, benchConfig } from "./lib/gateway.mjs";
import { startMockProvider } from "../tests/e2e/mock-providers.mjs";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "2000" },
    warmup: { type: "string", default: "200" },
    concurrency: { type: "string", default: "32" },
    seconds: { type: "string", default: "5" },
    peer: { type: "string", default: "portkey" },
    // Streamed answers (stream: true, read to the end) instead of JSON ones.
    stream: { type: "boolean", default: false },
  },
});
const N = Number(values.requests);
const WARMUP = Number(values.warmup);
const C = Number(values.concurrency);
const SECONDS = Number(values.seconds);
const BODY = JSON.stringify({ model: "bench", messages: [{ role: "user", content: "Say hello" }], stream: values.stream });

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

async function one(url, headers) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: BODY });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
}

async function latency(url, headers) {
  for (let i = 0; i < WARMUP; i++) await one(url, headers);
  const samples = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    await one(url, headers);
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}

async function throughput(url, headers) {
  const until = Date.now() + SECONDS * 1000;
  let done = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (Date.now() < until) {
        try {
          await one(url, headers);
          done++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { rps: done / SECONDS, errors };
}

/** The platform floor: a four-line JS pass-through worker in the same workerd. */
async function startFloor(upstream) {
  const mf = new Miniflare({
    modules: true,
    script: `export default { fetch(req, env) { const u = new URL(req.url); return fetch(env.UP + u.pathname, { method: req.method, headers: req.headers, body: req.body }); } };`,
    bindings: { UP: upstream },
    compatibilityDate: "2026-04-26",
  });
  return { url: (await mf.ready).toString().replace(/\/$/, ""), close: () => mf.dispose() };
}

/** Portkey's gateway from npm (Node build), installed into .bench/ on first use. */
async function startPortkey(port) {
  const dir = path.join(ROOT, ".bench");
  const entry = path.join(dir, "node_modules/@portkey-ai/gateway/build/start-server.js");
  if (!existsSync(entry)) {
    mkdirSync(dir, { recursive: true });
    execFileSync("npm", ["install", "--prefix", dir, "--no-save", "--no-audit", "--no-fund", "@portkey-ai/gateway@1.15.2"], { stdio: "inherit" });
  }
  const child = spawn(process.execPath, [entry, `--port=${port}`, "--headless"], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { url, close: () => child.kill() };
}

const mock = await startMockProvider({ name: "bench", gapMs: 0 });
const floor = await startFloor(mock.url);
// With the usage store (Queue + D1, batched as in production) and without it, to show its hot-path cost.
const { mf, url: gatewayUrl } = await startGateway({ usageBatchTimeoutMs: 1000 });
await putConfig(gatewayUrl, benchConfig(mock.baseUrl));
const { mf: mfBare, url: bareUrl } = await startGateway({ usage: false });
await putConfig(bareUrl, benchConfig(mock.baseUrl));

const subjects = [
  { name: "direct", url: `${mock.baseUrl}/chat/completions`, headers: {} },
  { name: "floor (JS pass-through worker)", url: `${floor.url}/v1/chat/completions`, headers: {} },
  { name: "edge-ai-gateway", url: `${gatewayUrl}/v1/chat/completions`, headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}` } },
  { name: "edge-ai-gateway, no usage store", url: `${bareUrl}/v1/chat/completions`, headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}` } },
];
let peer = null;
if (values.peer === "portkey") {
  try {
    peer = await startPortkey(8799);
    subjects.push({
      name: "portkey 1.15.2 (Node)",
      url: `${peer.url}/v1/chat/completions`,
      headers: { "x-portkey-provider": "openai", "x-portkey-custom-host": mock.baseUrl, authorization: "Bearer mock" },
    });
  } catch (err) {
    console.log(`(peer unavailable: ${err.message})`);
  }
}

const results = {};
for (const s of subjects) {
  try {
    results[s.name] = { ...(await latency(s.url, s.headers)), ...(await throughput(s.url, s.headers)) };
  } catch (err) {
    results[s.name] = { error: err.message };
  }
}

const direct = results.direct;
const kind = values.stream ? "streamed" : "JSON";
console.log(`\n${N} sequential ${kind} requests (after ${WARMUP} warmup), then ${C} concurrent for ${SECONDS} s; mock answers at once\n`);
console.log("subject".padEnd(34) + "p50 ms  p99 ms  added p50  added p99     req/s  errors");
for (const [name, r] of Object.entries(results)) {
  if (r.error) {
    console.log(`${name.padEnd(34)}${r.error}`);
    continue;
  }
  const f = (x) => x.toFixed(2).padStart(6);
  console.log(
    `${name.padEnd(34)}${f(r.p50)}  ${f(r.p99)}  ${f(r.p50 - direct.p50).padStart(9)}  ${f(r.p99 - direct.p99).padStart(9)}  ${r.rps.toFixed(0).padStart(8)}  ${r.errors}`,
  );
}
const us = results["edge-ai-gateway"];
const fl = results["floor (JS pass-through worker)"];
const pk = results["portkey 1.15.2 (Node)"];
console.log("\nratios");
if (us && fl && !us.error && !fl.error) {
  console.log(`  our code's own cost (added p50 − floor's):   ${(us.p50 - fl.p50).toFixed(2)} ms`);
  console.log(`  throughput kept of the platform floor:       ${((us.rps / fl.rps) * 100).toFixed(0)}%`);
}
if (us && pk && !us.error && !pk.error) {
  console.log(`  added p50 vs Portkey:                        ${((us.p50 - direct.p50) / (pk.p50 - direct.p50)).toFixed(2)}×`);
  console.log(`  throughput vs Portkey:                       ${(us.rps / pk.rps).toFixed(2)}×`);
}

await Promise.allSettled([mf.dispose(), mfBare.dispose(), floor.close(), mock.close(), peer?.close()]);
process.exit(0);
