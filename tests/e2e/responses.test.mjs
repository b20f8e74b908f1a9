// The OpenAI Responses API (`/v1/responses`) through the official SDK and the
// OpenAI Agents SDK, to every provider kind: JSON, streams, function calls,
// stored conversations continued on another provider, store: false, retrieval,
// deletion, and residency of stored conversations.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import OpenAI from "openai";
import { Agent, Runner, tool, setTracingDisabled, OpenAIProvider } from "@openai/agents";
import { z } from "zod";
import { startStack, kindMocks, kindBindings, kindProviders, kindModels, provider, post, readSse, DEV_GATEWAY_KEY, DEV_KEY_HASH } from "./harness.mjs";

const KINDS = ["openai", "azure", "anthropic", "gemini", "bedrock"];
const EU_KEY = "gw_responses_eu_tenant_key";
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
let stack;
let client;

/** The text of a response's message items (the SDK adds `output_text` only to non-streamed ones). */
const textOf = (response) =>
  response.output.filter((i) => i.type === "message").flatMap((i) => i.content).map((c) => c.text ?? "").join("");

before(async () => {
  stack = await startStack({
    mocks: [...kindMocks(KINDS), { name: "eu" }],
    bindings: kindBindings,
    makeConfig: (m) => ({
      version: 1,
      settings: { allow_http_providers: true, config_cache_ttl_ms: 0, max_conversation_bytes: 20000 },
      providers: { ...kindProviders(m, KINDS), eu: provider(m.eu.baseUrl, "eu") },
      models: {
        ...kindModels(KINDS),
        mixed: { targets: [{ provider: "openai", model: "us-upstream" }, { provider: "eu", model: "eu-upstream" }] },
      },
      keys: {
        [DEV_KEY_HASH]: { name: "responses", models: ["*"] },
        [sha256(EU_KEY)]: { name: "eu-tenant", models: ["*"], regions: ["eu"] },
      },
    }),
  });
  client = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
});

after(async () => stack?.close());

beforeEach(() => stack.reset());

const weather = {
  type: "function",
  name: "get_weather",
  description: "Weather for a location",
  parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
};

for (const kind of KINDS) {
  const model = `${kind}-model`;

  test(`responses × ${kind}: create, stream, function call round trip, retrieve`, async () => {
    const response = await client.responses.create({ model, input: "ping", instructions: "Be brief." });
    assert.equal(response.object, "response");
    assert.equal(response.status, "completed");
    assert.equal(response.model, model);
    assert.equal(response.output_text, `Hello from ${kind}! You said: ping`);
    assert.ok(response.usage.input_tokens > 0 && response.usage.output_tokens > 0);
    assert.equal(typeof response.usage.input_tokens_details.cached_tokens, "number");

    const stream = client.responses.stream({ model, input: "a b c" });
    const types = [];
    for await (const event of stream) types.push(event.type);
    const final = await stream.finalResponse();
    assert.equal(textOf(final), `Hello from ${kind}! You said: a b c`);
    assert.equal(types[0], "response.created");
    assert.equal(types.at(-1), "response.completed");
    assert.ok(types.includes("response.output_text.delta") && types.includes("response.output_item.done"), types.join());

    const first = await client.responses.create({ model, input: "Weather in Paris?", tools: [weather] });
    const call = first.output.find((item) => item.type === "function_call");
    assert.ok(call, JSON.stringify(first.output));
    assert.equal(call.name, "get_weather");
    assert.deepEqual(JSON.parse(call.arguments), { location: "Paris" });
    const second = await client.responses.create({
      model,
      tools: [weather],
      input: [{ role: "user", content: "Weather in Paris?" }, ...first.output, { type: "function_call_output", call_id: call.call_id, output: "18°C" }],
      store: false,
    });
    assert.equal(second.output_text, "Tool said: 18°C");

    const retrieved = await client.responses.retrieve(response.id);
    assert.equal(retrieved.output_text, response.output_text);
  });
}

test("a stored conversation continues on another provider with previous_response_id", async () => {
  const first = await client.responses.create({ model: "openai-model", input: "My name is Ada." });
  const second = await client.responses.create({ model: "anthropic-model", input: "What is my name?", previous_response_id: first.id });
  assert.equal(second.previous_response_id, first.id);
  assert.equal(second.output_text, "Hello from anthropic! You said: What is my name?");
  const sent = stack.mocks.anthropic.calls.at(-1).body.messages;
  assert.equal(sent.length, 3, JSON.stringify(sent));
  assert.equal(JSON.stringify(sent[0]).includes("My name is Ada."), true);
  assert.equal(sent[1].role, "assistant");
  assert.equal(JSON.stringify(sent[1]).includes("Hello from openai! You said: My name is Ada."), true);

  // A third turn through a stream carries both earlier turns.
  const stream = client.responses.stream({ model: "gemini-model", input: "And again?", previous_response_id: second.id });
  const third = await stream.finalResponse();
  assert.equal(textOf(third), "Hello from gemini! You said: And again?");
  assert.equal(stack.mocks.gemini.calls.at(-1).body.contents.length, 5);
  const items = await client.responses.inputItems.list(third.id);
  assert.equal(items.data.length, 5, JSON.stringify(items.data));
});

test("store: false keeps nothing, and previous_response_id to it is a clear 400", async () => {
  const response = await client.responses.create({ model: "openai-model", input: "forget me", store: false });
  await assert.rejects(client.responses.retrieve(response.id), (err) => err.status === 404);
  const { res, json } = await post(stack.url, "/v1/responses", { model: "openai-model", input: "again", previous_response_id: response.id });
  assert.equal(res.status, 400);
  assert.equal(json.error.code, "previous_response_not_found");
  assert.equal(json.error.param, "previous_response_id");
});

test("stored responses belong to their key and can be deleted", async () => {
  const response = await client.responses.create({ model: "openai-model", input: "mine" });
  const other = new OpenAI({ apiKey: EU_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
  await assert.rejects(other.responses.retrieve(response.id), (err) => err.status === 404);
  const deleted = await client.responses.delete(response.id).catch((e) => e);
  assert.ok(!(deleted instanceof Error), String(deleted));
  await assert.rejects(client.responses.retrieve(response.id), (err) => err.status === 404);
});

test("requests the Responses API cannot serve here are clear 400s in OpenAI's shape", async () => {
  for (const [body, param] of [
    [{ model: "openai-model", input: "x", tools: [{ type: "file_search" }] }, "tools[0].type"],
    [{ input: "x" }, "model"],
    [{ model: "openai-model", input: "x", background: true }, "background"],
  ]) {
    const { res, json } = await post(stack.url, "/v1/responses", body);
    assert.equal(res.status, 400, JSON.stringify(json));
    assert.equal(json.error.param, param);
  }
  const { res } = await post(stack.url, "/v1/responses", { model: "nope", input: "x" });
  assert.equal(res.status, 404);
});

test("a stream cut by the provider ends with error and response.failed, never completed", async () => {
  // On the wire: the text so far, then `error` and `response.failed`.
  stack.mocks.openai.fault({ kind: "cut_stream", afterChunks: 2, times: 1 });
  const res = await fetch(`${stack.url}/v1/responses`, {
    method: "POST",
    headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "openai-model", input: "one two three four five six", stream: true }),
  });
  const types = (await readSse(res)).map((e) => JSON.parse(e.data).type);
  assert.ok(types.includes("response.output_text.delta"));
  assert.deepEqual(types.slice(-2), ["error", "response.failed"]);
  assert.ok(!types.includes("response.completed"));
  // The SDK (openai 7) raises at the `error` event, with the gateway's code.
  stack.mocks.openai.fault({ kind: "cut_stream", afterChunks: 2, times: 1 });
  const stream = await client.responses.create({ model: "openai-model", input: "one two three four five six", stream: true });
  const seen = [];
  await assert.rejects(
    (async () => {
      for await (const event of stream) seen.push(event.type);
    })(),
    (err) => err.code === "upstream_stream_interrupted",
  );
  assert.ok(seen.includes("response.output_text.delta") && !seen.includes("response.completed"));
});

test("an EU-pinned key's conversations are stored in the EU jurisdiction and stay in the EU", async () => {
  const eu = new OpenAI({ apiKey: EU_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
  const before = stack.logs.length;
  const first = await eu.responses.create({ model: "mixed", input: "Bonjour" });
  assert.equal(stack.mocks.eu.calls.length, 1, "served in eu");
  assert.equal(stack.mocks.openai.calls.length, 0);
  // The store is asked for in the EU jurisdiction. Locally workerd does not implement
  // jurisdictions and says so; on Cloudflare the object is created in the EU.
  const until = Date.now() + 2000;
  const asked = () => stack.logs.slice(before).some((l) => l.event === "jurisdiction_unavailable" && l.detail === "eu");
  while (!asked() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.ok(asked(), "the EU key's store was opened in the eu jurisdiction");
  const again = await eu.responses.create({ model: "mixed", input: "Encore", previous_response_id: first.id });
  assert.equal(again.previous_response_id, first.id);
  assert.equal(stack.mocks.eu.calls.length, 2);
  // An unrestricted key's store is not placed in a jurisdiction.
  const mark = stack.logs.length;
  await client.responses.create({ model: "openai-model", input: "hi" });
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(!stack.logs.slice(mark).some((l) => l.event === "jurisdiction_unavailable"));
});

test("a conversation started in eu never continues outside eu", async () => {
  const first = await client.responses.create({ model: "mixed", input: "start" }, { headers: { "x-gateway-region": "eu" } });
  assert.equal(stack.mocks.eu.calls.length, 1);
  const second = await client.responses.create({ model: "mixed", input: "continue", previous_response_id: first.id }).withResponse();
  assert.equal(second.response.headers.get("x-gateway-region"), "eu");
  assert.equal(stack.mocks.openai.calls.length, 0, "the us endpoint first in the plan is never asked");
  const { res, json } = await post(stack.url, "/v1/responses", { model: "mixed", input: "x", previous_response_id: first.id }, { headers: { "x-gateway-region": "us" } });
  assert.equal(res.status, 403, JSON.stringify(json));
});

test("items named by item_reference are read from the store and hold the request to their regions", async () => {
  const first = await client.responses.create({ model: "mixed", input: "start" }, { headers: { "x-gateway-region": "eu" } });
  const reference = { type: "item_reference", id: first.output[0].id };
  const second = await client.responses.create({ model: "mixed", input: [reference, { role: "user", content: "and then?" }] }).withResponse();
  assert.equal(second.response.headers.get("x-gateway-region"), "eu", "held to the referenced response's region");
  assert.equal(stack.mocks.openai.calls.length, 0, "the us endpoint first in the plan is never asked");
  const sent = stack.mocks.eu.calls.at(-1).body.messages;
  assert.deepEqual(sent.map((m) => m.role), ["assistant", "user"], "the referenced item, resolved");
  assert.equal(sent[0].content, first.output_text, "the referenced answer, as it was");
  const { res, json } = await post(stack.url, "/v1/responses", { model: "mixed", input: [reference] }, { headers: { "x-gateway-region": "us" } });
  assert.equal(res.status, 403, JSON.stringify(json));
  const missing = await post(stack.url, "/v1/responses", { model: "mixed", input: [{ type: "item_reference", id: "msg_0000" }] });
  assert.equal(missing.res.status, 404);
  assert.equal(missing.json.error.code, "item_not_found");
});

// OpenAI's input-token count (`client.responses.inputTokens.count`), routed like the request it
// counts and asked of the target's provider: OpenAI's own count, or Anthropic's, Gemini's and
// Bedrock's over the body they would receive. Each mock counts the words it is sent.
test("responses.inputTokens.count: counted by every kind's provider, a stored conversation included", async () => {
  for (const kind of KINDS) {
    stack.reset();
    const ask = client.responses.inputTokens.count({ model: `${kind}-model`, instructions: "Be brief.", input: "Hello gateway friend" });
    if (kind === "azure") {
      await assert.rejects(ask, (err) => err.status === 400 && err.code === "unsupported_model" && /counts tokens/.test(err.message));
      assert.equal(stack.mocks.azure.calls.length, 0, "Azure deployments have no count: nothing is sent");
      continue;
    }
    const { data, response } = await ask.withResponse();
    assert.deepEqual(data, { object: "response.input_tokens", input_tokens: 5 }, kind);
    assert.equal(response.headers.get("x-gateway-provider"), kind);
    const [call] = stack.mocks[kind].calls;
    assert.ok(/input_tokens|count_tokens|countTokens|count-tokens/.test(call.path), `${kind}: ${call.path}`);
    assert.ok(!JSON.stringify(call.body).includes("max_tokens"), `${kind}: a count, not a generation`);
  }
  assert.deepEqual(stack.mocks.openai.calls[0]?.body, undefined, "reset between kinds");

  stack.reset();
  await client.responses.inputTokens.count({ model: "openai-model", input: [{ role: "user", content: "Weather?" }], tools: [weather] });
  assert.deepEqual(stack.mocks.openai.calls[0].body, {
    model: "openai-upstream",
    input: [{ type: "message", role: "user", content: "Weather?" }],
    tools: [weather],
  });

  // A continued conversation is counted whole, and held to where it is stored.
  const first = await client.responses.create({ model: "openai-model", input: "My name is Ada." });
  const counted = await client.responses.inputTokens.count({ model: "anthropic-model", input: "What is my name?", previous_response_id: first.id });
  assert.equal(counted.input_tokens, 4 + 9 + 4, "the stored turn, its answer and the new input");
  assert.equal(stack.mocks.anthropic.calls.at(-1).body.messages.length, 3);
  const started = await client.responses.create({ model: "mixed", input: "start" }, { headers: { "x-gateway-region": "eu" } });
  const { response } = await client.responses.inputTokens.count({ model: "mixed", input: "x", previous_response_id: started.id }).withResponse();
  assert.equal(response.headers.get("x-gateway-region"), "eu");
  assert.ok(!stack.mocks.openai.calls.some((c) => c.path === "/v1/responses/input_tokens" && c.body.model === "us-upstream"));

  // An OpenAI-compatible API without the count (404) is a target that cannot count: the caller gets a 400.
  stack.mocks.openai.fault({ kind: "status", status: 404, times: 1 });
  await assert.rejects(client.responses.inputTokens.count({ model: "openai-model", input: "hi" }), (err) => err.status === 400 && err.code === "unsupported_model");
  await assert.rejects(client.responses.inputTokens.count({ model: "nope", input: "hi" }), OpenAI.NotFoundError);
  await assert.rejects(new OpenAI({ apiKey: "gw_wrong", baseURL: `${stack.url}/v1`, maxRetries: 0 }).responses.inputTokens.count({ model: "openai-model", input: "hi" }), OpenAI.AuthenticationError);
  const get = await fetch(`${stack.url}/v1/responses/input_tokens`, { headers: { authorization: `Bearer ${DEV_GATEWAY_KEY}` } });
  assert.equal(get.status, 405);
  assert.equal((await get.json()).error.type, "invalid_request_error");
});

test("a stored conversation has a size cap", async () => {
  let previous;
  let status = 200;
  for (let i = 0; i < 40 && status === 200; i++) {
    const { res, json } = await post(stack.url, "/v1/responses", { model: "openai-model", input: "x".repeat(2000), ...(previous ? { previous_response_id: previous } : {}) });
    status = res.status;
    if (status === 200) previous = json.id;
    else assert.equal(json.error.code, "conversation_too_large");
    // Stores complete after the answer: wait for it before continuing.
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(status, 400);
});

for (const kind of ["openai", "anthropic"]) {
  test(`the OpenAI Agents SDK runs an agent with two tools for several turns (${kind} target)`, async () => {
    setTracingDisabled(true);
    const calls = [];
    const getWeather = tool({
      name: "get_weather",
      description: "Weather for a location",
      parameters: z.object({ location: z.string() }),
      execute: async ({ location }) => {
        calls.push(["get_weather", location]);
        return `18°C in ${location}`;
      },
    });
    const getTime = tool({
      name: "get_time",
      description: "Local time in a location",
      parameters: z.object({ location: z.string() }),
      execute: async ({ location }) => {
        calls.push(["get_time", location]);
        return `09:30 in ${location}`;
      },
    });
    const agent = new Agent({ name: "Assistant", instructions: "Use the tools.", model: `${kind}-model`, tools: [getWeather, getTime] });
    const runner = new Runner({ modelProvider: new OpenAIProvider({ apiKey: DEV_GATEWAY_KEY, baseURL: `${stack.url}/v1`, useResponses: true }) });
    const first = await runner.run(agent, "Call get_weather for Paris.");
    assert.equal(first.finalOutput, "Tool said: 18°C in Paris");
    const second = await runner.run(agent, "Now call get_time for Paris.", { previousResponseId: first.lastResponseId });
    assert.equal(second.finalOutput, "Tool said: 09:30 in Paris");
    const streamed = await runner.run(agent, "And get_weather once more.", { previousResponseId: second.lastResponseId, stream: true });
    for await (const _event of streamed) {
      // drain
    }
    await streamed.completed;
    assert.equal(streamed.finalOutput, "Tool said: 18°C in Paris");
    assert.deepEqual(calls.map((c) => c[0]), ["get_weather", "get_time", "get_weather"]);
  });
}
