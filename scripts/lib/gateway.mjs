// Runs the built Worker (build/index.js + wasm) in workerd through Miniflare with the
// same bindings as wrangler.toml: KV `ROUTING`, Durable Objects RATE_LIMITER,
// PROVIDER_HEALTH, RESPONSE_STORE and AUTH_THROTTLE (SQLite-backed), secrets as plain bindings,
// plus the development var ALLOW_HTTP_PROVIDERS = "true" (mock providers speak http://; never set
// in production). Used by scripts/dev, the bench and the end-to-end tests, so all run the same shape.
import { Miniflare } from "miniflare";
import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The development admin token (the admin API refuses tokens shorter than 32 characters). */
export const DEV_ADMIN_TOKEN = "dev-admin-token-0123456789abcdef0123";
export const DEV_GATEWAY_KEY = "gw_dev_local_key";
export const DEV_LIMITED_KEY = "gw_dev_limited_key";
export const MOCK_PROVIDER_KEY = "mock-provider-key";
/** AWS-style credentials the Bedrock mock checks SigV4 signatures against. */
export const MOCK_BEDROCK_CREDENTIALS = "AKIDMOCKBEDROCK:mock-bedrock-secret-key";
/** sha256 of DEV_GATEWAY_KEY, as the config stores it. */
export const DEV_KEY_HASH_FOR_BENCH = "3b5d8d1ff8b89cba460eccd62c11417ca91a74e99b253f62ed471eacb3849835";

/** The config speed is measured with: one model on one mock, request logs off. */
export function benchConfig(mockBaseUrl) {
  return {
    version: 1,
    // Request logs off: locally every console line is piped through Miniflare to Node,
    // which would measure the log pipe rather than the gateway.
    settings: { allow_http_providers: true, request_log: false },
    providers: { mock: { kind: "openai", base_url: mockBaseUrl, region: "us" } },
    models: { bench: { targets: [{ provider: "mock", model: "bench" }] } },
    keys: { [DEV_KEY_HASH_FOR_BENCH]: { name: "bench", models: ["*"] } },
  };
}

/** Parses a .dev.vars file (KEY=value lines, # comments, optional quotes). */
export function readDevVars(file = path.join(ROOT, ".dev.vars")) {
  if (!existsSync(file)) return {};
  const vars = {};
  for (const raw of readFileSync(file, "utf8").split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 1) continue;
    let value = line.slice(eq + 1).trim();
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    vars[line.slice(0, eq).trim()] = value;
  }
  return vars;
}

/**
 * Starts the gateway. `bindings` become secrets/vars; `port` 0 lets workerd choose.
 * Returns { mf, url } where url is workerd's own socket (no proxy in between).
 */
export async function startGateway({
  bindings = {},
  port = 0,
  host = "127.0.0.1",
  persist = false,
  persistDir = null,
  log = false,
  onLogLine = null,
  inspectorPort = undefined,
} = {}) {
  const stateDir = persistDir ?? (persist ? path.join(ROOT, ".wrangler/state") : null);
  const script = path.join(ROOT, "build/index.js");
  if (!existsSync(script)) throw new Error("build/index.js is missing: run scripts/build first");
  const mf = new Miniflare({
    rootPath: ROOT,
    scriptPath: script,
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2026-04-26",
    host,
    port,
    kvNamespaces: ["ROUTING"],
    durableObjects: {
      RATE_LIMITER: { className: "RateLimiter", useSQLite: true },
      PROVIDER_HEALTH: { className: "ProviderHealth", useSQLite: true },
      RESPONSE_STORE: { className: "ResponseStore", useSQLite: true },
      AUTH_THROTTLE: { className: "AuthThrottle", useSQLite: true },
    },
    kvPersist: stateDir ? path.join(stateDir, "kv") : false,
    durableObjectsPersist: stateDir ? path.join(stateDir, "do") : false,
    bindings: {
      ADMIN_TOKEN: DEV_ADMIN_TOKEN,
      ALLOW_HTTP_PROVIDERS: "true",
      MOCK_PROVIDER_KEY,
      MOCK_BEDROCK_CREDENTIALS,
      ...bindings,
    },
    verbose: log,
    inspectorPort,
    // Tests read the gateway's JSON log lines (console.log in the Worker).
    ...(onLogLine ? { handleStructuredLogs: ({ message }) => onLogLine(message) } : {}),
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { mf, url };
}

/** Stores a config document through the admin API, so it is validated like any other. */
export async function putConfig(url, config, adminToken = DEV_ADMIN_TOKEN) {
  const body = typeof config === "string" ? config : JSON.stringify(config);
  const res = await fetch(`${url}/admin/config`, {
    method: "PUT",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body,
  });
  const answer = await res.json();
  if (res.status !== 200) {
    const issues = (answer.issues || []).map((i) => `  ${i.pointer || "/"}: ${i.message}`).join("\n");
    throw new Error(`config refused (${res.status}): ${answer.error?.message}\n${issues}`);
  }
  return answer;
}

export function loadConfig(file) {
  return JSON.parse(readFileSync(path.resolve(ROOT, file), "utf8"));
}
