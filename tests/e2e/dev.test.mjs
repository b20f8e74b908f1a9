// scripts/dev as a newcomer runs it: the built-in config, every mock provider kind,
// and a client location simulated with Miniflare's MF-CF-Blob header.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { ROOT, DEV_GATEWAY_KEY } from "../../scripts/lib/gateway.mjs";

const PORT = 8791;
const URL = `http://127.0.0.1:${PORT}`;
let dev;
let output = "";

before(async () => {
  dev = spawn(process.execPath, ["scripts/dev.mjs", "--port", String(PORT)], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  dev.stdout.on("data", (d) => (output += d));
  dev.stderr.on("data", (d) => (output += d));
  const started = Date.now();
  while (!output.includes("Press Ctrl+C to stop.")) {
    if (Date.now() - started > 30_000) throw new Error(`scripts/dev did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  dev?.kill("SIGTERM");
  await new Promise((r) => dev?.once("exit", r) ?? r());
});

test("scripts/dev prints the base URL and a ready-to-paste curl with the development key", () => {
  assert.match(output, new RegExp(`running at ${URL}`));
  assert.match(output, /curl http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions/);
  assert.match(output, /Authorization: Bearer gw_dev_local_key/);
});

test("every model of the built-in config answers, one per provider kind", async () => {
  const openai = new OpenAI({ apiKey: DEV_GATEWAY_KEY, baseURL: `${URL}/v1`, maxRetries: 0 });
  const expected = {
    "gpt-4o-mini": "mock-us",
    "claude-sonnet": "mock-anthropic",
    "azure-gpt-4o": "mock-us",
    "gemini-flash": "mock-gemini",
    "claude-eu-bedrock": "mock-bedrock",
    "demo-failover": "mock-eu",
  };
  for (const [model, mock] of Object.entries(expected)) {
    const reply = await openai.chat.completions.create({ model, messages: [{ role: "user", content: "Hello!" }] });
    assert.equal(reply.choices[0].message.content, `Hello from ${mock}! You said: Hello!`, model);
  }
  const anthropic = new Anthropic({ apiKey: DEV_GATEWAY_KEY, baseURL: URL, maxRetries: 0 });
  const message = await anthropic.messages.create({ model: "claude-sonnet", max_tokens: 64, messages: [{ role: "user", content: "Hi" }] });
  assert.equal(message.content[0].text, "Hello from mock-anthropic! You said: Hi");
  const embeddings = await openai.embeddings.create({ model: "text-embedding-3-small", input: "hello" });
  assert.equal(embeddings.data.length, 1);
});

test("a client in an EU country is served in the EU; a US-only model refuses to leave", async () => {
  const headers = {
    authorization: `Bearer ${DEV_GATEWAY_KEY}`,
    "content-type": "application/json",
    "MF-CF-Blob": JSON.stringify({ country: "DE", continent: "EU", isEUCountry: "1" }),
  };
  const body = (model) => JSON.stringify({ model, messages: [{ role: "user", content: "Hallo" }] });
  const eu = await fetch(`${URL}/v1/chat/completions`, { method: "POST", headers, body: body("gpt-4o-mini") });
  assert.equal(eu.status, 200);
  assert.equal(eu.headers.get("x-gateway-region"), "eu");
  const us = await fetch(`${URL}/v1/chat/completions`, { method: "POST", headers, body: body("gpt-4o") });
  assert.equal(us.status, 503);
  assert.equal((await us.json()).error.code, "no_compliant_provider");
});
