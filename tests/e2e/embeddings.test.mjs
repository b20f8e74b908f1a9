// Embeddings run through the same attempt loop as chat: failover, a retry on the
// same endpoint, the first-byte deadline, and endpoint capacity.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startStack, provider, post, DEV_GATEWAY_KEY, DEV_KEY_HASH } from "./harness.mjs";

let stack;
let client;

function makeConfig(mocks) {
  return {
    version: 1,
    revision: "e2e embeddings",
    settings: { allow_http_providers: true, config_cache_ttl_ms: 0, first_byte_timeout_ms: 800 },
    providers: {
      primary: provider(mocks.primary.baseUrl, "us"),
      secondary: provider(mocks.secondary.baseUrl, "us"),
      limited: { ...provider(mocks.limited.baseUrl, "us"), limits: { requests_per_minute: 1 } },
    },
    models: {
      emb: { targets: [{ provider: "primary", model: "te-primary" }, { provider: "secondary", model: "te-secondary" }] },
      "emb-limited": { targets: [{ provider: "limited", model: "te-limited" }, { provider: "secondary", model: "te-secondary" }] },
    },
    keys: { [DEV_KEY_HASH]: { name: "e2e", models: ["*"] } },
  };
}

before(async () => {
  stack = await startStack({ mocks: [{ name: "primary" }, { name: "secondary" }, { name: "limited" }], makeConfig });
  client = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
});

after(async () => {
  await stack?.close();
});

beforeEach(() => stack.reset());

test("embeddings fail over when the primary is unavailable", async () => {
  stack.mocks.primary.fault({ kind: "status", status: 503, times: 1 });
  const { res, json } = await post(stack.url, "/v1/embeddings", { model: "emb", input: "hello" });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-gateway-provider"), "secondary");
  assert.equal(res.headers.get("x-gateway-attempts"), "2");
  assert.equal(json.data.length, 1);
  assert.equal(stack.mocks.secondary.calls[0].body.model, "te-secondary");
});

test("embeddings retry a 500 once on the same endpoint", async () => {
  stack.mocks.primary.fault({ kind: "status", status: 500, times: 1 });
  const result = await client.embeddings.create({ model: "emb", input: ["a", "b"] }).withResponse();
  assert.equal(result.response.headers.get("x-gateway-provider"), "primary");
  assert.equal(result.response.headers.get("x-gateway-attempts"), "2");
  assert.equal(stack.mocks.primary.calls.length, 2);
  assert.equal(stack.mocks.secondary.calls.length, 0);
  assert.equal(result.data.data.length, 2);
});

test("a silent embeddings endpoint is left at the first-byte deadline", async () => {
  stack.mocks.primary.fault({ kind: "slow_first_byte", delayMs: 5000, times: 1 });
  const started = Date.now();
  const { res } = await post(stack.url, "/v1/embeddings", { model: "emb", input: "hello" });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-gateway-provider"), "secondary");
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
});

test("embeddings respect an endpoint's capacity and spread to the next endpoint", async () => {
  const first = await post(stack.url, "/v1/embeddings", { model: "emb-limited", input: "one" });
  assert.equal(first.res.headers.get("x-gateway-provider"), "limited");
  const second = await post(stack.url, "/v1/embeddings", { model: "emb-limited", input: "two" });
  assert.equal(second.res.status, 200);
  assert.equal(second.res.headers.get("x-gateway-provider"), "secondary");
  assert.equal(stack.mocks.limited.calls.length, 1, "the full endpoint is not called");
});

test("when every embeddings target fails the error lists them", async () => {
  stack.mocks.primary.fault({ kind: "status", status: 503 });
  stack.mocks.secondary.fault({ kind: "status", status: 503 });
  const { res, json } = await post(stack.url, "/v1/embeddings", { model: "emb", input: "x" });
  assert.equal(res.status, 503);
  assert.equal(json.error.code, "upstream_unavailable");
  assert.match(json.error.message, /primary: HTTP 503.*secondary: HTTP 503/);
});
