// The small interfaces the master core talks through. Each has a real implementation at the edge
// (systemd, HTTP, wall clock) and a simulated one (src/sim) that runs in virtual time.

/** Time. Everything in the master and the in-process simulator reads time from here, never Date.now(). */
export interface Clock {
  now(): number;
  /** Resolves after `ms`; resolves early (without error) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, ms));
      function done() {
        signal?.removeEventListener("abort", done);
        clearTimeout(timer);
        resolve();
      }
      signal?.addEventListener("abort", done, { once: true });
    }),
};

export type ActiveState = "active" | "reloading" | "inactive" | "failed" | "activating" | "deactivating" | "unknown";

export interface UnitState {
  id: number;
  activeState: ActiveState;
  subState: string;
  /** 0 when no main process */
  mainPid: number;
  /** When the unit entered its current active state (ms since epoch), null if unknown */
  sinceMs: number | null;
  /** systemd NRestarts */
  restarts: number;
  /** Process stopped by SIGSTOP (from /proc/PID/stat 'T'); null when it cannot be read */
  frozen: boolean | null;
  /** How the unit's last main process ended; null when none ended yet, absent when not read */
  lastExit?: UnitExit | null;
}

/** How a unit's main process ended (systemd Result, ExecMainCode, ExecMainStatus). */
export interface UnitExit {
  /** systemd's Result: "success", "exit-code", "signal", "core-dump", "timeout", "start-limit-hit"… */
  result: string;
  /** "exited": status is its exit code; "killed" or "dumped": status is the signal */
  code: "exited" | "killed" | "dumped" | "unknown";
  status: number;
  /** From the main process's start to its exit; null when systemd did not date both */
  ranMs: number | null;
}

export type Signal = "SIGSTOP" | "SIGCONT" | "SIGKILL" | "SIGTERM";

export interface ServiceManager {
  /** State of every runner unit, in one call (one `systemctl show` for systemd). */
  showAll(ids: readonly number[]): Promise<Map<number, UnitState>>;
  start(id: number): Promise<void>;
  stop(id: number): Promise<void>;
  restart(id: number): Promise<void>;
  /** Signal the unit's main process (systemctl kill -s SIG --kill-whom=main). */
  kill(id: number, signal: Signal): Promise<void>;
  /** Dead-man switch: SIGSTOP the unit's main process at atMs unless disarmed first. Lives in the
   *  service manager, so it fires even if the daemon dies (systemd: a transient timer). */
  armFreeze?(id: number, atMs: number): Promise<void>;
  /** Cancel an armed freeze; a no-op when none is armed. */
  disarmFreeze?(id: number): Promise<void>;
  /** Moves an armed freeze to atMs without a moment unarmed (the new one armed before the old one
   *  goes); disarmFreeze cancels it too. Absent: armFreeze, which must then be atomic. */
  rearmFreeze?(id: number, atMs: number): Promise<void>;
}

export interface PoolToolApi {
  /** Majority max height reported by PoolTool for the pool's network */
  majorityMax(): Promise<number>;
  /** Share our tip height */
  shareTip(height: number): Promise<void>;
}

/** Who is behind a runner's REST port: the node secret goes only to the runner unit's main process,
 *  never to another process that bound the port (while the runner restarted, say). */
export interface ListenerCheck {
  /** null when every socket listening on runner `id`'s REST port is held by process `pid`;
   *  otherwise why not, for the log. */
  whyNotRunner(id: number, pid: number): Promise<string | null>;
}
