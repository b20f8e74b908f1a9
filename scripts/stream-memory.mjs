// Memory against stream length: does a long stream cost more memory than a short one?
// Run through `scripts/bench --stream-memory`. 127.0.0.1 only.
//
// One gateway (usage store off: Miniflare's Queue and D1 simulators grow workerd's memory by
// themselves, see scripts/soak.mjs) in front of the mock provider, answering back to back.
// For each client API (OpenAI chat completions and Anthropic messages, both to an OpenAI-kind
// target under another model name, so events are renamed or translated) and each length,
// it streams a few answers one after another, then reads:
//   - the isolate's JS heap in use and its wasm linear memory (scripts/lib/isolate-memory.mjs,
//     through the inspector: no hook in the Worker);
//   - workerd's resident memory (RSS from /proc: the runtime's buffers are in it too).
// It fails (exit 1) unless every stream ended as a complete answer and, from the shortest
// length to the longest, the JS heap grew by less than 4 MB, the wasm memory by less than
// 2 MB and RSS by less than 32 MB (the runtime's own buffers move it by a few MB).
//
// Options: --lengths 1000,10000,100000 (events per stream), --streams N (3 per length and API).
import { parseArgs } from "node:util";
import { writeFileSync, mkdirSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { startGateway, putConfig, benchConfig, DEV_GATEWAY_KEY, ROOT } from "./lib/gateway.mjs";
import { immediateZeroTimeouts } from "./lib/immediate-timeouts.mjs";
import { isolateMemory } from "./lib/isolate-memory.mjs";
import { withStartedWorkerd, statusMb } from "./lib/workerd-process.mjs";
import { startMockProvider } from "../tests/e2e/mock-providers.mjs";

const { values } = parseArgs({
  options: {
    lengths: { type: "string", default: "1000,10000,100000" },
    streams: { type: "string", default: "3" },
    "stream-memory": { type: "boolean", default: false }, // passed through by scripts/bench
  },
});
const LENGTHS = values.lengths.split(",").map(Number);
const STREAMS = Number(values.streams);
const HEAP_GROWTH_MB = 4;
const WASM_GROWTH_MB = 2;
const RSS_GROWTH_MB = 32;

immediateZeroTimeouts();
const mock = await startMockProvider({ name: "bench", gapMs: 0 });
const INSPECTOR_PORT = 9300 + Math.floor(Math.random() * 500);
const { mf, url, pids: [pid] } = await withStartedWorkerd(() => startGateway({ usage: false, inspectorPort: INSPECTOR_PORT }));
const config = benchConfig(mock.baseUrl);
// Another public name than the upstream one: the pass-through renames every event's model.
config.models.long = { targets: [{ provider: "mock", model: "bench" }] };
await putConfig(url, config);

// The mock streams the answer it is given one event per word (plus a role event, a finish
// event and the usage), whatever the prompt: the request stays small, so only the stream's
// length changes.
const answerOf = (events) => Array.from({ length: Math.max(1, events - 3) }, (_, i) => `w${i}`).join(" ");
const answerWith = (events) => {
  mock.clearFaults();
  mock.fault({ kind: "ok", content: answerOf(events) });
};
const prompt = () => "Say hello";
const APIS = {
  "OpenAI chat → OpenAI target": (events) => ({
    path: "/v1/chat/completions",
    headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}` },
    body: { model: "long", stream: true, messages: [{ role: "user", content: prompt(events) }] },
    complete: (tail) => tail.includes("data: [DONE]"),
  }),
  "Anthropic messages → OpenAI target": (events) => ({
    path: "/v1/messages",
    headers: { "x-api-key": DEV_GATEWAY_KEY, "anthropic-version": "2023-06-01" },
    body: { model: "long", stream: true, max_tokens: 1_000_000, messages: [{ role: "user", content: prompt(events) }] },
    complete: (tail) => tail.includes("event: message_stop") && !tail.includes("event: error"),
  }),
};

// A connection per stream: a long stream is the only thing measured, not connection reuse.
const agent = new http.Agent({ keepAlive: false });
/** Streams one answer; resolves with its byte count and whether it ended complete. */
function stream({ path: urlPath, headers, body, complete }) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}${urlPath}`,
      { method: "POST", agent, headers: { "content-type": "application/json", ...headers } },
      (res) => {
        let bytes = 0;
        let tail = "";
        res.setEncoding("utf8");
        res.on("data", (text) => {
          bytes += text.length;
          tail = (tail + text).slice(-400);
        });
        res.on("end", () => resolve({ status: res.statusCode, bytes, complete: res.statusCode === 200 && complete(tail) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

const isolate = await isolateMemory(INSPECTOR_PORT);
const measure = async () => ({ ...(await isolate.measure()), rss_mb: statusMb(pid) });

const rows = [];
let failed = false;
// Warm-up: the isolate compiled, its caches and first allocations made, for every API.
answerWith(LENGTHS[0]);
for (const request of Object.values(APIS)) for (let i = 0; i < 2 * STREAMS; i++) await stream(request(LENGTHS[0]));
for (const [api, request] of Object.entries(APIS)) {
  for (const events of LENGTHS) {
    answerWith(events);
    let complete = 0;
    let bytes = 0;
    for (let i = 0; i < STREAMS; i++) {
      const answer = await stream(request(events));
      if (answer.complete) complete++;
      bytes = answer.bytes;
    }
    const memory = await measure();
    rows.push({ api, events, streams: STREAMS, complete, bytes_per_stream: bytes, ...memory });
    if (complete !== STREAMS) failed = true;
    console.log(
      `${api}: ${events.toLocaleString("en")} events (${(bytes / 2 ** 20).toFixed(1)} MB a stream), ` +
        `${complete}/${STREAMS} complete; JS heap ${memory.heap_mb?.toFixed(1)} MB, wasm memory ${memory.wasm_mb?.toFixed(1)} MB, workerd RSS ${memory.rss_mb?.toFixed(0)} MB`,
    );
  }
}

const checks = [];
for (const api of Object.keys(APIS)) {
  const mine = rows.filter((r) => r.api === api);
  const [first, last] = [mine[0], mine[mine.length - 1]];
  const heapGrowth = last.heap_mb - first.heap_mb;
  const wasmGrowth = last.wasm_mb - first.wasm_mb;
  const rssGrowth = last.rss_mb - first.rss_mb;
  const ok = heapGrowth < HEAP_GROWTH_MB && wasmGrowth < WASM_GROWTH_MB && rssGrowth < RSS_GROWTH_MB;
  if (!ok) failed = true;
  checks.push({ api, heap_growth_mb: heapGrowth, wasm_growth_mb: wasmGrowth, rss_growth_mb: rssGrowth, ok });
  console.log(
    `${ok ? "ok" : "FAILED"}: ${api}: from ${first.events.toLocaleString("en")} to ${last.events.toLocaleString("en")} events ` +
      `the JS heap grew ${heapGrowth.toFixed(1)} MB (limit ${HEAP_GROWTH_MB}), the wasm memory ${wasmGrowth.toFixed(1)} MB ` +
      `(limit ${WASM_GROWTH_MB}), RSS ${rssGrowth.toFixed(0)} MB (limit ${RSS_GROWTH_MB})`,
  );
}
const out = path.join(ROOT, ".bench", `stream-memory-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ lengths: LENGTHS, streams: STREAMS, rows, checks }, null, 2));
console.log(`written: ${path.relative(ROOT, out)}`);

isolate.close();
agent.destroy();
await Promise.allSettled([mf.dispose(), mock.close()]);
process.exit(failed ? 1 : 0);

