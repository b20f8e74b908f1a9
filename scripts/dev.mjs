// Local gateway: mock providers + the built Worker in workerd (Miniflare) with real
// local KV and Durable Objects, seeded with a config file. Run through scripts/dev.
import { parseArgs } from "node:util";
import { startGateway, putConfig, loadConfig, readDevVars, DEV_GATEWAY_KEY, DEV_ADMIN_TOKEN, MOCK_PROVIDER_KEY, MOCK_BEDROCK_CREDENTIALS } from "./lib/gateway.mjs";
import { startMockProvider } from "../tests/e2e/mock-providers.mjs";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    host: { type: "string", default: "127.0.0.1" },
    config: { type: "string", default: "config/default.json" },
    "no-mocks": { type: "boolean", default: false },
    persist: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
  },
});

const MOCKS = [
  { name: "mock-us", port: 9911 },
  { name: "mock-eu", port: 9912 },
  { name: "mock-anthropic", port: 9913, format: "anthropic" },
  { name: "mock-gemini", port: 9914, format: "gemini" },
  { name: "mock-bedrock", port: 9915, format: "bedrock", apiKey: MOCK_BEDROCK_CREDENTIALS },
];

const mocks = [];
if (!values["no-mocks"]) {
  for (const { name, port, format, apiKey } of MOCKS) {
    mocks.push(await startMockProvider({ name, port, format, apiKey: apiKey ?? MOCK_PROVIDER_KEY }));
  }
}

const devVars = readDevVars();
const { mf, url } = await startGateway({
  port: Number(values.port),
  host: values.host,
  bindings: devVars,
  persist: values.persist,
  log: values.verbose,
  // The usage Queue delivers in batches of up to a second, as in production.
  usageBatchTimeoutMs: 1000,
});
const stored = await putConfig(url, loadConfig(values.config), devVars.ADMIN_TOKEN || DEV_ADMIN_TOKEN);

const secretNames = Object.keys(devVars);
console.log(`
edge AI gateway running at ${url}  (config: ${values.config}, ${stored.models} models, ${stored.providers} providers)
${mocks.length ? `mock providers: ${mocks.map((m) => `${m.name} ${m.url}`).join(", ")}` : "mock providers: off"}
secrets from .dev.vars: ${secretNames.length ? secretNames.join(", ") : "none"}

OpenAI-compatible base URL: ${url}/v1     gateway key: ${DEV_GATEWAY_KEY}
admin token: ${devVars.ADMIN_TOKEN ? "ADMIN_TOKEN from .dev.vars" : DEV_ADMIN_TOKEN}

  curl ${url}/v1/chat/completions \\
    -H "Authorization: Bearer ${DEV_GATEWAY_KEY}" -H "Content-Type: application/json" \\
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'

Anthropic-compatible endpoint: ${url}/v1/messages (Anthropic SDK: baseURL ${url}, apiKey ${DEV_GATEWAY_KEY})
Claude Code: ANTHROPIC_BASE_URL=${url} ANTHROPIC_API_KEY=${DEV_GATEWAY_KEY} claude --model claude-sonnet
Usage dashboard: ${url}/admin/ (admin token: ${devVars.ADMIN_TOKEN ? "ADMIN_TOKEN from .dev.vars" : DEV_ADMIN_TOKEN})

Press Ctrl+C to stop.
`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await Promise.allSettled([mf.dispose(), ...mocks.map((m) => m.close())]);
  process.exit(0);
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
