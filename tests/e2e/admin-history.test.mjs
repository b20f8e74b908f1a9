// Config changes that can be undone: every stored document is a version (who, when,
// revision), the newest 20 are kept, a rollback restores one as a new version, a dry
// run reports what a document would change, and a change that would move a limiter
// to another jurisdiction is refused unless accepted.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, provider, chatBody, post, openAiError, DEV_KEY_HASH } from "./harness.mjs";
import { DEV_ADMIN_TOKEN, startGateway } from "../../scripts/lib/gateway.mjs";

let stack;

function makeConfig(mocks, { revision = "history v1", model = "chat", regions } = {}) {
  const key = { name: "e2e", models: ["*"], limits: { requests_per_minute: 1000 } };
  if (regions) key.regions = regions;
  return {
    version: 1,
    revision,
    settings: { allow_http_providers: true, config_cache_ttl_ms: 0 },
    providers: { main: provider(mocks.main.baseUrl, "us"), eu: provider(mocks.main.baseUrl, "eu") },
    models: { [model]: { targets: [{ provider: "main", model: "gpt-4o-mini" }, { provider: "eu", model: "gpt-4o-mini" }] } },
    keys: { [DEV_KEY_HASH]: key },
  };
}

before(async () => {
  stack = await startStack({ mocks: [{ name: "main" }], makeConfig: (mocks) => makeConfig(mocks) });
});

after(async () => {
  await stack?.close();
});

const admin = (method, path, body, headers = {}) =>
  fetch(`${stack.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });

async function versions() {
  const res = await admin("GET", "/admin/config/versions");
  assert.equal(res.status, 200);
  return res.json();
}

async function currentRevision() {
  const res = await admin("GET", "/admin/config");
  return { revision: (await res.json()).revision, version: Number(res.headers.get("x-gateway-config-version")) };
}

test("every stored document is a version with who, when and revision", async () => {
  const res = await admin("PUT", "/admin/config", makeConfig(stack.mocks, { revision: "history v2", model: "renamed" }), {
    "x-gateway-actor": "alice@example.com",
  });
  assert.equal(res.status, 200);
  const stored = await res.json();
  assert.equal(stored.version, 2);
  assert.deepEqual(stored.changes.models, { added: ["renamed"], removed: ["chat"], changed: [] });

  const listed = await versions();
  assert.equal(listed.current_version, 2);
  assert.equal(listed.keep, 20);
  assert.deepEqual(listed.versions.map((v) => [v.version, v.revision, v.by, v.source, v.current]), [
    [2, "history v2", "alice@example.com", "put", true],
    [1, "history v1", "admin", "put", false],
  ]);
  assert.match(listed.versions[0].at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  const old = await admin("GET", "/admin/config/versions/1");
  assert.equal(old.status, 200);
  assert.equal(old.headers.get("x-gateway-config-version"), "1");
  assert.equal((await old.json()).revision, "history v1");
  const missing = await admin("GET", "/admin/config/versions/99");
  assert.equal(missing.status, 404);
  assert.equal(openAiError(await missing.json()).code, "version_not_found");
});

test("a rollback restores the previous version at once, as a new version", async () => {
  assert.equal((await post(stack.url, "/v1/chat/completions", chatBody("chat"))).res.status, 404);
  const res = await admin("POST", "/admin/config/rollback", undefined, { "x-gateway-actor": "bob" });
  assert.equal(res.status, 200);
  const answer = await res.json();
  assert.equal(answer.version, 3);
  assert.equal(answer.restores, 1);
  assert.deepEqual(answer.changes.models, { added: ["chat"], removed: ["renamed"], changed: [] });
  assert.deepEqual(await currentRevision(), { revision: "history v1", version: 3 });
  assert.equal((await post(stack.url, "/v1/chat/completions", chatBody("chat"))).res.status, 200);

  // Rolling back again walks further back; a named version is restored as asked.
  const named = await admin("POST", "/admin/config/rollback", { version: 2 });
  assert.equal(named.status, 200);
  assert.equal((await named.json()).version, 4);
  assert.deepEqual(await currentRevision(), { revision: "history v2", version: 4 });
  const [latest] = (await versions()).versions;
  assert.deepEqual([latest.source, latest.restores, latest.by], ["rollback", 2, "admin"]);

  for (const [body, status, code] of [
    [{ version: 99 }, 404, "version_not_found"],
    [{ version: 4 }, 409, "version_is_current"],
    [{ version: "two" }, 400, "invalid_type"],
  ]) {
    const refused = await admin("POST", "/admin/config/rollback", body);
    assert.equal(refused.status, status, JSON.stringify(body));
    assert.equal(openAiError(await refused.json()).code, code);
  }
  assert.deepEqual(await currentRevision(), { revision: "history v2", version: 4 }, "refusals change nothing");
  assert.equal((await admin("POST", "/admin/config/rollback", { version: 1 })).status, 200);
});

test("a dry run reports validity and what would change, and stores nothing", async () => {
  const before = await versions();
  const next = makeConfig(stack.mocks, { revision: "dry run" });
  next.models.extra = { targets: [{ provider: "main", model: "x" }] };
  next.providers.main.base_url = stack.mocks.main.baseUrl + "/other";
  next.keys["0".repeat(64)] = { name: "newcomer", models: ["chat"] };
  const res = await admin("POST", "/admin/config/validate", next);
  assert.equal(res.status, 200);
  const report = await res.json();
  assert.equal(report.valid, true);
  assert.deepEqual(report.changes.models, { added: ["extra"], removed: [], changed: [] });
  assert.deepEqual(report.changes.providers, { added: [], removed: [], changed: ["main"] });
  assert.deepEqual(report.changes.keys, { added: ["newcomer"], removed: [], changed: [] });
  assert.ok(!JSON.stringify(report).includes("0".repeat(64)), "keys are named, never hashed");

  const bad = makeConfig(stack.mocks);
  bad.models.chat.targets[0].provider = "opnai";
  const invalid = await (await admin("POST", "/admin/config/validate", bad)).json();
  assert.equal(invalid.valid, false);
  assert.deepEqual(invalid.issues, [{ pointer: "/models/chat/targets/0/provider", message: 'unknown provider "opnai"' }]);
  assert.deepEqual(await versions(), before, "nothing stored");
});

test("moving a limited key's limiter to another jurisdiction is refused unless accepted", async () => {
  const pinned = makeConfig(stack.mocks, { revision: "pinned", regions: ["eu"] });
  const dry = await (await admin("POST", "/admin/config/validate", pinned)).json();
  assert.equal(dry.valid, true);
  assert.equal(dry.needs_accept_limiter_reset, true);
  assert.deepEqual(dry.limiter_resets, [{ scope: "key", name: "e2e", from: null, to: "eu" }]);

  const before = await currentRevision();
  const refused = await admin("PUT", "/admin/config", pinned);
  assert.equal(refused.status, 409);
  assert.equal(refused.headers.get("x-should-retry"), "false");
  const error = openAiError(await refused.json());
  assert.equal(error.code, "limiter_reset_refused");
  assert.match(error.message, /key "e2e"'s limiter would move from global to the eu jurisdiction/);
  assert.match(error.message, /accept_limiter_reset=true/);
  assert.deepEqual(await currentRevision(), before, "nothing stored");

  const accepted = await admin("PUT", "/admin/config?accept_limiter_reset=true", pinned);
  assert.equal(accepted.status, 200);
  assert.deepEqual((await accepted.json()).limiter_resets, [{ scope: "key", name: "e2e", from: null, to: "eu" }]);
  // Undoing it moves the limiter back: a rollback is held to the same rule.
  const back = await admin("POST", "/admin/config/rollback");
  assert.equal(back.status, 409);
  assert.equal((await admin("POST", "/admin/config/rollback?accept_limiter_reset=true")).status, 200);
  assert.equal((await currentRevision()).revision, "history v1");
});

test("only the newest 20 versions are kept", async () => {
  for (let i = 0; i < 22; i++) {
    const res = await admin("PUT", "/admin/config", makeConfig(stack.mocks, { revision: `bulk ${i}` }));
    assert.equal(res.status, 200);
  }
  const listed = await versions();
  assert.equal(listed.versions.length, 20);
  assert.equal(listed.versions[0].revision, "bulk 21");
  assert.equal(listed.versions[0].version, listed.current_version);
  const oldest = listed.versions.at(-1).version;
  assert.equal((await admin("GET", `/admin/config/versions/${oldest - 1}`)).status, 404);
  assert.equal((await admin("GET", `/admin/config/versions/${oldest}`)).status, 200);
});

test("the history routes need the admin token and the right method", async () => {
  const anonymous = await fetch(`${stack.url}/admin/config/versions`);
  assert.equal(anonymous.status, 401);
  assert.equal((await admin("GET", "/admin/config/rollback")).status, 405);
  assert.equal((await admin("DELETE", "/admin/config/versions")).status, 405);
  assert.equal((await admin("GET", "/admin/config/nope")).status, 404);
});

test("a document stored before versions were kept becomes version 1 on the first change", async () => {
  const { mf, url } = await startGateway();
  try {
    const legacy = makeConfig(stack.mocks, { revision: "legacy" });
    // As an older gateway stored it: the document alone, no version metadata.
    await (await mf.getKVNamespace("ROUTING")).put("config", JSON.stringify(legacy));
    const headers = { authorization: `Bearer ${DEV_ADMIN_TOKEN}`, "content-type": "application/json" };
    const put = await fetch(`${url}/admin/config`, {
      method: "PUT",
      headers,
      body: JSON.stringify(makeConfig(stack.mocks, { revision: "first managed" })),
    });
    assert.equal(put.status, 200);
    assert.equal((await put.json()).version, 2);
    const listed = await (await fetch(`${url}/admin/config/versions`, { headers })).json();
    assert.deepEqual(listed.versions.map((v) => [v.version, v.revision, v.source]), [
      [2, "first managed", "put"],
      [1, "legacy", "initial"],
    ]);
    const back = await fetch(`${url}/admin/config/rollback`, { method: "POST", headers });
    assert.equal(back.status, 200);
    assert.equal((await (await fetch(`${url}/admin/config`, { headers })).json()).revision, "legacy");
  } finally {
    await mf.dispose();
  }
});
