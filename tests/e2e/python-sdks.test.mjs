// The official Python SDKs (openai, anthropic), the OpenAI Agents SDK, LangChain and pydantic-ai (pinned in
// tests/e2e/python/requirements.txt and installed by scripts/setup into .venv-python) against the
// gateway: only the base URL and the key change. tests/e2e/python/sdk_calls.py makes the calls
// and checks the answers; this test serves it a gateway and requires every check to pass.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { startTwoFormatStack, runCli, DEV_GATEWAY_KEY } from "./harness.mjs";

const PYTHON = new URL("../../.venv-python/bin/python", import.meta.url).pathname;
const SCRIPT = new URL("./python/sdk_calls.py", import.meta.url).pathname;
const CHECKS = 16;

let stack;

before(async () => {
  stack = await startTwoFormatStack("e2e python sdks");
});

after(async () => {
  await stack?.close();
});

test("the OpenAI and Anthropic Python SDKs, openai-agents, LangChain and pydantic-ai, unchanged but for the base URL", async () => {
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing: scripts/setup installs the Python SDKs`);
  const { code, out, err } = await runCli(PYTHON, [SCRIPT], { env: { ...process.env, GATEWAY_URL: stack.url, GATEWAY_KEY: DEV_GATEWAY_KEY } });
  assert.equal(code, 0, `sdk_calls.py failed:\n${out}\n${err}`);
  const passed = out.split("\n").filter((line) => line.startsWith("ok "));
  assert.equal(passed.length, CHECKS, out);
});
