// Hardening: requests checked at the edge, affinity scoped per key, and streams
// cut by the client settled with what they generated (never a leaked slot).
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startStack, provider, post, chatBody, readSse, DEV_KEY_HASH } from "./harness.mjs";
import { DEV_ADMIN_TOKEN } from "../../scripts/lib/gateway.mjs";

const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const KEYS = { a: "gw_hardening_tenant_a", b: "gw_hardening_tenant_b", one: "gw_hardening_one_slot", capped: "gw_hardening_model_capped" };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let stack;

before(async () => {
  stack = await startStack({
    mocks: [{ name: "x" }, { name: "y" }],
    makeConfig: (m) => ({
      version: 1,
      settings: { allow_http_providers: true, config_cache_ttl_ms: 0 },
      providers: { x: provider(m.x.baseUrl), y: provider(m.y.baseUrl) },
      models: {
        balanced: { strategy: "weighted", targets: [{ provider: "x", model: "m" }, { provider: "y", model: "m" }] },
        priced: { targets: [{ provider: "x", model: "m", price: { input_per_mtok: 1000, output_per_mtok: 1000 } }] },
        small: { targets: [{ provider: "x", model: "m", capabilities: { max_output_tokens: 100 } }] },
        frontier: { targets: [{ provider: "x", model: "big" }] },
        "via-alias": { models: ["frontier"] },
      },
      keys: {
        [DEV_KEY_HASH]: { name: "dev", models: ["*"] },
        [sha256(KEYS.a)]: { name: "tenant-a", models: ["*"] },
        [sha256(KEYS.b)]: { name: "tenant-b", models: ["*"] },
        [sha256(KEYS.one)]: { name: "one-slot", models: ["*"], limits: { max_concurrent: 1 }, monthly_budget_usd: 100 },
        [sha256(KEYS.capped)]: { name: "capped", models: ["*"], model_limits: { frontier: { requests_per_minute: 1 } } },
      },
    }),
  });
});

after(async () => stack?.close());

beforeEach(() => stack.reset());

test("malformed requests are clear 400s and forms are 415, before anything is routed", async () => {
  const cases = [
    [chatBody("balanced", { tools: { type: "function" } }), "tools"],
    [{ model: "balanced", messages: [{ role: "user", content: 42 }] }, "messages[0].content"],
    [chatBody("balanced", { tool_choice: 7 }), "tool_choice"],
  ];
  for (const [body, param] of cases) {
    const { res, json } = await post(stack.url, "/v1/chat/completions", body);
    assert.equal(res.status, 400, JSON.stringify(json));
    assert.equal(json.error.param, param);
  }
  const form = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEYS.a}`, "content-type": "application/x-www-form-urlencoded" },
    body: "model=balanced",
  });
  assert.equal(form.status, 415);
  assert.equal((await form.json()).error.code, "unsupported_content_type");
  assert.equal(stack.mocks.x.calls.length + stack.mocks.y.calls.length, 0, "nothing reached a provider");
});

test("previous-turn affinity is scoped per key: another tenant's prompt reveals nothing", async () => {
  const first = [{ role: "user", content: "a secret prompt only tenant a sends" }];
  const { res } = await post(stack.url, "/v1/chat/completions", { model: "balanced", messages: first }, { key: KEYS.a });
  assert.equal(res.status, 200);
  const continuing = { model: "balanced", messages: [...first, { role: "assistant", content: "ok" }, { role: "user", content: "more" }] };
  const mine = await post(stack.url, "/v1/route/explain", continuing, { key: KEYS.a });
  assert.ok(JSON.stringify(mine.json).includes("previous turn"), JSON.stringify(mine.json.candidates));
  const theirs = await post(stack.url, "/v1/route/explain", continuing, { key: KEYS.b });
  assert.ok(!JSON.stringify(theirs.json).includes("previous turn"), JSON.stringify(theirs.json.candidates));
});

test("a stream the client cuts frees its slot and is charged what it generated", async () => {
  stack.mocks.x.fault({ kind: "ok", content: "word ".repeat(60).trim(), gapMs: 40, times: 1 });
  const controller = new AbortController();
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEYS.one}`, "content-type": "application/json" },
    body: JSON.stringify(chatBody("priced", { stream: true })),
    signal: controller.signal,
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  let seen = "";
  while ((seen.match(/"content":"word/g) ?? []).length < 3) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the stream ended early: ${seen}`);
    seen += new TextDecoder().decode(value);
  }
  controller.abort();
  const limits = async () =>
    (await (await fetch(`${stack.url}/admin/limits`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } })).json()).keys["one-slot"].now;
  let now;
  for (let i = 0; i < 50; i++) {
    now = await limits();
    if (now.in_flight === 0 && now.spent_usd_this_month.all > 0) break;
    await sleep(100);
  }
  assert.equal(now.in_flight, 0, JSON.stringify(now));
  // Charged the prompt estimate and the words relayed (at $1000/M tokens), not nothing.
  assert.ok(now.spent_usd_this_month.all > 0.001, JSON.stringify(now));
  const next = await post(stack.url, "/v1/chat/completions", chatBody("priced"), { key: KEYS.one });
  assert.equal(next.res.status, 200, "the slot is free");
  const line = stack.logs.find((l) => l.event === "chat" && l.outcome === "client_gone");
  assert.ok(line && line.completion_tokens > 0, JSON.stringify(line));
});

test("a stream cut by the provider after content ends with an error event, charged what it generated", async () => {
  stack.mocks.x.fault({ kind: "cut_stream", afterChunks: 2, times: 1 });
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEYS.a}`, "content-type": "application/json" },
    body: JSON.stringify(chatBody("priced", { stream: true })),
  });
  const events = await readSse(res);
  assert.equal(JSON.parse(events.at(-1).data).error.code, "upstream_stream_interrupted");
  const line = await stack.logLine(res.headers.get("x-request-id"));
  assert.equal(line.outcome, "interrupted");
  assert.ok(line.completion_tokens > 0 && line.cost_usd > 0, JSON.stringify(line));
});

test("max_tokens above the target's ceiling is fitted to it, and the answer says so", async () => {
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("small", { max_tokens: 128000 }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-gateway-max-tokens-fitted"), "100");
  assert.equal(stack.mocks.x.calls.at(-1).body.max_tokens, 100);
  const within = await post(stack.url, "/v1/chat/completions", chatBody("small", { max_tokens: 50 }));
  assert.equal(within.res.headers.get("x-gateway-max-tokens-fitted"), null);
});

test("a per-model limit holds through an alias, and only the model that served is charged", async () => {
  const send = (model) => post(stack.url, "/v1/chat/completions", chatBody(model), { key: KEYS.capped });
  const first = await send("via-alias");
  assert.equal(first.res.status, 200);
  assert.equal(first.res.headers.get("x-gateway-model"), "frontier");
  await sleep(200); // settled after the answer
  const direct = await send("frontier");
  assert.equal(direct.res.status, 429, "the alias used frontier's one request this minute");
  assert.match(direct.json.error.message, /for model frontier/);
  const again = await send("via-alias");
  assert.equal(again.res.status, 429, "and the alias cannot bypass it");
  assert.equal((await send("balanced")).res.status, 200, "other models are not limited");
});
