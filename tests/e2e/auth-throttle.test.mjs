// Failed authentication is throttled per client address (429 with Retry-After in the
// caller's API shape), a short ADMIN_TOKEN never authorizes anything, and http://
// providers need the environment's ALLOW_HTTP_PROVIDERS, whatever the document says.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, provider, chatBody, post, openAiError, DEV_KEY_HASH } from "./harness.mjs";
import { readFileSync } from "node:fs";
import { startGateway, putConfig, DEV_ADMIN_TOKEN, ROOT } from "../../scripts/lib/gateway.mjs";

const MAX_FAILURES = 20; // src/auth_throttle.rs
let stack;

function makeConfig(mocks) {
  return {
    version: 1,
    settings: { allow_http_providers: true },
    providers: { main: provider(mocks.main.baseUrl, "us") },
    models: { chat: { targets: [{ provider: "main", model: "gpt-4o-mini" }] } },
    keys: { [DEV_KEY_HASH]: { name: "e2e", models: ["*"] } },
  };
}

before(async () => {
  stack = await startStack({ mocks: [{ name: "main" }], makeConfig });
});

after(async () => {
  await stack?.close();
});

const from = (ip) => ({ "cf-connecting-ip": ip });

test("wrong gateway keys from one address are throttled after 20 a minute, with Retry-After", async () => {
  const ip = "203.0.113.10";
  for (let i = 0; i < MAX_FAILURES; i++) {
    const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { key: `gw_guess_${i}`, headers: from(ip) });
    assert.equal(res.status, 401, `guess ${i}`);
    assert.equal(openAiError(json).code, "invalid_api_key");
  }
  const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { key: "gw_guess_x", headers: from(ip) });
  assert.equal(res.status, 429);
  assert.equal(openAiError(json).code, "too_many_failed_auth_attempts");
  const retryAfter = Number(res.headers.get("retry-after"));
  assert.ok(retryAfter >= 55 && retryAfter <= 60, `retry-after ${retryAfter}`);

  // While blocked, the address gets no answer about any key, not even a valid one
  // (a guess that happens to be right must not be confirmed).
  const valid = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { headers: from(ip) });
  assert.equal(valid.res.status, 429);
  // On the Anthropic endpoint the refusal is in Anthropic's shape.
  const messages = await post(stack.url, "/v1/messages", { model: "chat", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }, {
    key: "gw_other",
    headers: from(ip),
  });
  assert.equal(messages.res.status, 429);
  assert.equal(messages.json.type, "error");
  assert.equal(messages.json.error.type, "rate_limit_error");
  assert.ok(messages.res.headers.get("retry-after"));

  // Other addresses are not affected.
  const other = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { headers: from("203.0.113.11") });
  assert.equal(other.res.status, 200);
});

test("an IPv6 client is throttled by its /64", async () => {
  for (let i = 0; i <= MAX_FAILURES; i++) {
    const ip = `2001:db8:aa:bb::${(i + 1).toString(16)}`;
    const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { key: `gw_v6_${i}`, headers: from(ip) });
    assert.equal(res.status, i < MAX_FAILURES ? 401 : 429, `guess ${i}`);
  }
  const elsewhere = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { headers: from("2001:db8:aa:cc::1") });
  assert.equal(elsewhere.res.status, 200);
});

test("wrong admin tokens are throttled too", async () => {
  const ip = "198.51.100.20";
  const guess = (token) =>
    fetch(`${stack.url}/admin/config`, { headers: { authorization: `Bearer ${token}`, ...from(ip) } });
  for (let i = 0; i < MAX_FAILURES; i++) {
    const res = await guess(`guess-${i}`);
    assert.equal(res.status, 401);
    assert.equal(openAiError(await res.json()).code, "invalid_admin_token");
  }
  const res = await guess("guess-last");
  assert.equal(res.status, 429);
  assert.ok(Number(res.headers.get("retry-after")) > 0);
  assert.equal((await guess(DEV_ADMIN_TOKEN)).status, 429, "blocked whatever the token");
  const res2 = await fetch(`${stack.url}/admin/config`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}`, ...from("198.51.100.21") } });
  assert.equal(res2.status, 200);
});

test("requests without any credential are not counted as guesses", async () => {
  const ip = "192.0.2.30";
  for (let i = 0; i < MAX_FAILURES + 5; i++) {
    const res = await fetch(`${stack.url}/v1/models`, { headers: from(ip) });
    assert.equal(res.status, 401);
  }
  const valid = await fetch(`${stack.url}/v1/models`, { headers: { authorization: "Bearer gw_dev_local_key", ...from(ip) } });
  assert.equal(valid.status, 200);
});

test("an ADMIN_TOKEN shorter than 32 characters disables the admin API with a clear error", async () => {
  const { mf, url } = await startGateway({ bindings: { ADMIN_TOKEN: "short-admin-token" } });
  try {
    for (const token of ["short-admin-token", "anything"]) {
      const res = await fetch(`${url}/admin/config`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 503);
      const error = openAiError(await res.json());
      assert.equal(error.code, "admin_token_too_short");
      assert.match(error.message, /shorter than 32 characters/);
      assert.ok(!error.message.includes("short-admin-token"), "the token is never echoed");
    }
  } finally {
    await mf.dispose();
  }
});

test("http:// providers are refused where the environment does not allow them", async () => {
  const { mf, url } = await startGateway({ bindings: { ALLOW_HTTP_PROVIDERS: "false" } });
  try {
    const doc = makeConfig(stack.mocks); // asks for allow_http_providers in the document
    const headers = { authorization: `Bearer ${DEV_ADMIN_TOKEN}`, "content-type": "application/json" };
    const put = await fetch(`${url}/admin/config`, { method: "PUT", headers, body: JSON.stringify(doc) });
    assert.equal(put.status, 400);
    const body = await put.json();
    assert.equal(openAiError(body).code, "invalid_config");
    assert.equal(body.issues[0].pointer, "/providers/main/base_url");
    assert.match(body.issues[0].message, /ALLOW_HTTP_PROVIDERS/);

    const dry = await fetch(`${url}/admin/config/validate`, { method: "POST", headers, body: JSON.stringify(doc) });
    const report = await dry.json();
    assert.equal(report.valid, false);
    assert.match(report.issues[0].message, /ALLOW_HTTP_PROVIDERS/);
  } finally {
    await mf.dispose();
  }
});

test("the deployment declares AuthThrottle and never allows http:// providers", async () => {
  const wrangler = readFileSync(`${ROOT}/wrangler.toml`, "utf8");
  assert.match(wrangler, /\{ name = "AUTH_THROTTLE", class_name = "AuthThrottle" \}/);
  assert.match(wrangler, /new_sqlite_classes = \["AuthThrottle"\]/);
  assert.doesNotMatch(wrangler, /^\s*ALLOW_HTTP_PROVIDERS\s*=/m, "no production var allows http://");
});

test("a throttle that does not answer delays a wrong key's 401 by at most limiter_timeout_ms and never blocks valid keys", async () => {
  const { mf, url } = await startGateway({ bindings: { AUTH_THROTTLE_FAULT: "hang" } });
  try {
    await putConfig(url, { ...makeConfig(stack.mocks), settings: { allow_http_providers: true, limiter_timeout_ms: 300 } });
    const ip = "203.0.113.77";
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const { res, json } = await post(url, "/v1/chat/completions", chatBody("chat"), { key: `gw_hang_${i}`, headers: from(ip) });
      const took = Date.now() - started;
      assert.equal(res.status, 401, "fails open: the plain 401, never a 500");
      assert.equal(openAiError(json).code, "invalid_api_key");
      // One deadline (300 ms) plus the request itself; the default 3 s deadline would take far longer.
      assert.ok(took < 1500, `401 after ${took} ms`);
    }
    const started = Date.now();
    const valid = await post(url, "/v1/chat/completions", chatBody("chat"), { headers: from(ip) });
    assert.equal(valid.res.status, 200);
    assert.ok(Date.now() - started < 1500, "a valid key never waits on the throttle");
  } finally {
    await mf.dispose();
  }
});
