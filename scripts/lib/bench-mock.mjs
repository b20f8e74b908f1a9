// The bench's mock provider, in its own process (forked by scripts/bench.mjs and pinned with
// the load generator to the "rest" core): tests/e2e/mock-providers.mjs answering at once
// (no gap between stream events). Over IPC it reports its address, and on request how many
// calls it took per upstream model name since the last report (the failover case checks
// that every measured request failed over exactly once). The calls the mock records are
// counted and dropped every 200 ms, so a long run holds no growing list.
//
// Stream events go out back to back: in this process a 0 ms timeout is a setImmediate
// (immediate-timeouts.mjs).
import { startMockProvider } from "../../tests/e2e/mock-providers.mjs";
import { immediateZeroTimeouts } from "./immediate-timeouts.mjs";

immediateZeroTimeouts();

const mock = await startMockProvider({ name: "bench", gapMs: 0 });
let counts = {};
const drain = () => {
  for (const call of mock.calls.splice(0)) {
    const model = typeof call.body?.model === "string" ? call.body.model : "(none)";
    counts[model] = (counts[model] ?? 0) + 1;
  }
};
setInterval(drain, 200).unref();

process.on("message", ({ id, op }) => {
  if (op === "counts") {
    drain();
    process.send({ id, result: counts });
    counts = {};
  }
});
process.on("disconnect", async () => {
  await mock.close();
  process.exit(0);
});
process.send({ ready: true, url: mock.url, baseUrl: mock.baseUrl });
