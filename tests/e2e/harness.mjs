// Shared setup for the end-to-end suites: mock providers on 127.0.0.1, the built
// Worker in workerd (Miniflare) with real local KV and Durable Objects, and a
// config document stored through the admin API.
import net from "node:net";
import { startGateway, putConfig, DEV_GATEWAY_KEY, DEV_ADMIN_TOKEN, MOCK_PROVIDER_KEY } from "../../scripts/lib/gateway.mjs";
import { startMockProvider } from "./mock-providers.mjs";
import { spawn } from "node:child_process";

export { DEV_GATEWAY_KEY, MOCK_PROVIDER_KEY };
export const DEV_LIMITED_KEY = "gw_dev_limited_key";
// sha256 of the two development keys (see config/default.json).
export const DEV_KEY_HASH = "3b5d8d1ff8b89cba460eccd62c11417ca91a74e99b253f62ed471eacb3849835";
export const LIMITED_KEY_HASH = "17ecb5191ac9c8566d41d33431e1172a6772416c6e9b476fd3ef1c4552c88027";

/** A port on 127.0.0.1 that nothing listens on (connections are refused). */
export async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts named mock providers and the gateway. `makeConfig(mocks, extra)` returns the
 * config document; `bindings` are extra secrets.
 */
export async function startStack({ mocks: mockSpecs, makeConfig, bindings = {}, persistDir = null, gateway = {} }) {
  const mocks = {};
  for (const spec of mockSpecs) {
    mocks[spec.name] = await startMockProvider({ apiKey: MOCK_PROVIDER_KEY, ...spec });
  }
  const refusedPort = await closedPort();
  // The gateway's JSON log lines (request records), newest last.
  const logs = [];
  const onLogLine = (message) => {
    for (const text of String(message).split("\n")) {
      try {
        const line = JSON.parse(text);
        if (line && typeof line === "object") logs.push(line);
      } catch {
        // not one of the gateway's lines
      }
    }
  };
  const gatewayOptions = { bindings, persistDir, onLogLine, ...gateway };
  let { mf, url } = await startGateway(gatewayOptions);
  const config = makeConfig(mocks, { refusedUrl: `http://127.0.0.1:${refusedPort}/v1` });
  await putConfig(url, config);
  return {
    mf,
    url,
    mocks,
    config,
    logs,
    /** Waits for the log line of a request (they are written as the request ends). */
    async logLine(requestId, timeoutMs = 2000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const line = logs.find((l) => l.request_id === requestId);
        if (line || Date.now() > until) return line;
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    /** A new runtime on the same storage (`persistDir`) and mocks: an isolate with nothing
     * cached, and no config PUT (the stored one is read). `close` then stops this one. */
    async restart() {
      await mf.dispose();
      ({ mf, url } = await startGateway(gatewayOptions));
      Object.assign(this, { mf, url });
    },
    async close() {
      await Promise.allSettled([mf.dispose(), ...Object.values(mocks).map((m) => m.close())]);
    },
    /** Clears the mocks' calls and faults, and the gateway's learned endpoint health. */
    async reset() {
      for (const mock of Object.values(mocks)) mock.reset();
      const res = await fetch(`${url}/admin/health`, { method: "DELETE", headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
      if (res.status !== 200) throw new Error(`health reset failed: ${res.status}`);
    },
  };
}

/** A stack of two mocks, one per wire format: model `gpt` is served by the OpenAI-format mock
 * `gpt` (as `gpt-4o-mini`), model `claude` by the Anthropic-format mock `claude` (as
 * `claude-sonnet-4-5`); the dev key may use both. For suites that drive a client both ways. */
export function startTwoFormatStack(revision) {
  return startStack({
    mocks: [{ name: "gpt" }, { name: "claude", format: "anthropic" }],
    makeConfig: (mocks) => ({
      version: 1,
      revision,
      settings: { allow_http_providers: true, config_cache_ttl_ms: 0 },
      providers: { gpt: provider(mocks.gpt.baseUrl, "us"), claude: { ...provider(mocks.claude.baseUrl, "us"), kind: "anthropic" } },
      models: {
        gpt: { targets: [{ provider: "gpt", model: "gpt-4o-mini" }] },
        claude: { targets: [{ provider: "claude", model: "claude-sonnet-4-5" }] },
      },
      keys: { [DEV_KEY_HASH]: { name: "e2e", models: ["*"] } },
    }),
  });
}

/** Runs a command-line client to its end, stdin closed (a client may wait on an open pipe
 * for more input), killed after `timeoutMs`: its exit code (null when killed) and output. */
export async function runCli(command, args, { env, cwd, timeoutMs = 90_000 }) {
  const child = spawn(command, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise((resolve) => child.on("close", resolve));
  clearTimeout(timer);
  return { code, out: out.trim(), err };
}

export function provider(baseUrl, region = "us", secret = "MOCK_PROVIDER_KEY") {
  const entry = { kind: "openai", base_url: baseUrl, region };
  if (secret) entry.api_key_secret = secret;
  return entry;
}

// The Bedrock mock's access key pair in the suites that reach every kind (the secret `BEDROCK_KEYS`).
const KINDS_BEDROCK_KEY = "AKIDKINDS:kinds-secret";
const KIND_FORMATS = { anthropic: "anthropic", gemini: "gemini", bedrock: "bedrock" };

/** One mock per provider kind (`openai`, `azure`, `anthropic`, `gemini`, `bedrock`), named by its
 * kind, for the suites that drive a client to every kind; `kindBindings` holds Bedrock's secret. */
export function kindMocks(kinds) {
  return kinds.map((kind) => ({ name: kind, format: KIND_FORMATS[kind], ...(kind === "bedrock" && { apiKey: KINDS_BEDROCK_KEY }) }));
}

export const kindBindings = { BEDROCK_KEYS: KINDS_BEDROCK_KEY };

/** The config's provider for each kind's mock (`kindMocks`), in region `us`. */
export function kindProviders(mocks, kinds) {
  const entry = {
    openai: () => provider(mocks.openai.baseUrl),
    azure: () => ({ ...provider(mocks.azure.url), kind: "azure_openai", api_version: "2024-10-21" }),
    anthropic: () => ({ ...provider(mocks.anthropic.baseUrl), kind: "anthropic" }),
    gemini: () => ({ ...provider(`${mocks.gemini.url}/v1beta`), kind: "gemini" }),
    bedrock: () => ({ kind: "bedrock", base_url: mocks.bedrock.url, aws_region: "us-east-1", api_key_secret: "BEDROCK_KEYS", region: "us" }),
  };
  return Object.fromEntries(kinds.map((kind) => [kind, entry[kind]()]));
}

/** A model `<kind>-model` per kind, served by that kind's provider as `<kind>-upstream`. */
export function kindModels(kinds) {
  return Object.fromEntries(kinds.map((k) => [`${k}-model`, { targets: [{ provider: k, model: `${k}-upstream` }] }]));
}

export function chatBody(model, extra = {}) {
  return { model, messages: [{ role: "user", content: "Hi there" }], ...extra };
}

/** POSTs JSON to the gateway with the development key; returns { res, json, text }. */
export async function post(url, path, body, { key = DEV_GATEWAY_KEY, headers = {} } = {}) {
  const res = await fetch(url + path, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { res, json, text };
}

/** Reads an SSE response, returning each `data:` payload with its arrival time. */
export async function readSse(res) {
  const events = [];
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (data) events.push({ data, at: Date.now() });
    }
  }
  return events;
}

/** Asserts an OpenAI-shaped error body and returns its error object. */
export function openAiError(json) {
  if (!json || typeof json.error !== "object") throw new Error(`not an OpenAI error body: ${JSON.stringify(json)}`);
  for (const field of ["message", "type", "code"]) {
    if (typeof json.error[field] !== "string") throw new Error(`error.${field} missing in ${JSON.stringify(json)}`);
  }
  if (!("param" in json.error)) throw new Error(`error.param missing in ${JSON.stringify(json)}`);
  return json.error;
}
