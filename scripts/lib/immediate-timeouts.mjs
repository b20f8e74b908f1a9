// Makes a 0 ms `setTimeout` a `setImmediate` in this process, for the mock provider the
// bench and scripts/ab.mjs run: the mock waits `sleep(gapMs)` between stream events, and a
// 0 ms Node timer is really ~1 ms, which would pace a 200-event stream at 200+ ms and hide
// what a subject spends per event. Each event is still its own write (its own chunk on the
// wire), only without the wait. Timers of other lengths are unchanged.
export function immediateZeroTimeouts() {
  const timeout = globalThis.setTimeout;
  globalThis.setTimeout = (fn, ms, ...rest) => {
    if (ms) return timeout(fn, ms, ...rest);
    // The mock unrefs its sleeps; an unref'd immediate would wait for other I/O to wake the loop.
    const immediate = setImmediate(fn, ...rest);
    immediate.unref = () => immediate;
    return immediate;
  };
}
