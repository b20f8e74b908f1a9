// Shared by the usage suites: keys of two teams, a config over two providers, and
// waiting for records to reach D1 through the real Queue.
import { createHash } from "node:crypto";
import { DEV_ADMIN_TOKEN } from "../../scripts/lib/gateway.mjs";
import { provider } from "./harness.mjs";

export const sha256 = (text) => createHash("sha256").update(text).digest("hex");
export const RESEARCH_KEY = "gw_e2e_research_key_0123456789";
export const OPS_KEY = "gw_e2e_ops_key_0123456789abcdef";
export const RESEARCH_LEAD_KEY = "gw_e2e_research_lead_0123456789";
export const PRICE_A = { input_per_mtok: 1, output_per_mtok: 2 };
export const PRICE_B = { input_per_mtok: 3, output_per_mtok: 5 };

export function usageConfig(mocks, settings = {}) {
  return {
    version: 1,
    settings: { allow_http_providers: true, first_byte_timeout_ms: 2000, stream_idle_timeout_ms: 1500, config_cache_ttl_ms: 0, ...settings },
    providers: {
      alpha: provider(mocks.alpha.baseUrl, "us"),
      beta: provider(mocks.beta.baseUrl, "eu"),
    },
    models: {
      "m-a": { targets: [{ provider: "alpha", model: "alpha-model", price: PRICE_A }] },
      "m-b": { targets: [{ provider: "beta", model: "beta-model", price: PRICE_B }] },
      "m-cut": { targets: [{ provider: "beta", model: "fault-cut", price: PRICE_B }] },
      emb: { targets: [{ provider: "alpha", model: "text-embedding-3-small", price: PRICE_A }] },
    },
    teams: { research: {}, ops: {} },
    keys: {
      [sha256(RESEARCH_KEY)]: { name: "research-bot", models: ["*"], team: "research", project: "search" },
      [sha256(RESEARCH_LEAD_KEY)]: { name: "research-lead", models: ["*"], team: "research", team_admin: true },
      [sha256(OPS_KEY)]: { name: "ops-bot", models: ["*"], team: "ops", project: "pager", fixed_attribution: true },
    },
  };
}

export async function adminGet(url, path) {
  const res = await fetch(url + path, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { res, json, text };
}

/** Every raw record between now-1h and now+1h, through the paging API. */
export async function allRecords(url, extra = "") {
  const out = [];
  let cursor = null;
  for (;;) {
    const q = `/admin/usage/requests?limit=3${extra}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const { res, json } = await adminGet(url, q);
    if (res.status !== 200) throw new Error(`records: ${res.status} ${JSON.stringify(json)}`);
    out.push(...json.data);
    if (!json.next_cursor) return out;
    cursor = json.next_cursor;
  }
}

/** Waits until the store holds `count` records (they arrive through the Queue). */
export async function waitForRecords(url, count, timeoutMs = 10000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const records = await allRecords(url);
    if (records.length >= count || Date.now() > until) return records;
    await new Promise((r) => setTimeout(r, 100));
  }
}
