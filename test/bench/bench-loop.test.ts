import { describe, expect, test } from "bun:test";
import type { UnitState } from "../../src/ports.ts";
import type { RawRequest, Transport } from "../../src/node/types.ts";
import { createSystemdServiceManager, parseShowOutput, systemctlSpawnCount, toUnitState } from "../../src/systemd/systemctl.ts";
import {
  busyPorts,
  countingTransport,
  DEFAULT_PORT_BASE,
  DEFAULT_RUNNER_COUNTS,
  FAULT_MS,
  fakeProc,
  type LoopResult,
  missedTargets,
  parseCli,
  percentile,
  phaseFigures,
  QUICK_FAULT_MS,
  QUICK_STEADY_MS,
  renderShow,
  renderTable,
  RESTART_DELAY_MS,
  runOne,
  STEADY_MS,
  UNIT_TEMPLATE_TEXT,
  unitId,
  unitName,
  worldSpawner,
} from "../../scripts/bench-loop.ts";

const result = (over: Partial<LoopResult> = {}): LoopResult => ({
  runners: 32,
  tick_p50_ms: 60,
  tick_p99_ms: 90,
  systemctl_per_tick: 1,
  requests_per_tick: 64,
  rss_mb: 62,
  rss_first_mb: 60,
  systemd: "user-manager",
  ticks: 100,
  steady_s: 60,
  steady_actions: 0,
  show_p50_ms: 50,
  show_p99_ms: 80,
  request_p50_ms: 3,
  request_p99_ms: 10,
  fault_s: 15,
  fault_ticks: 20,
  fault_tick_p50_ms: 30,
  fault_tick_p99_ms: 510,
  fault_systemctl_per_tick: 1.2,
  fault_requests_per_tick: 66,
  failovers_ms: [500, 1000],
  scheduled: 1,
  produced: 1,
  double_produced: 0,
  shared_windows: 0,
  warmup_s: 7,
  ...over,
});

describe("figures", () => {
  test("percentile is nearest-rank and null without samples", () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5, 1, 3], 50)).toBe(3);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
  });

  test("per-tick figures are the counter deltas of the phase over its ticks", () => {
    const f = phaseFigures([10, 30, 20, 40], { ticks: 10, spawns: 12, requests: 100 }, { ticks: 14, spawns: 16, requests: 124 }, 2);
    expect(f).toEqual({
      ticks: 4,
      tick_p50_ms: 20,
      tick_p99_ms: 40,
      tick_max_ms: 40,
      systemctl_per_tick: 1,
      requests_per_tick: 6,
      actions: 2,
    });
    const none = phaseFigures([], { ticks: 3, spawns: 3, requests: 3 }, { ticks: 3, spawns: 3, requests: 3 }, 0);
    expect(none.systemctl_per_tick).toBeNull();
    expect(none.tick_p99_ms).toBeNull();
  });

  test("the targets apply from 32 runners; a double production or a shared window fails any row", () => {
    expect(missedTargets(result())).toEqual([]);
    expect(missedTargets(result({ systemctl_per_tick: 1.5 }))[0]).toContain("systemctl/tick 1.5");
    expect(missedTargets(result({ tick_p99_ms: 250 }))[0]).toContain("tick p99 250 ms");
    expect(missedTargets(result({ rss_mb: 80.2 }))[0]).toContain("RSS 80.2 MB");
    expect(missedTargets(result({ runners: 3, tick_p99_ms: 900, rss_mb: 200 }))).toEqual([]);
    expect(missedTargets(result({ runners: 3, double_produced: 1 }))).toEqual(["double-produced 1"]);
    expect(missedTargets(result({ runners: 3, shared_windows: 2 }))).toEqual(["windows two could sign 2"]);
  });

  test("the table has one row per runner count with the issue's columns", () => {
    const text = renderTable([result({ runners: 3 }), result()]);
    const lines = text.split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/runners\s+tick p50\s+tick p99\s+systemctl\/tick\s+requests\/tick\s+RSS/);
    expect(lines[3]).toMatch(/^\s*32\s+60 ms\s+90 ms\s+1\s+64\s+62 MB/);
    expect(lines[3]).toContain("500 ms, 1000 ms");
  });
});

describe("the systemd manager answered from the world", () => {
  const states: UnitState[] = [
    { id: 0, activeState: "active", subState: "running", mainPid: 4001, sinceMs: 1_700_000_000_000, restarts: 2, frozen: false, lastExit: null },
    { id: 1, activeState: "active", subState: "running", mainPid: 4002, sinceMs: 1_700_000_100_000, restarts: 0, frozen: true, lastExit: null },
    { id: 2, activeState: "activating", subState: "auto-restart", mainPid: 0, sinceMs: 1_700_000_200_000, restarts: 1, frozen: null, lastExit: { result: "signal", code: "killed", status: 9, ranMs: null } },
    { id: 3, activeState: "failed", subState: "failed", mainPid: 0, sinceMs: null, restarts: 0, frozen: null, lastExit: { result: "exit-code", code: "exited", status: 78, ranMs: 200 } },
  ];

  test("renderShow prints what parseShowOutput reads back, since included", () => {
    const units = states.map((s) => unitName(s.id));
    const blocks = parseShowOutput(renderShow(units, states));
    expect(blocks.map((b) => b.Id)).toEqual(units);
    const nowMs = 1_700_000_300_000;
    const back = blocks.map((b, i) => toUnitState(i, b, nowMs * 1000, nowMs, states[i]!.frozen));
    expect(back).toEqual(states);
  });

  test("unit names carry the runner id", () => {
    expect(unitId(unitName(17))).toBe(17);
    expect(unitId("jorm_master.service")).toBeNull();
  });

  test("showAll is one counted systemctl process that returns the world's states, frozen from the pids", async () => {
    const frozen = new Map<number, boolean>();
    const asked: number[][] = [];
    const sd = createSystemdServiceManager({
      scope: "user",
      unitFor: unitName,
      run: worldSpawner(async (ids) => {
        asked.push(ids);
        return ids.map((id) => states[id]!);
      }, frozen),
      proc: fakeProc(frozen, () => 1_700_000_300_000),
      clock: { now: () => 1_700_000_300_000, sleep: async () => {} },
    });
    const before = systemctlSpawnCount();
    const got = await sd.showAll([0, 1, 2, 3]);
    expect(systemctlSpawnCount() - before).toBe(1);
    expect(asked).toEqual([[0, 1, 2, 3]]);
    expect([...got.values()]).toEqual(states);
    // Anything else succeeds without running (the bench applies it to the world) and is still counted.
    await sd.kill(1, "SIGCONT");
    await sd.stop(2);
    expect(sd.spawnCount).toBe(3);
  });

  test("a show of units that are not the bench's fails like systemctl would", async () => {
    const sd = createSystemdServiceManager({ scope: "user", unitFor: () => "other.service", run: worldSpawner(async () => [], new Map()), proc: fakeProc(new Map()) });
    await expect(sd.showAll([0])).rejects.toThrow(/not a bench unit/);
  });
});

test("busy ports are named before anything starts", async () => {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    expect(await busyPorts(server.port, 1)).toEqual([server.port]);
  } finally {
    server.stop(true);
  }
  expect(await busyPorts(server.port, 1)).toEqual([]);
});

describe("the counting transport", () => {
  test("counts and times every exchange, also one that throws", async () => {
    const seen: number[] = [];
    const ok: Transport = async () => ({ status: 200, body: "{}", contentType: "application/json" });
    const boom: Transport = async () => {
      throw new Error("boom");
    };
    const req: RawRequest = { method: "GET", path: "/node/stats" };
    await countingTransport(ok, (ms) => seen.push(ms))(req);
    await expect(countingTransport(boom, (ms) => seen.push(ms))(req)).rejects.toThrow("boom");
    expect(seen).toHaveLength(2);
    expect(seen.every((ms) => ms >= 0)).toBe(true);
  });
});

describe("the command line", () => {
  test("defaults: 3 and 32 runners, 60 s steady, 15 s faults", () => {
    expect(parseCli([])).toEqual({
      json: false,
      counts: DEFAULT_RUNNER_COUNTS,
      steadyMs: STEADY_MS,
      faultMs: FAULT_MS,
      portBase: DEFAULT_PORT_BASE,
      fakeSystemctl: false,
    });
    expect(DEFAULT_RUNNER_COUNTS).toEqual([3, 32]);
  });

  test("--quick shortens both phases; explicit seconds win", () => {
    expect(parseCli(["--quick"])).toMatchObject({ steadyMs: QUICK_STEADY_MS, faultMs: QUICK_FAULT_MS });
    expect(parseCli(["--quick", "--steady", "2.5", "--fault", "0", "--runners", "8", "--json"])).toMatchObject({
      steadyMs: 2500,
      faultMs: 0,
      counts: [8],
      json: true,
    });
  });

  test("bad values name the option", () => {
    expect(parseCli(["--runners", "3,x"])).toContain("--runners");
    expect(parseCli(["--steady", "0"])).toContain("--steady");
    expect(parseCli(["--fault", "-1"])).toContain("--fault");
    expect(parseCli(["--port-base", "80"])).toContain("--port-base");
    expect(parseCli(["--nope"])).toContain("nope");
    expect(parseCli(["--help"])).toBe("help");
  });
});

test("the stand-in unit restarts like the simulated runner does", () => {
  expect(UNIT_TEMPLATE_TEXT).toContain("Restart=always");
  expect(UNIT_TEMPLATE_TEXT).toContain(`RestartSec=${RESTART_DELAY_MS / 1000}\n`);
  expect(UNIT_TEMPLATE_TEXT).toContain("ExecStart=sleep infinity");
});

// The whole bench, small: a world host process, the real Master over HTTP, systemctl counted.
test(
  "a short run settles on one signer and measures one systemctl process and stats+leaders per runner per tick",
  async () => {
    const portBase = 24_000 + Math.floor(Math.random() * 4_000);
    const r = await runOne({ runners: 2, steadyMs: 2_000, faultMs: 0, portBase, fakeSystemctl: true });
    expect(r.systemd).toBe("counted");
    expect(r.ticks).toBeGreaterThan(0);
    expect(r.steady_actions).toBe(0);
    expect(r.systemctl_per_tick).toBe(1);
    // stats and leaders of each runner every tick; leader logs only when stale
    expect(r.requests_per_tick).toBeGreaterThanOrEqual(4);
    expect(r.requests_per_tick).toBeLessThanOrEqual(6);
    expect(r.tick_p50_ms).not.toBeNull();
    expect(r.rss_mb).toBeGreaterThan(0);
    expect(r.double_produced).toBe(0);
  },
  60_000,
);
