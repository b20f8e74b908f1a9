// The Vercel AI SDK (`ai` with its OpenAI and Anthropic providers), a popular agent framework,
// against the gateway: generateText, streamText with usage, a multi-step tool loop and structured
// output (`Output.object`, whole and streamed), through
// the OpenAI provider's Responses and Chat Completions models and the Anthropic provider, each
// served natively or translated. Only the base URL and the key change.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { generateText, streamText, tool, stepCountIs, Output } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { z } from "zod";
import { startTwoFormatStack, DEV_GATEWAY_KEY } from "./harness.mjs";

globalThis.AI_SDK_LOG_WARNINGS = false;
let stack;

before(async () => {
  stack = await startTwoFormatStack("e2e ai sdk");
});

after(async () => {
  await stack?.close();
});

beforeEach(() => stack.reset());

const weather = tool({
  description: "The weather in a city",
  inputSchema: z.object({ location: z.string() }),
  execute: async ({ location }) => `sunny in ${location}`,
});

function models() {
  const openai = createOpenAI({ baseURL: `${stack.url}/v1`, apiKey: DEV_GATEWAY_KEY });
  const anthropic = createAnthropic({ baseURL: `${stack.url}/v1`, apiKey: DEV_GATEWAY_KEY });
  return [
    ["OpenAI provider, Responses → claude", openai("claude"), "claude", "/v1/messages"],
    ["OpenAI provider, Chat Completions → gpt", openai.chat("gpt"), "gpt", "/v1/chat/completions"],
    ["Anthropic provider → claude (native)", anthropic("claude"), "claude", "/v1/messages"],
    ["Anthropic provider → gpt", anthropic("gpt"), "gpt", "/v1/chat/completions"],
  ];
}

test("the AI SDK's generateText, streamText and tool loop, through every path", async () => {
  for (const [label, model, mock, path] of models()) {
    stack.reset();
    const whole = await generateText({ model, maxOutputTokens: 256, prompt: "hi" });
    assert.equal(whole.text, `Hello from ${mock}! You said: hi`, label);
    const streamed = streamText({ model, maxOutputTokens: 256, prompt: "hi there" });
    let text = "";
    for await (const delta of streamed.textStream) text += delta;
    assert.equal(text, `Hello from ${mock}! You said: hi there`, label);
    assert.equal((await streamed.usage).inputTokens, 2, `${label}: the stream's usage`);
    const agent = await generateText({ model, maxOutputTokens: 256, prompt: "weather in Paris?", tools: { weather }, stopWhen: stepCountIs(3) });
    assert.equal(agent.text, "Tool said: sunny in Paris", label);
    assert.equal(agent.steps.length, 2, `${label}: a tool call, then the answer`);
    assert.ok(stack.mocks[mock].calls.every((c) => c.path === path), `${label}: ${stack.mocks[mock].calls.map((c) => c.path)}`);
  }
});

// Structured output (`Output.object`): the OpenAI provider asks a JSON schema response format,
// the Anthropic provider its structured outputs or a JSON tool, whole and streamed.
test("the AI SDK's structured output, through every path", async () => {
  const output = Output.object({ schema: z.object({ location: z.string() }) });
  for (const [label, model] of models()) {
    const whole = await generateText({ model, maxOutputTokens: 256, prompt: "Where?", output });
    assert.deepEqual(whole.output, { location: "Paris" }, label);
    const streamed = streamText({ model, maxOutputTokens: 256, prompt: "Where?", output });
    let partials = 0;
    for await (const _ of streamed.partialOutputStream) partials += 1;
    assert.deepEqual(await streamed.output, { location: "Paris" }, `${label}, streamed`);
    assert.ok(partials >= 1, label);
  }
});
