// Capacity-aware routing end to end: quota learned from providers' rate-limit
// headers moves an endpoint behind the others until its reset; a 429's reset
// cools it down without counting as a failure; a prompt too long for one target's
// context window is served by a larger one, never a smaller one.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { startStack, provider, chatBody, post, openAiError, DEV_KEY_HASH } from "./harness.mjs";
import { DEV_ADMIN_TOKEN } from "../../scripts/lib/gateway.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let stack;

function makeConfig(mocks) {
  const window = (context_window) => ({ capabilities: { context_window } });
  return {
    version: 1,
    revision: "e2e capacity",
    settings: { allow_http_providers: true, first_byte_timeout_ms: 2000, config_cache_ttl_ms: 0 },
    providers: {
      primary: provider(mocks.primary.baseUrl),
      secondary: provider(mocks.secondary.baseUrl),
      small: provider(mocks.small.baseUrl),
      smaller: provider(mocks.smaller.baseUrl),
      large: provider(mocks.large.baseUrl),
      claude: { kind: "anthropic", base_url: mocks.claude.baseUrl, region: "us", api_key_secret: "MOCK_PROVIDER_KEY" },
    },
    models: {
      burst: { targets: [{ provider: "primary", model: "m" }, { provider: "secondary", model: "m" }] },
      // In config order: 8k, then a smaller 4k window, then 128k.
      ctx: {
        targets: [
          { provider: "small", model: "m-8k", ...window(8192) },
          { provider: "smaller", model: "m-4k", ...window(4096) },
          { provider: "large", model: "m-128k", ...window(128000) },
        ],
      },
      // The largest first: nothing after it is larger.
      "ctx-top": {
        targets: [
          { provider: "large", model: "m-128k", ...window(128000) },
          { provider: "small", model: "m-8k", ...window(8192) },
        ],
      },
      "ctx-claude": {
        targets: [
          { provider: "claude", model: "claude-200k", ...window(200000) },
          { provider: "smaller", model: "m-4k", ...window(4096) },
          { provider: "large", model: "m-1m", ...window(1000000) },
        ],
      },
    },
    keys: { [DEV_KEY_HASH]: { name: "e2e", models: ["*"] } },
  };
}

before(async () => {
  stack = await startStack({
    mocks: [
      { name: "primary" },
      { name: "secondary" },
      { name: "small" },
      { name: "smaller" },
      { name: "large" },
      { name: "claude", format: "anthropic" },
    ],
    makeConfig,
  });
});
after(() => stack?.close());
beforeEach(() => stack.reset());

const chat = (model, extra = {}) => post(stack.url, "/v1/chat/completions", chatBody(model, extra));
const servedBy = ({ res }) => res.headers.get("x-gateway-provider");
const calls = (name) => stack.mocks[name].calls.filter((c) => c.method === "POST").length;

async function explain(model, extra = {}) {
  const { res, json } = await post(stack.url, "/v1/route/explain", chatBody(model, extra));
  assert.equal(res.status, 200);
  return json;
}

/** GET /admin/health for one endpoint, polled until `ready(state)` (reports are sent after the response). */
async function adminHealth(id, ready) {
  const until = Date.now() + 3000;
  for (;;) {
    const res = await fetch(`${stack.url}/admin/health`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
    assert.equal(res.status, 200);
    const state = (await res.json()).endpoints.find((e) => e.provider === id)?.state;
    if (ready(state) || Date.now() > until) return state;
    await sleep(50);
  }
}

const noRequestsLeft = (reset) => ({
  "x-ratelimit-limit-requests": "60",
  "x-ratelimit-remaining-requests": "0",
  "x-ratelimit-reset-requests": reset,
  "x-ratelimit-limit-tokens": "150000",
  "x-ratelimit-remaining-tokens": "149984",
  "x-ratelimit-reset-tokens": "6m0s",
});

test("a 200 saying no requests are left sends the next requests to the other endpoint", async () => {
  stack.mocks.primary.fault({ kind: "ok", times: 1, headers: noRequestsLeft("20s") });
  const first = await chat("burst");
  assert.equal(first.res.status, 200);
  assert.equal(servedBy(first), "primary", "the answer itself is served");

  for (let i = 0; i < 3; i++) {
    const next = await chat("burst");
    assert.equal(next.res.status, 200);
    assert.equal(servedBy(next), "secondary");
    assert.equal(next.res.headers.get("x-gateway-attempts"), "1", "no 429 seen: the primary is not tried first");
  }
  assert.equal(calls("primary"), 1);

  // The request log says the primary was moved back for quota.
  const { res } = await chat("burst");
  const line = await stack.logLine(res.headers.get("x-request-id"));
  assert.deepEqual(line.quota_moved_back, ["primary"]);

  // Explain: the primary is last (not dropped), with its learned quota and why.
  const plan = await explain("burst");
  assert.deepEqual(plan.candidates.map((c) => c.provider_id), ["secondary", "primary"]);
  const primary = plan.candidates[1];
  assert.match(primary.moved_back, /0 requests left/);
  assert.equal(primary.quota.requests.remaining, 0);
  assert.ok(primary.quota.requests.reset_in_ms > 15000 && primary.quota.requests.reset_in_ms <= 20000, JSON.stringify(primary.quota));
  assert.equal(primary.quota.tokens.remaining, 149984);
  assert.equal(plan.dropped.length, 0);

  // /admin/health shows the learned quota and its reset.
  const state = await adminHealth("primary", (s) => s?.quota?.requests);
  assert.equal(state.quota.requests.remaining, 0);
  assert.ok(state.quota.requests.reset_in_ms > 10000 && state.quota.requests.reset_in_ms <= 20000, JSON.stringify(state.quota));
  assert.equal(state.breaker.total_failures, 0, "not a failure of its health");
});

test("an endpoint moved back for quota comes back after its reset", async () => {
  stack.mocks.primary.fault({ kind: "ok", times: 1, headers: noRequestsLeft("1500ms") });
  assert.equal(servedBy(await chat("burst")), "primary");
  assert.equal(servedBy(await chat("burst")), "secondary");
  await sleep(1700);
  assert.equal(servedBy(await chat("burst")), "primary", "the window is full again");
  assert.equal(calls("primary"), 2);
  const plan = await explain("burst");
  assert.equal(plan.candidates[0].provider_id, "primary");
  assert.equal(plan.candidates[0].moved_back, undefined);
});

test("an endpoint short of the tokens a request needs is moved back for that request only", async () => {
  stack.mocks.primary.fault({
    kind: "ok",
    times: 1,
    headers: { "x-ratelimit-remaining-requests": "50", "x-ratelimit-reset-requests": "20s", "x-ratelimit-remaining-tokens": "500", "x-ratelimit-reset-tokens": "20s" },
  });
  assert.equal(servedBy(await chat("burst", { max_tokens: 10 })), "primary");
  assert.equal(servedBy(await chat("burst", { max_tokens: 10 })), "primary", "a small request fits 500 tokens");
  const big = await chat("burst", { max_tokens: 2000 });
  assert.equal(servedBy(big), "secondary", "2000 output tokens do not");
});

test("a 429 with a reset cools the endpoint down until then, without counting as a failure", async () => {
  // No retry-after: the reset of the window that ran dry says how long.
  stack.mocks.primary.fault({ kind: "status", status: 429, times: 1, headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s" } });
  const first = await chat("burst");
  assert.equal(first.res.status, 200);
  assert.equal(servedBy(first), "secondary");
  assert.equal(first.res.headers.get("x-gateway-attempts"), "2", "failed over at once, no wait");

  const next = await chat("burst");
  assert.equal(servedBy(next), "secondary");
  assert.equal(calls("primary"), 1);
  const plan = await explain("burst");
  const dropped = plan.dropped.find((d) => d.provider_id === "primary");
  assert.equal(dropped?.reason, "health");
  assert.match(dropped.detail, /rate limited, cooling down/);
  assert.equal(dropped.quota.requests.remaining, 0, "what the 429 said is learned too");

  const state = await adminHealth("primary", (s) => s?.breaker?.total_rate_limited === 1);
  assert.equal(state.breaker.total_rate_limited, 1);
  assert.equal(state.breaker.total_failures, 0);
  assert.equal(state.breaker.circuit.state, "closed");
  const cooldown = state.breaker.cooldown_until_ms - state.now_ms;
  assert.ok(cooldown > 15000 && cooldown <= 22000, `cooldown ${cooldown} ms`);
});

const tooLong = {
  error: {
    message: "This model's maximum context length is 8192 tokens. However, your messages resulted in 9120 tokens. Please reduce the length of the messages.",
    type: "invalid_request_error",
    param: "messages",
    code: "context_length_exceeded",
  },
};

test("context_length_exceeded is served by the larger-context target, not by a smaller one", async () => {
  stack.mocks.small.fault({ kind: "status", status: 400, body: tooLong, times: 1 });
  const reply = await chat("ctx");
  assert.equal(reply.res.status, 200, reply.text);
  assert.equal(servedBy(reply), "large");
  assert.equal(reply.res.headers.get("x-gateway-attempts"), "2");
  assert.equal(calls("small"), 1);
  assert.equal(calls("smaller"), 0, "a smaller window is never tried");
  const line = await stack.logLine(reply.res.headers.get("x-request-id"));
  assert.deepEqual(line.attempts.map((a) => [a.provider, a.outcome]), [["small", "context_length_exceeded"], ["large", "ok"]]);
  // The size of the request says nothing about the endpoint's health.
  const state = await adminHealth("small", (s) => s?.breaker);
  assert.equal(state.breaker.total_failures, 0);
});

test("context_length_exceeded from the largest window reaches the client as today", async () => {
  stack.mocks.large.fault({ kind: "status", status: 400, body: tooLong, times: 1 });
  const reply = await chat("ctx-top");
  assert.equal(reply.res.status, 400);
  const error = openAiError(reply.json);
  assert.equal(error.code, "context_length_exceeded");
  assert.equal(error.param, "messages");
  assert.match(error.message, /maximum context length/);
  assert.equal(calls("small"), 0, "nothing smaller is tried");
});

test("Anthropic's 'prompt is too long' fails over to a larger window too", async () => {
  stack.mocks.claude.fault({
    kind: "status",
    status: 400,
    times: 1,
    body: { type: "error", error: { type: "invalid_request_error", message: "prompt is too long: 208656 tokens > 200000 maximum" } },
  });
  const reply = await chat("ctx-claude");
  assert.equal(reply.res.status, 200, reply.text);
  assert.equal(servedBy(reply), "large");
  assert.equal(calls("smaller"), 0);
});

test("a request that fits no target's context window is refused before anything is sent", async () => {
  const reply = await chat("ctx", { max_tokens: 200000 });
  assert.equal(reply.res.status, 400);
  const error = openAiError(reply.json);
  assert.equal(error.code, "context_length_exceeded");
  assert.match(error.message, /context window of 128000 tokens is too small/);
  assert.equal(calls("small") + calls("smaller") + calls("large"), 0);
  const plan = await explain("ctx", { max_tokens: 200000 });
  assert.deepEqual([...new Set(plan.dropped.map((d) => d.reason))], ["context_window"]);
  assert.equal(plan.error.error.code, "context_length_exceeded");
});
