// A slow RateLimiter must not stall the keys that need it: admissions have a
// deadline (settings.limiter_timeout_ms), after which rate limits fail open and
// budgets fail closed. The object is made slow with DEBUG_LIMITER_DELAY_MS, a
// test-only var the Worker honours only beside ALLOW_HTTP_PROVIDERS.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startStack, provider, chatBody, post, openAiError } from "./harness.mjs";

const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const RATE_LIMITED = "gw_test_slow_limiter_rpm";
const BUDGETED = "gw_test_slow_limiter_budget";
const LIMITER_DELAY_MS = 6000;
let stack;

before(async () => {
  stack = await startStack({
    mocks: [{ name: "a" }],
    bindings: { DEBUG_LIMITER_DELAY_MS: String(LIMITER_DELAY_MS) },
    makeConfig: (mocks) => ({
      version: 1,
      settings: { allow_http_providers: true, limiter_timeout_ms: 300, config_cache_ttl_ms: 0 },
      providers: { a: provider(mocks.a.baseUrl, "us") },
      models: {
        chat: { targets: [{ provider: "a", model: "gpt-4o-mini", price: { input_per_mtok: 1, output_per_mtok: 1 } }] },
      },
      keys: {
        [sha256(RATE_LIMITED)]: { name: "slow-rpm", models: ["*"], limits: { requests_per_minute: 100 } },
        [sha256(BUDGETED)]: { name: "slow-budget", models: ["*"], monthly_budget_usd: 10 },
      },
    }),
  });
});

after(() => stack?.close());

test("a rate-limited key is served when its limiter is too slow to answer (rate limits fail open)", async () => {
  const started = Date.now();
  const { res, text } = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { key: RATE_LIMITED });
  const elapsed = Date.now() - started;
  assert.equal(res.status, 200, text);
  assert.ok(elapsed < LIMITER_DELAY_MS - 1000, `served after the deadline, not after the slow limiter (${elapsed} ms)`);
  const line = await stack.logLine(res.headers.get("x-request-id"));
  assert.equal(line?.limiter_degraded, true, "the request log says the limiter was skipped");
});

test("a budgeted key is refused with 503 when its limiter is too slow to answer (budgets fail closed)", async () => {
  const started = Date.now();
  const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("chat"), { key: BUDGETED });
  const elapsed = Date.now() - started;
  assert.equal(res.status, 503);
  assert.equal(openAiError(json).code, "limiter_unavailable");
  assert.ok(res.headers.get("retry-after"), "tells the client when to retry");
  assert.ok(elapsed < LIMITER_DELAY_MS - 1000, `refused at the deadline (${elapsed} ms)`);
  assert.equal(stack.mocks.a.calls.length, 1, "the budgeted request never reached the provider");
});
