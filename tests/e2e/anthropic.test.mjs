// One API, two providers' formats: the official Anthropic SDK and the official
// OpenAI SDK against the gateway, each reaching an OpenAI-format and an
// Anthropic-format mock — natively where formats match, translated otherwise.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startStack, provider, chatBody, post, readSse, DEV_GATEWAY_KEY, DEV_KEY_HASH, MOCK_PROVIDER_KEY } from "./harness.mjs";

let stack;
let anthropic;
let openai;

const WEATHER_TOOL = {
  name: "get_weather",
  description: "Get the current weather in a given location",
  input_schema: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
};

function makeConfig(mocks) {
  return {
    version: 1,
    revision: "e2e anthropic",
    settings: { allow_http_providers: true, first_byte_timeout_ms: 1500, config_cache_ttl_ms: 0 },
    providers: {
      gpt: provider(mocks.gpt.baseUrl, "us"),
      claude: { ...provider(mocks.claude.baseUrl, "us"), kind: "anthropic" },
    },
    models: {
      "claude-sonnet": { targets: [{ provider: "claude", model: "claude-sonnet-4-5", capabilities: { max_output_tokens: 2048 } }] },
      "gpt-4o-mini": { targets: [{ provider: "gpt", model: "gpt-4o-mini" }] },
      "claude-then-gpt": { targets: [{ provider: "claude", model: "claude-sonnet-4-5" }, { provider: "gpt", model: "gpt-4o-mini" }] },
      "claude-priced": {
        targets: [
          {
            provider: "claude",
            model: "claude-sonnet-4-5",
            price: { input_per_mtok: 3, output_per_mtok: 15, cached_input_per_mtok: 0.3, cache_write_per_mtok: 3.75 },
          },
        ],
      },
    },
    keys: { [DEV_KEY_HASH]: { name: "e2e", models: ["*"] } },
  };
}

before(async () => {
  stack = await startStack({ mocks: [{ name: "gpt" }, { name: "claude", format: "anthropic" }], makeConfig });
  anthropic = new Anthropic({ apiKey: DEV_GATEWAY_KEY, baseURL: stack.url, maxRetries: 0 });
  openai = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
});

after(async () => {
  await stack?.close();
});

beforeEach(() => stack.reset());

for (const model of ["claude-sonnet", "gpt-4o-mini"]) {
  const mock = model === "claude-sonnet" ? "claude" : "gpt";

  test(`Anthropic SDK → ${mock} mock: a message`, async () => {
    const message = await anthropic.messages.create({ model, max_tokens: 256, system: "Be brief.", messages: [{ role: "user", content: "Hello gateway" }] });
    assert.equal(message.type, "message");
    assert.equal(message.role, "assistant");
    assert.deepEqual(message.content, [{ type: "text", text: `Hello from ${mock}! You said: Hello gateway` }]);
    assert.equal(message.stop_reason, "end_turn");
    assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 0);
    const [call] = stack.mocks[mock].calls;
    if (mock === "claude") {
      assert.equal(call.headers["x-api-key"], MOCK_PROVIDER_KEY, "the provider's key, not the client's");
      assert.match(call.headers["anthropic-version"], /^\d{4}-\d{2}-\d{2}$/, "the client's anthropic-version passes through");
      assert.equal(call.body.model, "claude-sonnet-4-5");
      assert.equal(call.body.system, "Be brief.", "native relaying keeps the client's body as it was");
    } else {
      assert.equal(call.headers.authorization, `Bearer ${MOCK_PROVIDER_KEY}`);
      assert.deepEqual(call.body.messages[0], { role: "system", content: "Be brief." });
      assert.equal(call.body.max_tokens, 256);
    }
  });

  test(`Anthropic SDK → ${mock} mock: streaming events arrive in Anthropic's order`, async () => {
    const stream = anthropic.messages.stream({ model, max_tokens: 256, messages: [{ role: "user", content: "one two three four" }] });
    const types = [];
    let text = "";
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text;
    }
    const final = await stream.finalMessage();
    assert.equal(text, `Hello from ${mock}! You said: one two three four`);
    assert.equal(types[0], "message_start");
    assert.equal(types.at(-1), "message_stop");
    assert.ok(types.includes("content_block_start") && types.includes("content_block_stop") && types.includes("message_delta"));
    assert.equal(final.stop_reason, "end_turn");
    assert.ok(final.usage.output_tokens > 0);
  });

  test(`Anthropic SDK → ${mock} mock: a full tool-call round trip`, async () => {
    const first = await anthropic.messages.create({ model, max_tokens: 256, tools: [WEATHER_TOOL], messages: [{ role: "user", content: "Weather in Paris?" }] });
    assert.equal(first.stop_reason, "tool_use");
    const toolUse = first.content.find((b) => b.type === "tool_use");
    assert.equal(toolUse.name, "get_weather");
    assert.deepEqual(toolUse.input, { location: "Paris" });
    const second = await anthropic.messages.create({
      model,
      max_tokens: 256,
      tools: [WEATHER_TOOL],
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: toolUse.id, content: "18°C and sunny" }] },
      ],
    });
    assert.equal(second.content[0].text, "Tool said: 18°C and sunny");
  });

  test(`OpenAI SDK → ${mock} mock: chat, stream and a tool-call round trip`, async () => {
    const reply = await openai.chat.completions.create({ model, messages: [{ role: "user", content: "Hi" }] });
    assert.equal(reply.choices[0].message.content, `Hello from ${mock}! You said: Hi`);
    assert.equal(reply.choices[0].finish_reason, "stop");
    assert.ok(reply.usage.total_tokens > 0);

    const stream = await openai.chat.completions.create({ model, messages: [{ role: "user", content: "a b c" }], stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, `Hello from ${mock}! You said: a b c`);
    assert.ok(usage?.completion_tokens > 0);

    const tools = [{ type: "function", function: { name: "get_weather", parameters: WEATHER_TOOL.input_schema } }];
    const call = await openai.chat.completions.create({ model, tools, messages: [{ role: "user", content: "Weather?" }] });
    assert.equal(call.choices[0].finish_reason, "tool_calls");
    const toolCall = call.choices[0].message.tool_calls[0];
    assert.equal(toolCall.function.name, "get_weather");
    assert.deepEqual(JSON.parse(toolCall.function.arguments), { location: "Paris" });
    const done = await openai.chat.completions.create({
      model,
      tools,
      messages: [
        { role: "user", content: "Weather?" },
        call.choices[0].message,
        { role: "tool", tool_call_id: toolCall.id, content: "18°C" },
      ],
    });
    assert.equal(done.choices[0].message.content, "Tool said: 18°C");

    // Streamed tool calls keep one index and id, with the arguments in fragments.
    const streamed = await openai.chat.completions.create({ model, tools, messages: [{ role: "user", content: "Weather?" }], stream: true });
    const fragments = [];
    let finish = null;
    for await (const chunk of streamed) {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) fragments.push(tc);
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, "tool_calls");
    assert.ok(fragments.every((f) => f.index === 0));
    assert.equal(fragments.filter((f) => f.id).length, 1);
    assert.deepEqual(JSON.parse(fragments.map((f) => f.function?.arguments ?? "").join("")), { location: "Paris" });
  });
}

test("errors on /v1/messages are in Anthropic's shape, and the SDK maps them", async () => {
  const bad = new Anthropic({ apiKey: "gw_wrong", baseURL: stack.url, maxRetries: 0 });
  await assert.rejects(bad.messages.create({ model: "claude-sonnet", max_tokens: 10, messages: [{ role: "user", content: "x" }] }), (err) => {
    assert.ok(err instanceof Anthropic.AuthenticationError);
    return true;
  });
  await assert.rejects(anthropic.messages.create({ model: "nope", max_tokens: 10, messages: [{ role: "user", content: "x" }] }), (err) => {
    assert.ok(err instanceof Anthropic.NotFoundError);
    return true;
  });
  const res = await fetch(`${stack.url}/v1/messages`, {
    method: "POST",
    headers: { "x-api-key": DEV_GATEWAY_KEY, "content-type": "application/json", "anthropic-version": "2023-06-01" },
    body: JSON.stringify({ model: "claude-sonnet", messages: [{ role: "user", content: "x" }] }),
  });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.type, "error");
  assert.equal(body.error.type, "invalid_request_error");
  assert.match(body.error.message, /max_tokens/);
  assert.match(body.request_id, /^req_/);
});

test("an Anthropic overloaded error before any content fails over to the next target", async () => {
  stack.mocks.claude.fault({ kind: "stream_error_event" });
  const stream = anthropic.messages.stream({ model: "claude-then-gpt", max_tokens: 64, messages: [{ role: "user", content: "hi" }] });
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, "Hello from gpt! You said: hi");
  stack.mocks.claude.clearFaults();
  stack.mocks.claude.fault({ kind: "status", status: 529 });
  const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("claude-then-gpt"));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-gateway-provider"), "gpt");
  assert.equal(json.choices[0].message.content, "Hello from gpt! You said: Hi there");
});

test("a stream cut mid-way on /v1/messages ends with an Anthropic error event", async () => {
  stack.mocks.claude.fault({ kind: "cut_stream", afterChunks: 2 });
  const res = await fetch(`${stack.url}/v1/messages`, {
    method: "POST",
    headers: { "x-api-key": DEV_GATEWAY_KEY, "content-type": "application/json" },
    body: JSON.stringify({ model: "claude-sonnet", max_tokens: 64, stream: true, messages: [{ role: "user", content: "hello there friend" }] }),
  });
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /event: error\ndata: \{"error":\{"message":"upstream stream ended unexpectedly","type":"api_error"\},"type":"error"\}/);
  assert.doesNotMatch(text, /message_stop/);
});

test("prompt-cache reads and writes are counted and priced as such, streamed or not", async () => {
  stack.mocks.claude.fault({ kind: "ok", cacheRead: 1000, cacheWrite: 100, content: "four words right here" });
  for (const stream of [false, true]) {
    const { data, response } = await openai.chat.completions
      .create({ model: "claude-priced", messages: [{ role: "user", content: "Hi there" }], stream, ...(stream ? { stream_options: { include_usage: true } } : {}) })
      .withResponse();
    let usage;
    if (stream) {
      for await (const chunk of data) usage = chunk.usage ?? usage;
    } else {
      usage = data.usage;
    }
    assert.equal(usage.prompt_tokens_details.cached_tokens, 1000);
    assert.equal(usage.prompt_tokens, 2 + 1000 + 100, "OpenAI's convention: cached tokens are part of the prompt");
    const line = await stack.logLine(response.headers.get("x-request-id"));
    // 2 plain x $3 + 1,000 read x $0.30 + 100 written x $3.75 + 4 out x $15, per million.
    const expected = (2 * 3 + 1000 * 0.3 + 100 * 3.75 + 4 * 15) / 1e6;
    assert.ok(Math.abs(line.cost_usd - expected) < 1e-12, `${stream}: ${line.cost_usd} vs ${expected}`);
    if (!stream) assert.equal(response.headers.get("x-gateway-cost-usd"), expected.toFixed(8));
  }
});

test("count_tokens: the Anthropic SDK's countTokens is answered by the Anthropic target, in Anthropic's shape", async () => {
  const params = { system: "Be brief.", messages: [{ role: "user", content: "Hello gateway friend" }] };
  const { data, response } = await anthropic.messages.countTokens({ model: "claude-sonnet", ...params }).withResponse();
  assert.deepEqual(data, { input_tokens: 5 }, "the provider's own count (three words and two of system)");
  assert.equal(response.headers.get("x-gateway-provider"), "claude");
  const [call] = stack.mocks.claude.calls;
  assert.equal(call.path, "/v1/messages/count_tokens");
  assert.equal(call.headers["x-api-key"], MOCK_PROVIDER_KEY, "the provider's key, not the client's");
  assert.match(call.headers["anthropic-version"], /^\d{4}-\d{2}-\d{2}$/);
  assert.deepEqual(call.body, { model: "claude-sonnet-4-5", ...params }, "the client's body, only the model replaced");

  // An OpenAI target counts with OpenAI's input-token count, over the Responses body the request would be.
  stack.reset();
  const openai = await anthropic.messages.countTokens({ model: "gpt-4o-mini", ...params }).withResponse();
  assert.deepEqual(openai.data, { input_tokens: 5 });
  assert.equal(openai.response.headers.get("x-gateway-provider"), "gpt");
  assert.equal(stack.mocks.gpt.calls[0].path, "/v1/responses/input_tokens");
  assert.deepEqual(stack.mocks.gpt.calls[0].body, {
    model: "gpt-4o-mini",
    input: [
      { type: "message", role: "system", content: "Be brief." },
      { type: "message", role: "user", content: "Hello gateway friend" },
    ],
  });

  // A model whose targets cannot count (an OpenAI-compatible API without the count answers 404):
  // a 400 the SDK maps.
  stack.reset();
  stack.mocks.gpt.fault({ kind: "status", status: 404, times: 1 });
  await assert.rejects(anthropic.messages.countTokens({ model: "gpt-4o-mini", ...params }), (err) => {
    assert.ok(err instanceof Anthropic.BadRequestError);
    assert.equal(err.error.type, "error");
    assert.equal(err.error.error.type, "invalid_request_error");
    assert.match(err.error.error.message, /counts tokens/);
    return true;
  });
  assert.equal(stack.mocks.gpt.calls.length, 1);
  await assert.rejects(new Anthropic({ apiKey: "gw_wrong", baseURL: stack.url, maxRetries: 0 }).messages.countTokens({ model: "claude-sonnet", ...params }), Anthropic.AuthenticationError);
  await assert.rejects(anthropic.messages.countTokens({ model: "nope", ...params }), Anthropic.NotFoundError);
});

test("count_tokens failures fail over and never open the endpoint's circuit", async () => {
  stack.mocks.claude.fault({ kind: "status", status: 529, times: 8 });
  for (let i = 0; i < 8; i++) {
    const { response } = await anthropic.messages.countTokens({ model: "claude-then-gpt", messages: [{ role: "user", content: "hi" }] }).withResponse();
    assert.equal(response.headers.get("x-gateway-provider"), "gpt", "counted by the next target");
  }
  // Eight failures in a row would open the circuit if they were the endpoint's: the next message still goes to it.
  const { response } = await anthropic.messages.create({ model: "claude-then-gpt", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }).withResponse();
  assert.equal(response.headers.get("x-gateway-provider"), "claude");
  assert.ok(stack.mocks.gpt.calls.every((c) => c.path === "/v1/responses/input_tokens"), "gpt was only asked to count");
});

test("other paths under /v1/messages/ answer in Anthropic's shape", async () => {
  const ask = (method, path) => fetch(`${stack.url}${path}`, { method, headers: { "x-api-key": DEV_GATEWAY_KEY } });
  for (const [method, path, status, type] of [
    ["GET", "/v1/messages/batches", 404, "not_found_error"],
    ["GET", "/v1/messages/count_tokens", 405, "invalid_request_error"],
  ]) {
    const res = await ask(method, path);
    assert.equal(res.status, status, path);
    const body = await res.json();
    assert.equal(body.type, "error", path);
    assert.equal(body.error.type, type, path);
  }
});
