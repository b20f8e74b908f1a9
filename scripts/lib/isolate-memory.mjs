// The memory of a Worker's isolate, read through workerd's inspector (Miniflare's
// `inspectorPort`), with no hook in the Worker:
//   - the JS heap in use (V8, `Runtime.getHeapUsage`);
//   - the wasm instances' linear memory, which only grows: every live `WebAssembly.Memory`,
//     found with `Runtime.queryObjects` (which collects garbage first, so the heap read after
//     it is what is live). workerd's inspector answers `HeapProfiler.collectGarbage` only once.
// Needs a global WebSocket (Node 20: `node --experimental-websocket`).

/** Connects to the inspector on `port`; `measure()` gives `{ heap_mb, wasm_mb }` (null where unread). */
export async function isolateMemory(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => !String(t.title).includes("internal")) ?? targets[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", reject);
  });
  let nextId = 1;
  const pending = new Map();
  let contextId;
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.method === "Runtime.executionContextCreated") contextId ??= message.params.context.id;
    if (message.id && pending.has(message.id)) {
      pending.get(message.id)(message);
      pending.delete(message.id);
    }
  });
  // A command the runtime does not answer resolves with nothing after 5 s.
  const inspect = (method, params = {}) =>
    new Promise((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve({});
      }, 5000);
      pending.set(id, (message) => {
        clearTimeout(timer);
        resolve(message);
      });
      ws.send(JSON.stringify({ id, method, params }));
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
    close: () => ws.close(),
  };
}
