// Where a request's added time goes at c=1, split at the provider: "before" is the client's
// send until the mock has the whole upstream request (what the subject does first: for the
// gateway the key check, parsing, routing, the upstream request), "after" is the mock's answer
// until the client has it (JSON: the mock's write of the body until the client's last byte;
// stream: the mock's first event until the client's first byte). The client and the mock
// share this process and its monotonic clock (`process.hrtime`), pinned to core 1; each
// subject's workerd is pinned alone to core 0, on a socket of its own (as deployed).
//
//   node scripts/latency-split.mjs [--requests=1000] [--rounds=3] [--subjects=R,G]
//
// Subjects: R the Rust floor (bench/rust-floor, built by scripts/build-rust-floor), G the
// gateway (build/, usage store on, the unlimited bench key). Each round runs every subject in
// turn; the figures are medians over rounds of each round's p50, with min–max.
import http from "node:http";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { startGateway, startRustFloor, putConfig, benchConfig, DEV_GATEWAY_KEY, ROOT } from "./lib/gateway.mjs";
import { withStartedWorkerd, pinToCore } from "./lib/workerd-process.mjs";
import { option } from "./lib/options.mjs";

const REQUESTS = Number(option("requests", 1000));
const ROUNDS = Number(option("rounds", 3));
const SUBJECTS = option("subjects", "R,G").split(",");
const EVENTS = 20;
pinToCore(process.pid, 1);
// Built once, then only when bench/rust-floor changes.
if (SUBJECTS.includes("R")) execFileSync(path.join(ROOT, "scripts/build-rust-floor"), { stdio: "inherit" });

const now = () => process.hrtime.bigint();
// The current request's marks at the mock (requests are one at a time).
let marks = {};
const event = (delta, finish = null) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "bench", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const mock = http.createServer((req, res) => {
  let body = "";
  req.on("data", (d) => (body += d));
  req.on("end", () => {
    marks.received = now();
    if (JSON.parse(body).stream) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      marks.answered = now();
      res.write(event({ role: "assistant", content: "" }));
      for (let i = 0; i < EVENTS - 3; i++) res.write(event({ content: `w${i} ` }));
      res.write(event({}, "stop"));
      const usage = { prompt_tokens: 5, completion_tokens: EVENTS, total_tokens: EVENTS + 5 };
      res.write(`data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "bench", choices: [], usage })}\n\n`);
      res.end("data: [DONE]\n\n");
    } else {
      const text = JSON.stringify({
        id: "c1", object: "chat.completion", created: 1, model: "bench",
        choices: [{ index: 0, message: { role: "assistant", content: "Hello there" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
      });
      marks.answered = now();
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    }
  });
});
mock.on("connection", (socket) => socket.setNoDelay(true));
await new Promise((resolve) => mock.listen(0, "127.0.0.1", resolve));
const mockUrl = `http://127.0.0.1:${mock.address().port}`;

const start = {
  R: async () => {
    const { mf, url } = await startRustFloor(mockUrl);
    return { mf, url: `${url}/v1/chat/completions` };
  },
  G: async () => {
    const { mf, url } = await startGateway({ direct: true });
    await putConfig(url, benchConfig(`${mockUrl}/v1`));
    return { mf, url: `${url}/v1/chat/completions` };
  },
};
const bodies = {
  json: JSON.stringify({ model: "bench", messages: [{ role: "user", content: "Say hello" }], max_tokens: 100 }),
  stream: JSON.stringify({ model: "bench", messages: [{ role: "user", content: "Say hello" }], stream: true }),
};
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const ms = (from, to) => Number(to - from) / 1e6;
const once = (target, kind) =>
  new Promise((resolve, reject) => {
    marks = {};
    const text = bodies[kind];
    const sent = now();
    const req = http.request(
      {
        agent, host: target.hostname, port: target.port, path: target.pathname, method: "POST",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text), authorization: `Bearer ${DEV_GATEWAY_KEY}` },
      },
      (res) => {
        let first = 0n;
        res.on("data", () => (first ||= now()));
        res.on("end", () => {
          const got = kind === "stream" ? first : now();
          resolve({ ok: res.statusCode === 200 && marks.answered, before: ms(sent, marks.received), after: ms(marks.answered, got), total: ms(sent, got) });
        });
      },
    );
    req.on("socket", (socket) => socket.setNoDelay(true));
    req.on("error", reject);
    req.end(text);
  });

const p50 = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
const perRound = {}; // subject -> kind -> figure -> [p50 per round]
for (let round = 1; round <= ROUNDS; round++) {
  for (const name of SUBJECTS) {
    const { mf, url, pids } = await withStartedWorkerd(start[name]);
    for (const pid of pids) pinToCore(pid, 0);
    const target = new URL(url);
    for (const kind of Object.keys(bodies)) for (let i = 0; i < 300; i++) await once(target, kind);
    for (const kind of Object.keys(bodies)) {
      const runs = [];
      for (let i = 0; i < REQUESTS; i++) runs.push(await once(target, kind));
      if (runs.some((r) => !r.ok)) throw new Error(`${name} ${kind}: a request failed`);
      for (const figure of ["before", "after", "total"]) {
        ((perRound[name] ??= {})[kind] ??= {})[figure] ??= [];
        perRound[name][kind][figure].push(p50(runs.map((r) => r[figure])));
      }
    }
    await mf.dispose();
  }
  console.error(`round ${round} of ${ROUNDS} done`);
}
mock.close();

const show = (values) => `${p50(values).toFixed(3)} (${Math.min(...values).toFixed(3)}–${Math.max(...values).toFixed(3)})`;
console.log(`p50 ms over ${ROUNDS} rounds of ${REQUESTS} requests, median (min–max); stream: ${EVENTS} events, to the first byte`);
for (const kind of Object.keys(bodies)) {
  for (const name of SUBJECTS) {
    const f = perRound[name][kind];
    console.log(`${name} ${kind.padEnd(6)} total ${show(f.total)}  before the provider ${show(f.before)}  after it ${show(f.after)}`);
  }
  if (SUBJECTS.includes("R") && SUBJECTS.includes("G")) {
    const added = (figure) => perRound.G[kind][figure].map((g, i) => g - perRound.R[kind][figure][i]);
    console.log(`G − R ${kind.padEnd(6)} total ${show(added("total"))}  before ${show(added("before"))}  after ${show(added("after"))}`);
  }
}
