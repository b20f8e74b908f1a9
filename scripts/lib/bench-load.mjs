// The bench's load generator, in its own process (forked by scripts/bench.mjs and pinned
// with the mock to the "rest" core, never in the mock's process). It takes one job at a
// time over IPC and answers with the figures. Client: node:http with a keep-alive
// http.Agent per job (one socket per concurrent worker) and TCP_NODELAY on every socket
// (the agent's `noDelay` plus `setNoDelay(true)` when a socket is handed out), bodies
// sent with a content-length. Every loop is bounded in count and in time.
import http from "node:http";

const now = () => process.hrtime.bigint();
const ms = (ns) => Number(ns) / 1e6;
const percentile = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : null);
/** A single request may not take longer than this (a stuck subject ends the job, not the run). */
const REQUEST_TIMEOUT_MS = 30_000;

function agentFor(concurrency) {
  return new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency, noDelay: true });
}

/** A chat chunk's first text: a `content` member whose string is not empty. */
const CONTENT = /"content":\s*"[^"]/;

/**
 * One POST. Resolves (never rejects) with status (0 on a transport error), time to the
 * first body byte, to the first content (a stream's first non-empty `content`: a gateway
 * answers once it has one, where a pass-through sends the provider's opening event at
 * once) and to the last, and, when `keep`, the body text (to check it and count its SSE
 * events).
 */
function send(agent, target, job, keep = false) {
  return new Promise((resolve) => {
    const t0 = now();
    let first = 0n;
    let firstContent = 0n;
    // The end of the previous chunk, for a member split between two chunks.
    let carry = "";
    let bytes = 0;
    const chunks = keep ? [] : null;
    const req = http.request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method: "POST",
        headers: { "content-type": "application/json", "content-length": job.bodyLength, ...job.headers },
      },
      (res) => {
        res.on("data", (chunk) => {
          if (!first) first = now();
          if (!firstContent) {
            const text = carry + chunk.toString("latin1");
            if (CONTENT.test(text)) firstContent = now();
            else carry = text.slice(-32);
          }
          bytes += chunk.length;
          if (chunks) chunks.push(chunk);
        });
        res.on("end", () => {
          const t1 = now();
          resolve({
            status: res.statusCode,
            ttfb: ms((first || t1) - t0),
            ttfc: ms((firstContent || t1) - t0),
            total: ms(t1 - t0),
            bytes,
            text: chunks ? Buffer.concat(chunks).toString("utf8") : null,
          });
        });
        res.on("error", (err) => resolve({ status: 0, error: err.message }));
      },
    );
    req.on("socket", (socket) => socket.setNoDelay(true));
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", (err) => resolve({ status: 0, error: err.message }));
    req.end(job.body);
  });
}

const ok = (r) => r.status >= 200 && r.status < 300;
const describe = (r) => (r.status ? `HTTP ${r.status}: ${String(r.text ?? "").slice(0, 200)}` : r.error);
/** SSE events in a body: `data:` lines other than the closing `[DONE]`. */
const countEvents = (text) => (text.match(/^data:(?! \[DONE\])/gm) ?? []).length;

function prepare(job) {
  const body = typeof job.body === "string" ? job.body : JSON.stringify(job.body);
  return { ...job, body, bodyLength: Buffer.byteLength(body), target: new URL(job.url) };
}

/** One request with the body kept: does the subject serve this case, and how many events. */
async function probe(job) {
  const agent = agentFor(1);
  try {
    const r = await send(agent, job.target, job, true);
    if (!ok(r)) return { ok: false, error: describe(r) };
    if (job.expect && !r.text.includes(job.expect)) return { ok: false, error: `answer lacks ${JSON.stringify(job.expect)}: ${r.text.slice(0, 200)}` };
    return { ok: true, status: r.status, bytes: r.bytes, events: countEvents(r.text), total_ms: r.total };
  } finally {
    agent.destroy();
  }
}

/**
 * Sequential requests on one keep-alive connection: `warmup` untimed, then `n` timed
 * (stopped early at `maxSeconds`). With `after`, one untimed request follows each timed
 * one (the failover case keeps its endpoint's failure ratio below the breaker's).
 */
async function latency(job) {
  const agent = agentFor(1);
  const after = job.after ? prepare(job.after) : null;
  const deadline = Date.now() + job.maxSeconds * 1000;
  const totals = [];
  const ttfbs = [];
  const ttfcs = [];
  let non2xx = 0;
  let errors = 0;
  let lastFailure = null;
  try {
    for (let i = 0; i < job.warmup + job.n && Date.now() < deadline; i++) {
      const r = await send(agent, job.target, job);
      if (!ok(r)) {
        if (r.status) non2xx++;
        else errors++;
        lastFailure = describe(r);
        if (non2xx + errors > Math.max(10, job.n / 10)) break; // a subject that fails is not measured
      } else if (i >= job.warmup) {
        totals.push(r.total);
        ttfbs.push(r.ttfb);
        ttfcs.push(r.ttfc);
      }
      if (after) {
        const a = await send(agent, after.target, after);
        if (!ok(a)) {
          non2xx++;
          lastFailure = `(between requests) ${describe(a)}`;
        }
      }
    }
  } finally {
    agent.destroy();
  }
  totals.sort((a, b) => a - b);
  ttfbs.sort((a, b) => a - b);
  ttfcs.sort((a, b) => a - b);
  return {
    n: totals.length,
    p50: percentile(totals, 0.5),
    p99: percentile(totals, 0.99),
    ttfb_p50: percentile(ttfbs, 0.5),
    ttfb_p99: percentile(ttfbs, 0.99),
    ttfc_p50: percentile(ttfcs, 0.5),
    non2xx,
    errors,
    last_failure: lastFailure,
    timed_out: totals.length < job.n,
  };
}

/** `concurrency` closed-loop workers for `seconds` after `warmupSeconds`: req/s of 2xx answers. */
async function throughput(job) {
  const agent = agentFor(job.concurrency);
  const statuses = {};
  let done = 0;
  let non2xx = 0;
  let errors = 0;
  let lastFailure = null;
  let counting = false;
  const run = async (until) => {
    while (Date.now() < until) {
      const r = await send(agent, job.target, job);
      if (!counting) continue;
      if (ok(r)) done++;
      else {
        if (r.status) {
          non2xx++;
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        } else errors++;
        lastFailure = describe(r);
      }
    }
  };
  try {
    const workers = (seconds) => {
      const until = Date.now() + seconds * 1000;
      return Promise.all(Array.from({ length: job.concurrency }, () => run(until)));
    };
    await workers(job.warmupSeconds);
    counting = true;
    job.onStart?.();
    const t0 = now();
    await workers(job.seconds);
    const elapsed = ms(now() - t0) / 1000;
    return { rps: done / elapsed, done, seconds: elapsed, non2xx, errors, statuses, last_failure: lastFailure };
  } finally {
    agent.destroy();
  }
}

const jobs = { probe, latency, throughput };

process.on("message", async (message) => {
  const { id, op, job } = message;
  try {
    const prepared = prepare(job);
    if (op === "throughput") prepared.onStart = () => process.send({ id, started: true });
    const result = await jobs[op](prepared);
    process.send({ id, result });
  } catch (err) {
    process.send({ id, error: err.stack ?? String(err) });
  }
});
process.on("disconnect", () => process.exit(0));
process.send({ ready: true });
