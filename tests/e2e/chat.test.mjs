// End to end through workerd: the official OpenAI SDK against the gateway, and the
// gateway against mock providers that speak OpenAI's wire format and fail on demand.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import {
  startStack,
  provider,
  chatBody,
  post,
  readSse,
  openAiError,
  DEV_GATEWAY_KEY,
  DEV_LIMITED_KEY,
  DEV_KEY_HASH,
  LIMITED_KEY_HASH,
  MOCK_PROVIDER_KEY,
} from "./harness.mjs";

let stack;
let client;

function makeConfig(mocks, { refusedUrl }) {
  const target = (p, model = "gpt-4o-mini") => ({ provider: p, model });
  return {
    version: 1,
    revision: "e2e chat",
    settings: {
      allow_http_providers: true,
      max_body_bytes: 64 * 1024,
      first_byte_timeout_ms: 1000,
      stream_idle_timeout_ms: 1000,
      request_timeout_ms: 20000,
      config_cache_ttl_ms: 0,
      cors_origins: ["https://app.example.com"],
    },
    providers: {
      primary: provider(mocks.primary.baseUrl, "us"),
      backup: provider(mocks.backup.baseUrl, "eu"),
      refused: provider(refusedUrl, "us"),
      unkeyed: provider(mocks.backup.baseUrl, "us", "SECRET_THAT_IS_NOT_SET"),
    },
    models: {
      "gpt-4o-mini": { targets: [target("primary"), target("backup")] },
      solo: { targets: [target("primary")] },
      "refused-first": { targets: [target("refused"), target("backup")] },
      "unkeyed-first": { targets: [target("unkeyed"), target("backup")] },
      "all-refused": { targets: [target("refused")] },
    },
    keys: {
      [DEV_KEY_HASH]: { name: "e2e full", models: ["*"] },
      [LIMITED_KEY_HASH]: { name: "e2e limited", models: ["solo"] },
    },
  };
}

before(async () => {
  stack = await startStack({
    mocks: [
      { name: "primary", gapMs: 60 },
      { name: "backup", gapMs: 60 },
    ],
    makeConfig,
  });
  client = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
});

after(async () => {
  await stack?.close();
});

beforeEach(() => stack.reset());

test("OpenAI SDK: chat completion is served by the primary with gateway headers", async () => {
  const { data, response } = await client.chat.completions
    .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello gateway" }] })
    .withResponse();
  assert.equal(data.object, "chat.completion");
  assert.equal(data.choices[0].message.content, "Hello from primary! You said: Hello gateway");
  assert.equal(data.choices[0].finish_reason, "stop");
  assert.ok(data.usage.total_tokens > 0);
  assert.equal(response.headers.get("x-gateway-provider"), "primary");
  assert.equal(response.headers.get("x-gateway-region"), "us");
  assert.equal(response.headers.get("x-gateway-attempts"), "1");
  assert.match(response.headers.get("x-request-id"), /^req_[0-9a-f]{24}$/);
  assert.equal(stack.mocks.backup.calls.length, 0);
});

test("the provider gets its own key and the upstream model, never the client's credentials", async () => {
  await post(stack.url, "/v1/chat/completions", chatBody("gpt-4o-mini"), {
    headers: { "x-api-key": "client-secret-header", cookie: "session=abc", "x-forwarded-for": "1.2.3.4" },
  });
  const [call] = stack.mocks.primary.calls;
  assert.equal(call.headers.authorization, `Bearer ${MOCK_PROVIDER_KEY}`);
  assert.equal(call.headers["x-api-key"], undefined);
  assert.equal(call.headers.cookie, undefined);
  assert.equal(call.headers["x-forwarded-for"], undefined);
  assert.equal(call.body.model, "gpt-4o-mini");
  assert.deepEqual(call.body.messages, [{ role: "user", content: "Hi there" }]);
});

test("OpenAI SDK: streamed chunks arrive incrementally, with usage when asked", async () => {
  const stream = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "one two three four five six" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const arrivals = [];
  let text = "";
  let usage = null;
  for await (const chunk of stream) {
    arrivals.push(Date.now());
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, "Hello from primary! You said: one two three four five six");
  assert.ok(usage && usage.total_tokens > 0, "usage chunk forwarded");
  // The mock spaces chunks 60 ms apart; a buffered relay would deliver them together.
  assert.ok(arrivals.length >= 10, `got ${arrivals.length} chunks`);
  const spread = arrivals.at(-1) - arrivals[0];
  assert.ok(spread >= 400, `chunks arrived within ${spread} ms: the stream was buffered`);
  // The upstream always gets include_usage so the gateway can account the stream.
  assert.equal(stack.mocks.primary.calls[0].body.stream_options.include_usage, true);
});

test("a stream without include_usage gets no usage chunk, and ends with [DONE]", async () => {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(chatBody("gpt-4o-mini", { stream: true })),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/event-stream/);
  const events = await readSse(res);
  assert.equal(events.at(-1).data, "[DONE]");
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
  assert.ok(chunks.every((c) => c.choices.length > 0), "no usage-only chunk");
});

test("OpenAI SDK: models.list shows what the key may use", async () => {
  const all = await client.models.list();
  assert.deepEqual(all.data.map((m) => m.id).sort(), ["all-refused", "gpt-4o-mini", "refused-first", "solo", "unkeyed-first"]);
  const limited = new OpenAI({ apiKey: DEV_LIMITED_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
  const some = await limited.models.list();
  assert.deepEqual(some.data.map((m) => m.id), ["solo"]);
  assert.equal(some.data[0].object, "model");
});

test("bad or missing keys get 401 in OpenAI's shape; x-api-key is accepted", async () => {
  const bad = new OpenAI({ apiKey: "gw_wrong", baseURL: `${stack.url}/v1`, maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create(chatBody("gpt-4o-mini")), (err) => {
    assert.ok(err instanceof OpenAI.AuthenticationError);
    assert.equal(err.status, 401);
    assert.equal(err.code, "invalid_api_key");
    return true;
  });
  const none = await fetch(`${stack.url}/v1/models`);
  assert.equal(none.status, 401);
  openAiError(await none.json());
  const viaHeader = await fetch(`${stack.url}/v1/models`, { headers: { "x-api-key": DEV_GATEWAY_KEY } });
  assert.equal(viaHeader.status, 200);
});

test("unknown models and models the key may not use look the same: 404 model_not_found", async () => {
  const unknown = await post(stack.url, "/v1/chat/completions", chatBody("gpt-9"));
  const forbidden = await post(stack.url, "/v1/chat/completions", chatBody("gpt-4o-mini"), { key: DEV_LIMITED_KEY });
  for (const { res, json } of [unknown, forbidden]) {
    assert.equal(res.status, 404);
    const error = openAiError(json);
    assert.equal(error.code, "model_not_found");
    assert.equal(error.param, "model");
  }
  assert.equal(stack.mocks.primary.calls.length, 0);
});

test("client mistakes are clear 4xx errors, never 500", async () => {
  const cases = [
    ["{not json", 400, "invalid_json"],
    [JSON.stringify({ model: "gpt-4o-mini" }), 400, "missing_required_parameter"],
    [JSON.stringify({ model: "gpt-4o-mini", messages: [] }), 400, "invalid_value"],
    [JSON.stringify(chatBody("gpt-4o-mini", { temperature: 7 })), 400, "invalid_value"],
    ["[".repeat(5000) + "]".repeat(5000), 400, "json_too_deep"],
    [JSON.stringify(chatBody("gpt-4o-mini", { pad: "x".repeat(100 * 1024) })), 413, "request_too_large"],
  ];
  for (const [body, status, code] of cases) {
    const { res, json } = await post(stack.url, "/v1/chat/completions", body);
    assert.equal(res.status, status, `${code}: ${JSON.stringify(json)}`);
    assert.equal(openAiError(json).code, code);
    assert.equal(res.headers.get("x-should-retry"), "false");
  }
  const wrongMethod = await fetch(`${stack.url}/v1/chat/completions`);
  assert.equal(wrongMethod.status, 405);
  openAiError(await wrongMethod.json());
  const unknownRoute = await fetch(`${stack.url}/v2/nothing`);
  assert.equal(unknownRoute.status, 404);
  openAiError(await unknownRoute.json());
  assert.equal(stack.mocks.primary.calls.length, 0);
});

test("CORS: preflights from allowed origins pass without a key, answers name the origin, others get nothing", async () => {
  const preflight = (origin) =>
    fetch(`${stack.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
    });
  const ok = await preflight("https://app.example.com");
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get("access-control-allow-origin"), "https://app.example.com");
  assert.match(ok.headers.get("access-control-allow-methods"), /POST/);
  assert.equal(ok.headers.get("access-control-allow-headers"), "authorization, content-type");
  const evil = await preflight("https://evil.example");
  assert.notEqual(evil.status, 204);
  assert.equal(evil.headers.get("access-control-allow-origin"), null);

  const call = (origin) =>
    post(stack.url, "/v1/chat/completions", chatBody("gpt-4o-mini"), { headers: { origin } });
  const allowed = await call("https://app.example.com");
  assert.equal(allowed.res.status, 200);
  assert.equal(allowed.res.headers.get("access-control-allow-origin"), "https://app.example.com");
  assert.match(allowed.res.headers.get("access-control-expose-headers"), /x-request-id/);
  const other = await call("https://evil.example");
  assert.equal(other.res.headers.get("access-control-allow-origin"), null);
  // Errors carry the header too, so a browser app can read why it failed.
  const unauthorized = await post(stack.url, "/v1/chat/completions", chatBody("gpt-4o-mini"), {
    key: "wrong",
    headers: { origin: "https://app.example.com" },
  });
  assert.equal(unauthorized.res.status, 401);
  assert.equal(unauthorized.res.headers.get("access-control-allow-origin"), "https://app.example.com");
});

test("bodies without a content-length (chunked) are read up to the limit too", async () => {
  const chunked = (text, pieces) => {
    const bytes = new TextEncoder().encode(text);
    const size = Math.ceil(bytes.length / pieces);
    let offset = 0;
    return new ReadableStream({
      pull(controller) {
        if (offset >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(offset, offset + size));
        offset += size;
      },
    });
  };
  const send = (text) =>
    fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}`, "content-type": "application/json" },
      body: chunked(text, 5),
      duplex: "half",
    });
  const ok = await send(JSON.stringify(chatBody("gpt-4o-mini")));
  assert.equal(ok.status, 200, await ok.clone().text());
  assert.equal((await ok.json()).object, "chat.completion");
  const big = await send(JSON.stringify(chatBody("gpt-4o-mini", { pad: "x".repeat(100 * 1024) })));
  assert.equal(big.status, 413);
  assert.equal(openAiError(await big.json()).code, "request_too_large");
});

// [what the primary does, the fault, primary calls (2 = one same-endpoint retry first)]
for (const [name, fault, primaryCalls] of [
  ["500", { kind: "status", status: 500 }, 2],
  ["503", { kind: "status", status: 503 }, 1],
  ["429 with a long Retry-After", { kind: "status", status: 429, retryAfter: "30" }, 1],
  ["an HTML error page", { kind: "html" }, 2],
  ["malformed JSON", { kind: "malformed" }, 2],
  ["a slow first byte", { kind: "slow_first_byte", delayMs: 3000 }, 1],
  ["a 401 for the gateway's own key", { kind: "status", status: 401 }, 1],
]) {
  test(`failover: primary answers ${name} → the backup serves the request`, async () => {
    stack.mocks.primary.fault(fault);
    const started = Date.now();
    const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("gpt-4o-mini"));
    assert.equal(res.status, 200, JSON.stringify(json));
    assert.equal(json.choices[0].message.content, "Hello from backup! You said: Hi there");
    assert.equal(res.headers.get("x-gateway-provider"), "backup");
    assert.equal(res.headers.get("x-gateway-attempts"), String(primaryCalls + 1));
    assert.equal(stack.mocks.primary.calls.length, primaryCalls);
    assert.equal(stack.mocks.backup.calls.length, 1);
    assert.ok(Date.now() - started < 2500, "the first-byte deadline (1 s) bounds a slow provider");
  });
}

test("a 500 once is retried on the same endpoint after a short jittered wait", async () => {
  stack.mocks.primary.fault({ kind: "status", status: 500, times: 1 });
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("gpt-4o-mini"));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-gateway-provider"), "primary");
  assert.equal(res.headers.get("x-gateway-attempts"), "2");
  assert.equal(stack.mocks.backup.calls.length, 0);
});

test("a 429 with a short Retry-After is waited out on the same endpoint", async () => {
  stack.mocks.primary.fault({ kind: "status", status: 429, retryAfter: "1", times: 1 });
  const started = Date.now();
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("gpt-4o-mini"));
  assert.equal(res.headers.get("x-gateway-provider"), "primary");
  const [first, second] = stack.mocks.primary.calls;
  assert.ok(second.at - first.at >= 950, `waited ${second.at - first.at} ms`);
  assert.ok(Date.now() - started < 3000);
});

test("every response reports the gateway's own overhead", async () => {
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("gpt-4o-mini"));
  const overhead = Number(res.headers.get("x-gateway-overhead-ms"));
  assert.ok(Number.isFinite(overhead) && overhead >= 0 && overhead < 1000, `overhead ${overhead}`);
});

test("failover: connection refused (retried once) and a missing provider secret move to the next target", async () => {
  for (const [model, attempts] of [["refused-first", "3"], ["unkeyed-first", "2"]]) {
    const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody(model));
    assert.equal(res.status, 200, JSON.stringify(json));
    assert.equal(res.headers.get("x-gateway-provider"), "backup");
    assert.equal(res.headers.get("x-gateway-attempts"), attempts);
  }
});

test("failover for streams: an error event or a slow stream before any content", async () => {
  for (const fault of [{ kind: "stream_error_event" }, { kind: "slow_body", delayMs: 3000 }]) {
    await stack.reset();
    stack.mocks.primary.fault({ ...fault, times: 1 });
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(chatBody("gpt-4o-mini", { stream: true })),
    });
    assert.equal(res.status, 200, fault.kind);
    assert.equal(res.headers.get("x-gateway-provider"), "backup", fault.kind);
    const events = await readSse(res);
    assert.equal(events.at(-1).data, "[DONE]");
    assert.ok(!events.some((e) => e.data.includes('"error"')), fault.kind);
  }
});

test("a provider's 400 is the client's answer: passed on, not failed over", async () => {
  stack.mocks.primary.fault({
    kind: "status",
    status: 400,
    times: 1,
    body: { error: { message: "This model's maximum context length is 8192 tokens.", type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } },
  });
  await assert.rejects(client.chat.completions.create(chatBody("gpt-4o-mini")), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.code, "context_length_exceeded");
    assert.match(err.message, /maximum context length/);
    return true;
  });
  assert.equal(stack.mocks.backup.calls.length, 0);
});

test("when every target fails the client gets a clean JSON error with the right status", async () => {
  stack.mocks.primary.fault({ kind: "status", status: 500 });
  stack.mocks.backup.fault({ kind: "status", status: 500 });
  const down = await post(stack.url, "/v1/chat/completions", chatBody("gpt-4o-mini"));
  assert.equal(down.res.status, 502);
  const error = openAiError(down.json);
  assert.equal(error.code, "upstream_error");
  assert.match(error.message, /primary: HTTP 500/);
  assert.match(error.message, /backup: HTTP 500/);
  stack.mocks.primary.clearFaults();
  stack.mocks.backup.clearFaults();

  stack.mocks.primary.fault({ kind: "status", status: 429, retryAfter: "3" });
  stack.mocks.backup.fault({ kind: "status", status: 429, retryAfter: "5" });
  const limited = await post(stack.url, "/v1/chat/completions", chatBody("gpt-4o-mini"));
  assert.equal(limited.res.status, 429);
  assert.equal(limited.res.headers.get("retry-after"), "3");
  assert.equal(openAiError(limited.json).code, "upstream_rate_limited");
  stack.mocks.primary.clearFaults();
  stack.mocks.backup.clearFaults();

  stack.mocks.primary.fault({ kind: "hang" });
  const slow = await post(stack.url, "/v1/chat/completions", chatBody("solo"));
  assert.equal(slow.res.status, 504);
  assert.equal(openAiError(slow.json).code, "upstream_timeout");
  stack.mocks.primary.clearFaults();

  const refused = await post(stack.url, "/v1/chat/completions", chatBody("all-refused"));
  assert.equal(refused.res.status, 502);
  assert.match(openAiError(refused.json).message, /refused: connection failed/);
});

test("a stream cut mid-way ends with an error event, never a clean [DONE]", async () => {
  stack.mocks.primary.fault({ kind: "cut_stream", afterChunks: 3, times: 1 });
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(chatBody("gpt-4o-mini", { stream: true })),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-gateway-provider"), "primary", "content was already sent: no failover");
  const events = await readSse(res);
  assert.notEqual(events.at(-1).data, "[DONE]");
  const last = JSON.parse(events.at(-1).data);
  assert.equal(last.error.code, "upstream_stream_interrupted");
  assert.equal(stack.mocks.backup.calls.length, 0);
});

test("OpenAI SDK: a stream cut mid-way raises instead of returning a short answer", async () => {
  stack.mocks.primary.fault({ kind: "cut_stream", afterChunks: 3, times: 1 });
  const stream = await client.chat.completions.create({ ...chatBody("gpt-4o-mini"), stream: true });
  await assert.rejects(async () => {
    for await (const _ of stream) {
      // drain
    }
  });
});

test("a stalled stream is ended by the idle timeout with an error event", async () => {
  stack.mocks.primary.fault({ kind: "stall_stream", afterChunks: 2, stallMs: 10000, times: 1 });
  const started = Date.now();
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(chatBody("gpt-4o-mini", { stream: true })),
  });
  const events = await readSse(res);
  assert.ok(Date.now() - started < 5000, "ended by the 1 s idle timeout, not the 10 s stall");
  assert.equal(JSON.parse(events.at(-1).data).error.code, "upstream_stream_idle_timeout");
});

test("a malformed event before content fails over; after content it ends the stream with an error, never [DONE]", async () => {
  const stream = () =>
    fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(chatBody("gpt-4o-mini", { stream: true })),
    });
  stack.mocks.primary.fault({ kind: "malformed", atEvent: 1 });
  const before = await stream();
  assert.equal(before.headers.get("x-gateway-provider"), "backup");
  const events = await readSse(before);
  assert.equal(events.at(-1).data, "[DONE]");
  await stack.reset();
  stack.mocks.primary.fault({ kind: "malformed", atEvent: 3 });
  const after = await readSse(await stream());
  assert.ok(after.some((e) => e.data.includes("Hello")), "content reached the client first");
  assert.equal(JSON.parse(after.at(-1).data).error.code, "upstream_stream_error");
  assert.ok(!after.some((e) => e.data === "[DONE]"));
});
