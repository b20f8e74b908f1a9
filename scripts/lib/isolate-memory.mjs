// The memory of a Worker's isolate, read through workerd's inspector (Miniflare's
// `inspectorPort`), with no hook in the Worker:
//   - the JS heap in use (V8, `Runtime.getHeapUsage`);
//   - the wasm instances' linear memory, which only grows: every live `WebAssembly.Memory`,
//     found with `Runtime.queryObjects` (which collects garbage first, so the heap read after
//     it is what is live). workerd's inspector answers `HeapProfiler.collectGarbage` only once.
// Needs a global WebSocket (Node 20: `node --experimental-websocket`).
import { openInspector } from "./inspector.mjs";

/** Connects to the inspector on `port`; `measure()` gives `{ heap_mb, wasm_mb }` (null where unread). */
export async function isolateMemory(port) {
  // workerd leaves some commands unanswered (see above): none is waited for past 5 s.
  const { send: inspect, onEvent, close } = await openInspector(port, { timeoutMs: 5000 });
  let contextId;
  onEvent((message) => {
    if (message.method === "Runtime.executionContextCreated") contextId ??= message.params.context.id;
  });

  async function wasmMemoryMb() {
    if (contextId === undefined) await inspect("Runtime.enable");
    const proto = await inspect("Runtime.evaluate", { expression: "WebAssembly.Memory.prototype", contextId });
    const prototypeObjectId = proto.result?.result?.objectId;
    if (!prototypeObjectId) return null;
    const found = await inspect("Runtime.queryObjects", { prototypeObjectId });
    const objectId = found.result?.objects?.objectId;
    if (!objectId) return null;
    const sizes = await inspect("Runtime.callFunctionOn", {
      objectId,
      functionDeclaration: "function () { return this.reduce((sum, memory) => sum + memory.buffer.byteLength, 0); }",
      returnByValue: true,
    });
    const bytes = sizes.result?.result?.value;
    return typeof bytes === "number" ? bytes / 2 ** 20 : null;
  }

  return {
    async measure() {
      const wasm_mb = await wasmMemoryMb();
      const { result } = await inspect("Runtime.getHeapUsage");
      return { heap_mb: result ? result.usedSize / 2 ** 20 : null, wasm_mb };
    },
    close,
  };
}
