// The rolling upgrade's orchestration against a fake daemon, systemd and links (no I/O).
import { describe, expect, test } from "bun:test";
import type { DaemonView } from "../../src/control/protocol.ts";
import { healthyIn, initialState, planLines, runUpgrade, step, upgradeOrder, type Cmd, type CmdResult, type UpgradeSpec } from "../../src/ops/upgrade.ts";

const OLD = "/opt/jormungandr-0.8.13";
const NEW = "/opt/jormungandr-0.8.14";
const BOOT_MS = 10_000;

interface FakeRunner { link: string; up: boolean; bootAtMs: number | null; held: boolean }

/** Three runners, #0 signing; a runner released while stopped boots in BOOT_MS, unless its binary is bad. */
function world(opts: { bad?: string; signer?: number; refuseSwitchover?: boolean } = {}) {
  let now = 0;
  let tickAtMs = 0;
  let signer: number | null = opts.signer ?? 0;
  const rs: Record<number, FakeRunner> = { 0: { link: OLD, up: true, bootAtMs: null, held: false }, 1: { link: OLD, up: true, bootAtMs: null, held: false }, 2: { link: OLD, up: true, bootAtMs: null, held: false } };
  const log: string[] = [];
  const advance = (ms: number) => {
    now += ms;
    for (const r of Object.values(rs)) if (r.bootAtMs !== null && now >= r.bootAtMs && r.link !== opts.bad) { r.up = true; r.bootAtMs = null; }
    tickAtMs = now;
  };
  const view = (): DaemonView => ({
    pid: 1, version: "t", startedMs: 0, ticks: 1, tickAtMs, tickDurationMs: 1, signer, boundary: null, notes: [], events: [], knownEpochs: [],
    views: Object.entries(rs).map(([id, r]) => ({ id: Number(id), cap: r.up ? (Number(id) === signer ? "holder" : "keyless") : "stopped", running: r.up, nodeState: r.up ? "Running" : null, height: r.up ? 100 : null, leaderIds: [], busy: false, frozen: false, held: r.held ? { reason: "", sinceMs: 0 } : null, warm: r.up })),
  });
  const run = async (cmd: Exclude<Cmd, { kind: "done" | "failed" }>): Promise<CmdResult> => {
    log.push(cmd.kind === "status" ? "status" : `${cmd.kind}${"id" in cmd ? `#${cmd.id}` : ""}${cmd.kind === "relink" ? `=${cmd.target === NEW ? "new" : "old"}` : ""}${cmd.kind === "switchover" ? `→${cmd.target}` : ""}`);
    switch (cmd.kind) {
      case "hold": rs[cmd.id]!.held = true; advance(100); return { ok: true };
      case "stop":
        // Safety of the plan: the signer is never stopped.
        expect(cmd.id).not.toBe(signer);
        rs[cmd.id]!.up = false; advance(100); return { ok: true };
      case "relink": rs[cmd.id]!.link = cmd.target; return { ok: true };
      case "release": {
        const r = rs[cmd.id]!;
        r.held = false;
        if (!r.up) r.bootAtMs = now + BOOT_MS;
        advance(100);
        return { ok: true };
      }
      case "status": advance(cmd.afterMs); return { ok: true, view: view() };
      case "switchover": {
        if (opts.refuseSwitchover) return { ok: false, error: "no standby holds the coming slots" };
        const t = cmd.target ?? Number(Object.keys(rs).find((k) => Number(k) !== signer && rs[Number(k)]!.up));
        signer = t;
        advance(1000);
        return { ok: true, signer: t };
      }
    }
  };
  return { run, rs, log, view, now: () => now, signer: () => signer };
}

const spec = (over: Partial<UpgradeSpec> = {}): UpgradeSpec => ({ runners: [0, 1, 2], newTarget: NEW, oldTargets: { 0: OLD, 1: OLD, 2: OLD }, signer: 0, healthyWithinMs: 60_000, maxOffset: 2, ...over });

describe("upgrade", () => {
  test("order: standbys first, the signer last", () => {
    expect(upgradeOrder([2, 0, 1], 0)).toEqual([1, 2, 0]);
    expect(upgradeOrder([1], 0)).toEqual([1]);
  });

  test("the dry-run plan names each step, the switchover before the signer", () => {
    const lines = planLines(spec());
    expect(lines).toHaveLength(4);
    expect(lines[2]).toContain("switchover: move the key from #0 to upgraded #1");
    expect(lines[3]).toStartWith("#0: hold, stop, relink");
  });

  test("a rolling upgrade: one standby at a time, then a switchover to an upgraded runner, then the old signer", async () => {
    const w = world();
    const progress: string[] = [];
    const end = await runUpgrade(spec(), { run: w.run, now: w.now, progress: (l) => progress.push(l) });
    expect(end).toEqual({ kind: "done", message: `upgraded #1, #2, #0 to ${NEW}` });
    expect(w.log.filter((l) => l !== "status")).toEqual([
      "hold#1", "stop#1", "relink#1=new", "release#1",
      "hold#2", "stop#2", "relink#2=new", "release#2",
      "switchover→1", "hold#0", "stop#0", "relink#0=new", "release#0",
    ]);
    expect(Object.values(w.rs).map((r) => [r.link, r.up, r.held])).toEqual([[NEW, true, false], [NEW, true, false], [NEW, true, false]]);
    expect(w.signer()).toBe(1);
    expect(progress.some((l) => l.includes("waiting"))).toBe(true);
  });

  test("a runner that does not come back healthy is rolled back to its old link and the upgrade stops", async () => {
    const w = world({ bad: NEW });
    const end = await runUpgrade(spec(), { run: w.run, now: w.now, progress: () => {} });
    expect(end.kind).toBe("failed");
    expect(end.message).toContain("#1 did not come back healthy within 60 s");
    expect(end.message).toContain(`rolled back to ${OLD} and healthy again`);
    expect(w.log.filter((l) => l !== "status")).toEqual(["hold#1", "stop#1", "relink#1=new", "release#1", "hold#1", "stop#1", "relink#1=old", "release#1"]);
    // Nothing else was touched; the signer kept the key.
    expect(w.rs[2]!.link).toBe(OLD);
    expect(w.signer()).toBe(0);
  });

  test("a refused switchover stops before the signer is touched", async () => {
    const w = world({ refuseSwitchover: true });
    const end = await runUpgrade(spec(), { run: w.run, now: w.now, progress: () => {} });
    expect(end.kind).toBe("failed");
    expect(end.message).toContain("#0 keeps signing on the old binary");
    expect(w.rs[0]).toMatchObject({ link: OLD, up: true, held: false });
  });

  test("a view from before the restart does not count as healthy", () => {
    let s = initialState(spec({ runners: [1] }));
    const w = world();
    for (const r of [null, { ok: true } as const, { ok: true } as const, { ok: true } as const]) s = step(s, r, 1_000).state;
    expect(s.cur?.phase).toBe("release");
    const r = step(s, { ok: true }, 1_000);
    expect(r.state.cur?.phase).toBe("wait");
    // The daemon's last tick was before the wait began: still waiting.
    const stale = { ...w.view(), tickAtMs: 500 };
    const next = step(r.state, { ok: true, view: stale }, 1_500);
    expect(next.cmd.kind).toBe("status");
    expect(next.state.cur?.why).toContain("next tick");
  });

  test("healthyIn: frozen, not Running, behind, or not warm is not healthy", () => {
    const w = world();
    const v = w.view();
    expect(healthyIn(v, 1, 2).ok).toBe(true);
    const with1 = (o: object) => ({ ...v, views: v.views.map((x) => (x.id === 1 ? { ...x, ...o } : x)) });
    expect(healthyIn(with1({ frozen: true }), 1, 2).ok).toBe(false);
    expect(healthyIn(with1({ running: false }), 1, 2).ok).toBe(false);
    expect(healthyIn(with1({ height: 90 }), 1, 2).ok).toBe(false);
    expect(healthyIn(with1({ warm: false }), 1, 2).ok).toBe(false);
  });
});
