// Runs the built Worker (build/index.js + wasm) in workerd through Miniflare with the
// same bindings as wrangler.toml: KV `ROUTING`, Durable Objects RATE_LIMITER, PROVIDER_HEALTH,
// RESPONSE_STORE, AUTH_THROTTLE and KEY_REGISTRY (SQLite-backed), the usage Queue (producer and
// consumer) and the D1 database `USAGE` with its migrations applied by `wrangler d1 migrations
// apply`, secrets as plain bindings, plus the development var ALLOW_HTTP_PROVIDERS = "true" (mock
// providers speak http://; never set in production). Used by scripts/dev, the bench and the
// end-to-end tests, so all run exactly the same shape.
import { Miniflare } from "miniflare";
import { readFileSync, existsSync, readdirSync, mkdtempSync, cpSync, renameSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import os from "node:os";
import path from "node:path";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** wrangler.toml's compatibility_date: the gateway's and every bench Worker's. */
export const COMPATIBILITY_DATE = "2026-04-26";
/** The development admin token (the admin API refuses tokens shorter than 32 characters). */
export const DEV_ADMIN_TOKEN = "dev-admin-token-0123456789abcdef0123";
export const DEV_GATEWAY_KEY = "gw_dev_local_key";
export const DEV_LIMITED_KEY = "gw_dev_limited_key";
export const MOCK_PROVIDER_KEY = "mock-provider-key";
/** AWS-style credentials the Bedrock mock checks SigV4 signatures against. */
export const MOCK_BEDROCK_CREDENTIALS = "AKIDMOCKBEDROCK:mock-bedrock-secret-key";
/** sha256 of DEV_GATEWAY_KEY, as the config stores it. */
export const DEV_KEY_HASH_FOR_BENCH = "3b5d8d1ff8b89cba460eccd62c11417ca91a74e99b253f62ed471eacb3849835";

/** D1 `USAGE` as wrangler.toml declares it (Miniflare must open the same database id). */
export const USAGE_DATABASE_ID = "5f1c1a5e-0000-4000-8000-00000000d1d1";
export const USAGE_QUEUE = "edge-ai-gateway-usage";

/**
 * Applies migrations/ to a local D1 under `persistTo` with `wrangler d1 migrations apply`
 * and returns the directory Miniflare's `d1Persist` takes. Without `persistTo`, a fresh
 * copy of a migrated template (made once per migrations content) in the temp directory.
 */
export function migrateUsageStore(persistTo = null) {
  const apply = (dir) =>
    execFileSync(path.join(ROOT, "node_modules/.bin/wrangler"), ["d1", "migrations", "apply", "USAGE", "--local", "--persist-to", dir], {
      cwd: ROOT,
      env: { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
      stdio: "pipe",
    });
  if (persistTo) {
    apply(persistTo);
    return path.join(persistTo, "v3/d1");
  }
  const migrations = path.join(ROOT, "migrations");
  const hash = createHash("sha256");
  for (const f of readdirSync(migrations).sort()) hash.update(f).update(readFileSync(path.join(migrations, f)));
  const template = path.join(os.tmpdir(), `edge-ai-gateway-usage-${hash.digest("hex").slice(0, 16)}`);
  if (!existsSync(template)) {
    const staging = mkdtempSync(template + "-staging-");
    apply(staging);
    try {
      renameSync(staging, template);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another process made it first
    }
  }
  // In memory where the system has it: SQLite's syncs on a loaded disk stall workerd.
  const scratch = existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
  const copy = mkdtempSync(path.join(scratch, "edge-ai-gateway-d1-"));
  cpSync(template, copy, { recursive: true });
  process.once("exit", () => rmSync(copy, { recursive: true, force: true }));
  return path.join(copy, "v3/d1");
}

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

/**
 * A prompt the bench mock answers with `events` stream events: it answers "Hello from bench! You
 * said: <prompt>", one event per word, between a role event and a finish event (5 + words + 2).
 * "Say hello" (9 events) when `events` is too small to be made exactly.
 */
export function promptForEvents(events) {
  return events > 7 ? Array.from({ length: events - 7 }, (_, i) => `w${i}`).join(" ") : "Say hello";
}

/** scripts/bench's key with rate limits and a monthly budget (see benchSuiteConfig). */
export const BENCH_LIMITED_KEY = "gw_bench_limited_key";

/**
 * The config scripts/bench measures with: benchConfig's model with a price (as production
 * targets have), the unlimited bench key, a key with rate limits and a monthly budget so far
 * above what a run uses that it is never refused (the bench measures what the limiter costs,
 * not refusals), and `bench-failover`, whose first target answers 503 (the mock's `fault-503`
 * model; `fault-500` with failoverStatus 500, which the gateway first retries on the same
 * endpoint, after a jittered backoff, while its retry budget lasts) so that every request fails
 * over once to the second. Both targets are the same
 * provider: with an untimed request between failovers its failure ratio stays under the
 * circuit breaker's 50%.
 */
export function benchSuiteConfig(mockBaseUrl, { failoverStatus = 503 } = {}) {
  const base = benchConfig(mockBaseUrl);
  const price = { input_per_mtok: 0.15, output_per_mtok: 0.6 };
  const limitedHash = createHash("sha256").update(BENCH_LIMITED_KEY).digest("hex");
  return {
    ...base,
    models: {
      bench: { targets: [{ provider: "mock", model: "bench", price }] },
      "bench-failover": {
        targets: [
          { provider: "mock", model: `fault-${failoverStatus}`, price },
          { provider: "mock", model: "bench", price },
        ],
      },
    },
    keys: {
      ...base.keys,
      [limitedHash]: {
        name: "bench-limited",
        models: ["*"],
        limits: { requests_per_minute: 10_000_000, tokens_per_minute: 2_000_000_000 },
        monthly_budget_usd: 1_000_000,
      },
    },
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
  // The usage store (Queue + D1); the bench measures with and without it.
  usage = true,
  // Queue consumer batching: 1 s (or 100 records), as in dev; production: 5 s (wrangler.toml).
  usageBatchTimeoutMs = 1000,
  // Another build's index.js (A/B measurements of two builds side by side).
  scriptPath = path.join(ROOT, "build/index.js"),
  // Serve on a socket of the Worker's own (see `ownSocket`).
  direct = false,
} = {}) {
  const stateDir = persistDir ?? (persist ? path.join(ROOT, ".wrangler/state") : null);
  const script = scriptPath;
  if (!existsSync(script)) throw new Error("build/index.js is missing: run scripts/build first");
  const usageBindings = usage
    ? {
        d1Databases: { USAGE: USAGE_DATABASE_ID },
        d1Persist: migrateUsageStore(stateDir ? path.join(stateDir, "d1") : null),
        queueProducers: { USAGE_QUEUE },
        queueConsumers: {
          [USAGE_QUEUE]: {
            maxBatchSize: 100,
            maxBatchTimeout: usageBatchTimeoutMs / 1000,
            maxRetries: 5,
            deadLetterQueue: `${USAGE_QUEUE}-dlq`,
          },
        },
      }
    : {};
  const mf = new Miniflare({
    ...usageBindings,
    rootPath: ROOT,
    scriptPath: script,
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: COMPATIBILITY_DATE,
    compatibilityFlags: ["enable_request_signal"],
    host,
    port,
    kvNamespaces: ["ROUTING"],
    durableObjects: {
      RATE_LIMITER: { className: "RateLimiter", useSQLite: true },
      PROVIDER_HEALTH: { className: "ProviderHealth", useSQLite: true },
      RESPONSE_STORE: { className: "ResponseStore", useSQLite: true },
      AUTH_THROTTLE: { className: "AuthThrottle", useSQLite: true },
      KEY_REGISTRY: { className: "KeyRegistry", useSQLite: true },
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
    ...ownSocket(direct, host),
  });
  return { mf, url: await servedUrl(mf, direct) };
}

/**
 * Miniflare options that serve its Worker on a socket of the Worker's own (`direct`), not
 * through Miniflare's entry Worker, a JS Worker in front of every request that a deployed
 * Worker does not have (it costs about as much as a pass-through Worker; README › Performance).
 */
export const ownSocket = (direct, host = "127.0.0.1") => (direct ? { unsafeDirectSockets: [{ host, port: 0 }] } : {});

/** Where a Miniflare serves its Worker (no trailing slash): its own socket's URL with `direct`. */
export async function servedUrl(mf, direct) {
  const entry = await mf.ready;
  return (direct ? await mf.unsafeGetDirectURL() : entry).toString().replace(/\/$/, "");
}

/**
 * The Rust floor: bench/rust-floor, an empty workers-rs pass-through to `upstream` (plus the
 * request's path), or with `crate: "rust-read-floor"` the same reading the bodies it relays;
 * built by scripts/build-rust-floor. `direct`: on a socket of its own.
 */
export async function startRustFloor(upstream, { direct = true, crate = "rust-floor" } = {}) {
  const script = path.join(ROOT, `bench/${crate}/build/index.js`);
  if (!existsSync(script)) throw new Error(`bench/${crate}/build/index.js is missing: run scripts/build-rust-floor`);
  const mf = new Miniflare({
    rootPath: path.dirname(script),
    scriptPath: script,
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    bindings: { UP: upstream },
    compatibilityDate: COMPATIBILITY_DATE,
    ...ownSocket(direct),
  });
  return { mf, url: await servedUrl(mf, direct) };
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
