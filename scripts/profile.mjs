// CPU profile of the gateway's hot path in workerd (through the V8 inspector):
// runs sequential requests against the bench config and prints the functions with
// the most self time. Run with:
//   node --experimental-websocket scripts/profile.mjs [requests] [rows] [--stream] [--events=N] [--limited] [--c=N] [--inclusive] [--save=PATH]
// --events=N makes each streamed answer N events long (as scripts/bench's stream cases).
// --limited gives the key rate limits and a budget that never refuse (the limiter's cost).
// --inclusive adds the Rust functions by inclusive time (samples anywhere below them).
// --c=N keeps N requests in flight (default 1: one after another), as under load, where
// batching (usage records, settlements, allotments) behaves as it does in scripts/bench.
import { writeFileSync } from "node:fs";
import { startGateway, putConfig, DEV_GATEWAY_KEY, benchConfig, promptForEvents } from "./lib/gateway.mjs";
import { openInspector } from "./lib/inspector.mjs";
import { option, flag, positional } from "./lib/options.mjs";
import { startMockProvider } from "../tests/e2e/mock-providers.mjs";

const args = positional();
const STREAM = flag("stream");
const LIMITED = flag("limited");
const N = Number(args[0] ?? 3000);
const EVENTS = Number(option("events", 0));
const CONCURRENCY = Number(option("c", 1));
const PORT = 9231;
const mock = await startMockProvider({ name: "bench", gapMs: 0 });
const { mf, url } = await startGateway({ inspectorPort: PORT, direct: true });
const config = benchConfig(mock.baseUrl);
if (LIMITED) {
  const key = Object.values(config.keys)[0];
  key.limits = { requests_per_minute: 100_000_000, tokens_per_minute: 1_000_000_000, max_concurrent: 10_000 };
  key.monthly_budget_usd = 1_000_000;
  config.models.bench.targets[0].price = { input_per_mtok: 1, output_per_mtok: 2 };
}
await putConfig(url, config);
const BODY = JSON.stringify({ model: "bench", messages: [{ role: "user", content: promptForEvents(EVENTS) }], stream: STREAM });
const one = async () => {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${DEV_GATEWAY_KEY}` },
    body: BODY,
  });
  await res.arrayBuffer();
};
// `count` requests, CONCURRENCY at a time.
const run = async (count) => {
  let left = count;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left-- > 0) await one();
    }),
  );
};
await run(300);

const inspector = await openInspector(PORT);
const { send } = inspector;
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 50 });
await send("Profiler.start");
const t0 = Date.now();
await run(N);
const elapsed = Date.now() - t0;
const { result } = await send("Profiler.stop");
const profile = result.profile;
// --save=PATH keeps the whole profile (Chrome DevTools' format) for a closer look.
const savePath = option("save");
if (savePath) writeFileSync(savePath, JSON.stringify(profile));
const dt = profile.timeDeltas.reduce((a, b) => a + b, 0) / profile.samples.length;
const self = new Map();
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
for (const id of profile.samples) {
  const node = byId.get(id);
  const where = flag("columns") && node.callFrame.url.endsWith("index.js") ? `:${node.callFrame.lineNumber + 1}:${node.callFrame.columnNumber + 1}` : "";
  const name = `${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.split("/").pop()}${where}`;
  self.set(name, (self.get(name) ?? 0) + 1);
}
const total = profile.samples.length;
console.log(`${N} requests in ${elapsed} ms (${(elapsed / N).toFixed(3)} ms each); ${total} samples of ~${dt.toFixed(0)} µs`);
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(args[1] ?? 45));
for (const [name, n] of rows) {
  console.log(`${((n / total) * 100).toFixed(1).padStart(5)}%  ${((n * dt) / N).toFixed(1).padStart(6)} µs/req  ${name}`);
}
// Where the samples went by kind: the gateway's Rust (wasm), the JS glue (index.js),
// the runtime's own functions, and V8's (program, GC, idle).
const kinds = new Map();
for (const id of profile.samples) {
  const { functionName, url } = byId.get(id).callFrame;
  const kind = url.includes(".wasm") || url.startsWith("wasm") ? "Rust (wasm)" : url.endsWith("index.js") ? "JS glue (index.js)" : /^\((program|idle|garbage collector|root)\)$/.test(functionName) ? functionName : "runtime (native)";
  kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
}
console.log("\nby kind:");
for (const [kind, n] of [...kinds.entries()].sort((a, b) => b[1] - a[1])) {
  console.log(`${((n / total) * 100).toFixed(1).padStart(5)}%  ${((n * dt) / N).toFixed(1).padStart(6)} µs/req  ${kind}`);
}
// --inclusive: the gateway's functions by the samples they are anywhere on the stack of.
if (flag("inclusive")) {
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map();
  for (const id of profile.samples) {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const { functionName, url } = byId.get(at).callFrame;
      if (!url.includes(".wasm")) continue;
      const name = functionName.replace(/::h[0-9a-f]{16}$/, "");
      if (!seen.has(name)) seen.add(name), inclusive.set(name, (inclusive.get(name) ?? 0) + 1);
    }
  }
  console.log("\ninclusive (Rust functions, samples anywhere below them):");
  for (const [name, n] of [...inclusive.entries()].sort((a, b) => b[1] - a[1]).slice(0, 60)) {
    console.log(`${((n / total) * 100).toFixed(1).padStart(5)}%  ${((n * dt) / N).toFixed(1).padStart(6)} µs/req  ${name}`);
  }
}
inspector.close();
await Promise.allSettled([mf.dispose(), mock.close()]);
process.exit(0);
