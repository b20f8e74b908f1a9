// Every client × every provider kind: the official OpenAI and Anthropic SDKs each
// drive a chat, a stream and a full tool-call round trip against OpenAI-compatible,
// Azure OpenAI, Anthropic, Gemini and Bedrock mocks.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startStack, kindMocks, kindBindings, kindProviders, kindModels, DEV_GATEWAY_KEY, DEV_KEY_HASH } from "./harness.mjs";

const KINDS = ["openai", "azure", "anthropic", "gemini", "bedrock"];
let stack;

before(async () => {
  stack = await startStack({
    mocks: kindMocks(KINDS),
    bindings: kindBindings,
    makeConfig: (m) => ({
      version: 1,
      settings: { allow_http_providers: true, config_cache_ttl_ms: 0 },
      providers: kindProviders(m, KINDS),
      models: kindModels(KINDS),
      keys: { [DEV_KEY_HASH]: { name: "matrix", models: ["*"] } },
    }),
  });
});

after(async () => stack?.close());

const tool = { name: "get_weather", description: "Weather", schema: { type: "object", properties: { location: { type: "string" } }, required: ["location"] } };

for (const kind of KINDS) {
  const model = `${kind}-model`;

  test(`OpenAI SDK × ${kind}: chat, stream, tool round trip`, async () => {
    const client = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
    const reply = await client.chat.completions.create({ model, messages: [{ role: "user", content: "ping" }] });
    assert.equal(reply.choices[0].message.content, `Hello from ${kind}! You said: ping`);
    assert.ok(reply.usage.total_tokens > 0);
    assert.equal(reply.model, model, "the public model name, not the provider's");

    const stream = await client.chat.completions.create({ model, messages: [{ role: "user", content: "a b c" }], stream: true });
    let text = "";
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      assert.equal(chunk.model, model);
    }
    assert.equal(text, `Hello from ${kind}! You said: a b c`);

    const tools = [{ type: "function", function: { name: tool.name, description: tool.description, parameters: tool.schema } }];
    const first = await client.chat.completions.create({ model, tools, messages: [{ role: "user", content: "Weather?" }] });
    const call = first.choices[0].message.tool_calls?.[0];
    assert.equal(first.choices[0].finish_reason, "tool_calls");
    assert.deepEqual(JSON.parse(call.function.arguments), { location: "Paris" });
    const second = await client.chat.completions.create({
      model,
      tools,
      messages: [{ role: "user", content: "Weather?" }, first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "18°C" }],
    });
    assert.equal(second.choices[0].message.content, "Tool said: 18°C");
  });

  test(`Anthropic SDK × ${kind}: message, stream, tool round trip`, async () => {
    const client = new Anthropic({ apiKey: DEV_GATEWAY_KEY, baseURL: stack.url, maxRetries: 0 });
    const message = await client.messages.create({ model, max_tokens: 128, messages: [{ role: "user", content: "ping" }] });
    assert.equal(message.content.find((b) => b.type === "text").text, `Hello from ${kind}! You said: ping`);
    assert.equal(message.model, model, "the public model name, natively relayed or not");

    const stream = client.messages.stream({ model, max_tokens: 128, messages: [{ role: "user", content: "a b c" }] });
    const final = await stream.finalMessage();
    assert.equal(final.content.find((b) => b.type === "text").text, `Hello from ${kind}! You said: a b c`);
    assert.equal(final.model, model);
    assert.ok(final.usage.input_tokens > 0 && final.usage.output_tokens > 0, JSON.stringify(final.usage));
    // message_start names the prompt's size before any content (Claude Code tracks its context
    // from it): the provider's count, or where it counts only at the end the gateway's estimate.
    const events = await client.messages.create({ model, max_tokens: 128, messages: [{ role: "user", content: "a b c" }], stream: true });
    let started;
    for await (const event of events) started ??= event;
    assert.equal(started.type, "message_start");
    assert.ok(started.message.usage.input_tokens > 0, JSON.stringify(started.message.usage));

    const tools = [{ name: tool.name, description: tool.description, input_schema: tool.schema }];
    const first = await client.messages.create({ model, max_tokens: 128, tools, messages: [{ role: "user", content: "Weather?" }] });
    assert.equal(first.stop_reason, "tool_use");
    const use = first.content.find((b) => b.type === "tool_use");
    assert.deepEqual(use.input, { location: "Paris" });
    const second = await client.messages.create({
      model,
      max_tokens: 128,
      tools,
      messages: [
        { role: "user", content: "Weather?" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18°C" }] },
      ],
    });
    assert.equal(second.content.find((b) => b.type === "text").text, "Tool said: 18°C");
  });

  // The mocks' JSON modes answer a value of the schema; Anthropic and Bedrock targets get a JSON
  // tool, offered rather than forced with thinking on (their mocks refuse a forced tool then, as
  // the live APIs do), and only its input comes back as the content.
  test(`structured output × ${kind}: response_format (with reasoning effort too, beside tools) and output_config.format`, async () => {
    const schema = { type: "object", properties: { location: { type: "string" } }, required: ["location"], additionalProperties: false };
    const openai = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
    const response_format = { type: "json_schema", json_schema: { name: "weather", schema } };
    for (const extra of [{}, { reasoning_effort: "low", max_completion_tokens: 4096 }]) {
      const ask = { model, messages: [{ role: "user", content: "Where?" }], response_format, ...extra };
      const reply = await openai.chat.completions.create(ask);
      assert.deepEqual(JSON.parse(reply.choices[0].message.content), { location: "Paris" }, JSON.stringify(extra));
      assert.equal(reply.choices[0].finish_reason, "stop");
      let text = "";
      for await (const chunk of await openai.chat.completions.create({ ...ask, stream: true })) text += chunk.choices[0]?.delta?.content ?? "";
      assert.deepEqual(JSON.parse(text), { location: "Paris" }, `streamed ${JSON.stringify(extra)}`);
    }

    // An agent's turn: tools and a structured answer asked together; a tool call, then the answer.
    const tools = [{ type: "function", function: { name: tool.name, description: tool.description, parameters: tool.schema } }];
    const turn = { model, tools, response_format };
    const first = await openai.chat.completions.create({ ...turn, messages: [{ role: "user", content: "Weather?" }] });
    const call = first.choices[0].message.tool_calls?.[0];
    assert.equal(first.choices[0].finish_reason, "tool_calls", JSON.stringify(first.choices[0]));
    assert.equal(call.function.name, tool.name);
    const messages = [{ role: "user", content: "Weather?" }, first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "18°C" }];
    const second = await openai.chat.completions.create({ ...turn, messages });
    assert.equal(second.choices[0].finish_reason, "stop");
    assert.deepEqual(JSON.parse(second.choices[0].message.content), { location: "Paris" });

    const anthropic = new Anthropic({ apiKey: DEV_GATEWAY_KEY, baseURL: stack.url, maxRetries: 0 });
    const ask = { model, max_tokens: 256, messages: [{ role: "user", content: "Where?" }], output_config: { format: { type: "json_schema", schema } } };
    const message = await anthropic.messages.create(ask);
    assert.deepEqual(JSON.parse(message.content.find((b) => b.type === "text").text), { location: "Paris" });
    const final = await anthropic.messages.stream(ask).finalMessage();
    assert.deepEqual(JSON.parse(final.content.find((b) => b.type === "text").text), { location: "Paris" });
  });
}
