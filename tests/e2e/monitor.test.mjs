// Live monitoring and tool-call accuracy: answers whose tool calls miss the
// declared schema's required fields lower an endpoint's accuracy; /admin/monitor
// shows it per provider and model next to the circuit state, and the
// `tool_accuracy` strategy sends requests with tools to the most accurate endpoint.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, provider, DEV_KEY_HASH } from "./harness.mjs";
import { putConfig } from "../../scripts/lib/gateway.mjs";
import { adminGet, waitForRecords } from "./usage-helpers.mjs";

let stack;
const tool = (required) => [
  { type: "function", function: { name: "weather", parameters: { type: "object", properties: { location: { type: "string" }, city: { type: "string" } }, required } } },
];

before(async () => {
  stack = await startStack({
    mocks: [{ name: "alpha" }, { name: "beta" }],
    makeConfig: (mocks) => ({
      version: 1,
      settings: { allow_http_providers: true, config_cache_ttl_ms: 0 },
      providers: { alpha: provider(mocks.alpha.baseUrl, "us"), beta: provider(mocks.beta.baseUrl, "eu") },
      models: {
        "tools-a": { targets: [{ provider: "alpha", model: "alpha-model" }] },
        "tools-b": { targets: [{ provider: "beta", model: "beta-model" }] },
        "tools-best": { strategy: "tool_accuracy", targets: [{ provider: "alpha", model: "alpha-model" }, { provider: "beta", model: "beta-model" }] },
      },
      keys: { [DEV_KEY_HASH]: { name: "e2e", models: ["*"] } },
    }),
  });
});

after(async () => {
  await stack?.close();
});

test("tool-call accuracy per provider and model, and a route that prefers the most accurate", async () => {
  // The mocks call the first tool with {"location": "Paris"}: invalid where "city" is required.
  for (let i = 0; i < 3; i++) {
    const bad = await post(stack.url, "/v1/chat/completions", chatBody("tools-a", { tools: tool(["city"]) }));
    assert.equal(bad.res.status, 200);
    assert.equal(bad.json.choices[0].message.tool_calls[0].function.name, "weather");
    const good = await post(stack.url, "/v1/chat/completions", chatBody("tools-b", { tools: tool(["location"]) }));
    assert.equal(good.res.status, 200);
  }
  const plain = await post(stack.url, "/v1/chat/completions", chatBody("tools-best"));
  assert.equal(plain.res.headers.get("x-gateway-provider"), "alpha", "without tools: configured order");
  const withTools = await post(stack.url, "/v1/chat/completions", chatBody("tools-best", { tools: tool(["location"]) }));
  assert.equal(withTools.res.headers.get("x-gateway-provider"), "beta", "with tools: the most accurate endpoint");
  const explain = await post(stack.url, "/v1/route/explain", chatBody("tools-best", { tools: tool(["location"]) }));
  assert.match(JSON.stringify(explain.json), /tool-call accuracy 100%/);

  await waitForRecords(stack.url, 8);
  const { res, json } = await adminGet(stack.url, "/admin/monitor");
  assert.equal(res.status, 200);
  const byId = Object.fromEntries(json.endpoints.map((e) => [e.provider, e]));
  assert.equal(byId.alpha.circuit, "closed");
  const alpha = byId.alpha.models.find((m) => m.upstream_model === "alpha-model");
  const beta = byId.beta.models.find((m) => m.upstream_model === "beta-model");
  assert.deepEqual([alpha.tool_calls_checked, alpha.tool_call_accuracy], [3, 0]);
  assert.deepEqual([beta.tool_calls_checked, beta.tool_call_accuracy], [4, 1]);
  assert.equal(alpha.requests, 4);
  for (const m of [alpha, beta]) {
    assert.equal(m.error_rate, 0);
    assert.equal(typeof m.latency_ms_p50, "number");
    assert.ok(m.latency_ms_p95 >= m.latency_ms_p50);
  }
  assert.equal(byId.alpha.health.tool_call_validity ?? 0, 0, "the health object agrees");
});

test("the optional tool-calling probe measures quiet endpoints from the cron", async () => {
  const calls = () => stack.mocks.alpha.calls.length + stack.mocks.beta.calls.length;
  const worker = await stack.mf.getWorker();
  const before = calls();
  await worker.scheduled({ cron: "* * * * *" });
  assert.equal(calls(), before, "off by default: nothing sent");

  await putConfig(stack.url, { ...stack.config, settings: { ...stack.config.settings, tool_probe_minutes: 1 } });
  const t0 = Date.now();
  await worker.scheduled({ cron: "* * * * *" });
  const probes = [...stack.mocks.alpha.calls, ...stack.mocks.beta.calls].filter((c) => c.at >= t0);
  assert.equal(calls(), before + 2, "one probe per (provider, upstream model)");
  for (const call of probes) assert.equal(call.body.tools[0].function.name, "get_weather");

  const until = Date.now() + 10000;
  let rows = [];
  while (Date.now() < until) {
    rows = (await adminGet(stack.url, "/admin/usage?kind=probe&group_by=provider,kind")).json.data;
    if (rows.reduce((n, r) => n + r.requests, 0) >= 2) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(rows.map((r) => [r.provider, r.kind, r.requests, r.errors]), [["alpha", "probe", 1, 0], ["beta", "probe", 1, 0]]);
  const records = (await adminGet(stack.url, "/admin/usage/requests?kind=probe")).json.data;
  assert.ok(records.every((r) => r.tool_calls_valid === true && r.key === "gateway-probe"));
});
