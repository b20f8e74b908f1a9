// Config in KV through the admin API, secrets that never leak, and the Durable
// Object bindings of the deployment shape.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startStack, provider, chatBody, post, openAiError, DEV_KEY_HASH } from "./harness.mjs";
import { DEV_ADMIN_TOKEN, ROOT } from "../../scripts/lib/gateway.mjs";

const CANARY = "sk-canary-7f3a9b2c4d5e6f708192a3b4";
let stack;

function makeConfig(mocks) {
  return {
    version: 1,
    revision: "e2e admin v1",
    settings: { allow_http_providers: true, first_byte_timeout_ms: 1000, config_cache_ttl_ms: 0 },
    providers: {
      main: provider(mocks.main.baseUrl, "us"),
      leaky: provider(mocks.leaky.baseUrl, "us", "CANARY_PROVIDER_KEY"),
    },
    models: {
      chat: { targets: [{ provider: "main", model: "gpt-4o-mini" }] },
      leaky: { targets: [{ provider: "leaky", model: "gpt-4o-mini" }] },
    },
    keys: { [DEV_KEY_HASH]: { name: "e2e", models: ["*"] } },
  };
}

before(async () => {
  stack = await startStack({
    mocks: [{ name: "main" }, { name: "leaky", apiKey: CANARY }],
    makeConfig,
    bindings: { CANARY_PROVIDER_KEY: CANARY },
  });
});

after(async () => {
  await stack?.close();
});

const admin = (method, body, token = DEV_ADMIN_TOKEN) =>
  fetch(`${stack.url}/admin/config`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });

test("GET /admin/config returns the stored document", async () => {
  const res = await admin("GET");
  assert.equal(res.status, 200);
  const doc = await res.json();
  assert.equal(doc.revision, "e2e admin v1");
  assert.deepEqual(Object.keys(doc.models).sort(), ["chat", "leaky"]);
});

test("the admin API needs the admin token", async () => {
  for (const res of [await admin("GET", undefined, "wrong"), await fetch(`${stack.url}/admin/config`)]) {
    assert.equal(res.status, 401);
    assert.equal(openAiError(await res.json()).code, "invalid_admin_token");
  }
});

test("a bad document is refused with JSON-pointer paths and never replaces the good one", async () => {
  const bad = makeConfig(stack.mocks);
  bad.revision = "broken";
  bad.models.chat.targets.push({ provider: "opnai", model: "x" });
  const res = await admin("PUT", bad);
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(openAiError(body).code, "invalid_config");
  assert.deepEqual(body.issues, [{ pointer: "/models/chat/targets/1/provider", message: 'unknown provider "opnai"' }]);

  const garbage = await admin("PUT", "{not json");
  assert.equal(garbage.status, 400);

  const current = await (await admin("GET")).json();
  assert.equal(current.revision, "e2e admin v1");
  const { res: chat } = await post(stack.url, "/v1/chat/completions", chatBody("chat"));
  assert.equal(chat.status, 200);
});

test("a good document takes effect at once", async () => {
  const next = makeConfig(stack.mocks);
  next.revision = "e2e admin v2";
  next.models.renamed = next.models.chat;
  delete next.models.chat;
  const res = await admin("PUT", next);
  assert.equal(res.status, 200);
  assert.equal((await res.json()).models, 2);
  const { res: renamed } = await post(stack.url, "/v1/chat/completions", chatBody("renamed"));
  assert.equal(renamed.status, 200);
  const { res: gone } = await post(stack.url, "/v1/chat/completions", chatBody("chat"));
  assert.equal(gone.status, 404);
  // Restore for the other tests.
  assert.equal((await admin("PUT", makeConfig(stack.mocks))).status, 200);
});

test("provider keys never reach the client, even when the provider quotes them", async () => {
  // The leaky provider echoes the key it was given in a 400 message, as some providers do.
  stack.mocks.leaky.fault({
    kind: "status",
    status: 400,
    times: 1,
    body: { error: { message: `Invalid request for key ${CANARY}`, type: "invalid_request_error", code: "bad" } },
  });
  const quoted = await post(stack.url, "/v1/chat/completions", chatBody("leaky"));
  assert.equal(quoted.res.status, 400);
  assert.ok(!quoted.text.includes(CANARY), quoted.text);
  assert.ok(!quoted.text.includes("canary"), quoted.text);
  assert.match(quoted.text, /\[REDACTED\]/);

  // A 401 from the provider means the gateway's key is wrong: 502, no key material.
  stack.mocks.leaky.fault({
    kind: "status",
    status: 401,
    times: 1,
    body: { error: { message: `Incorrect API key provided: ${CANARY}` } },
  });
  const rejected = await post(stack.url, "/v1/chat/completions", chatBody("leaky"));
  assert.equal(rejected.res.status, 502);
  assert.equal(openAiError(rejected.json).code, "upstream_auth_failed");
  assert.ok(!rejected.text.includes(CANARY));
  for (const [, value] of rejected.res.headers) assert.ok(!value.includes(CANARY));

  // And the provider did get the key.
  assert.equal(stack.mocks.leaky.calls.at(-1).headers.authorization, `Bearer ${CANARY}`);
});

test("Durable Object classes are bound with SQLite storage", async () => {
  for (const [binding, className] of [
    ["RATE_LIMITER", "RateLimiter"],
    ["PROVIDER_HEALTH", "ProviderHealth"],
  ]) {
    const namespace = await stack.mf.getDurableObjectNamespace(binding);
    const stub = namespace.get(namespace.idFromName("e2e"));
    const res = await stub.fetch("http://do/");
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.class, className);
    assert.equal(body.ready, true);
  }
  const wrangler = readFileSync(`${ROOT}/wrangler.toml`, "utf8");
  assert.match(wrangler, /new_sqlite_classes = \["RateLimiter", "ProviderHealth"\]/);
});
