// Live monitoring and tool-call accuracy: answers whose tool calls miss the
// declared schema's required fields lower an endpoint's accuracy; /admin/monitor
// shows it per provider and model next to the circuit state, and the
// `tool_accuracy` strategy sends requests with tools to the most accurate endpoint.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, provider, DEV_KEY_HASH } from "./harness.mjs";
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
