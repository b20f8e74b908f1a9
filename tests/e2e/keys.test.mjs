// Key management: a key created through /admin/keys works at once, changes apply,
// rotation keeps the old key for the grace period chosen, and revocation and expiry
// hold within seconds although the config cache TTL is five minutes (the registry's
// Durable Object is polled by isolates, not cached like the config document).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, chatBody, post, openAiError } from "./harness.mjs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DEV_ADMIN_TOKEN } from "../../scripts/lib/gateway.mjs";
import { usageConfig, waitForRecords, RESEARCH_KEY } from "./usage-helpers.mjs";

let stack;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  stack = await startStack({ mocks: [{ name: "alpha" }, { name: "beta" }], makeConfig: (m) => usageConfig(m, { config_cache_ttl_ms: 300_000 }) });
});

after(async () => {
  await stack?.close();
});

async function admin(method, path, body, url = stack.url) {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { res, json: await res.json() };
}

const chat = (key, model = "m-a") => post(stack.url, "/v1/chat/completions", chatBody(model), { key });

/** Polls until `key` is refused; returns how long that took. */
async function refusedWithin(key, ms) {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if ((await chat(key)).res.status === 401) return Date.now() - started;
    await sleep(100);
  }
  assert.fail(`still accepted after ${ms} ms`);
}

test("a created key works at once, is listed without secrets, and its changes apply", async () => {
  const created = await admin("POST", "/admin/keys", { name: "tenant-a", models: ["m-a"], team: "research", project: "onboarding" });
  assert.equal(created.res.status, 201);
  const { id, key } = created.json;
  assert.match(id, /^key_[0-9a-f]{16}$/);
  assert.match(key, /^gw_[0-9a-f]{48}$/);
  const first = await chat(key);
  assert.equal(first.res.status, 200, "works at once");

  const listed = await admin("GET", "/admin/keys");
  const mine = listed.json.data.find((k) => k.id === id);
  assert.deepEqual([mine.name, mine.source, mine.team, mine.project], ["tenant-a", "api", "research", "onboarding"]);
  assert.ok(listed.json.data.some((k) => k.source === "config" && k.name === "research-bot"));
  const text = JSON.stringify(listed.json);
  assert.ok(!text.includes(key) && !/[0-9a-f]{64}/.test(text), "no plaintext, no hashes");

  const patched = await admin("PATCH", `/admin/keys/${id}`, { models: ["m-b"] });
  assert.equal(patched.res.status, 200);
  assert.equal((await chat(key, "m-a")).res.status, 404);
  assert.equal((await chat(key, "m-b")).res.status, 200);

  const [record] = (await waitForRecords(stack.url, 2)).filter((r) => r.request_id === first.res.headers.get("x-request-id"));
  assert.deepEqual([record.key, record.team, record.project], ["tenant-a", "research", "onboarding"], "usage attributed like a config key");

  for (const [body, status] of [[{ name: "research-bot", models: ["*"] }, 409], [{ name: "x", models: ["nope"] }, 400], [{ name: "y" }, 400]]) {
    const refused = await admin("POST", "/admin/keys", body);
    assert.equal(refused.res.status, status, JSON.stringify(body));
    openAiError(refused.json);
  }
  assert.equal((await admin("PATCH", "/admin/keys/key_missing", { models: ["*"] })).res.status, 404);
});

test("rotation keeps the old key for the grace period, then only the new one works", async () => {
  const { json } = await admin("POST", "/admin/keys", { name: "tenant-rotate", models: ["*"] });
  const rotated = await admin("POST", `/admin/keys/${json.id}/rotate`, { grace_seconds: 2 });
  assert.equal(rotated.res.status, 200);
  assert.notEqual(rotated.json.key, json.key);
  assert.ok(rotated.json.previous_key_valid_until);
  assert.equal((await chat(json.key)).res.status, 200, "old key, within the grace period");
  assert.equal((await chat(rotated.json.key)).res.status, 200, "new key");
  const took = await refusedWithin(json.key, 5000);
  assert.ok(took >= 1000, `the old key stopped after its grace (${took} ms)`);
  assert.equal((await chat(rotated.json.key)).res.status, 200);
});

test("revocation and expiry hold within seconds with a five-minute config cache", async () => {
  const a = await admin("POST", "/admin/keys", { name: "tenant-revoked", models: ["*"] });
  assert.equal((await chat(a.json.key)).res.status, 200);
  assert.equal((await admin("DELETE", `/admin/keys/${a.json.id}`)).res.status, 200);
  const refused = await chat(a.json.key);
  assert.equal(refused.res.status, 401);
  assert.equal(openAiError(refused.json).code, "invalid_api_key");

  // A revocation made elsewhere (another isolate's admin call): straight to the registry object.
  const b = await admin("POST", "/admin/keys", { name: "tenant-remote", models: ["*"] });
  assert.equal((await chat(b.json.key)).res.status, 200);
  const ns = await stack.mf.getDurableObjectNamespace("KEY_REGISTRY");
  const stub = ns.get(ns.idFromName("registry"));
  const res = await stub.fetch("https://object/apply", { method: "POST", body: JSON.stringify({ op: "delete", id: b.json.id }) });
  assert.equal(res.status, 200);
  const took = await refusedWithin(b.json.key, 5000);
  assert.ok(took < 5000, `refused after ${took} ms`);

  const expires_at = new Date(Date.now() + 1500).toISOString();
  const c = await admin("POST", "/admin/keys", { name: "tenant-expiring", models: ["*"], expires_at });
  assert.equal((await chat(c.json.key)).res.status, 200);
  await refusedWithin(c.json.key, 5000);

  const d = await admin("POST", "/admin/keys", { name: "tenant-disabled", models: ["*"] });
  await admin("PATCH", `/admin/keys/${d.json.id}`, { disabled: true });
  assert.equal((await chat(d.json.key)).res.status, 401);
  await admin("PATCH", `/admin/keys/${d.json.id}`, { disabled: false });
  assert.equal((await chat(d.json.key)).res.status, 200);
});

test("the key API needs the admin token", async () => {
  const res = await fetch(`${stack.url}/admin/keys`, { method: "POST", body: "{}" });
  assert.equal(res.status, 401);
});

test("a new runtime's first request authenticates a created key (config and registry read cold, together)", async () => {
  // Its own stack on persisted storage; the mocks keep their ports, so the stored config still fits.
  const stateDir = mkdtempSync(path.join(tmpdir(), "gateway-keys-"));
  const own = await startStack({ mocks: [{ name: "alpha" }, { name: "beta" }], makeConfig: (m) => usageConfig(m), persistDir: stateDir });
  try {
    const created = (await admin("POST", "/admin/keys", { name: "tenant-cold", models: ["*"] }, own.url)).json;
    // A fresh isolate with nothing cached: no config PUT, the first request reads both.
    await own.restart();
    const first = await post(own.url, "/v1/chat/completions", chatBody("m-a"), { key: created.key });
    assert.equal(first.res.status, 200, JSON.stringify(first.json));
    const config = await post(own.url, "/v1/chat/completions", chatBody("m-b"), { key: RESEARCH_KEY });
    assert.equal(config.res.status, 200, "a key from the config document too");
    assert.equal((await post(own.url, "/v1/chat/completions", chatBody("m-a"), { key: "gw_nobody" })).res.status, 401);
  } finally {
    await own.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});
