// Codex, OpenAI's coding agent (the real CLI, `@openai/codex` from npm), in `codex exec` mode
// against the gateway's Responses API: a custom model provider in its config.toml whose base URL
// is the gateway's, the gateway key from the environment. Its requests offer function tools, a
// `namespace` of functions and hosted web search. Served by an OpenAI-format mock (translated
// from Responses to Chat Completions) and by an Anthropic-format one.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTwoFormatStack, runCli, DEV_GATEWAY_KEY } from "./harness.mjs";

const CODEX = new URL("../../node_modules/.bin/codex", import.meta.url).pathname;
let stack;
let home;

before(async () => {
  home = mkdtempSync(join(tmpdir(), "codex-home-"));
  stack = await startTwoFormatStack("e2e codex");
});

after(async () => {
  await stack?.close();
  rmSync(home, { recursive: true, force: true });
});

beforeEach(() => stack.reset());

/** `codex exec <prompt>` with `model` through the gateway; its exit code and output. */
async function codex(prompt, model) {
  const codexHome = join(home, ".codex");
  mkdirSync(codexHome, { recursive: true });
  writeFileSync(
    join(codexHome, "config.toml"),
    `model = "${model}"\nmodel_provider = "gateway"\n\n[model_providers.gateway]\nname = "gateway"\nbase_url = "${stack.url}/v1"\nenv_key = "GATEWAY_KEY"\nwire_api = "responses"\n`,
  );
  const env = { PATH: process.env.PATH, HOME: home, CODEX_HOME: codexHome, GATEWAY_KEY: DEV_GATEWAY_KEY };
  return runCli(CODEX, ["exec", "--skip-git-repo-check", prompt], { env, cwd: home });
}

for (const [model, path] of [
  ["gpt", "/v1/chat/completions"],
  ["claude", "/v1/messages"],
]) {
  test(`Codex → ${model} mock (${path}): its agent request is served and answered`, async () => {
    stack.mocks[model].fault({ kind: "ok", content: `PONG from ${model}` });
    const { code, out, err } = await codex("say hi", model);
    assert.equal(code, 0, `codex exited ${code}:\n${out}\n${err}`);
    assert.equal(out.split("\n").at(-1), `PONG from ${model}`, out);
    const asked = stack.mocks[model].calls.filter((c) => c.path === path);
    assert.ok(asked.length >= 1, JSON.stringify(stack.mocks[model].calls.map((c) => c.path)));
    const names = (asked.at(-1).body.tools ?? []).map((t) => t.function?.name ?? t.name);
    assert.ok(names.includes("exec_command"), names.join(", "));
    assert.ok(names.some((n) => n.includes("__")), `a namespace's functions under qualified names: ${names.join(", ")}`);
  });
}
