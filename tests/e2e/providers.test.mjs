// Azure OpenAI (deployment URLs, api-version, api-key header) and embeddings,
// through the official OpenAI SDK.
import { test, describe, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startStack, provider, post, DEV_GATEWAY_KEY, DEV_KEY_HASH, MOCK_PROVIDER_KEY } from "./harness.mjs";

let stack;
let client;

function makeConfig(mocks) {
  return {
    version: 1,
    revision: "e2e providers",
    settings: { allow_http_providers: true, config_cache_ttl_ms: 0 },
    providers: {
      gpt: provider(mocks.gpt.baseUrl, "us"),
      azure: { ...provider(mocks.azure.url, "eu"), kind: "azure_openai", api_version: "2024-10-21" },
    },
    models: {
      "azure-gpt": { targets: [{ provider: "azure", model: "my-deployment" }] },
      "text-embedding-3-small": { targets: [{ provider: "gpt", model: "text-embedding-3-small" }] },
      "azure-embeddings": { targets: [{ provider: "azure", model: "embed-deployment" }] },
    },
    keys: { [DEV_KEY_HASH]: { name: "e2e", models: ["*"] } },
  };
}

before(async () => {
  stack = await startStack({ mocks: [{ name: "gpt" }, { name: "azure" }], makeConfig });
  client = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
});

after(async () => {
  await stack?.close();
});

beforeEach(() => stack.reset());

test("Azure OpenAI: deployment URL, api-version and api-key header; JSON and streams", async () => {
  const reply = await client.chat.completions.create({ model: "azure-gpt", messages: [{ role: "user", content: "Hi Azure" }] });
  assert.equal(reply.choices[0].message.content, "Hello from azure! You said: Hi Azure");
  const [call] = stack.mocks.azure.calls;
  assert.equal(call.path, "/openai/deployments/my-deployment/chat/completions");
  assert.deepEqual(call.query, { "api-version": "2024-10-21" });
  assert.equal(call.headers["api-key"], MOCK_PROVIDER_KEY);
  assert.equal(call.headers.authorization, undefined);

  const stream = await client.chat.completions.create({ model: "azure-gpt", messages: [{ role: "user", content: "x y" }], stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  assert.equal(text, "Hello from azure! You said: x y");
});

test("embeddings through the OpenAI SDK, to OpenAI-compatible and Azure targets", async () => {
  const result = await client.embeddings.create({ model: "text-embedding-3-small", input: ["first", "second input"] });
  assert.equal(result.object, "list");
  assert.equal(result.data.length, 2);
  assert.equal(result.data[1].index, 1);
  assert.ok(Array.isArray(result.data[0].embedding) && result.data[0].embedding.length === 4);
  assert.ok(result.usage.prompt_tokens > 0);
  assert.equal(stack.mocks.gpt.calls[0].body.model, "text-embedding-3-small");

  const azure = await client.embeddings.create({ model: "azure-embeddings", input: "one", dimensions: 8 });
  assert.equal(azure.data[0].embedding.length, 8);
  assert.equal(stack.mocks.azure.calls[0].path, "/openai/deployments/embed-deployment/embeddings");
});

test("embeddings input mistakes are 400s", async () => {
  for (const body of [{ model: "text-embedding-3-small", input: [] }, { model: "text-embedding-3-small" }, { model: "text-embedding-3-small", input: "" }]) {
    const { res, json } = await post(stack.url, "/v1/embeddings", body);
    assert.equal(res.status, 400, JSON.stringify(json));
  }
  const { res } = await post(stack.url, "/v1/embeddings", { model: "nope", input: "x" });
  assert.equal(res.status, 404);
});

describe("Gemini", () => {
  let gstack;
  let anthropicClient;
  before(async () => {
    gstack = await startStack({
      mocks: [{ name: "gemini", format: "gemini" }, { name: "backup" }],
      makeConfig: (mocks) => ({
        version: 1,
        settings: { allow_http_providers: true, config_cache_ttl_ms: 0 },
        providers: {
          gemini: { ...provider(`${mocks.gemini.url}/v1beta`, "eu"), kind: "gemini" },
          backup: provider(mocks.backup.baseUrl, "us"),
        },
        models: {
          // A 1 s first-byte deadline: an answer without max_tokens (16,384 tokens at most) is
          // never predicted to fit it at the mock's pace, so it is asked for as a stream whether
          // or not this isolate has learned that pace yet (the health snapshot refreshes in the
          // background: without this the test depended on when).
          "gemini-flash": { targets: [{ provider: "gemini", model: "gemini-2.5-flash" }], timeouts: { first_byte_ms: 1000 } },
          "gemini-then-backup": { targets: [{ provider: "gemini", model: "gemini-2.5-flash" }, { provider: "backup", model: "gpt-4o-mini" }] },
          "gemini-embedding": { targets: [{ provider: "gemini", model: "gemini-embedding-001" }] },
        },
        keys: { [DEV_KEY_HASH]: { name: "e2e", models: ["*"] } },
      }),
    });
    anthropicClient = new Anthropic({ apiKey: DEV_GATEWAY_KEY, baseURL: gstack.url, maxRetries: 0 });
  });
  after(async () => gstack?.close());
  beforeEach(() => gstack.reset());

  test("OpenAI SDK → Gemini: chat, stream, and a tool round trip echoing the thought signature", async () => {
    const gclient = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${gstack.url}/v1`, maxRetries: 0 });
    // A short answer (max_tokens <= 512) is asked for as JSON; a longer one as a stream (below).
    const reply = await gclient.chat.completions.create({ model: "gemini-flash", max_tokens: 256, messages: [{ role: "system", content: "Brief." }, { role: "user", content: "Hi Gemini" }] });
    assert.equal(reply.choices[0].message.content, "Hello from gemini! You said: Hi Gemini");
    assert.equal(reply.model, "gemini-flash");
    const [call] = gstack.mocks.gemini.calls;
    assert.equal(call.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert.equal(call.headers["x-goog-api-key"], MOCK_PROVIDER_KEY);
    assert.deepEqual(call.body.systemInstruction, { parts: [{ text: "Brief." }] });

    const stream = await gclient.chat.completions.create({ model: "gemini-flash", messages: [{ role: "user", content: "a b" }], stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, "Hello from gemini! You said: a b");
    assert.ok(usage.total_tokens > 0);
    assert.deepEqual(gstack.mocks.gemini.calls.at(-1).query, { alt: "sse" });

    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { location: { type: "string" } } } } }];
    const first = await gclient.chat.completions.create({ model: "gemini-flash", tools, messages: [{ role: "user", content: "Weather?" }] });
    const toolCall = first.choices[0].message.tool_calls[0];
    assert.equal(first.choices[0].finish_reason, "tool_calls");
    assert.equal(toolCall.extra_content.google.thought_signature, "mock-thought-signature");
    // No max_tokens: asked for as a stream, the JSON (and its signature) assembled from it.
    assert.equal(gstack.mocks.gemini.calls.at(-1).path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    const second = await gclient.chat.completions.create({
      model: "gemini-flash",
      tools,
      messages: [{ role: "user", content: "Weather?" }, first.choices[0].message, { role: "tool", tool_call_id: toolCall.id, content: "18°C" }],
    });
    assert.equal(second.choices[0].message.content, "Tool said: 18°C");
    const echoed = gstack.mocks.gemini.calls.at(-1).body.contents[1].parts[0];
    assert.equal(echoed.thoughtSignature, "mock-thought-signature", "the signature went back on the functionCall part");
    assert.equal(gstack.mocks.gemini.calls.at(-1).body.contents[2].parts[0].functionResponse.name, "get_weather");
  });

  test("embeddings through the OpenAI SDK to Gemini (batchEmbedContents, base64 as the SDK asks)", async () => {
    const gclient = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${gstack.url}/v1`, maxRetries: 0 });
    const result = await gclient.embeddings.create({ model: "gemini-embedding", input: ["abc", "de"], dimensions: 3 });
    assert.equal(result.data.length, 2);
    assert.deepEqual(result.data[0].embedding, [0.75, 1, 0]);
    const [call] = gstack.mocks.gemini.calls;
    assert.equal(call.path, "/v1beta/models/gemini-embedding-001:batchEmbedContents");
    assert.equal(call.body.requests[0].outputDimensionality, 3);
  });

  test("Anthropic SDK → Gemini, and failover from a failing Gemini", async () => {
    const message = await anthropicClient.messages.create({ model: "gemini-flash", max_tokens: 64, messages: [{ role: "user", content: "Hallo" }] });
    assert.equal(message.content[0].text, "Hello from gemini! You said: Hallo");
    gstack.mocks.gemini.fault({ kind: "status", status: 503 });
    const { res, json } = await post(gstack.url, "/v1/chat/completions", { model: "gemini-then-backup", messages: [{ role: "user", content: "x" }] });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-gateway-provider"), "backup", JSON.stringify(json));
  });

  test("Anthropic SDK's countTokens → Gemini's countTokens, the whole request counted", async () => {
    const counted = await anthropicClient.messages.countTokens({ model: "gemini-then-backup", system: "Be brief.", messages: [{ role: "user", content: "Hallo Gemini" }] });
    assert.deepEqual(counted, { input_tokens: 4 });
    const [call] = gstack.mocks.gemini.calls;
    assert.equal(call.path, "/v1beta/models/gemini-2.5-flash:countTokens");
    assert.equal(call.body.generateContentRequest.model, "models/gemini-2.5-flash");
    assert.deepEqual(call.body.generateContentRequest.systemInstruction, { parts: [{ text: "Be brief." }] });
    assert.equal(gstack.mocks.backup.calls.length, 0);
  });
});

describe("Bedrock", () => {
  const CREDENTIALS = "AKIDTEST:secretTESTkey/with+chars";
  let bstack;
  before(async () => {
    bstack = await startStack({
      mocks: [{ name: "bedrock", format: "bedrock", apiKey: CREDENTIALS }],
      bindings: { BEDROCK_CREDENTIALS: CREDENTIALS, BEDROCK_WRONG: "AKIDTEST:not-the-secret" },
      makeConfig: (mocks) => ({
        version: 1,
        settings: { allow_http_providers: true, config_cache_ttl_ms: 0 },
        providers: {
          "bedrock-eu": { kind: "bedrock", base_url: mocks.bedrock.url, aws_region: "eu-central-1", api_key_secret: "BEDROCK_CREDENTIALS", region: "eu-de" },
          "bedrock-bad": { kind: "bedrock", base_url: mocks.bedrock.url, aws_region: "eu-central-1", api_key_secret: "BEDROCK_WRONG", region: "eu-de" },
        },
        models: {
          // A 1 s first-byte deadline, as gemini-flash's above: the tool answer without
          // max_tokens is then asked for as a stream whatever pace this isolate learned from
          // the answers before it (with the default 30 s, a stream finished in a few ms read
          // as fast enough for JSON, and the test failed when the machine was quick).
          "claude-eu": { targets: [{ provider: "bedrock-eu", model: "eu.anthropic.claude-3-7-sonnet-20250219-v1:0" }], timeouts: { first_byte_ms: 1000 } },
          "claude-bad": { targets: [{ provider: "bedrock-bad", model: "eu.anthropic.claude-3-7-sonnet-20250219-v1:0" }] },
        },
        keys: { [DEV_KEY_HASH]: { name: "e2e", models: ["*"] } },
      }),
    });
  });
  after(async () => bstack?.close());
  beforeEach(() => bstack.reset());

  test("OpenAI SDK → Bedrock: signed Converse and ConverseStream, and a tool round trip", async () => {
    const bclient = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${bstack.url}/v1`, maxRetries: 0 });
    // A short answer (max_tokens <= 512) is asked for as JSON; a longer one as a stream (below).
    const reply = await bclient.chat.completions.create({ model: "claude-eu", max_tokens: 256, messages: [{ role: "user", content: "Guten Tag" }] });
    assert.equal(reply.choices[0].message.content, "Hello from bedrock! You said: Guten Tag");
    const [call] = bstack.mocks.bedrock.calls;
    assert.equal(call.path, "/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse");
    assert.match(call.headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/eu-central-1\/bedrock\/aws4_request/);

    const stream = await bclient.chat.completions.create({ model: "claude-eu", messages: [{ role: "user", content: "eins zwei" }], stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, "Hello from bedrock! You said: eins zwei");
    assert.ok(usage.total_tokens > 0);
    assert.ok(bstack.mocks.bedrock.calls.at(-1).path.endsWith("/converse-stream"));

    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { location: { type: "string" } } } } }];
    const first = await bclient.chat.completions.create({ model: "claude-eu", tools, messages: [{ role: "user", content: "Weather?" }] });
    const toolCall = first.choices[0].message.tool_calls[0];
    assert.equal(toolCall.id, "tooluse_mock_1");
    // No max_tokens: asked for as a stream, the JSON assembled from it.
    assert.ok(bstack.mocks.bedrock.calls.at(-1).path.endsWith("/converse-stream"));
    assert.deepEqual(JSON.parse(toolCall.function.arguments), { location: "Paris" });
    const second = await bclient.chat.completions.create({
      model: "claude-eu",
      tools,
      messages: [{ role: "user", content: "Weather?" }, first.choices[0].message, { role: "tool", tool_call_id: toolCall.id, content: "12°C" }],
    });
    assert.equal(second.choices[0].message.content, "Tool said: 12°C");
  });

  test("Anthropic SDK → Bedrock streaming, and wrong AWS credentials are a clear 502", async () => {
    const aclient = new Anthropic({ apiKey: DEV_GATEWAY_KEY, baseURL: bstack.url, maxRetries: 0 });
    const stream = aclient.messages.stream({ model: "claude-eu", max_tokens: 64, messages: [{ role: "user", content: "hallo" }] });
    const final = await stream.finalMessage();
    assert.equal(final.content[0].text, "Hello from bedrock! You said: hallo");
    const { res, json, text } = await post(bstack.url, "/v1/chat/completions", { model: "claude-bad", messages: [{ role: "user", content: "x" }] });
    assert.equal(res.status, 502);
    assert.equal(json.error.code, "upstream_auth_failed");
    assert.ok(!text.includes("not-the-secret"));
  });

  test("Anthropic SDK's countTokens → Bedrock's signed CountTokens", async () => {
    const aclient = new Anthropic({ apiKey: DEV_GATEWAY_KEY, baseURL: bstack.url, maxRetries: 0 });
    const counted = await aclient.messages.countTokens({ model: "claude-eu", system: "Be brief.", messages: [{ role: "user", content: "eins zwei drei" }] });
    assert.deepEqual(counted, { input_tokens: 5 });
    const [call] = bstack.mocks.bedrock.calls;
    assert.equal(call.path, "/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/count-tokens");
    assert.match(call.headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDTEST\//);
    assert.deepEqual(Object.keys(call.body.input.converse).sort(), ["messages", "system"]);
  });
});
