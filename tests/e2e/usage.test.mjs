// Usage analytics end to end with the real Queue and D1 in workerd: traffic from two
// keys of two teams, with projects and agents, over two providers, JSON and streams
// (one cut mid-way) and embeddings; /admin/usage grouped by team and agent returns
// exactly those requests, tokens and costs; CSV matches JSON; /v1/usage shows only
// the caller's own; records never hold prompts, answers or secrets.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, readSse, openAiError, MOCK_PROVIDER_KEY } from "./harness.mjs";
import { RESEARCH_KEY, RESEARCH_LEAD_KEY, OPS_KEY, PRICE_A, PRICE_B, usageConfig, adminGet, allRecords, waitForRecords } from "./usage-helpers.mjs";

let stack;
const sent = []; // { id, team, agent, project }

before(async () => {
  stack = await startStack({ mocks: [{ name: "alpha" }, { name: "beta" }], makeConfig: (m) => usageConfig(m) });
  const chat = async (key, model, headers, extra = {}) => {
    const { res } = await post(stack.url, "/v1/chat/completions", chatBody(model, extra), { key, headers });
    return res;
  };
  const note = (res, team, project, agent) => sent.push({ id: res.headers.get("x-request-id"), status: res.status, team, project, agent });
  for (let i = 0; i < 2; i++) note(await chat(RESEARCH_KEY, "m-a", { "x-gateway-agent": "planner", "x-gateway-tags": "env=prod,run=7" }), "research", "search", "planner");
  const stream = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${RESEARCH_KEY}`, "content-type": "application/json", "x-gateway-agent": "writer", "x-gateway-project": "docs" },
    body: JSON.stringify(chatBody("m-b", { stream: true })),
  });
  await readSse(stream);
  note(stream, "research", "docs", "writer");
  const cut = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${RESEARCH_KEY}`, "content-type": "application/json", "x-gateway-agent": "writer", "x-gateway-project": "docs" },
    body: JSON.stringify(chatBody("m-cut", { stream: true, messages: [{ role: "user", content: "tell me a long story please" }] })),
  });
  await readSse(cut);
  note(cut, "research", "docs", "writer");
  const emb = await post(stack.url, "/v1/embeddings", { model: "emb", input: "hello world" }, { key: RESEARCH_KEY, headers: { "x-gateway-agent": "indexer" } });
  note(emb.res, "research", "search", "indexer");
  note(await chat(OPS_KEY, "m-b", {}, { user: "oncall", metadata: { tags: "sev=2" } }), "ops", "pager", "oncall");
  note(await chat(OPS_KEY, "m-b", { "x-gateway-agent": "oncall" }), "ops", "pager", "oncall");
});

after(async () => {
  await stack?.close();
});

test("every finished request reaches D1 once, attributed, with what it used", async () => {
  assert.deepEqual(sent.map((s) => s.status), [200, 200, 200, 200, 200, 200, 200]);
  const records = await waitForRecords(stack.url, sent.length);
  assert.equal(records.length, sent.length, "one record per request, pages joined");
  const byId = new Map(records.map((r) => [r.request_id, r]));
  for (const s of sent) {
    const r = byId.get(s.id);
    assert.ok(r, `record of ${s.id}`);
    assert.deepEqual([r.team, r.project, r.agent], [s.team, s.project, s.agent], s.id);
    const line = await stack.logLine(s.id);
    assert.equal(r.prompt_tokens, line.prompt_tokens ?? 0, `${s.id} prompt tokens as logged`);
    assert.equal(r.completion_tokens, line.completion_tokens ?? 0);
    assert.ok(Math.abs(r.cost_usd - (line.cost_usd ?? 0)) < 1e-12, `${s.id} cost as logged`);
  }
  const planner = byId.get(sent[0].id);
  assert.deepEqual(planner.tags, { env: "prod", run: "7" });
  assert.deepEqual([planner.provider, planner.upstream_model, planner.region, planner.status, planner.outcome, planner.kind], ["alpha", "alpha-model", "us", 200, "complete", "chat"]);
  assert.ok(planner.prompt_tokens > 0 && planner.cost_usd > 0);
  const streamed = byId.get(sent[2].id);
  assert.equal(streamed.stream, true);
  assert.ok(streamed.ttft_ms >= 0 && streamed.ttft_ms <= streamed.latency_ms, "time to first token on streams");
  const cut = byId.get(sent[3].id);
  assert.equal(cut.outcome, "interrupted", "a stream cut mid-way is recorded with what was counted");
  assert.equal(byId.get(sent[4].id).kind, "embeddings");
  assert.deepEqual(byId.get(sent[5].id).tags, { sev: "2" });
  const text = JSON.stringify(records);
  for (const secret of [MOCK_PROVIDER_KEY, RESEARCH_KEY, OPS_KEY, "Hi there", "Hello from", "long story"]) {
    assert.ok(!text.includes(secret), `records never hold ${secret}`);
  }
});

test("/admin/usage groups by team and agent with exact requests, tokens and cost; CSV matches", async () => {
  await waitForRecords(stack.url, sent.length);
  const { res, json } = await adminGet(stack.url, "/admin/usage?group_by=team,agent");
  assert.equal(res.status, 200);
  const expected = new Map();
  for (const s of sent) {
    const line = await stack.logLine(s.id);
    const key = `${s.team}/${s.agent}`;
    const e = expected.get(key) ?? { requests: 0, prompt: 0, completion: 0, cost: 0 };
    e.requests += 1;
    e.prompt += line.prompt_tokens ?? 0;
    e.completion += line.completion_tokens ?? 0;
    e.cost += line.cost_usd ?? 0;
    expected.set(key, e);
  }
  assert.equal(json.data.length, expected.size);
  for (const row of json.data) {
    const e = expected.get(`${row.team}/${row.agent}`);
    assert.ok(e, JSON.stringify(row));
    assert.deepEqual([row.requests, row.prompt_tokens, row.completion_tokens], [e.requests, e.prompt, e.completion], JSON.stringify(row));
    assert.ok(Math.abs(row.cost_usd - e.cost) < 1e-9);
    for (const field of ["errors", "cached_tokens", "latency_ms_p50", "latency_ms_p95", "ttft_ms_p50"]) assert.ok(field in row, field);
  }
  const writer = json.data.find((r) => r.agent === "writer");
  assert.equal(writer.errors, 1, "the cut stream counts as an error");
  assert.equal(typeof writer.ttft_ms_p50, "number");

  const csv = await adminGet(stack.url, "/admin/usage?group_by=team,agent&format=csv");
  assert.match(csv.res.headers.get("content-type"), /text\/csv/);
  const [header, ...lines] = csv.text.trim().split("\n");
  const columns = header.split(",");
  assert.deepEqual(columns, ["team", "agent", "requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "latency_ms_p50", "latency_ms_p95", "ttft_ms_p50"]);
  assert.equal(lines.length, json.data.length);
  lines.forEach((line, i) => {
    const cells = line.split(",");
    columns.forEach((c, j) => {
      const v = json.data[i][c];
      if (typeof v === "number") assert.equal(Number(cells[j]), v, `${c} of row ${i}`);
      else assert.equal(cells[j], v === null ? "" : String(v), `${c} of row ${i}`);
    });
  });

  const hourly = await adminGet(stack.url, "/admin/usage?group_by=provider&granularity=hour&team=research");
  assert.equal(hourly.res.status, 200);
  assert.ok(hourly.json.data.every((r) => /^\d{4}-\d\d-\d\dT\d\d:00:00Z$/.test(r.bucket)));
  assert.equal(hourly.json.data.reduce((n, r) => n + r.requests, 0), 5, "filtered to team research");
});

test("the per-minute rollups hold the same counts as the raw records", async () => {
  await waitForRecords(stack.url, sent.length);
  const raw = (await adminGet(stack.url, "/admin/usage?group_by=team,agent,model,provider,region")).json.data;
  const rolled = await adminGet(stack.url, "/admin/usage?group_by=team,agent,model,provider,region&source=rollup");
  assert.equal(rolled.res.status, 200);
  const strip = (rows) => rows.map(({ latency_ms_p50, latency_ms_p95, ttft_ms_p50, cost_usd, ...rest }) => ({ ...rest, cost: Math.round(cost_usd * 1e9) }));
  assert.deepEqual(strip(rolled.json.data), strip(raw));
  const refused = await adminGet(stack.url, "/admin/usage?group_by=upstream_model&source=rollup");
  assert.equal(refused.res.status, 400);
});

test("a tenant's /v1/usage shows only its own key", async () => {
  await waitForRecords(stack.url, sent.length);
  const res = await fetch(`${stack.url}/v1/usage?group_by=key,team`, { headers: { authorization: `Bearer ${OPS_KEY}` } });
  assert.equal(res.status, 200);
  const { data } = await res.json();
  assert.deepEqual(data.map((r) => [r.key, r.team, r.requests]), [["ops-bot", "ops", 2]]);
  const spoof = await fetch(`${stack.url}/v1/usage?key=research-bot`, { headers: { authorization: `Bearer ${OPS_KEY}` } });
  assert.deepEqual((await spoof.json()).data.map((r) => r.requests), [2], "a key filter cannot widen it");
  const lead = await fetch(`${stack.url}/v1/usage?group_by=team`, { headers: { authorization: `Bearer ${RESEARCH_LEAD_KEY}` } });
  assert.deepEqual((await lead.json()).data.map((r) => [r.team, r.requests]), [["research", 5]], "a team admin key sees its team");
  const anonymous = await fetch(`${stack.url}/v1/usage`);
  assert.equal(anonymous.status, 401);
  const admin = await fetch(`${stack.url}/admin/usage`, { headers: { authorization: `Bearer ${OPS_KEY}` } });
  assert.equal(admin.status, 401, "the admin view needs the admin token");
});

test("attribution is bounded and keys can fix theirs, with clear 400s", async () => {
  const cases = [
    [RESEARCH_KEY, { "x-gateway-project": "x".repeat(65) }, "x-gateway-project"],
    [RESEARCH_KEY, { "x-gateway-tags": "novalue" }, "x-gateway-tags"],
    [OPS_KEY, { "x-gateway-project": "elsewhere" }, "x-gateway-project"],
  ];
  for (const [key, headers, param] of cases) {
    const { res, json } = await post(stack.url, "/v1/chat/completions", chatBody("m-a"), { key, headers });
    assert.equal(res.status, 400);
    assert.equal(openAiError(json).code, "invalid_attribution");
    assert.equal(json.error.param, param);
  }
  const anthropic = await post(stack.url, "/v1/messages", { model: "m-a", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }, { key: RESEARCH_KEY, headers: { "x-gateway-agent": "bad agent" } });
  assert.equal(anthropic.res.status, 400);
  assert.equal(anthropic.json.type, "error", "errors in the caller's API shape");
});

test("query errors are 400s naming the parameter", async () => {
  for (const [q, param] of [["group_by=colour", "group_by"], ["granularity=week", "granularity"], ["from=yesterday", "from"], ["teem=x", "query"]]) {
    const { res, json } = await adminGet(stack.url, `/admin/usage?${q}`);
    assert.equal(res.status, 400, q);
    assert.equal(json.error.param, param);
  }
  const records = await allRecords(stack.url, "&agent=planner");
  assert.equal(records.length, 2);
  assert.ok(PRICE_A && PRICE_B);
});
