// Long JSON answers: the gateway asks the provider for a stream even when the client
// wants JSON, and assembles the JSON itself, so the first-byte deadline measures the
// provider's liveness and not the answer's length. Only answers that could outlast the
// deadline (by their token bound and the endpoint's learned speed) are asked that way.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startStack, provider, post, chatBody, DEV_GATEWAY_KEY, DEV_KEY_HASH, MOCK_PROVIDER_KEY } from "./harness.mjs";

let stack;
let openai;
let anthropic;

// 40 words, one event each, 60 ms apart: about 2.5 s of streaming, 2.5 first-byte deadlines.
const WORDS = Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ");
const LONG = { kind: "ok", content: WORDS, gapMs: 60, times: 1 };

before(async () => {
  stack = await startStack({
    mocks: [{ name: "gpt" }, { name: "claude", format: "anthropic" }, { name: "backup" }],
    makeConfig: (m) => ({
      version: 1,
      settings: { allow_http_providers: true, first_byte_timeout_ms: 1000, config_cache_ttl_ms: 0 },
      providers: {
        gpt: provider(m.gpt.baseUrl),
        claude: { ...provider(m.claude.baseUrl), kind: "anthropic" },
        backup: provider(m.backup.baseUrl),
      },
      models: {
        gpt: { targets: [{ provider: "gpt", model: "gpt-4o-mini" }] },
        claude: { targets: [{ provider: "claude", model: "claude-sonnet-4-5" }] },
        "gpt-then-backup": { targets: [{ provider: "gpt", model: "gpt-4o-mini" }, { provider: "backup", model: "gpt-4o-mini" }] },
      },
      keys: { [DEV_KEY_HASH]: { name: "e2e", models: ["*"] } },
    }),
  });
  openai = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: DEV_GATEWAY_KEY, baseURL: stack.url, maxRetries: 0 });
});

after(async () => stack?.close());

beforeEach(() => stack.reset());

test("a JSON answer streamed for longer than the first-byte deadline arrives whole (OpenAI SDK, OpenAI-kind target)", async () => {
  stack.mocks.gpt.fault(LONG);
  const started = Date.now();
  const { data: completion, response } = await openai.chat.completions.create(chatBody("gpt")).withResponse();
  const took = Date.now() - started;
  assert.ok(took >= 2000, `the answer took ${took} ms: longer than the 1000 ms first-byte deadline`);
  assert.equal(response.headers.get("x-gateway-attempts"), "1", "not failed over");
  assert.equal(completion.object, "chat.completion");
  assert.equal(completion.model, "gpt");
  assert.equal(completion.choices[0].message.content, WORDS);
  assert.equal(completion.choices[0].finish_reason, "stop");
  assert.equal(completion.usage.completion_tokens, 40);
  assert.ok(completion.usage.total_tokens > 40);
  const sent = stack.mocks.gpt.calls[0].body;
  assert.equal(sent.stream, true, "the provider was asked for a stream");
  assert.equal(sent.stream_options.include_usage, true);
});

test("the same for an Anthropic-kind target, with plain fetch", async () => {
  stack.mocks.claude.fault(LONG);
  const started = Date.now();
  const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("claude"));
  const took = Date.now() - started;
  assert.equal(res.status, 200, JSON.stringify(json));
  assert.ok(took >= 2000, `took ${took} ms`);
  assert.match(res.headers.get("content-type"), /application\/json/);
  assert.equal(json.choices[0].message.content, WORDS);
  assert.equal(json.choices[0].finish_reason, "stop");
  assert.equal(json.usage.completion_tokens, 40);
  assert.ok(json.usage.prompt_tokens > 0);
  assert.ok(json.id.startsWith("msg_mock"), "the provider's message id");
  assert.equal(stack.mocks.claude.calls[0].body.stream, true);
});

test("an Anthropic Messages client gets a whole message from a streamed OpenAI-kind target", async () => {
  stack.mocks.gpt.fault(LONG);
  const started = Date.now();
  const message = await anthropic.messages.create({ model: "gpt", max_tokens: 4096, messages: [{ role: "user", content: "go on" }] });
  assert.ok(Date.now() - started >= 2000);
  assert.equal(message.type, "message");
  assert.equal(message.content[0].text, WORDS);
  assert.equal(message.stop_reason, "end_turn");
  assert.equal(message.usage.output_tokens, 40);
  assert.ok(message.usage.input_tokens > 0);
  assert.equal(stack.mocks.gpt.calls[0].body.stream, true);
});

test("a provider that sends no headers within the first-byte deadline is still failed over", async () => {
  stack.mocks.gpt.fault({ kind: "slow_first_byte", delayMs: 3000, times: 1 });
  const started = Date.now();
  const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("gpt-then-backup"));
  assert.equal(res.status, 200, JSON.stringify(json));
  assert.equal(res.headers.get("x-gateway-provider"), "backup");
  assert.ok(Date.now() - started < 2500, "the deadline, not the provider's 3 s");
  assert.match(json.choices[0].message.content, /Hello from backup/);
});

test("a stream cut before its end is no answer: it is tried again, never a partial success", async () => {
  stack.mocks.gpt.fault({ kind: "cut_stream", afterChunks: 3, times: 1 });
  const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("gpt-then-backup"));
  assert.equal(res.status, 200, JSON.stringify(json));
  // A broken answer gets one retry on the same endpoint (then failover).
  assert.equal(res.headers.get("x-gateway-attempts"), "2");
  assert.equal(json.choices[0].message.content, "Hello from gpt! You said: Hi there");
  assert.equal(json.choices[0].finish_reason, "stop");
});

test("short answers (max_tokens <= 512) stay on the provider's JSON path", async () => {
  const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("gpt", { max_tokens: 100 }));
  assert.equal(res.status, 200, JSON.stringify(json));
  assert.equal(stack.mocks.gpt.calls[0].body.stream, undefined);
  assert.equal(json.system_fingerprint, "fp_mock", "the provider's own bytes");
});

test("an endpoint learned to be fast gets a request without max_tokens as plain JSON", async () => {
  // Answers of 2,000 tokens in a few ms: the learned speed puts even an unbounded answer
  // (16,384 tokens) well within the first-byte deadline.
  const many = Array.from({ length: 2000 }, (_, i) => `t${i}`).join(" ");
  stack.mocks.gpt.fault({ kind: "ok", content: many, times: 5 });
  for (let i = 0; i < 5; i++) {
    const { res } = await post(stack.url, "/v1/chat/completions", chatBody("gpt", { max_tokens: 100 }));
    assert.equal(res.status, 200);
  }
  const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("gpt"));
  assert.equal(res.status, 200, JSON.stringify(json));
  const sent = stack.mocks.gpt.calls.at(-1).body;
  assert.equal(sent.stream, undefined, "the provider's JSON path: its answer cannot outlast the deadline");
  assert.equal(json.system_fingerprint, "fp_mock", "the provider's own bytes");
  assert.equal(json.choices[0].message.content, "Hello from gpt! You said: Hi there");
});

test("an endpoint learned to be slow still streams a request without max_tokens", async () => {
  stack.mocks.gpt.fault(LONG); // 40 tokens in about 2.5 s
  assert.equal((await post(stack.url, "/v1/chat/completions", chatBody("gpt"))).res.status, 200);
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("gpt"));
  assert.equal(res.status, 200);
  assert.deepEqual(stack.mocks.gpt.calls.map((c) => c.body.stream), [true, true]);
});

test("assembling costs nothing noticeable: the gateway adds as little to a streamed-and-assembled answer as to a JSON one", async () => {
  const timed = async (url, headers, body, read) => {
    const started = performance.now();
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
    assert.equal(res.status, 200);
    await read(res);
    return performance.now() - started;
  };
  const viaGateway = (extra) => timed(`${stack.url}/v1/chat/completions`, { authorization: `Bearer ${DEV_GATEWAY_KEY}` }, chatBody("gpt", extra), (r) => r.json());
  // The provider alone (its stream costs it more than its JSON: one timer per event).
  const direct = (extra) =>
    timed(`${stack.mocks.gpt.baseUrl}/chat/completions`, { authorization: `Bearer ${MOCK_PROVIDER_KEY}` }, chatBody("gpt-4o-mini", extra), (r) => r.text());
  const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
  const runs = { assembled: [], json: [], providerStream: [], providerJson: [] };
  for (let i = 0; i < 21; i++) {
    stack.mocks.gpt.fault({ kind: "ok", gapMs: 0, times: 2 });
    runs.assembled.push(await viaGateway({}));
    runs.providerStream.push(await direct({ stream: true, stream_options: { include_usage: true } }));
    runs.json.push(await viaGateway({ max_tokens: 100 }));
    runs.providerJson.push(await direct({ max_tokens: 100 }));
  }
  const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
  const addedToStream = m.assembled - m.providerStream;
  const addedToJson = m.json - m.providerJson;
  console.log(
    `median ms: assembled ${m.assembled.toFixed(1)} (provider's stream alone ${m.providerStream.toFixed(1)}, gateway adds ${addedToStream.toFixed(1)}); ` +
      `JSON ${m.json.toFixed(1)} (provider alone ${m.providerJson.toFixed(1)}, gateway adds ${addedToJson.toFixed(1)})`,
  );
  // Loose: the machine is shared, and timings are noisy.
  assert.ok(
    addedToStream < addedToJson * 1.5 + 10,
    `the gateway adds ${addedToStream.toFixed(1)} ms to a streamed answer, ${addedToJson.toFixed(1)} ms to JSON`,
  );
});
