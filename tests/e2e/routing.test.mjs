// Routing and data residency end to end: the client's location comes from
// `request.cf` (set per request with Miniflare's MF-CF-Blob header, exactly as
// against scripts/dev), and the mocks record every request they receive, which
// proves where data went.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startStack, provider, chatBody, post, openAiError, DEV_GATEWAY_KEY, DEV_KEY_HASH } from "./harness.mjs";
import { DEV_ADMIN_TOKEN } from "../../scripts/lib/gateway.mjs";

const EU_KEY = "gw_test_eu_tenant";
const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const FROM = {
  germany: { country: "DE", continent: "EU", isEUCountry: "1", colo: "FRA" },
  switzerland: { country: "CH", continent: "EU", colo: "ZRH" },
  usa: { country: "US", continent: "NA", colo: "IAD" },
};

let stack;

function makeConfig(mocks) {
  const price = (input, output) => ({ input_per_mtok: input, output_per_mtok: output });
  return {
    version: 1,
    revision: "e2e routing",
    settings: { allow_http_providers: true, first_byte_timeout_ms: 1500, config_cache_ttl_ms: 0 },
    providers: {
      "us-1": provider(mocks.us1.baseUrl, "us"),
      "us-2": provider(mocks.us2.baseUrl, "us"),
      "eu-1": provider(mocks.eu1.baseUrl, "eu"),
      "eu-2": provider(mocks.eu2.baseUrl, "eu-de"),
    },
    models: {
      chat: {
        targets: [
          { provider: "us-1", model: "gpt-4o-mini" },
          { provider: "eu-1", model: "gpt-4o-mini" },
          { provider: "us-2", model: "gpt-4o-mini" },
          { provider: "eu-2", model: "gpt-4o-mini" },
        ],
      },
      "us-only": { targets: [{ provider: "us-1", model: "gpt-4o" }] },
      cheap: {
        strategy: "cheapest",
        targets: [
          { provider: "us-1", model: "big", price: price(5, 15) },
          { provider: "us-2", model: "small", price: price(0.15, 0.6) },
          { provider: "eu-1", model: "mid", price: price(1, 4) },
        ],
      },
      fast: { strategy: "fastest", targets: [{ provider: "us-1", model: "m" }, { provider: "us-2", model: "m" }] },
      balanced: { strategy: "weighted", targets: [{ provider: "us-1", model: "m" }, { provider: "us-2", model: "m" }] },
      mini: { targets: [{ provider: "us-2", model: "gpt-4o-mini" }] },
      agent: {
        targets: [{ provider: "us-1", model: "frontier" }],
        rules: [{ when: { headers: { "x-gateway-tier": "routine" } }, use_model: "mini" }],
      },
    },
    keys: {
      [DEV_KEY_HASH]: { name: "e2e", models: ["*"] },
      [sha256(EU_KEY)]: { name: "eu tenant", models: ["*"], regions: ["eu"] },
    },
    residency: {
      geo_rules: [{ description: "EU clients are served in the EU", eu_countries: true, allow: ["eu"] }],
    },
  };
}

before(async () => {
  stack = await startStack({
    mocks: [{ name: "us1" }, { name: "us2" }, { name: "eu1" }, { name: "eu2" }],
    makeConfig,
  });
});

after(async () => {
  await stack?.close();
});

beforeEach(() => stack.reset());

const from = (where, headers = {}) => ({ "MF-CF-Blob": JSON.stringify(FROM[where]), ...headers });
const callsTo = (...names) => names.reduce((n, name) => n + stack.mocks[name].calls.length, 0);

test("an EU client is served only by EU endpoints, and the response says where", async () => {
  const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { headers: from("germany") });
  assert.equal(res.status, 200, JSON.stringify(json));
  assert.equal(res.headers.get("x-gateway-provider"), "eu-1");
  assert.equal(res.headers.get("x-gateway-region"), "eu");
  assert.equal(callsTo("us1", "us2"), 0);
});

test("an EU client stays in the EU even while every EU endpoint fails: 503, and the US receives nothing", async () => {
  stack.mocks.eu1.fault({ kind: "status", status: 500 });
  stack.mocks.eu2.fault({ kind: "status", status: 503 });
  for (const stream of [false, true]) {
    const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("chat", { stream }), { headers: from("germany") });
    assert.equal(res.status, 503, JSON.stringify(json));
    const error = openAiError(json);
    assert.equal(error.code, "no_compliant_provider");
    assert.match(error.message, /geo policy \[eu\]/);
  }
  assert.ok(callsTo("eu1", "eu2") >= 2, "the EU endpoints were tried");
  assert.equal(callsTo("us1", "us2"), 0, "nothing was sent to the US");
});

test("a model with no target in the allowed region is refused up front, naming the policy", async () => {
  const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("us-only"), { headers: from("germany") });
  assert.equal(res.status, 503);
  assert.equal(openAiError(json).code, "no_compliant_provider");
  assert.equal(callsTo("us1", "us2", "eu1", "eu2"), 0);
});

test("a US client fails over freely across regions", async () => {
  stack.mocks.us1.fault({ kind: "status", status: 503 });
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { headers: from("usa") });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-gateway-provider"), "eu-1");
  assert.equal(res.headers.get("x-gateway-attempts"), "2");
});

test("a key pinned to eu stays in the EU from a US location, and cannot widen with x-gateway-region", async () => {
  stack.mocks.eu1.fault({ kind: "status", status: 503 });
  const pinned = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { key: EU_KEY, headers: from("usa") });
  assert.equal(pinned.res.status, 200);
  assert.equal(pinned.res.headers.get("x-gateway-provider"), "eu-2", "failover stayed inside eu (eu-de)");
  assert.equal(callsTo("us1", "us2"), 0);

  const widen = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { key: EU_KEY, headers: from("usa", { "x-gateway-region": "us" }) });
  assert.equal(widen.res.status, 403);
  assert.equal(openAiError(widen.json).code, "region_not_allowed");
  assert.equal(widen.res.headers.get("x-should-retry"), "false");
});

test("x-gateway-region narrows: a US client asking for eu-de is served there", async () => {
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { headers: from("usa", { "x-gateway-region": "eu-de" }) });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-gateway-provider"), "eu-2");
});

test("missing cf fields never break a request", async () => {
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { headers: { "MF-CF-Blob": "{}" } });
  assert.equal(res.status, 200);
});

test("cheapest routes to the lowest estimated cost", async () => {
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("cheap"), { headers: from("usa") });
  assert.equal(res.headers.get("x-gateway-provider"), "us-2");
  assert.equal(stack.mocks.us2.calls[0].body.model, "small");
  // From the EU, the cheapest allowed target.
  const eu = await post(stack.url, "/v1/chat/completions", chatBody("cheap"), { headers: from("germany") });
  assert.equal(eu.res.headers.get("x-gateway-provider"), "eu-1");
});

test("each request's log line proves where its data went and what it cost, streamed or not", async () => {
  for (const stream of [false, true]) {
    const body = chatBody("cheap", stream ? { stream, stream_options: { include_usage: true } } : {});
    const { res } = await post(stack.url, "/v1/chat/completions", body, { headers: from("germany") });
    assert.equal(res.status, 200);
    const line = await stack.logLine(res.headers.get("x-request-id"));
    assert.ok(line, `no log line (${stack.logs.length} lines seen)`);
    assert.equal(line.event, "chat");
    assert.equal(line.stream, stream);
    assert.equal(line.key, "e2e");
    assert.match(line.residency, /eu/);
    assert.equal(line.provider, "eu-1");
    assert.equal(line.region, "eu");
    assert.ok(line.attempts.length >= 1 && line.attempts.every((a) => a.region.startsWith("eu")));
    assert.ok(line.prompt_tokens > 0 && line.completion_tokens > 0);
    const expected = (line.prompt_tokens * 1 + line.completion_tokens * 4) / 1e6;
    assert.ok(Math.abs(line.cost_usd - expected) < 1e-12, `${line.cost_usd} vs ${expected}`);
    const text = JSON.stringify(line);
    assert.ok(!text.includes("Hi there"), "prompts are never logged");
    assert.ok(!text.includes(DEV_GATEWAY_KEY) && !text.includes("MOCK"), "keys are never logged");
  }
});

test("fastest follows measured latency", async () => {
  stack.mocks.us1.fault({ kind: "ok", delayMs: 250 });
  stack.mocks.us2.fault({ kind: "ok", delayMs: 10 });
  // Both get measured first (unmeasured endpoints are explored), then the fast one wins.
  for (let i = 0; i < 4; i++) await post(stack.url, "/v1/chat/completions", chatBody("fast"), { headers: from("usa") });
  stack.mocks.us1.calls.length = 0;
  stack.mocks.us2.calls.length = 0;
  for (let i = 0; i < 10; i++) await post(stack.url, "/v1/chat/completions", chatBody("fast"), { headers: from("usa") });
  assert.equal(stack.mocks.us2.calls.length, 10, `us1 got ${stack.mocks.us1.calls.length}`);
});

test("weighted spreads load, and a session sticks to one endpoint", async () => {
  // Different conversations (each its own prefix, so its own derived session).
  for (let i = 0; i < 30; i++) {
    await post(stack.url, "/v1/chat/completions", { model: "balanced", messages: [{ role: "user", content: `conversation ${i}` }] }, { headers: from("usa") });
  }
  assert.ok(stack.mocks.us1.calls.length >= 5 && stack.mocks.us2.calls.length >= 5, `${stack.mocks.us1.calls.length}/${stack.mocks.us2.calls.length}`);
  await stack.reset();
  const served = new Set();
  for (let i = 0; i < 10; i++) {
    const { res } = await post(stack.url, "/v1/chat/completions", chatBody("balanced"), { headers: from("usa", { "x-gateway-session": "conversation-7" }) });
    served.add(res.headers.get("x-gateway-provider"));
  }
  assert.equal(served.size, 1);

  // Without the header, turns of one conversation still stick (key derived from its prefix).
  const turns = new Set();
  for (let i = 0; i < 8; i++) {
    const messages = [{ role: "user", content: "Plan a trip" }, { role: "assistant", content: "Where to?" }, { role: "user", content: `Turn ${i}` }];
    const { res } = await post(stack.url, "/v1/chat/completions", { model: "balanced", messages }, { headers: from("usa") });
    turns.add(res.headers.get("x-gateway-provider"));
  }
  assert.equal(turns.size, 1);
});

test("cost-aware rules and body preferences; preferences never reach the provider", async () => {
  const routine = await post(stack.url, "/v1/chat/completions", chatBody("agent"), { headers: from("usa", { "x-gateway-tier": "routine" }) });
  assert.equal(routine.res.headers.get("x-gateway-model"), "mini");
  assert.equal(stack.mocks.us2.calls.at(-1).body.model, "gpt-4o-mini");
  const judgment = await post(stack.url, "/v1/chat/completions", chatBody("agent"), { headers: from("usa") });
  assert.equal(judgment.res.headers.get("x-gateway-model"), "agent");

  const prefs = chatBody("chat", { provider: { order: ["us-2"], allow_fallbacks: false }, models: ["mini"] });
  const ordered = await post(stack.url, "/v1/chat/completions", prefs, { headers: from("usa") });
  assert.equal(ordered.res.headers.get("x-gateway-provider"), "us-2");
  const sent = stack.mocks.us2.calls.at(-1).body;
  assert.equal(sent.provider, undefined);
  assert.equal(sent.models, undefined);
});

test("POST /v1/route/explain shows kept, dropped and why", async () => {
  const res = await fetch(`${stack.url}/v1/route/explain`, {
    method: "POST",
    headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}`, "content-type": "application/json", ...from("germany") },
    body: JSON.stringify(chatBody("chat")),
  });
  assert.equal(res.status, 200);
  const plan = await res.json();
  assert.deepEqual(plan.candidates.map((c) => c.provider_id), ["eu-1", "eu-2"]);
  assert.deepEqual(plan.dropped.map((d) => [d.provider_id, d.reason]), [["us-1", "region"], ["us-2", "region"]]);
  assert.equal(plan.location.country, "DE");
  assert.match(plan.residency, /geo policy \[eu\]/);
  assert.equal(callsTo("us1", "us2", "eu1", "eu2"), 0, "explain sends nothing");

  const blocked = await fetch(`${stack.url}/v1/route/explain`, {
    method: "POST",
    headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}`, "content-type": "application/json", ...from("germany") },
    body: JSON.stringify(chatBody("us-only")),
  });
  const answer = await blocked.json();
  assert.equal(answer.candidates.length, 0);
  assert.equal(answer.error.error.code, "no_compliant_provider");
});

test("the admin can explain a route as any key, or unrestricted", async () => {
  const explain = async (headers) =>
    (await fetch(`${stack.url}/v1/route/explain`, {
      method: "POST",
      headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}`, "content-type": "application/json", ...from("usa"), ...headers },
      body: JSON.stringify(chatBody("chat")),
    })).json();
  const asTenant = await explain({ "x-gateway-explain-as": "eu tenant" });
  assert.deepEqual(asTenant.candidates.map((c) => c.provider_id), ["eu-1", "eu-2"]);
  const unrestricted = await explain({});
  assert.equal(unrestricted.candidates.length, 4);
});
