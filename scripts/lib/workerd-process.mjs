// The workerd processes Miniflare starts, read from /proc (Linux).
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** The workerd processes this node process started (Miniflare's children), as numbers. */
export function workerdChildren() {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (ppid === process.pid && comm.startsWith("workerd")) pids.push(Number(entry));
    } catch {
      // The process ended while the list was read.
    }
  }
  return pids;
}

/** Runs `start` (which starts a Miniflare) and returns what it returned, with the workerd
 * processes it started as `pids`. */
export async function withStartedWorkerd(start) {
  const before = new Set(workerdChildren());
  const started = await start();
  return { ...started, pids: workerdChildren().filter((pid) => !before.has(pid)) };
}

/** Moves every thread of process `pid` onto one CPU core (taskset -a; Linux). */
export function pinToCore(pid, core) {
  execFileSync("taskset", ["-a", "-p", "-c", String(core), String(pid)], { stdio: "pipe" });
}

/** A process's memory field from /proc/<pid>/status (VmRSS, RssAnon, ...) in MB; null if unread. */
export function statusMb(pid, field = "VmRSS") {
  try {
    const match = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`${field}:\\s+(\\d+) kB`));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}
