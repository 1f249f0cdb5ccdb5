// Operator intent through the real master over an in-process simulated World (virtual time): a
// switchover moves the key in a gap with nothing double-produced or missed; a held standby stopped
// by hand stays stopped until released; the held metric follows the hold.
import { describe, expect, test } from "bun:test";
import { Operator } from "../../src/control/operator.ts";
import { masterOnWorld, simConfig } from "../../src/lab/harness.ts";
import type { TickReport } from "../../src/master/loop.ts";
import { MasterMetrics } from "../../src/metrics/master.ts";
import { testChainParams } from "../../src/sim/chain.ts";
import { World } from "../../src/sim/world.ts";
import { FAST_BOOT } from "../sim/helpers.ts";

const chain = testChainParams({ leaderSlotsPerEpoch: 8 });
const epochMs = chain.slotDurationMs * chain.slotsPerEpoch;
const quiet = { info() {}, warn() {}, error() {}, debug() {} };

async function setup() {
  const world = new World({ chain, runners: 3, boot: FAST_BOOT, restTimeoutMs: 300, scheduleComputeMs: 500 });
  const config = simConfig(3, { restTimeoutMs: 300, slotGuardMs: 400, slotMarginMs: 400 });
  for (const id of world.ids) await world.services.start(id);
  let last: TickReport | null = null;
  const metrics = new MasterMetrics({ version: "t" });
  const op = new Operator({ stateDir: null, log: quiet, cntRunners: () => 3, now: () => world.clock.now(), onChange: (i) => (master.intent = i) });
  const master = masterOnWorld(world, config, {
    onTick: (r) => {
      last = r;
      op.onTick(r);
      metrics.update(r, config, { poolToolFailures: 0 });
    },
  });
  const ac = new AbortController();
  const done = master.run(ac.signal);
  const t0 = world.clock.now();
  // Two epochs: every standby holds the schedule (boundary hand-out).
  await world.runUntil(t0 + 2.3 * epochMs);
  return { world, master, op, metrics, t0, last: () => last!, stop: async () => { ac.abort(); await done.catch(() => {}); } };
}

describe("operator intent over a simulated world", () => {
  test("switchover: the key moves to the named standby, verified, with no slot double-produced or missed", async () => {
    const s = await setup();
    const from = s.master.memory.signer!;
    const target = (from + 1) % 3;
    const fromMs = s.world.clock.now();
    expect(s.op.apply({ cmd: "switchover", target, force: false, check: false })).toMatchObject({ ok: true });
    const answer = s.op.waitSwitchover();
    let settled: unknown = null;
    void answer.then((a) => (settled = a));
    await s.world.runUntil(fromMs + 0.5 * epochMs);
    expect(settled).toMatchObject({ ok: true, result: { target, gap: { atMs: expect.any(Number) } } });
    expect(s.master.memory.signer).toBe(target);
    await s.world.runUntil(fromMs + 1.5 * epochMs);
    const audit = s.world.audit({ fromMs, toMs: s.world.clock.now() - 2 * chain.slotDurationMs, guardMs: 0, marginMs: 0 });
    expect(audit.scheduled).toBeGreaterThan(0);
    expect(audit.doubleProduced).toBe(0);
    expect(audit.missed).toBe(0);
    await s.stop();
  }, 60_000);

  test("a held standby stopped by hand stays stopped; released, it is started again; the metric follows", async () => {
    const s = await setup();
    const id = (s.master.memory.signer! + 1) % 3;
    expect(s.op.apply({ cmd: "hold", id, reason: "disk" })).toMatchObject({ ok: true });
    void s.world.services.stop(id);
    await s.world.runUntil(s.world.clock.now() + epochMs);
    expect(s.last().views.find((v) => v.id === id)?.cap).toBe("stopped");
    expect(s.metrics.render()).toContain(`jorm_master_runner_held{runner="${id}"} 1`);
    expect(s.op.apply({ cmd: "release", id })).toMatchObject({ ok: true });
    await s.world.runUntil(s.world.clock.now() + 10_000);
    expect(s.last().views.find((v) => v.id === id)?.cap).not.toBe("stopped");
    expect(s.metrics.render()).toContain(`jorm_master_runner_held{runner="${id}"} 0`);
    await s.stop();
  }, 60_000);

  test("holding the signer moves the key to a standby", async () => {
    const s = await setup();
    const from = s.master.memory.signer!;
    s.op.apply({ cmd: "hold", id: from, reason: "kernel" });
    await s.world.runUntil(s.world.clock.now() + 0.5 * epochMs);
    expect(s.master.memory.signer).not.toBe(from);
    expect(s.master.memory.signer).not.toBeNull();
    await s.stop();
  }, 60_000);
});

describe("rolling upgrade over a simulated world", () => {
  test("the upgrade's steps against the real master: every runner restarted, the key moved once, nothing double-produced or missed", async () => {
    const { daemonView } = await import("../../src/control/protocol.ts");
    const { runUpgrade } = await import("../../src/ops/upgrade.ts");
    const s = await setup();
    const signer0 = s.master.memory.signer!;
    const fromMs = s.world.clock.now();
    const pids = () => s.last().views.filter((v) => v.id < 3).map((v) => v.pid);
    const pids0 = pids();
    const links: Record<number, string> = { 0: "old", 1: "old", 2: "old" };
    const advance = (ms: number) => s.world.runUntil(s.world.clock.now() + ms);
    const progress: string[] = [];
    const end = await runUpgrade(
      { runners: [0, 1, 2], newTarget: "new", oldTargets: { ...links }, signer: signer0, healthyWithinMs: 2 * epochMs, maxOffset: 3 },
      {
        now: () => s.world.clock.now(),
        progress: (l) => progress.push(l),
        run: async (cmd) => {
          switch (cmd.kind) {
            case "hold":
            case "release": {
              const a = s.op.apply(cmd.kind === "hold" ? { cmd: "hold", id: cmd.id, reason: cmd.reason } : { cmd: "release", id: cmd.id });
              await advance(500);
              return a.ok ? { ok: true } : { ok: false, error: a.error };
            }
            case "stop":
              void s.world.services.stop(cmd.id);
              await advance(500);
              return { ok: true };
            case "relink":
              links[cmd.id] = cmd.target;
              return { ok: true };
            case "status":
              await advance(cmd.afterMs);
              return { ok: true, view: daemonView(s.last(), { pid: 1, version: "t", startedMs: 0, ticks: 1 }) };
            case "switchover": {
              const a = s.op.apply({ cmd: "switchover", target: cmd.target, force: false, check: false });
              if (!a.ok) return { ok: false, error: a.error };
              let answer: unknown = null;
              void s.op.waitSwitchover().then((x) => (answer = x));
              for (let i = 0; i < 120 && answer === null; i++) await advance(500);
              const x = answer as { ok: boolean; result?: { target?: number }; error?: string } | null;
              return x?.ok ? { ok: true, signer: x.result?.target ?? null } : { ok: false, error: x?.error ?? "no answer" };
            }
          }
        },
      },
    );
    expect(end).toMatchObject({ kind: "done" });
    expect(links).toEqual({ 0: "new", 1: "new", 2: "new" });
    // Each one restarted (a new process), and each is back.
    pids().forEach((p, i) => expect(p).not.toBe(pids0[i]));
    expect(s.last().views.filter((v) => v.id < 3).every((v) => v.running)).toBe(true);
    expect(s.master.memory.signer).not.toBe(signer0);
    expect(s.master.intent.holds).toEqual({});
    await advance(5_000);
    const audit = s.world.audit({ fromMs, toMs: s.world.clock.now() - 2 * chain.slotDurationMs, guardMs: 0, marginMs: 0 });
    expect(audit.scheduled).toBeGreaterThan(0);
    expect(audit.doubleProduced).toBe(0);
    expect(audit.missed).toBe(0);
    expect(audit.sharedWindows).toBe(0);
    await s.stop();
  }, 120_000);
});
