// Anthropic's message threads (`thread`, the beta the Anthropic SDKs' tool runners use by
// default), held by the gateway for every provider kind: a `create` turn is kept, a
// `continue` sends only its new messages and the provider gets the whole conversation,
// whole answers and streams alike; a lost thread answers Anthropic's `thread_not_found`
// (the SDKs then send the whole conversation again); threads stay in their regions.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import Anthropic from "@anthropic-ai/sdk";
import { betaTool } from "@anthropic-ai/sdk/helpers/beta/json-schema";
import { startStack, kindMocks, kindBindings, kindProviders, kindModels, provider, post, DEV_GATEWAY_KEY, DEV_KEY_HASH } from "./harness.mjs";

const KINDS = ["openai", "anthropic", "gemini", "bedrock"];
const OTHER_KEY = "gw_threads_other_tenant_key";
const BETA = "message-threads-2026-08-12";
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
let stack;
let client;

before(async () => {
  stack = await startStack({
    mocks: [...kindMocks(KINDS), { name: "eu", format: "anthropic" }],
    bindings: kindBindings,
    makeConfig: (m) => ({
      version: 1,
      settings: { allow_http_providers: true, config_cache_ttl_ms: 0, max_conversation_bytes: 20000 },
      providers: { ...kindProviders(m, KINDS), eu: { ...provider(m.eu.baseUrl, "eu"), kind: "anthropic" } },
      models: {
        ...kindModels(KINDS),
        mixed: { targets: [{ provider: "anthropic", model: "us-upstream" }, { provider: "eu", model: "eu-upstream" }] },
      },
      keys: {
        [DEV_KEY_HASH]: { name: "threads", models: ["*"] },
        [sha256(OTHER_KEY)]: { name: "other-tenant", models: ["*"] },
      },
    }),
  });
  client = new Anthropic({ apiKey: DEV_GATEWAY_KEY, baseURL: stack.url, maxRetries: 0 });
});

after(async () => stack?.close());

beforeEach(() => stack.reset());

const weather = {
  name: "get_weather",
  description: "Weather for a location",
  input_schema: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
};

/** A Messages request with a thread, as the SDKs send it. */
const threaded = (body, stream = false) =>
  post(stack.url, "/v1/messages", { max_tokens: 200, ...body, ...(stream ? { stream: true } : {}) }, { headers: { "anthropic-beta": BETA } });

/** The JSON payloads of an event stream's text. */
const eventsOf = (text) =>
  text
    .split("\n\n")
    .map((block) => block.split("\n").find((line) => line.startsWith("data:")))
    .filter(Boolean)
    .map((line) => JSON.parse(line.slice(5)));

/** The Anthropic message a streamed answer makes, from its events (blocks as they start, text appended). */
function streamedMessage(text) {
  const events = eventsOf(text);
  const message = events.find((e) => e.type === "message_start").message;
  assert.ok(events.some((e) => e.type === "message_stop"), JSON.stringify(events));
  for (const event of events) {
    if (event.type === "content_block_start") message.content[event.index] = { ...event.content_block };
    if (event.delta?.type === "text_delta") message.content[event.index].text += event.delta.text;
  }
  return message;
}

/** The conversation a mock received, in its own format, reduced to Anthropic's roles (a tool's
 * result is the user's turn; OpenAI's system message and Gemini's `model` read as Anthropic's). */
function rolesSent(kind) {
  const body = stack.mocks[kind].calls.at(-1).body;
  const roles = kind === "gemini" ? body.contents.map((c) => c.role) : body.messages.map((m) => m.role);
  return roles.filter((r) => r !== "system").map((r) => ({ tool: "user", model: "assistant" })[r] ?? r);
}

for (const kind of KINDS) {
  const model = `${kind}-model`;

  for (const stream of [false, true]) {
    test(`threads × ${kind}${stream ? ", streamed" : ""}: a continue is served with the whole conversation, turn after turn`, async () => {
      const first = await threaded({ model, system: "Be brief.", tools: [weather], thread: { type: "create" }, messages: [{ role: "user", content: "weather in Paris?" }] }, stream);
      assert.equal(first.res.status, 200, JSON.stringify(first.json));
      const reply = stream ? streamedMessage(first.text) : first.json;
      const toolUseId = reply.content.find((b) => b.type === "tool_use")?.id;
      assert.ok(toolUseId, "the model called the tool");

      const second = await threaded(
        { model, thread: { type: "continue", previous_message_id: reply.id }, messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: toolUseId, content: "sunny" }] }] },
        stream,
      );
      assert.equal(second.res.status, 200, JSON.stringify(second.json));
      const answer = stream ? streamedMessage(second.text) : second.json;
      const received = stack.mocks[kind].calls.at(-1).body;
      assert.equal(received.thread, undefined, "the thread is the gateway's, never relayed");
      assert.deepEqual(rolesSent(kind), ["user", "assistant", "user"], "the history, then the new message");
      const tools = received.tools ?? received.toolConfig?.tools;
      assert.ok(tools?.length, "the thread's tools");
      const systemText = JSON.stringify(received.system ?? received.systemInstruction ?? received.messages?.[0]);
      assert.match(systemText, /Be brief\./, "the thread's system prompt");
      assert.match(JSON.stringify(answer.content), /Tool said: sunny/);

      // A third turn continues from the second reply: both turns before it are sent.
      const third = await threaded({ model, thread: { type: "continue", previous_message_id: answer.id }, messages: [{ role: "user", content: "thanks" }] }, stream);
      assert.equal(third.res.status, 200, JSON.stringify(third.json));
      if (stream) streamedMessage(third.text);
      assert.deepEqual(rolesSent(kind), ["user", "assistant", "user", "assistant", "user"]);
    });
  }
}

test("a native Anthropic relay gets neither the thread nor its beta", async () => {
  const first = await threaded({ model: "anthropic-model", thread: { type: "create" }, messages: [{ role: "user", content: "hi" }] });
  assert.equal(first.res.status, 200);
  const second = await post(stack.url, "/v1/messages", { model: "anthropic-model", max_tokens: 50, thread: { type: "continue", previous_message_id: first.json.id }, messages: [{ role: "user", content: "again" }] }, { headers: { "anthropic-beta": `${BETA},tools-2024-04-04` } });
  assert.equal(second.res.status, 200, JSON.stringify(second.json));
  const call = stack.mocks.anthropic.calls.at(-1);
  assert.equal(call.body.thread, undefined);
  assert.equal(call.headers["anthropic-beta"], "tools-2024-04-04", "the other betas are relayed");
  assert.deepEqual(call.body.messages.map((m) => m.content), ["hi", first.json.content, "again"]);
});

test("a lost thread answers Anthropic's thread_not_found, and a key sees only its own threads", async () => {
  const missing = await threaded({ model: "openai-model", thread: { type: "continue", previous_message_id: "msg_nope" }, messages: [{ role: "user", content: "x" }] });
  assert.equal(missing.res.status, 404);
  assert.equal(missing.json.type, "error");
  assert.equal(missing.json.error.type, "not_found_error");
  assert.deepEqual(missing.json.error.details, { error_code: "thread_not_found" });
  assert.equal(stack.mocks.openai.calls.length, 0);

  const first = await threaded({ model: "openai-model", thread: { type: "create" }, messages: [{ role: "user", content: "hi" }] });
  const other = await post(stack.url, "/v1/messages", { model: "openai-model", max_tokens: 20, thread: { type: "continue", previous_message_id: first.json.id }, messages: [{ role: "user", content: "x" }] }, { key: OTHER_KEY });
  assert.equal(other.res.status, 404, "another key's thread is not there");

  // The SDK sends the whole conversation again as a new thread, and goes on.
  const sdk = new Anthropic({ apiKey: DEV_GATEWAY_KEY, baseURL: stack.url, maxRetries: 0 });
  await assert.rejects(
    sdk.beta.messages.create({ model: "openai-model", max_tokens: 20, thread: { type: "continue", previous_message_id: "msg_nope" }, messages: [{ role: "user", content: "x" }], betas: [BETA] }),
    (err) => err.status === 404 && err.error?.error?.details?.error_code === "thread_not_found",
  );
});

test("a continue may not change the thread's system prompt or tools; bad threads are 400s", async () => {
  const first = await threaded({ model: "openai-model", system: "A", thread: { type: "create" }, messages: [{ role: "user", content: "hi" }] });
  const same = await threaded({ model: "openai-model", system: "A", thread: { type: "continue", previous_message_id: first.json.id }, messages: [{ role: "user", content: "x" }] });
  assert.equal(same.res.status, 200, "the same system prompt again is accepted");
  const changed = await threaded({ model: "openai-model", system: "B", thread: { type: "continue", previous_message_id: first.json.id }, messages: [{ role: "user", content: "x" }] });
  assert.equal(changed.res.status, 400);
  assert.equal(changed.json.error.details.error_code, "thread_fingerprint_mismatch");
  for (const thread of ["create", { type: "fork" }, { type: "continue" }]) {
    const bad = await threaded({ model: "openai-model", thread, messages: [{ role: "user", content: "x" }] });
    assert.equal(bad.res.status, 400, JSON.stringify(thread));
    assert.equal(bad.json.error.type, "invalid_request_error");
  }
});

test("a thread that would pass the size cap asks the client to go on without a thread", async () => {
  const big = "word ".repeat(2500);
  const first = await threaded({ model: "openai-model", thread: { type: "create" }, messages: [{ role: "user", content: big }] });
  assert.equal(first.res.status, 200);
  const second = await threaded({ model: "openai-model", thread: { type: "continue", previous_message_id: first.json.id }, messages: [{ role: "user", content: big }] });
  assert.equal(second.res.status, 400);
  assert.equal(second.json.error.details.error_code, "thread_unsupported_request");
});

test("a stream that failed is not kept: it cannot be continued", async () => {
  stack.mocks.openai.fault({ kind: "cut_stream", afterChunks: 2, times: 1 });
  const first = await threaded({ model: "openai-model", thread: { type: "create" }, messages: [{ role: "user", content: "tell me a long story" }] }, true);
  const events = eventsOf(first.text);
  const id = events.find((e) => e.type === "message_start")?.message.id;
  assert.ok(events.some((e) => e.type === "error") && !events.some((e) => e.type === "message_stop"), JSON.stringify(events));
  await new Promise((r) => setTimeout(r, 200));
  const again = await threaded({ model: "openai-model", thread: { type: "continue", previous_message_id: id }, messages: [{ role: "user", content: "x" }] });
  assert.equal(again.res.status, 404);
});

test("a thread started in eu never continues outside eu", async () => {
  const first = await post(stack.url, "/v1/messages", { model: "mixed", max_tokens: 20, thread: { type: "create" }, messages: [{ role: "user", content: "start" }] }, { headers: { "x-gateway-region": "eu" } });
  assert.equal(first.res.status, 200);
  assert.equal(stack.mocks.eu.calls.length, 1);
  const second = await threaded({ model: "mixed", thread: { type: "continue", previous_message_id: first.json.id }, messages: [{ role: "user", content: "more" }] });
  assert.equal(second.res.status, 200);
  assert.equal(second.res.headers.get("x-gateway-region"), "eu");
  assert.equal(stack.mocks.anthropic.calls.length, 0, "the us endpoint first in the plan is never asked");
  const us = await post(stack.url, "/v1/messages", { model: "mixed", max_tokens: 20, thread: { type: "continue", previous_message_id: second.json.id }, messages: [{ role: "user", content: "x" }] }, { headers: { "x-gateway-region": "us" } });
  assert.equal(us.res.status, 403, JSON.stringify(us.json));
});

for (const kind of KINDS) {
  test(`the Anthropic SDK's tool runner (threads on) × ${kind}, whole and streamed`, async () => {
    const ran = [];
    const getWeather = betaTool({
      name: "get_weather",
      description: "Weather for a location",
      inputSchema: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
      run: ({ location }) => {
        ran.push(location);
        return "sunny";
      },
    });
    for (const stream of [false, true]) {
      stack.mocks[kind].reset();
      const runner = client.beta.messages.toolRunner({ model: `${kind}-model`, max_tokens: 200, tools: [getWeather], messages: [{ role: "user", content: "weather in Paris?" }], stream });
      const final = await runner.runUntilDone();
      assert.match(JSON.stringify(final.content), /Tool said: sunny/, JSON.stringify(final));
      const sent = stack.mocks[kind].calls.map((c) => c.body);
      assert.equal(sent.length, 2, "one call, then its result");
      assert.ok(sent.every((b) => b.thread === undefined));
      assert.equal(kind === "gemini" ? sent[1].contents.length : sent[1].messages.length, 3, "the second turn whole at the provider");
    }
    assert.deepEqual(ran, ["Paris", "Paris"]);
  });
}
