// Clients that walk away mid-stream, in bursts, from a fast provider: every stream is
// logged client_gone or complete, and every concurrency slot comes back. (The runtime
// does not always cancel a response body whose client left, nor abort request.signal:
// the pump also treats a client that stops reading for the idle timeout as gone.)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startStack, provider } from "./harness.mjs";
import { DEV_ADMIN_TOKEN } from "../../scripts/lib/gateway.mjs";

const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const KEY = "gw_test_client_gone_key";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let stack;

before(async () => {
  stack = await startStack({
    mocks: [{ name: "a", gapMs: 2 }],
    makeConfig: (mocks) => ({
      version: 1,
      settings: { allow_http_providers: true, config_cache_ttl_ms: 0, stream_idle_timeout_ms: 1500 },
      providers: { a: provider(mocks.a.baseUrl, "us") },
      models: { chat: { targets: [{ provider: "a", model: "gpt-4o-mini" }] } },
      keys: { [sha256(KEY)]: { name: "walkers", models: ["*"], limits: { max_concurrent: 200 } } },
    }),
  });
});

after(() => stack?.close());

async function stream(abandon) {
  const controller = new AbortController();
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    signal: controller.signal,
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] }),
  });
  const reader = res.body.getReader();
  await reader.read();
  if (abandon) {
    controller.abort();
    return;
  }
  while (!(await reader.read()).done);
}

test("streams abandoned mid-way in bursts give their concurrency slots back", async () => {
  for (let burst = 0; burst < 4; burst++) {
    await Promise.all(Array.from({ length: 32 }, (_, i) => stream(i % 2 === 0).catch(() => {})));
  }
  let inFlight;
  for (let i = 0; i < 40; i++) {
    const limits = await (await fetch(`${stack.url}/admin/limits`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } })).json();
    inFlight = limits.keys.walkers.now.in_flight;
    if (inFlight === 0) break;
    await sleep(250);
  }
  assert.equal(inFlight, 0, "every abandoned stream was settled");
  const outcomes = new Set(stack.logs.filter((l) => l.key === "walkers").map((l) => l.outcome));
  assert.ok([...outcomes].every((o) => o === "complete" || o === "client_gone"), [...outcomes].join(", "));
});
