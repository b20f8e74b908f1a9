// The official JS SDKs' helpers, which clients use more than the raw calls: OpenAI's
// `chat.completions.parse` / `.stream` with a zod schema, `runTools`, `responses.parse` /
// `.stream` and the `ResponsesToolRunner`; Anthropic's `messages.parse` with a zod output
// format and its zod tool in the tool runner. Each to every provider kind: the helper must
// get an answer it can parse and a tool loop it can finish.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { zodResponseFormat, zodTextFormat, zodFunction } from "openai/helpers/zod";
import { ResponsesToolRunner } from "openai/helpers/responses-tool-runner";
import Anthropic from "@anthropic-ai/sdk";
import { zodOutputFormat } from "@anthropic-ai/sdk/helpers/zod";
import { betaZodTool } from "@anthropic-ai/sdk/helpers/beta/zod";
import { z } from "zod";
import { startStack, kindMocks, kindBindings, kindProviders, kindModels, DEV_GATEWAY_KEY, DEV_KEY_HASH } from "./harness.mjs";

const KINDS = ["openai", "anthropic", "gemini", "bedrock"];
const Weather = z.object({ city: z.string(), temp_c: z.number() });
let stack;
let openai;
let anthropic;

before(async () => {
  stack = await startStack({
    mocks: kindMocks(KINDS),
    bindings: kindBindings,
    makeConfig: (m) => ({
      version: 1,
      settings: { allow_http_providers: true, config_cache_ttl_ms: 0 },
      providers: kindProviders(m, KINDS),
      models: kindModels(KINDS),
      keys: { [DEV_KEY_HASH]: { name: "helpers", models: ["*"] } },
    }),
  });
  openai = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: DEV_GATEWAY_KEY, baseURL: stack.url, maxRetries: 0 });
});

after(async () => stack?.close());

beforeEach(() => stack.reset());

const getWeather = async ({ location }) => `sunny in ${location}`;

for (const kind of KINDS) {
  const model = `${kind}-model`;

  test(`OpenAI SDK helpers × ${kind}: parse and stream with a zod schema, runTools`, async () => {
    const messages = [{ role: "user", content: "weather in Paris" }];
    const parsed = await openai.chat.completions.parse({ model, messages, response_format: zodResponseFormat(Weather, "weather") });
    assert.deepEqual(parsed.choices[0].message.parsed, { city: "Paris", temp_c: 1 });

    const stream = openai.chat.completions.stream({ model, messages, response_format: zodResponseFormat(Weather, "weather") });
    for await (const _ of stream);
    assert.deepEqual((await stream.finalChatCompletion()).choices[0].message.parsed, { city: "Paris", temp_c: 1 });

    const tool = zodFunction({ name: "get_weather", parameters: z.object({ location: z.string() }), function: getWeather });
    const runner = openai.chat.completions.runTools({ model, messages, tools: [tool] });
    assert.equal(await runner.finalContent(), "Tool said: sunny in Paris");
  });

  test(`OpenAI SDK Responses helpers × ${kind}: parse, stream and the ResponsesToolRunner`, async () => {
    const format = { format: zodTextFormat(Weather, "weather") };
    const parsed = await openai.responses.parse({ model, input: "weather in Paris", text: format });
    assert.deepEqual(parsed.output_parsed, { city: "Paris", temp_c: 1 });

    const stream = openai.responses.stream({ model, input: "weather in Paris", text: format });
    for await (const _ of stream);
    assert.deepEqual((await stream.finalResponse()).output_parsed, { city: "Paris", temp_c: 1 });

    const parameters = { type: "object", properties: { location: { type: "string" } }, required: ["location"], additionalProperties: false };
    const functions = [{ tool: { type: "function", name: "get_weather", description: "Weather", strict: true, parameters }, execute: getWeather }];
    for (const streamed of [false, true]) {
      const final = await new ResponsesToolRunner({ functions }).run(openai, { model, input: "weather in Paris?" }, { stream: streamed });
      assert.equal(final.output_text, "Tool said: sunny in Paris", `stream: ${streamed}`);
    }
  });

  test(`Anthropic SDK helpers × ${kind}: parse with a zod output format, a zod tool in the tool runner`, async () => {
    const parsed = await anthropic.messages.parse({ model, max_tokens: 200, messages: [{ role: "user", content: "weather in Paris" }], output_config: { format: zodOutputFormat(Weather) } });
    assert.deepEqual(parsed.parsed_output, { city: "Paris", temp_c: 1 });

    const tool = betaZodTool({ name: "get_weather", description: "Weather", inputSchema: z.object({ location: z.string() }), run: getWeather });
    const final = await anthropic.beta.messages.toolRunner({ model, max_tokens: 200, tools: [tool], messages: [{ role: "user", content: "weather in Paris?" }] });
    assert.match(JSON.stringify(final.content), /Tool said: sunny in Paris/);
  });
}
