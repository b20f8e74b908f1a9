// CPU per relayed stream event in workerd for several ways a Worker can hand a provider's
// stream to its client: the evidence behind the stream figures (docs/PERFORMANCE.md › Streams). Each
// design is a few lines of JS in its own Miniflare (its own workerd), relaying 200-event
// streams from a local upstream to C concurrent clients; the CPU is workerd's, from /proc.
//
//   node scripts/relay-designs.mjs [design,design,...]
//   ROUNDS=3 SECONDS=5 GAP=1 node scripts/relay-designs.mjs native,pump,pipe-tail
//
// GAP is the upstream's pause between events in ms (0: back to back). Only ratios between
// designs in one run mean anything on a shared machine. CUT=1 instead has the upstream cut
// its connection after two events and prints how each design's client stream ended (the
// designs with a tail try to end it with an error event). TTFB=1 instead times single
// streams (c=1, N=300 each) whose events the upstream writes back to back, each its own write
// (a setImmediate between, as scripts/bench's mock), with workerd alone on core 0 and this
// process on core 1 when there are two: the p50 of the response head, the first body byte and
// the last, per design (EVENTS sets the stream's length). Each design serves on a socket of its
// own, as deployed; VIA_ENTRY=1 puts Miniflare's entry Worker in front, as runs before
// 2026-12-03 11:00 UTC had it.
import { Miniflare } from "miniflare";
import http from "node:http";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { withStartedWorkerd, pinToCore } from "./lib/workerd-process.mjs";
import { ownSocket, servedUrl } from "./lib/gateway.mjs";

const EVENTS = Number(process.env.EVENTS ?? 200);
const CLIENTS = 16;
const GAP = Number(process.env.GAP ?? 1);
const SECONDS = Number(process.env.SECONDS ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

const event = (n) => `data: {"choices":[{"delta":{"content":"w${n}"}}]}\n\n`;
const CUT = process.env.CUT === "1";
const TTFB = process.env.TTFB === "1";
const upstream = http.createServer(async (req, res) => {
  res.writeHead(200, { "content-type": "text/event-stream" });
  let n = 0;
  if (TTFB) {
    res.flushHeaders();
    for (; n < EVENTS; n++) {
      if (n) await new Promise((resolve) => setImmediate(resolve));
      res.write(event(n));
    }
    res.end("data: [DONE]\n\n");
    return;
  }
  if (CUT) {
    res.write(event(0));
    setTimeout(() => res.write(event(1)), 10);
    setTimeout(() => res.socket.destroy(), 30);
    return;
  }
  if (!GAP) {
    for (; n < EVENTS; n++) res.write(event(n));
    res.end("data: [DONE]\n\n");
    return;
  }
  const timer = setInterval(() => {
    res.write(event(n));
    if (++n === EVENTS) {
      clearInterval(timer);
      res.end("data: [DONE]\n\n");
    }
  }, GAP);
});
upstream.keepAliveTimeout = 60000;
await new Promise((resolve) => upstream.listen(0, "127.0.0.1", resolve));
const upstreamUrl = `http://127.0.0.1:${upstream.address().port}/`;

// Each body has `answer` (the upstream's Response) and `H` (the response init) in scope.
// `watch(stream)` reads a stream in JS as a gateway watching the events would.
const TAIL = `new TextEncoder().encode("data: {\\"error\\":{}}\\n\\n")`;
const designs = {
  // The body as it is: what the JS and Rust floors do.
  native: `return new Response(answer.body, H);`,
  // Read in JS, written into the runtime's own stream, each write awaited, a tail after a
  // cut (the gateway's pump).
  pump: `const r = answer.body.getReader(); const { readable, writable } = new IdentityTransformStream(); const w = writable.getWriter();
    (async () => { for (;;) { let read; try { read = await r.read(); } catch { await w.write(${TAIL}); await w.close(); return; }
      if (read.done) { await w.close(); return; } await w.write(read.value); } })();
    return new Response(readable, H);`,
  // Read in JS, enqueued into a JS stream the runtime pulls from.
  pull: `const r = answer.body.getReader();
    return new Response(new ReadableStream({ async pull(c) { const { done, value } = await r.read(); if (done) c.close(); else c.enqueue(value); } }, { highWaterMark: 0 }), H);`,
  // Piped by the runtime, with room for a tail after it (an error event, a missing [DONE]).
  "pipe-tail": `const { readable, writable } = new IdentityTransformStream();
    answer.body.pipeTo(writable, { preventAbort: true, preventClose: true })
      .then(() => writable.getWriter().close(), async () => { const w = writable.getWriter(); await w.write(${TAIL}); await w.close(); });
    return new Response(readable, H);`,
  // A tee: one branch is the body, the other watched in JS (no tail possible).
  "tee-body": `const [a, b] = answer.body.tee(); watch(b);
    return new Response(a, H);`,
  // A tee: one branch piped with room for a tail, the other watched in JS.
  "tee-pipe-tail": `const { readable, writable } = new IdentityTransformStream(); const [a, b] = answer.body.tee(); const watching = watch(b);
    a.pipeTo(writable, { preventAbort: true, preventClose: true })
      .then(async () => { await watching; await writable.getWriter().close(); }, async () => { const w = writable.getWriter(); await w.write(${TAIL}); await w.close(); });
    return new Response(readable, H);`,
  // Piped with room for a tail into a stream whose readable side is tee'd: the body and a watched copy.
  "pipe-tail-tee": `const { readable, writable } = new IdentityTransformStream();
    answer.body.pipeTo(writable, { preventAbort: true, preventClose: true })
      .then(() => writable.getWriter().close(), async () => { const w = writable.getWriter(); await w.write(${TAIL}); await w.close(); });
    const [a, b] = readable.tee(); watch(b);
    return new Response(a, H);`,
};

const only = process.argv[2]?.split(",");
for (const name of only ?? []) if (!designs[name]) throw new Error(`no design ${name}: ${Object.keys(designs).join(", ")}`);
const cpuMs = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
const pinned = TTFB && availableParallelism() >= 2;
if (pinned) pinToCore(process.pid, 1);
const timingAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
/** One stream at c=1: ms to the response head, the first body byte and the last. */
const timed = (url) =>
  new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const since = () => Number(process.hrtime.bigint() - t0) / 1e6;
    http
      .get(url, { agent: timingAgent }, (res) => {
        const head = since();
        let first = 0;
        let text = "";
        res.on("data", (chunk) => {
          first ||= since();
          text += chunk;
        });
        res.on("end", () => (text.endsWith("[DONE]\n\n") ? resolve({ head, first, last: since() }) : reject(new Error("no [DONE]"))));
      })
      .on("error", reject);
  });
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const results = {};
for (let round = 0; round < (CUT || TTFB ? 1 : ROUNDS); round++) {
  for (const [name, body] of Object.entries(designs)) {
    if (only && !only.includes(name)) continue;
    const script = `const H = { headers: { "content-type": "text/event-stream" } };
      const watch = async (stream) => { const r = stream.getReader(); let bytes = 0; for (;;) { const { done, value } = await r.read(); if (done) return bytes; bytes += value.length; } };
      export default { async fetch() { const answer = await fetch(${JSON.stringify(upstreamUrl)}); ${body} } }`;
    // Each design on a socket of its own, as deployed (VIA_ENTRY=1: through Miniflare's entry Worker).
    const direct = process.env.VIA_ENTRY !== "1";
    const { mf, url, pids: [pid] } = await withStartedWorkerd(async () => {
      const relay = new Miniflare({ modules: true, script, port: 0, compatibilityDate: "2025-09-01", ...ownSocket(direct) });
      return { mf: relay, url: await servedUrl(relay, direct) };
    });
    if (TTFB) {
      if (pinned) pinToCore(pid, 0);
      for (let i = 0; i < 50; i++) await timed(url);
      const runs = [];
      for (let i = 0; i < Number(process.env.N ?? 300); i++) runs.push(await timed(url));
      const p50 = (field) => median(runs.map((r) => r[field])).toFixed(3);
      console.log(`${name}: head ${p50("head")} ms, first byte ${p50("first")} ms, last byte ${p50("last")} ms (p50, ${EVENTS} events)`);
      await mf.dispose();
      continue;
    }
    if (CUT) {
      const ending = await fetch(url).then((r) => r.text()).then((t) => JSON.stringify(t.slice(-40)), (e) => `failed: ${e}`);
      console.log(`${name}: the client's stream ended with ${ending}`);
      await mf.dispose();
      continue;
    }
    const one = async () => {
      const text = await (await fetch(url)).text();
      if (!text.endsWith("[DONE]\n\n")) throw new Error(`${name}: the stream did not end with [DONE]`);
    };
    for (let i = 0; i < 20; i++) await one();
    const cpuBefore = cpuMs(pid);
    let streams = 0;
    const until = Date.now() + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (Date.now() < until) {
          await one();
          streams++;
        }
      }),
    );
    const perEvent = ((cpuMs(pid) - cpuBefore) * 1000) / (streams * EVENTS);
    (results[name] ??= []).push(perEvent);
    console.log(`round ${round} ${name}: ${streams} streams, ${perEvent.toFixed(1)} µs CPU/event`);
    await mf.dispose();
  }
}
if (!CUT && !TTFB) console.log("--- medians (min–max), µs of workerd CPU per relayed event");
for (const [name, xs] of Object.entries(results)) {
  const sorted = [...xs].sort((a, b) => a - b);
  console.log(`${name}: ${sorted[sorted.length >> 1].toFixed(1)} (${sorted[0].toFixed(1)}–${sorted.at(-1).toFixed(1)})`);
}
upstream.close();
