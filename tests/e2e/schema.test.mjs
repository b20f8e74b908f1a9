// config/schema.json must describe what the gateway accepts: the shipped configs
// pass it, and the mistakes the gateway refuses are refused by the schema too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import { ROOT } from "../../scripts/lib/gateway.mjs";

const read = (file) => JSON.parse(readFileSync(`${ROOT}/${file}`, "utf8"));
const validate = new Ajv2020({ allErrors: true, strict: false }).compile(read("config/schema.json"));
const shipped = ["config/default.json", ...readdirSync(`${ROOT}/config/examples`).map((f) => `config/examples/${f}`)];

test("every shipped config matches the JSON Schema", () => {
  for (const file of shipped) {
    assert.ok(validate(read(file)), `${file}: ${JSON.stringify(validate.errors)}`);
  }
});

test("limits at every level (endpoint, key, key per model, team, team per model) match the schema", () => {
  const doc = read("config/default.json");
  doc.providers["mock-us"].limits = { requests_per_minute: 5000, tokens_per_minute: 800000 };
  const key = doc.keys[Object.keys(doc.keys)[0]];
  Object.assign(key, {
    team: "demo-team",
    limits: { max_concurrent: 4 },
    model_limits: { "gpt-4o": { requests_per_minute: 6 } },
    monthly_budget_usd: 25,
  });
  doc.teams["demo-team"].monthly_budget_usd = 500;
  assert.ok(validate(doc), JSON.stringify(validate.errors));
});

test("the schema refuses what the gateway refuses", () => {
  const base = read("config/default.json");
  const broken = [
    (c) => (c.providers["mock-us"].kind = "opnai"),
    (c) => (c.providers["mock-us"].api_key_secret = "sk-live-123"),
    (c) => (c.providers["mock-us"].extra = true),
    (c) => (c.keys.gw_plaintext_key = { name: "x", models: ["*"] }),
    (c) => (c.providers["mock-us"] = { kind: "azure_openai", base_url: "https://x.openai.azure.com", region: "eu" }),
    (c) => (c.models["gpt-4o"].targets = []),
    (c) => (c.settings.first_byte_timeout_ms = 1),
    (c) => (c.version = 2),
    (c) => c.residency.geo_rules.push({ allow: ["eu"] }),
    (c) => (c.models.smart.targets = [{ provider: "mock-us", model: "x" }]),
    (c) => (c.models.balanced.strategy = "random"),
    (c) => (c.keys[Object.keys(c.keys)[0]].regions = ["EU West"]),
    (c) => (c.teams["demo-team"].limits.requests_per_minute = 0),
    (c) => (c.teams["demo-team"].model_limits["gpt-4o"].per_day = 5),
    (c) => (c.providers["mock-us"].limits = { requests_per_minute: 0 }),
    (c) => (c.teams["demo-team"].monthly_budget_usd = 0),
  ];
  for (const edit of broken) {
    const doc = structuredClone(base);
    edit(doc);
    assert.equal(validate(doc), false, `accepted: ${edit}`);
  }
});
