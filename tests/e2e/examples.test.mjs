// The shipped example configs do what the README says: each is accepted by the
// gateway as it is, and the EU example keeps its tenants in the EU (shown with
// POST /v1/route/explain, which plans a request without sending it).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { startGateway, putConfig, loadConfig, ROOT, DEV_ADMIN_TOKEN } from "../../scripts/lib/gateway.mjs";

let gateway;

before(async () => {
  gateway = await startGateway();
});

after(async () => {
  await gateway?.mf.dispose();
});

test("every example config is accepted by PUT /admin/config", async () => {
  for (const file of readdirSync(`${ROOT}/config/examples`)) {
    await putConfig(gateway.url, loadConfig(`config/examples/${file}`));
  }
});

const FROM = {
  germany: { country: "DE", continent: "EU", isEUCountry: "1" },
  usa: { country: "US", continent: "NA" },
};

async function explain(as, model, where) {
  const res = await fetch(`${gateway.url}/v1/route/explain`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${DEV_ADMIN_TOKEN}`,
      "content-type": "application/json",
      "x-gateway-explain-as": as,
      "MF-CF-Blob": JSON.stringify(FROM[where]),
    },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "Hi" }] }),
  });
  assert.equal(res.status, 200);
  return res.json();
}

test("eu-enterprise: EU tenants stay in the EU wherever they are, others may leave it", async () => {
  await putConfig(gateway.url, loadConfig("config/examples/eu-enterprise.json"));
  const providers = (plan) => plan.candidates.map((c) => c.provider_id);

  // A tenant pinned to eu, calling from the US: only EU endpoints, in config order.
  const tenant = await explain("research-bot", "gpt-4o", "usa");
  assert.deepEqual(providers(tenant), ["azure-sweden", "openai-eu"]);
  assert.deepEqual(tenant.dropped.map((d) => [d.provider_id, d.reason]), [["openai", "region"]]);
  const claude = await explain("research-bot", "claude-sonnet", "usa");
  assert.deepEqual(providers(claude), ["bedrock-frankfurt"]);

  // An unpinned key: from the US every endpoint; from Germany the geo rule keeps it in the EU.
  assert.deepEqual(providers(await explain("global-app", "gpt-4o", "usa")), ["azure-sweden", "openai-eu", "openai"]);
  assert.deepEqual(providers(await explain("global-app", "gpt-4o", "germany")), ["azure-sweden", "openai-eu"]);

  // The alias pools both models' targets, still inside the tenant's region.
  assert.deepEqual(providers(await explain("analyst", "smart", "usa")), ["bedrock-frankfurt", "azure-sweden", "openai-eu"]);
});
