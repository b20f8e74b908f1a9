// No usage record is lost or counted twice: the consumer's first batch commits half
// its rows and then fails (binding USAGE_FAULT, as a consumer killed mid-batch); the
// real Queue redelivers it, and every record is in D1 exactly once, rollups included.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post } from "./harness.mjs";
import { DEV_ADMIN_TOKEN } from "../../scripts/lib/gateway.mjs";
import { RESEARCH_KEY, usageConfig, waitForRecords } from "./usage-helpers.mjs";

let stack;

before(async () => {
  stack = await startStack({
    mocks: [{ name: "alpha" }, { name: "beta" }],
    makeConfig: (m) => usageConfig(m),
    bindings: { USAGE_FAULT: "fail_first_batch_midway" },
    // Batches gather for 300 ms, so the first one holds many records.
    gateway: { usageBatchTimeoutMs: 300 },
  });
});

after(async () => {
  await stack?.close();
});

test("a batch that fails mid-way is redelivered and every record lands exactly once", async () => {
  const N = 12;
  const answers = await Promise.all(
    Array.from({ length: N }, (_, i) => post(stack.url, "/v1/chat/completions", chatBody("m-a"), { key: RESEARCH_KEY, headers: { "x-gateway-agent": `a${i % 3}` } })),
  );
  assert.deepEqual(answers.map((a) => a.res.status), Array(N).fill(200));
  const ids = answers.map((a) => a.res.headers.get("x-request-id")).sort();

  const records = await waitForRecords(stack.url, N, 15000);
  // Give a duplicate delivery time to show up, if there were one.
  await new Promise((r) => setTimeout(r, 500));
  const db = await stack.mf.getD1Database("USAGE");
  const raw = await db.prepare("SELECT request_id FROM usage_requests ORDER BY request_id").all();
  assert.deepEqual(raw.results.map((r) => r.request_id), ids, "every request once");
  assert.equal(records.length, N);
  const rolled = await db.prepare("SELECT SUM(requests) AS n, SUM(prompt_tokens) AS p FROM usage_minutes").first();
  const prompt = records.reduce((n, r) => n + r.prompt_tokens, 0);
  assert.deepEqual([rolled.n, rolled.p], [N, prompt], "rollups count each record once");
  const pending = await db.prepare("SELECT COUNT(*) AS n FROM usage_requests WHERE rolled_up = 0").first();
  assert.equal(pending.n, 0);
  assert.ok(stack.logs.some((l) => l.event === "usage_fault_injected"), "the fault did fire");

  const { json } = await fetch(`${stack.url}/admin/usage?group_by=agent`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } }).then(async (res) => ({ json: await res.json() }));
  assert.deepEqual(json.data.map((r) => [r.agent, r.requests]), [["a0", 4], ["a1", 4], ["a2", 4]]);
});
