// Azure OpenAI (deployment URLs, api-version, api-key header) and embeddings,
// through the official OpenAI SDK.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
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
