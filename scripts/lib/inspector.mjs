// A session with a Worker's isolate through workerd's inspector (Miniflare's `inspectorPort`).
// Needs a global WebSocket (Node 20: `node --experimental-websocket`).

/**
 * Connects to the isolate's target on `port`. `send(method, params)` resolves with the
 * inspector's answer; with `timeoutMs`, a command left unanswered resolves with `{}` then.
 * `onEvent(fn)` sees every event the inspector pushes.
 */
export async function openInspector(port, { timeoutMs = 0 } = {}) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => !String(t.title).includes("internal")) ?? targets[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", reject);
  });
  let nextId = 1;
  const pending = new Map();
  const listeners = [];
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.method) for (const listener of listeners) listener(message);
    if (message.id && pending.has(message.id)) {
      pending.get(message.id)(message);
      pending.delete(message.id);
    }
  });
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      const id = nextId++;
      const timer = timeoutMs
        ? setTimeout(() => {
            pending.delete(id);
            resolve({});
          }, timeoutMs)
        : null;
      pending.set(id, (message) => {
        clearTimeout(timer);
        resolve(message);
      });
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { send, onEvent: (listener) => listeners.push(listener), close: () => ws.close() };
}
