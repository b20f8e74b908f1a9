// Reliability end to end: circuit breakers in ProviderHealth objects, exact rate
// limits in RateLimiter objects (persisted across restarts), cancellation.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startStack, provider, chatBody, post, openAiError, readSse, DEV_KEY_HASH } from "./harness.mjs";
import { DEV_ADMIN_TOKEN } from "../../scripts/lib/gateway.mjs";

const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const KEYS = {
  rpm: "gw_test_rpm50",
  tpm: "gw_test_tpm1000",
  conc: "gw_test_conc2",
  squadA: "gw_test_squad_a",
  squadB: "gw_test_squad_b",
  perModel: "gw_test_per_model",
  tiny: "gw_test_in_tiny_team",
  budget: "gw_test_one_dollar",
  rpm3: "gw_test_rpm3",
  hot: "gw_test_hot_key",
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stack;
let stateDir;

function makeConfig(mocks) {
  return {
    version: 1,
    revision: "e2e reliability",
    settings: {
      allow_http_providers: true,
      first_byte_timeout_ms: 1000,
      // The 200-request burst measures exactness, not the limiter deadline (a loaded machine is slow).
      limiter_timeout_ms: 30000,
      config_cache_ttl_ms: 0,
      circuit_breaker: { consecutive_failures: 3, base_open_ms: 1500, max_open_ms: 3000 },
    },
    providers: {
      a: provider(mocks.a.baseUrl, "us"),
      b: provider(mocks.b.baseUrl, "us"),
      "a-capped": { ...provider(mocks.a.baseUrl, "us"), limits: { requests_per_minute: 3 } },
    },
    models: {
      chat: { targets: [{ provider: "a", model: "gpt-4o-mini" }, { provider: "b", model: "gpt-4o-mini" }] },
      // A burst of 200: its own first-byte deadline, so a loaded machine measures the limiter, not the mock.
      solo: { targets: [{ provider: "b", model: "gpt-4o-mini" }], timeouts: { first_byte_ms: 15000 } },
      capped: { targets: [{ provider: "a-capped", model: "gpt-4o-mini" }, { provider: "b", model: "gpt-4o-mini" }] },
      embed: { targets: [{ provider: "b", model: "text-embedding-3-small", price: { input_per_mtok: 0.02, output_per_mtok: 0 } }] },
      // $0.10 per output token, prompts free: a request with max_tokens 2 is estimated at exactly $0.20.
      priced: { targets: [{ provider: "b", model: "gpt-4o-mini", price: { input_per_mtok: 0, output_per_mtok: 100000 } }] },
      // The same price, for a burst (its own first-byte deadline, like solo).
      "priced-burst": {
        targets: [{ provider: "b", model: "gpt-4o-mini", price: { input_per_mtok: 0, output_per_mtok: 100000 } }],
        timeouts: { first_byte_ms: 15000 },
      },
    },
    keys: {
      [DEV_KEY_HASH]: { name: "e2e", models: ["*"] },
      [sha256(KEYS.rpm)]: { name: "rpm50", models: ["*"], limits: { requests_per_minute: 50 } },
      [sha256(KEYS.tpm)]: { name: "tpm1000", models: ["*"], limits: { tokens_per_minute: 1000 } },
      [sha256(KEYS.conc)]: { name: "conc2", models: ["*"], limits: { max_concurrent: 2 } },
      [sha256(KEYS.squadA)]: { name: "squad-a", models: ["*"], team: "squad" },
      [sha256(KEYS.squadB)]: { name: "squad-b", models: ["*"], team: "squad" },
      [sha256(KEYS.perModel)]: {
        name: "per-model",
        models: ["*"],
        limits: { requests_per_minute: 100 },
        model_limits: { chat: { requests_per_minute: 2 }, embed: { requests_per_minute: 1 } },
      },
      [sha256(KEYS.tiny)]: { name: "in-tiny", models: ["*"], team: "tiny", limits: { requests_per_minute: 2 } },
      [sha256(KEYS.budget)]: { name: "one-dollar", models: ["*"], monthly_budget_usd: 1 },
      [sha256(KEYS.rpm3)]: { name: "rpm3", models: ["*"], limits: { requests_per_minute: 3 } },
      [sha256(KEYS.hot)]: { name: "hot", models: ["*"], limits: { requests_per_minute: 400 }, monthly_budget_usd: 1000 },
    },
    teams: {
      squad: { limits: { requests_per_minute: 5 } },
      tiny: { limits: { requests_per_minute: 2 }, model_limits: { chat: { requests_per_minute: 1 } } },
    },
  };
}

before(async () => {
  stateDir = mkdtempSync(path.join(tmpdir(), "gateway-e2e-"));
  stack = await startStack({ mocks: [{ name: "a" }, { name: "b" }], makeConfig, persistDir: stateDir });
});

after(async () => {
  await stack?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

beforeEach(() => stack.reset());

async function health() {
  const res = await fetch(`${stack.url}/admin/health`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
  const body = await res.json();
  return Object.fromEntries(body.endpoints.map((e) => [e.provider, e.state]));
}

test("an endpoint going down: traffic moves within one request, then its circuit opens", async () => {
  stack.mocks.a.fault({ kind: "status", status: 503 });
  for (let i = 0; i < 3; i++) {
    const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-gateway-provider"), "b");
    assert.equal(res.headers.get("x-gateway-attempts"), "2");
  }
  // Three consecutive failures opened the circuit: a is skipped now.
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"));
  assert.equal(res.headers.get("x-gateway-attempts"), "1");
  assert.equal(stack.mocks.a.calls.length, 3);
  await sleep(200); // reports reach the health object after the response
  const state = await health();
  assert.equal(state.a.breaker.circuit.state, "open");
  assert.equal(state.a.snapshot.available, false);
  assert.equal(state.b.breaker.circuit.state, "closed");
});

test("recovery: after the open period a probe goes through and successes close the circuit", async () => {
  stack.mocks.a.fault({ kind: "status", status: 503 });
  for (let i = 0; i < 3; i++) await post(stack.url, "/v1/chat/completions", chatBody("chat"));
  stack.mocks.a.clearFaults();
  await sleep(1700); // open for 1.5 s (+ up to 10% jitter)
  for (let i = 0; i < 2; i++) {
    const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"));
    assert.equal(res.headers.get("x-gateway-provider"), "a", `probe ${i + 1}`);
  }
  await sleep(1100); // good news is batched once a second per isolate
  await post(stack.url, "/v1/chat/completions", chatBody("chat"));
  await sleep(200);
  assert.equal((await health()).a.breaker.circuit.state, "closed");
});

test("a 429 storm: requests spread to the other endpoint while the first cools down", async () => {
  stack.mocks.a.fault({ kind: "status", status: 429, retryAfter: "5" });
  const providers = [];
  for (let i = 0; i < 6; i++) {
    const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"));
    assert.equal(res.status, 200);
    providers.push(res.headers.get("x-gateway-provider"));
  }
  assert.deepEqual([...new Set(providers)], ["b"]);
  assert.equal(stack.mocks.a.calls.length, 1, "cooling down after the first 429, not hammered");
  await sleep(200);
  const state = await health();
  assert.equal(state.a.breaker.circuit.state, "closed", "a 429 is not a breaker failure");
  assert.ok(state.a.breaker.cooldown_until_ms > Date.now());
});

test("200 concurrent requests against a 50 rpm key: exactly 50 pass, the rest get 429 with headers", async () => {
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 200 }, () => post(stack.url, "/v1/chat/completions", chatBody("solo"), { key: KEYS.rpm })),
  );
  const ok = results.filter((r) => r.res.status === 200);
  const limited = results.filter((r) => r.res.status === 429);
  const other = results.filter((r) => r.res.status !== 200 && r.res.status !== 429);
  assert.deepEqual(other.map((r) => `${r.res.status} ${r.text}`), []);
  const degraded = stack.logs.filter((l) => l.limiter_degraded || l.level === "warn");
  assert.deepEqual(degraded.map((l) => JSON.stringify(l)).slice(0, 3), [], "no limiter was skipped");
  // GCRA refills one request every 1.2 s at 50 rpm: on a slow machine the burst outlasts a
  // refill or two, and exactly those are admitted on top of the 50.
  const refills = Math.floor((Date.now() - started) / 1200);
  assert.ok(ok.length >= 50 && ok.length <= 50 + refills, `${ok.length} admitted in ${Date.now() - started} ms`);
  assert.equal(limited.length, 200 - ok.length);
  assert.equal(stack.mocks.b.calls.length, ok.length);
  for (const { res, json } of limited.slice(0, 5)) {
    assert.equal(openAiError(json).code, "rate_limit_exceeded");
    assert.equal(json.error.type, "requests");
    assert.ok(Number(res.headers.get("retry-after")) >= 1);
    assert.equal(res.headers.get("x-ratelimit-limit-requests"), "50");
    assert.equal(res.headers.get("x-ratelimit-remaining-requests"), "0");
    assert.match(res.headers.get("x-ratelimit-reset-requests"), /^\d+(ms|s|m\d+s)$/);
  }
  const remaining = ok.map((r) => Number(r.res.headers.get("x-ratelimit-remaining-requests"))).sort((x, y) => x - y);
  if (ok.length === 50) {
    assert.deepEqual(remaining, Array.from({ length: 50 }, (_, i) => i), "each success saw its own remaining count");
  }
});

test("a team's limit is shared by its keys: 20 concurrent requests from two keys, exactly 5 pass", async () => {
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      post(stack.url, "/v1/chat/completions", chatBody("solo"), { key: i % 2 ? KEYS.squadA : KEYS.squadB }),
    ),
  );
  const ok = results.filter((r) => r.res.status === 200);
  assert.equal(ok.length, 5);
  assert.equal(stack.mocks.b.calls.length, 5);
  const denied = results.find((r) => r.res.status === 429);
  assert.match(denied.json.error.message, /limit of team "squad" reached/);
  assert.equal(denied.res.headers.get("x-ratelimit-limit-requests"), "5");
});

test("a key's per-model limit caps that model only, and headers report the tightest limit", async () => {
  const send = (model) => post(stack.url, "/v1/chat/completions", chatBody(model), { key: KEYS.perModel });
  const first = await send("chat");
  assert.equal(first.res.status, 200);
  assert.equal(first.res.headers.get("x-ratelimit-limit-requests"), "2", "the model's 2 rpm, not the key's 100");
  assert.equal((await send("chat")).res.status, 200);
  const third = await send("chat");
  assert.equal(third.res.status, 429);
  assert.match(third.json.error.message, /limit of this key for model chat reached/);
  const other = await send("solo");
  assert.equal(other.res.status, 200, "other models are not affected");
  assert.equal(other.res.headers.get("x-ratelimit-limit-requests"), "100");
  assert.equal(other.res.headers.get("x-ratelimit-remaining-requests"), "97", "the denied request took nothing");
});

test("embeddings count against the same key and model limits", async () => {
  const body = { model: "embed", input: "hello" };
  const first = await post(stack.url, "/v1/embeddings", body, { key: KEYS.perModel });
  assert.equal(first.res.status, 200, JSON.stringify(first.json));
  assert.equal(first.res.headers.get("x-ratelimit-limit-requests"), "1");
  const line = await stack.logLine(first.res.headers.get("x-request-id"));
  assert.equal(line.event, "embeddings");
  assert.ok(line.prompt_tokens > 0);
  assert.ok(Math.abs(line.cost_usd - (line.prompt_tokens * 0.02) / 1e6) < 1e-15, JSON.stringify(line));
  const second = await post(stack.url, "/v1/embeddings", body, { key: KEYS.perModel });
  assert.equal(second.res.status, 429);
  assert.match(second.json.error.message, /for model embed reached/);
  assert.ok(Number(second.res.headers.get("retry-after")) >= 1);
});

test("a monthly budget: concurrent requests reserve their estimated cost, the real cost settles, then 429 insufficient_quota", async () => {
  const limitsNow = async () => {
    const res = await fetch(`${stack.url}/admin/limits`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
    assert.equal(res.status, 200);
    return res.json();
  };
  // Settlements run after the answers: wait until the key holds no reservation.
  const settled = async () => {
    for (let i = 0; i < 150 && (await limitsNow()).keys["one-dollar"].now.in_flight > 0; i++) await sleep(20);
  };
  // Each answer is one token ($0.10); each request reserves its estimate ($0.20) while it runs.
  stack.mocks.b.fault({ kind: "ok", delayMs: 500, content: "one" }); // within the 1 s first-byte deadline
  const send = () => post(stack.url, "/v1/chat/completions", chatBody("priced", { max_tokens: 2 }), { key: KEYS.budget });
  const burst = await Promise.all(Array.from({ length: 12 }, send));
  const admitted = burst.filter((r) => r.res.status === 200);
  assert.equal(admitted.length, 5, "$1 holds exactly five $0.20 reservations");
  const refused = burst.find((r) => r.res.status === 429);
  assert.equal(refused.json.error.type, "insufficient_quota");
  assert.equal(refused.json.error.code, "insufficient_quota");
  assert.equal(refused.res.headers.get("x-should-retry"), "false");
  assert.match(refused.json.error.message, /monthly budget of this key \(\$1\.00\) is used up .* resets on \d{4}-\d{2}-01/);
  await settled();
  // Spent $0.50 for real: four more requests fit one after the other, then the budget is gone.
  stack.mocks.b.fault({ kind: "ok", content: "one" });
  const statuses = [];
  for (let i = 0; i < 6; i++) {
    statuses.push((await send()).res.status);
    await settled();
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
  const costs = await Promise.all(admitted.map((r) => stack.logLine(r.res.headers.get("x-request-id"))));
  assert.ok(costs.every((line) => Math.abs(line.cost_usd - 0.1) < 1e-9), JSON.stringify(costs.map((l) => l.cost_usd)));

  // The operator's view: nine answers of $0.10 each this month, nothing in flight.
  const limits = await limitsNow();
  const mine = limits.keys["one-dollar"];
  assert.equal(mine.monthly_budget_usd, 1);
  assert.equal(mine.now.in_flight, 0);
  assert.ok(Math.abs(mine.now.spent_usd_this_month.all - 0.9) < 1e-9, JSON.stringify(mine.now));
  assert.ok(limits.teams.squad, "teams are listed too");
  const denied = await fetch(`${stack.url}/admin/limits`, { headers: { authorization: "Bearer wrong" } });
  assert.equal(denied.status, 401);
});

test("a hot key is admitted from the isolate's allotment: headers count down, a burst stays exact, unused slots come back", async () => {
  const limitsNow = async () => {
    const res = await fetch(`${stack.url}/admin/limits`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
    return (await res.json()).keys.hot.now;
  };
  // $0.10 an answer (one token), $0.20 reserved per request: the budget never binds here.
  stack.mocks.b.fault({ kind: "ok", content: "one" });
  const send = () => post(stack.url, "/v1/chat/completions", chatBody("priced-burst", { max_tokens: 2 }), { key: KEYS.hot });
  const started = Date.now();
  const sequential = [];
  for (let i = 0; i < 40; i++) sequential.push(await send());
  assert.deepEqual(sequential.map((r) => r.res.status), Array(40).fill(200));
  const lines = await Promise.all(sequential.map((r) => stack.logLine(r.res.headers.get("x-request-id"))));
  const allotted = lines.filter((l) => l.admitted_from_allotment).length;
  assert.ok(allotted >= 20, `most requests of a hot key make no limiter call (${allotted} of 40)`);
  // Each request sees one fewer left (GCRA refills one every 150 ms at 400 rpm).
  const refills = () => Math.ceil((Date.now() - started) / 150);
  sequential.forEach((r, i) => {
    const remaining = Number(r.res.headers.get("x-ratelimit-remaining-requests"));
    assert.ok(remaining <= 399 - i + refills() && remaining >= 399 - i - 1, `request ${i}: ${remaining}`);
  });

  // A burst beyond the limit: exactly what is left passes, allotments or not. 150
  // at a time: with 450 sockets opened at once, some sometimes failed with "other
  // side closed" on a loaded machine (cause not found; the 200-request bursts never did).
  let next = 0;
  const burst = [];
  await Promise.all(
    Array.from({ length: 150 }, async () => {
      while (next < 450) {
        const i = next++;
        burst[i] = await send();
      }
    }),
  );
  const ok = burst.filter((r) => r.res.status === 200).length;
  assert.deepEqual([...new Set(burst.map((r) => r.res.status))].sort(), [200, 429]);
  assert.ok(ok + 40 >= 400 && ok + 40 <= 400 + refills(), `${ok + 40} admitted in ${Date.now() - started} ms`);

  // Unused slots are given back when their allotment lapses (1 s), and every
  // slot's settlement replaced its estimate with the real cost.
  for (let i = 0; i < 100; i++) {
    const now = await limitsNow();
    if (now.in_flight === 0 && Math.abs(now.spent_usd_this_month.all - (ok + 40) * 0.1) < 1e-6) break;
    await sleep(50);
  }
  const now = await limitsNow();
  assert.equal(now.in_flight, 0);
  assert.ok(Math.abs(now.spent_usd_this_month.all - (ok + 40) * 0.1) < 1e-6, `${JSON.stringify(now)} for ${ok + 40} answers`);
});

test("when the team refuses, the key's reservation is given back", async () => {
  const send = (model) => post(stack.url, "/v1/chat/completions", chatBody(model), { key: KEYS.tiny });
  assert.equal((await send("chat")).res.status, 200);
  const refused = await send("chat");
  assert.equal(refused.res.status, 429);
  assert.match(refused.json.error.message, /team "tiny" for model chat/);
  await sleep(200); // the cancellation runs after the answer
  // The key allows 2 a minute: had the refused request kept its cell, this one would be the third.
  const next = await send("solo");
  assert.equal(next.res.status, 200, JSON.stringify(next.json));
});

test("the tokens-per-minute limit reserves an estimate and reconciles to the real usage", async () => {
  const body = chatBody("solo", { max_tokens: 600 });
  const first = await post(stack.url, "/v1/chat/completions", body, { key: KEYS.tpm });
  assert.equal(first.res.status, 200);
  const reserved = 1000 - Number(first.res.headers.get("x-ratelimit-remaining-tokens"));
  assert.ok(reserved >= 600, `reserved ${reserved}`);
  // Without reconciliation a second 600-token reservation would not fit; the real
  // usage was a few tokens, so after settling it does.
  await sleep(200);
  const second = await post(stack.url, "/v1/chat/completions", body, { key: KEYS.tpm });
  assert.equal(second.res.status, 200, JSON.stringify(second.json));
  const actual = first.json.usage.total_tokens;
  const remainingAfterSecond = Number(second.res.headers.get("x-ratelimit-remaining-tokens"));
  // The bucket refills ~17 tokens a second, so allow for the time the test takes.
  assert.ok(Math.abs(1000 - actual - reserved - remainingAfterSecond) <= 10, `${remainingAfterSecond} vs ${1000 - actual - reserved}`);

  // A request that can never fit: 429 that tells SDKs not to retry.
  const huge = await post(stack.url, "/v1/chat/completions", chatBody("solo", { max_tokens: 5000 }), { key: KEYS.tpm });
  assert.equal(huge.res.status, 429);
  assert.equal(huge.json.error.type, "tokens");
  assert.equal(huge.res.headers.get("x-should-retry"), "false");
  assert.match(huge.json.error.message, /Request too large/);
});

test("a concurrency cap counts open streams until they end", async () => {
  stack.mocks.b.fault({ kind: "ok", gapMs: 100 });
  const open = async () => {
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEYS.conc}`, "content-type": "application/json" },
      body: JSON.stringify(chatBody("solo", { stream: true })),
    });
    return res;
  };
  const [s1, s2] = [await open(), await open()];
  assert.equal(s1.status, 200);
  assert.equal(s2.status, 200);
  const third = await open();
  assert.equal(third.status, 429);
  assert.equal((await third.json()).error.code, "concurrency_limit_exceeded");
  await Promise.all([readSse(s1), readSse(s2)]);
  await sleep(100);
  const fourth = await open();
  assert.equal(fourth.status, 200, "leases were released when the streams ended");
  await readSse(fourth);
});

test("a client that disconnects mid-stream cancels the provider request", async () => {
  stack.mocks.b.fault({ kind: "ok", gapMs: 200 });
  const controller = new AbortController();
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEYS.conc}`, "content-type": "application/json" },
    body: JSON.stringify(chatBody("solo", { stream: true })),
    signal: controller.signal,
  });
  const reader = res.body.getReader();
  await reader.read();
  controller.abort();
  await sleep(1000);
  const [call] = stack.mocks.b.calls;
  assert.equal(call.aborted, true, "the upstream connection was closed before the stream finished");
});

test("limiter state survives a restart of the runtime (persisted in the object's storage)", async () => {
  // 3 a minute: a cell comes back only every 20 s, far longer than a restart takes.
  const send = () => post(stack.url, "/v1/chat/completions", chatBody("solo"), { key: KEYS.rpm3 });
  const burst = await Promise.all(Array.from({ length: 5 }, send));
  assert.equal(burst.filter((r) => r.res.status === 200).length, 3);
  // Restart workerd on the same storage.
  await stack.close();
  stack = await startStack({ mocks: [{ name: "a" }, { name: "b" }], makeConfig, persistDir: stateDir });
  const after = await send();
  assert.equal(after.res.status, 429, "the 3-per-minute budget is still spent");
});

test("the cron handler probes an endpoint stuck open with a free models call", async () => {
  stack.mocks.a.fault({ kind: "status", status: 503 });
  for (let i = 0; i < 3; i++) await post(stack.url, "/v1/chat/completions", chatBody("chat"));
  stack.mocks.a.clearFaults();
  await sleep(1800); // the open period passes with no traffic to probe it
  const worker = await stack.mf.getWorker();
  await worker.scheduled({ cron: "* * * * *" });
  const probe = stack.mocks.a.calls.find((c) => c.method === "GET" && c.path === "/v1/models");
  assert.ok(probe, "a free GET /v1/models, not a completion");
  const state = await health();
  assert.equal(state.a.breaker.circuit.state, "half_open");
  assert.ok(state.a.breaker.total_successes >= 1);
});

test("an endpoint's configured capacity spreads a burst to the next endpoint before the provider says 429", async () => {
  const served = [];
  for (let i = 0; i < 5; i++) {
    const { res } = await post(stack.url, "/v1/chat/completions", chatBody("capped"));
    assert.equal(res.status, 200);
    served.push(res.headers.get("x-gateway-provider"));
  }
  assert.deepEqual(served, ["a-capped", "a-capped", "a-capped", "b", "b"]);
  assert.equal(stack.mocks.a.calls.length, 3, "the capped endpoint was not called beyond its capacity");
});

test("GET /admin/health reports latency percentiles, error rate and verified tool-call validity", async () => {
  const tool = (type) => [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { location: { type } }, required: ["location"] } } }];
  // The mock always calls get_weather with {"location":"Paris"}: valid for a string schema, not for an integer one.
  await post(stack.url, "/v1/chat/completions", chatBody("solo", { tools: tool("string") }));
  const streamed = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: "Bearer gw_dev_local_key", "content-type": "application/json" },
    body: JSON.stringify(chatBody("solo", { tools: tool("integer"), stream: true })),
  });
  await readSse(streamed);
  await sleep(1100); // reports of good outcomes are batched once a second per isolate
  await post(stack.url, "/v1/chat/completions", chatBody("solo")); // flushes the batch
  await sleep(300);
  const b = (await health()).b;
  assert.equal(b.tool_call_validity, 0.5);
  assert.ok(b.latency_ms.p50 > 0 && b.latency_ms.p99 >= b.latency_ms.p50);
  assert.equal(b.error_rate, 0);
  assert.ok(b.breaker.total_successes >= 3);
});
