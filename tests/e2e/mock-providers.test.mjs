// Tests for the mock providers themselves (OpenAI format): the other e2e suites
// trust these mocks to speak OpenAI's wire format and to fail exactly as asked,
// so a drift here would silently weaken every gateway test. No gateway involved.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { startMockProvider } from "./mock-providers.mjs";

const KEY = "sk-mock-test";
let mock;

before(async () => {
  mock = await startMockProvider({ name: "unit", apiKey: KEY });
});
after(() => mock.close());
beforeEach(() => mock.reset());

function chat(body, { key = KEY, signal } = {}) {
  const headers = { "content-type": "application/json" };
  if (key) headers.authorization = `Bearer ${key}`;
  return fetch(`${mock.baseUrl}/chat/completions`, { method: "POST", headers, body: JSON.stringify(body), signal });
}

const hi = (extra = {}) => ({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi there" }], ...extra });

/** Parses an SSE body into its `data:` payloads (JSON where it parses, else the raw string). */
function parseSse(text) {
  return text
    .split("\n\n")
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice(6))
    .map((d) => {
      try {
        return JSON.parse(d);
      } catch {
        return d;
      }
    });
}

/** Reads a body until it ends or the connection breaks; returns what arrived and whether it broke. */
async function readAll(res) {
  const decoder = new TextDecoder();
  let text = "";
  try {
    for await (const piece of res.body) text += decoder.decode(piece, { stream: true });
    return { text, broken: false };
  } catch {
    return { text, broken: true };
  }
}

const TOOLS = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { location: { type: "string" } } } } }];

test("non-streaming completion has OpenAI's exact shape and word-count usage", async () => {
  const res = await chat({ model: "gpt-4o-mini", messages: [{ role: "system", content: "Be brief" }, { role: "user", content: [{ type: "text", text: "Hi there" }] }] });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^application\/json/);
  const body = await res.json();
  assert.match(body.id, /^chatcmpl-/);
  assert.equal(typeof body.created, "number");
  const content = "Hello from unit! You said: Hi there";
  assert.deepEqual(body, {
    id: body.id,
    object: "chat.completion",
    created: body.created,
    model: "gpt-4o-mini",
    choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" }],
    // prompt: "Be brief" + "Hi there" = 4 words; completion: 7 words.
    usage: { prompt_tokens: 4, completion_tokens: 7, total_tokens: 11, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
    system_fingerprint: "fp_mock",
  });
  assert.equal(mock.calls.length, 1);
  const [call] = mock.calls;
  assert.equal(call.method, "POST");
  assert.equal(call.path, "/v1/chat/completions");
  assert.equal(call.headers.authorization, `Bearer ${KEY}`);
  assert.equal(call.body.model, "gpt-4o-mini");
});

test("streaming sends role chunk, one chunk per word, stop chunk, usage chunk and [DONE]", async () => {
  const res = await chat(hi({ stream: true, stream_options: { include_usage: true } }));
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/event-stream/);
  const text = await res.text();
  assert.ok(text.endsWith("data: [DONE]\n\n"));
  const events = parseSse(text);
  assert.equal(events.pop(), "[DONE]");
  const usageChunk = events.pop();
  const [first, ...rest] = events;
  const stop = rest.pop();

  for (const e of events) {
    assert.equal(e.object, "chat.completion.chunk");
    assert.equal(e.model, "gpt-4o-mini");
    assert.equal(e.system_fingerprint, "fp_mock");
    assert.equal(e.usage, null, "with include_usage every earlier chunk carries usage: null");
  }
  assert.deepEqual(first.choices, [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
  assert.equal(rest.length, 7, "one chunk per word");
  assert.equal(rest.map((e) => e.choices[0].delta.content).join(""), "Hello from unit! You said: Hi there");
  assert.deepEqual(stop.choices, [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]);
  assert.deepEqual(usageChunk.choices, []);
  assert.equal(usageChunk.usage.completion_tokens, 7);
  assert.equal(usageChunk.usage.total_tokens, 9);
});

test("streaming without include_usage has no usage fields at all", async () => {
  const events = parseSse(await (await chat(hi({ stream: true }))).text());
  assert.equal(events.pop(), "[DONE]");
  assert.equal(events.at(-1).choices[0].finish_reason, "stop");
  for (const e of events) assert.ok(!("usage" in e));
});

test("tools: non-stream tool call, streamed tool call, and the tool result round trip", async () => {
  const ask = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Weather in Paris?" }], tools: TOOLS };

  const json = await (await chat(ask)).json();
  assert.equal(json.choices[0].finish_reason, "tool_calls");
  assert.equal(json.choices[0].message.content, null);
  assert.deepEqual(json.choices[0].message.tool_calls, [{ id: "call_mock_1", type: "function", function: { name: "get_weather", arguments: '{"location":"Paris"}' } }]);

  const events = parseSse(await (await chat({ ...ask, stream: true })).text());
  assert.equal(events.pop(), "[DONE]");
  assert.equal(events.pop().choices[0].finish_reason, "tool_calls");
  const calls = events.map((e) => e.choices[0].delta.tool_calls).filter(Boolean);
  assert.deepEqual(calls[0], [{ index: 0, id: "call_mock_1", type: "function", function: { name: "get_weather", arguments: "" } }]);
  assert.ok(calls.length > 2, "arguments arrive in several fragments");
  for (const fragment of calls.slice(1)) assert.deepEqual(Object.keys(fragment[0]), ["index", "function"]);
  assert.equal(calls.map((c) => c[0].function.arguments).join(""), '{"location":"Paris"}');

  const answer = await (
    await chat({
      ...ask,
      messages: [...ask.messages, { role: "assistant", content: null, tool_calls: json.choices[0].message.tool_calls }, { role: "tool", tool_call_id: "call_mock_1", content: "22C and sunny" }],
    })
  ).json();
  assert.equal(answer.choices[0].message.content, "Tool said: 22C and sunny");

  const none = await (await chat({ ...ask, tool_choice: "none" })).json();
  assert.equal(none.choices[0].finish_reason, "stop");
});

test("wrong or missing key is a 401 in OpenAI's error shape", async () => {
  for (const key of ["sk-wrong", null]) {
    const res = await chat(hi(), { key });
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { error: { message: "Incorrect API key provided.", type: "invalid_request_error", param: null, code: "invalid_api_key" } });
  }
});

test("models list and unknown routes", async () => {
  const headers = { authorization: `Bearer ${KEY}` };
  const list = await (await fetch(`${mock.baseUrl}/models`, { headers })).json();
  assert.equal(list.object, "list");
  assert.ok(list.data.length > 0 && list.data.every((m) => m.object === "model" && typeof m.id === "string"));
  const missing = await fetch(`${mock.baseUrl}/nope`, { headers });
  assert.equal(missing.status, 404);
  assert.equal(typeof (await missing.json()).error.message, "string");
});

test("status fault with retry-after applies to the next `times` requests only", async () => {
  mock.fault({ kind: "status", status: 429, retryAfter: "2", times: 1 });
  const limited = await chat(hi());
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get("retry-after"), "2");
  const body = await limited.json();
  assert.equal(body.error.code, "rate_limit_exceeded");
  assert.match(body.error.message, /Rate limit reached/);
  assert.equal((await chat(hi())).status, 200, "fault used up after one request");

  // Without `times` a fault lasts until clearFaults().
  mock.fault({ kind: "status", status: 503 });
  for (let i = 0; i < 3; i++) {
    const res = await chat(hi());
    assert.equal(res.status, 503);
    assert.match((await res.json()).error.message, /server had an error/);
  }
  mock.clearFaults();
  assert.equal((await chat(hi())).status, 200);
});

test("cut_stream sends n content chunks then drops the connection, no [DONE]", async () => {
  mock.fault({ kind: "cut_stream", afterChunks: 2 });
  const res = await chat(hi({ stream: true }));
  assert.equal(res.status, 200);
  const { text, broken } = await readAll(res);
  assert.ok(broken, "the body ends with a connection error, not a clean end");
  assert.ok(!text.includes("[DONE]"));
  const content = parseSse(text).filter((e) => e.choices?.[0]?.delta?.content);
  assert.equal(content.length, 2);

  // Non-stream: headers and half the JSON, then the connection drops.
  mock.fault({ kind: "cut_stream", times: 1 });
  const half = await chat(hi());
  assert.equal(half.status, 200);
  const partial = await readAll(half);
  assert.ok(partial.broken);
  assert.ok(partial.text.startsWith('{"id":"chatcmpl-'));
  assert.throws(() => JSON.parse(partial.text));
});

test("faults chosen by model name: fault-500, fault-429, fault-html, fault-cut, fault-malformed, fault-stream-error", async () => {
  const r500 = await chat(hi({ model: "fault-500" }));
  assert.equal(r500.status, 500);
  assert.equal(typeof (await r500.json()).error.message, "string");

  const r429 = await chat(hi({ model: "fault-429" }));
  assert.equal(r429.status, 429);
  assert.equal(r429.headers.get("retry-after"), "2");
  await r429.body.cancel();

  const html = await chat(hi({ model: "fault-html" }));
  assert.equal(html.status, 502);
  assert.match(html.headers.get("content-type"), /^text\/html/);
  assert.equal(await html.text(), "<html><body>Bad Gateway</body></html>");

  const cut = await readAll(await chat(hi({ model: "fault-cut", stream: true })));
  assert.ok(cut.broken && !cut.text.includes("[DONE]"));
  assert.equal(parseSse(cut.text).filter((e) => e.choices?.[0]?.delta?.content).length, 3);

  const broken = await chat(hi({ model: "fault-malformed" }));
  assert.equal(broken.status, 200);
  assert.equal(await broken.text(), '{"id": "broken", ');

  const events = parseSse(await (await chat(hi({ model: "fault-malformed", stream: true }))).text());
  assert.equal(events[0].object, "chat.completion.chunk");
  assert.equal(events[1], "{not json}");
  assert.equal(events.at(-1), "[DONE]");

  const errorEvents = parseSse(await (await chat(hi({ model: "fault-stream-error", stream: true }))).text());
  assert.deepEqual(errorEvents, [{ error: { message: "overloaded", type: "server_error", code: "overloaded" } }]);

  // A programmatic fault wins over the model name while it lasts.
  mock.fault({ kind: "ok", content: "overridden", times: 1 });
  assert.equal((await (await chat(hi({ model: "fault-500" }))).json()).choices[0].message.content, "overridden");
});

test("ok spec: delayMs before headers, custom content", async () => {
  mock.fault({ kind: "ok", delayMs: 150, content: "one two three", times: 1 });
  const started = Date.now();
  const res = await chat(hi({ stream: true, stream_options: { include_usage: true } }));
  assert.ok(Date.now() - started >= 140, "headers held back by delayMs");
  const events = parseSse(await res.text());
  assert.equal(events.map((e) => e.choices?.[0]?.delta?.content ?? "").join(""), "one two three");
  assert.equal(events.at(-2).usage.completion_tokens, 3);
});

test("slow_first_byte holds the headers; slow_body sends headers then holds the body", async () => {
  mock.fault({ kind: "slow_first_byte", delayMs: 150, times: 1 });
  let started = Date.now();
  const slow = await chat(hi());
  assert.ok(Date.now() - started >= 140);
  assert.equal(slow.status, 200);
  await slow.json();

  for (const stream of [true, false]) {
    mock.fault({ kind: "slow_body", delayMs: 300, times: 1 });
    started = Date.now();
    const res = await chat(hi({ stream }));
    const headersAt = Date.now() - started;
    assert.equal(res.status, 200);
    assert.ok(headersAt < 250, `headers arrive at once (stream: ${stream}, took ${headersAt} ms)`);
    await res.text();
    assert.ok(Date.now() - started >= 290, `body held back (stream: ${stream})`);
  }
});

test("close() resolves promptly while hang and stall requests are open", async () => {
  const extra = await startMockProvider({ name: "closing" });
  const post = (model, stream = false) =>
    fetch(`${extra.baseUrl}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(hi({ model, stream })) });
  const hanging = post("fault-hang");
  const stalled = await post("fault-stall", true);
  // Read until the stall has begun: two content chunks in, and the hang request received.
  const reader = stalled.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (parseSse(text).filter((e) => e.choices?.[0]?.delta?.content).length < 2) text += (await reader.read()).value;
  while (extra.calls.length < 2) await new Promise((r) => setTimeout(r, 10));

  const started = Date.now();
  await extra.close();
  assert.ok(Date.now() - started < 1000, "close() does not wait for open requests");
  await assert.rejects(hanging, "the hung request fails once the mock closes");
  await assert.rejects(reader.read(), "the stalled stream breaks instead of ending cleanly");
  assert.ok(!text.includes("[DONE]"));
});

test("CLI: --listen name=port serves until SIGTERM", async () => {
  const script = fileURLToPath(new URL("./mock-providers.mjs", import.meta.url));
  const child = spawn(process.execPath, [script, "--listen", "cli-a=0", "--listen", "cli-b=0", "--key", "k"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.setEncoding("utf8");
  while ((out.match(/\n/g) ?? []).length < 2) {
    const [piece] = await once(child.stdout, "data");
    out += piece;
  }
  const lines = out.trim().split("\n");
  assert.match(lines[0], /^mock cli-a listening on http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(lines[1], /^mock cli-b listening on http:\/\/127\.0\.0\.1:\d+$/);
  const url = lines[1].split(" ").at(-1);
  const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { authorization: "Bearer k" }, body: JSON.stringify(hi()) });
  assert.equal((await res.json()).choices[0].message.content, "Hello from cli-b! You said: Hi there");
  child.kill("SIGTERM");
  const [code] = await once(child, "exit");
  assert.equal(code, 0);
});
