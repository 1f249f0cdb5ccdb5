// Reads the two facts systemd does not report: whether a unit's main process is stopped by SIGSTOP,
// and the kernel's monotonic time (to turn systemd's *TimestampMonotonic values into wall time).
// The root is injectable so tests lay out a fake /proc.

import { readFile } from "node:fs/promises";
import { join } from "node:path";

export const DEFAULT_PROC_ROOT = "/proc";

export interface ProcReader {
  /** The state letter of /proc/PID/stat ('R', 'S', 'T', …); null when the process is gone or unreadable. */
  processState(pid: number): Promise<string | null>;
  /** Microseconds since boot from /proc/uptime; null when unreadable. */
  uptimeUs(): Promise<number | null>;
}

/**
 * The state field follows the command name, which is in parentheses and may itself contain spaces and
 * ')' — so the state is the first token after the LAST ')'.
 */
export function parseStatState(stat: string): string | null {
  const close = stat.lastIndexOf(")");
  if (close < 0) return null;
  const state = stat.slice(close + 1).trimStart()[0];
  return state !== undefined && /^[A-Za-z]$/.test(state) ? state : null;
}

/**
 * /proc/uptime counts CLOCK_BOOTTIME, which equals systemd's CLOCK_MONOTONIC unless the machine was
 * suspended: servers are not, and a 10 ms resolution is plenty for "since when is this unit active".
 */
export function parseUptimeUs(text: string): number | null {
  const first = text.trim().split(/\s+/)[0];
  if (first === undefined || !/^\d+(\.\d+)?$/.test(first)) return null;
  return Math.round(Number(first) * 1_000_000);
}

/** 'T' is a job-control stop (SIGSTOP/SIGTSTP); 't' (stopped by a tracer) is not a freeze we applied. */
export function isFrozenState(state: string | null): boolean | null {
  return state === null ? null : state === "T";
}

export function createProcReader(root: string = DEFAULT_PROC_ROOT): ProcReader {
  async function read(path: string): Promise<string | null> {
    try {
      return await readFile(join(root, path), "utf8");
    } catch {
      return null;
    }
  }
  return {
    async processState(pid) {
      if (!Number.isSafeInteger(pid) || pid <= 0) return null;
      const stat = await read(join(String(pid), "stat"));
      return stat === null ? null : parseStatState(stat);
    },
    async uptimeUs() {
      const text = await read("uptime");
      return text === null ? null : parseUptimeUs(text);
    },
  };
}
