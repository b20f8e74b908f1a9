// Claude Code, Anthropic's coding agent (the real CLI, `@anthropic-ai/claude-code` from npm), in
// print mode against the gateway: only ANTHROPIC_BASE_URL and a gateway key as ANTHROPIC_API_KEY
// change. Its requests are an agent's, not an SDK example's: a long system prompt in blocks with
// cache markers, two dozen tools, adaptive thinking, mid-conversation system messages, a JSON
// metadata.user_id, a list of betas. Served natively by an Anthropic-format mock and translated
// to an OpenAI-format one.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTwoFormatStack, runCli, DEV_GATEWAY_KEY, MOCK_PROVIDER_KEY } from "./harness.mjs";

const CLAUDE = new URL("../../node_modules/.bin/claude", import.meta.url).pathname;
let stack;
let home;

before(async () => {
  home = mkdtempSync(join(tmpdir(), "claude-code-home-"));
  stack = await startTwoFormatStack("e2e claude code");
});

after(async () => {
  await stack?.close();
  rmSync(home, { recursive: true, force: true });
});

beforeEach(() => stack.reset());

/** `claude -p <prompt> --model <model>` against the gateway; its exit code and output. */
async function claude(prompt, model) {
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    ANTHROPIC_BASE_URL: stack.url,
    ANTHROPIC_API_KEY: DEV_GATEWAY_KEY,
    // Nothing but the gateway: no telemetry, update checks or error reports.
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_TELEMETRY: "1",
    DISABLE_AUTOUPDATER: "1",
  };
  return runCli(CLAUDE, ["-p", prompt, "--model", model], { env, cwd: home });
}

for (const [model, mock, path] of [
  ["claude", "claude", "/v1/messages"],
  ["gpt", "gpt", "/v1/chat/completions"],
]) {
  test(`Claude Code → ${mock} mock (${path}): its agent request is served and answered`, async () => {
    stack.mocks[mock].fault({ kind: "ok", content: `PONG from ${mock}` });
    const { code, out, err } = await claude("say hi", model);
    assert.equal(code, 0, `claude exited ${code}:\n${out}\n${err}`);
    assert.equal(out, `PONG from ${mock}`);
    const asked = stack.mocks[mock].calls.filter((c) => c.path === path);
    assert.ok(asked.length >= 1, JSON.stringify(stack.mocks[mock].calls.map((c) => c.path)));
    const body = asked.at(-1).body;
    if (mock === "claude") {
      assert.equal(asked.at(-1).headers["x-api-key"], MOCK_PROVIDER_KEY, "the provider's key, not the client's");
      assert.equal(body.model, "claude-sonnet-4-5");
      assert.ok(Array.isArray(body.tools) && body.tools.length > 0, "Claude Code's tools, relayed as sent");
    } else {
      assert.ok(body.tools.every((t) => t.type === "function"), "its tools, as OpenAI functions");
      assert.ok(!body.user || body.user.length <= 64, "never a user id longer than OpenAI takes");
    }
  });
}
