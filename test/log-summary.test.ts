// Logs an operator can read: one line per action, repeated failures summarised. Unit tests of the
// summariser, then the real master over a simulated world with one runner that stays dead.
import { describe, expect, test } from "bun:test";
import { isFailure, RepeatSummarizer, REPEAT_SUMMARY_MS, summarizingLog } from "../src/log-summary.ts";
import { simConfig, simDeps } from "../src/lab/harness.ts";
import { Master, type MasterLog, type TickReport } from "../src/master/loop.ts";
import { MasterMetrics } from "../src/metrics/master.ts";
import type { ResolvedConfig } from "../src/config/types.ts";
import type { ServiceManager } from "../src/ports.ts";
import { testChainParams } from "../src/sim/chain.ts";
import { World } from "../src/sim/world.ts";
import { FAST_BOOT } from "./sim/helpers.ts";

function fakeClock(t = 0) {
  return { now: () => t, set: (v: number) => void (t = v) };
}

describe("RepeatSummarizer", () => {
  test("the first line at once, repeats counted, one summary per window", () => {
    const c = fakeClock();
    const s = new RepeatSummarizer(c, 60_000);
    expect(s.log("error", "start #2: FAILED")).toEqual([{ level: "error", line: "start #2: FAILED" }]);
    for (let t = 50; t < 60_000; t += 50) {
      c.set(t);
      expect(s.log("error", "start #2: FAILED")).toEqual([]);
    }
    c.set(60_000);
    expect(s.log("error", "start #2: FAILED")).toEqual([{ level: "error", line: "start #2: FAILED (repeated 1200 times in the last 60 s)" }]);
  });

  test("a different line is not held back; a line that stops repeating gets its final count", () => {
    const c = fakeClock();
    const s = new RepeatSummarizer(c, 60_000);
    s.log("warn", "a");
    c.set(1_000);
    s.log("warn", "a");
    expect(s.log("warn", "b")).toEqual([{ level: "warn", line: "b" }]);
    c.set(61_000);
    expect(s.sweep()).toEqual([{ level: "warn", line: "a (repeated 1 times until 60 s ago; no longer)" }]);
    // Forgotten once summarised: the next occurrence is news again.
    expect(s.log("warn", "a")).toEqual([{ level: "warn", line: "a" }]);
  });

  test("only failures are summarised: a successful action is always its own line", () => {
    expect(isFailure("warn", "freeze #1: x → process stopped")).toBe(false);
    expect(isFailure("warn", "demote #1: x → FAILED: busy")).toBe(true);
    expect(isFailure("error", "anything")).toBe(true);
    expect(isFailure("info", "thaw #1: y → SIGCONT sent")).toBe(false);
    const lines: string[] = [];
    const log = summarizingLog({ info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), debug() {} }, fakeClock());
    log.warn("freeze #1: x → process stopped");
    log.warn("freeze #1: x → process stopped");
    expect(lines).toHaveLength(2);
  });
});

/** Runner 2's unit cannot start (its binary is gone, say): the master tries again every tick. */
function brokenStart(services: ServiceManager, id: number): ServiceManager {
  const refuse = async () => {
    throw new Error(`Job for jorm_runner@${id}.service failed because the control process exited with error code.`);
  };
  return {
    ...services,
    start: (i) => (i === id ? refuse() : services.start(i)),
    restart: (i) => (i === id ? refuse() : services.restart(i)),
  };
}

/** Runner 2's unit starts, and its run exits 78 (a config error in the runner wrapper) 100 ms later:
 *  systemctl start succeeds every time; the unit is then failed, and systemd does not restart it. */
function exitsAtStart(services: ServiceManager, id: number, clock: { now(): number }, starts: number[]): ServiceManager {
  let failedAt = 0;
  return {
    ...services,
    showAll: async (ids) => {
      const m = await services.showAll(ids);
      const lastExit = { result: "exit-code", code: "exited" as const, status: 78, ranMs: 100 };
      m.set(id, { id, activeState: "failed", subState: "failed", mainPid: 0, sinceMs: failedAt, restarts: 0, frozen: null, lastExit });
      return m;
    },
    start: async (i) => {
      if (i !== id) return services.start(i);
      starts.push(clock.now());
      failedAt = clock.now() + 100;
    },
  };
}

async function runDeadRunner(
  wrap: (log: MasterLog, clock: { now(): number }) => MasterLog & { sweep?: () => void },
  ms: number,
  broken: (s: ServiceManager, id: number, clock: { now(): number }) => ServiceManager = brokenStart,
  onTick?: (r: TickReport, config: ResolvedConfig) => void,
) {
  const world = new World({ chain: testChainParams(), runners: 3, boot: FAST_BOOT, restTimeoutMs: 300 });
  const config = simConfig(3, { restTimeoutMs: 300 });
  for (const id of [0, 1]) await world.services.start(id);
  const lines: string[] = [];
  const raw: MasterLog = {
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
    debug() {},
  };
  const log = wrap(raw, world.clock);
  const deps = simDeps(world);
  const master = new Master({ deps: { ...deps, services: broken(deps.services, 2, world.clock) }, config, log, onTick: (r) => {
    log.sweep?.();
    onTick?.(r, config);
  } });
  const ac = new AbortController();
  const done = master.run(ac.signal);
  await world.runUntil(world.clock.now() + ms);
  ac.abort();
  let finished = false;
  void done.then(() => (finished = true));
  for (let t = world.clock.now() + 100; !finished; t += 100) await world.runUntil(t);
  return { lines, ticks: master.ticks };
}

describe("the master's log with one runner that stays dead", () => {
  test("its REST failure is one warning for the whole streak, not one per tick (the loop's Streaks)", async () => {
    const { lines, ticks } = await runDeadRunner((l) => l, 30_000);
    expect(ticks).toBeGreaterThan(50);
    expect(lines.filter((l) => l.includes("runner #2: REST"))).toEqual(["warn runner #2: REST unreachable: GET /node/stats: connection refused"]);
  });

  test("its failing start is one error line, then one summary a minute, through the daemon's log", async () => {
    const ms = 150_000;
    const { lines, ticks } = await runDeadRunner((l, clock) => summarizingLog(l, clock), ms);
    const starts = lines.filter((l) => l.includes("start #2"));
    expect(ticks).toBeGreaterThan(250);
    expect(starts[0]).toStartWith("error start #2: unit is inactive → FAILED: Job for jorm_runner@2.service failed");
    expect(starts.length).toBeLessThanOrEqual(1 + Math.ceil(ms / REPEAT_SUMMARY_MS));
    expect(starts[1]).toMatch(/\(repeated \d+ times in the last \d+ s\)$/);
    // The promotion is still its own line.
    expect(lines.some((l) => l.startsWith("warn promote #"))).toBe(true);
  });

  test("without the summary, the core's own back-off keeps a failing start from flooding: 0, 1, 3, 7 s", async () => {
    // Before the back-off this run logged (and spawned systemctl for) the start over 50 times.
    const { lines } = await runDeadRunner((l) => l, 10_000);
    expect(lines.filter((l) => l.includes("start #2")).length).toBe(4);
  });
});

describe("the master with a runner whose runs exit 78", () => {
  test("starts back off (1 s doubling, not ~5 a second), told in one warning for the streak", async () => {
    const starts: number[] = [];
    const metrics = new MasterMetrics({ version: "t" });
    const backoffS: number[] = [];
    const { lines, ticks } = await runDeadRunner(
      (l) => l,
      120_000,
      (sv, id, clock) => exitsAtStart(sv, id, clock, starts),
      (r, config) => {
        metrics.update(r, config, { poolToolFailures: 0 });
        const m = /jorm_master_runner_start_backoff_seconds\{runner="2"\} (\S+)/.exec(metrics.render());
        backoffS.push(Number(m?.[1]));
      },
    );
    // The metric shows the wait, doubling with each start, up to 64 s after the 6th.
    expect(Math.max(...backoffS)).toBe(64);
    expect(backoffS.every((x) => x >= 1)).toBe(true);
    expect(ticks).toBeGreaterThan(200);
    // 1, 2, 4, 8, 16, 32 s after each failure: 6 starts in two minutes, not one per tick.
    expect(starts.length).toBeGreaterThanOrEqual(5);
    expect(starts.length).toBeLessThanOrEqual(7);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThan(1.5 * gaps[i - 1]!);
    expect(lines.filter((l) => l.includes("runner #2 unit"))).toEqual([
      "warn runner #2 unit: its last run exited 78 (a configuration error: see the unit's journal); starts back off up to 5 min",
    ]);
  });
});
