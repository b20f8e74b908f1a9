// Probe coordination: when a failed endpoint's open period ends, its ProviderHealth
// object grants the half-open probe to one caller; every other request (in this
// isolate or another) is served by the next target until the probe's outcome is in.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startStack, provider, chatBody, post, DEV_KEY_HASH } from "./harness.mjs";
import { DEV_ADMIN_TOKEN } from "../../scripts/lib/gateway.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const OPEN_MS = 1500;
// A key with limits: its admission asks its limiter first, so concurrent requests all
// plan before any of them starts its attempt (as on a busy isolate).
const LIMITED_KEY = "gw_probe_limited";
const sha256 = (s) => createHash("sha256").update(s).digest("hex");

let stack;

before(async () => {
  stack = await startStack({
    mocks: [{ name: "a" }, { name: "b" }],
    makeConfig: (mocks) => ({
      version: 1,
      revision: "e2e probe",
      settings: {
        allow_http_providers: true,
        first_byte_timeout_ms: 5000,
        config_cache_ttl_ms: 0,
        circuit_breaker: { consecutive_failures: 3, base_open_ms: OPEN_MS, max_open_ms: 3000 },
      },
      providers: { a: provider(mocks.a.baseUrl, "us"), b: provider(mocks.b.baseUrl, "us") },
      models: { chat: { targets: [{ provider: "a", model: "gpt-4o-mini" }, { provider: "b", model: "gpt-4o-mini" }] } },
      keys: {
        [DEV_KEY_HASH]: { name: "e2e", models: ["*"] },
        [sha256(LIMITED_KEY)]: { name: "limited", models: ["*"], limits: { requests_per_minute: 10000 } },
      },
    }),
  });
});

after(async () => {
  await stack?.close();
});

beforeEach(() => stack.reset());

async function healthOf(id) {
  const res = await fetch(`${stack.url}/admin/health`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
  const body = await res.json();
  return body.endpoints.find((e) => e.provider === id).state;
}

/** Three 503s in a row open a's circuit; waits until its open period is over. */
async function openAndCoolDown() {
  stack.mocks.a.fault({ kind: "status", status: 503, times: 3 });
  for (let i = 0; i < 3; i++) {
    const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"));
    assert.equal(res.headers.get("x-gateway-provider"), "b");
  }
  await sleep(200); // bad news reaches the health object after the response
  assert.equal((await healthOf("a")).breaker.circuit.state, "open");
  await sleep(OPEN_MS * 1.1 + 200); // open for 1.5 s (+ up to 10% jitter)
  stack.mocks.a.reset();
}

/** The health object of an endpoint, asked directly (as another isolate would). */
async function healthObject(id) {
  const namespace = await stack.mf.getDurableObjectNamespace("PROVIDER_HEALTH");
  const stub = namespace.get(namespace.idFromName(`endpoint:${id}`));
  return async (path, body) => (await stub.fetch(`https://object${path}`, { method: "POST", body: JSON.stringify(body) })).json();
}

test("after the cool-down, concurrent requests send exactly one probe to the recovering endpoint; the rest go to the next target", async () => {
  await openAndCoolDown();
  // The recovered endpoint answers slowly, so the probe is still in flight while the others arrive.
  stack.mocks.a.fault({ kind: "ok", delayMs: 1000 });
  const bBefore = stack.mocks.b.calls.length;
  const answers = await Promise.all(
    Array.from({ length: 8 }, () => post(stack.url, "/v1/chat/completions", chatBody("chat"), { key: LIMITED_KEY })),
  );
  for (const { res } of answers) assert.equal(res.status, 200);
  const servedBy = answers.map(({ res }) => res.headers.get("x-gateway-provider")).sort();
  assert.deepEqual(servedBy, ["a", "b", "b", "b", "b", "b", "b", "b"]);
  assert.equal(stack.mocks.a.calls.length, 1, "one probe reached the recovering endpoint");
  assert.equal(stack.mocks.b.calls.length - bBefore, 7);
  // The probe's success is reported at once: the next request is the second probe, and two close the circuit.
  await sleep(200);
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"));
  assert.equal(res.headers.get("x-gateway-provider"), "a");
  await sleep(200);
  await post(stack.url, "/v1/chat/completions", chatBody("chat"));
  await sleep(200);
  assert.equal((await healthOf("a")).breaker.circuit.state, "closed");
});

test("while another isolate holds the probe lease, requests skip the endpoint until the probe's outcome is reported", async () => {
  await openAndCoolDown();
  const object = await healthObject("a");
  // Another isolate claims the probe first.
  const claim = await object("/probe", []);
  assert.equal(claim.claim.probe, "granted");
  for (let i = 0; i < 4; i++) {
    const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-gateway-provider"), "b", `request ${i + 1}`);
  }
  assert.equal(stack.mocks.a.calls.length, 0, "no second probe while the lease is held");
  // That isolate's probe succeeded and it reports so: the lease is free.
  await object("/record", [{ outcome: { kind: "success", latency_ms: 5 }, jitter: 0 }]);
  await sleep(3100); // this isolate re-reads the health objects every 3 s, after a request
  await post(stack.url, "/v1/chat/completions", chatBody("chat"));
  await sleep(200);
  const { res } = await post(stack.url, "/v1/chat/completions", chatBody("chat"));
  assert.equal(res.headers.get("x-gateway-provider"), "a", "the next probe is ours");
  assert.equal(stack.mocks.a.calls.length, 1);
});
