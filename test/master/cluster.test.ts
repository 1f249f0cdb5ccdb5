// The cluster gate (master/cluster.ts) on the real master over a simulated world: what the etcd
// signer lease allows bounds decide's whole plan.
import { describe, expect, test } from "bun:test";
import type { ClusterObs } from "../../src/master/cluster.ts";
import { clusterBlock } from "../../src/master/cluster.ts";
import { silentLog, simConfig, simDeps } from "../../src/lab/harness.ts";
import { Master, type TickReport } from "../../src/master/loop.ts";
import { testChainParams } from "../../src/sim/chain.ts";
import { World } from "../../src/sim/world.ts";
import { epochClock } from "../../src/master/schedule.ts";
import { statusLine } from "../../src/master/summary.ts";
import { MasterMetrics } from "../../src/metrics/master.ts";

async function setup(cluster: () => ClusterObs, worldKeyMode: "rest" | "boot" = "rest") {
  const world = new World({ chain: testChainParams({ seed: 3, leaderSlotsPerEpoch: 8 }), runners: 2, keyMode: worldKeyMode, boot: { Bootstrapping: 1_000 }, restTimeoutMs: 500 });
  for (const id of world.ids) await world.services.start(id);
  await world.runUntil(world.clock.now() + 10_000);
  const master = new Master({ deps: { ...simDeps(world), cluster }, config: simConfig(2, { keyMode: "boot" }), log: silentLog });
  const tick = async (): Promise<TickReport> => {
    let done: TickReport | null = null;
    const p = master.tick().then((r) => (done = r));
    for (let i = 0; i < 100 && done === null; i++) await world.runUntil(world.clock.now() + 100);
    return p;
  };
  return { world, master, tick };
}

describe("cluster gate", () => {
  test("holding the lease: the promotion arms the signer's dead-man switch at mustStopBy; every boot is passive", async () => {
    let c: ClusterObs = { maySign: true, mustStopByMs: 0, takeoverSafeAtMs: null };
    const { world, tick } = await setup(() => c);
    let promoted: TickReport["plan"]["promote"] = null;
    for (let i = 0; i < 40 && promoted === null; i++) {
      c = { ...c, mustStopByMs: world.clock.now() + 4_000 };
      const r = await tick();
      promoted = r.plan.promote;
      expect(Object.values(r.plan.bootModes ?? {}).every((m) => m === "passive")).toBe(true);
      await world.runUntil(world.clock.now() + 300);
    }
    expect(promoted).not.toBeNull();
    const last = await tick();
    expect(statusLine(last.observation, last.views, last.memory, simConfig(2), world.clock.now())).toContain("cluster: this host signs");
    const metrics = new MasterMetrics({ version: "test" });
    metrics.update(last, simConfig(2), { poolToolFailures: 0 });
    expect(metrics.render()).toContain("\njorm_master_cluster_may_sign 1\n");
    expect(promoted!.leaseAtMs).toBeGreaterThan(world.clock.now() - 1_000);
    expect(promoted!.leaseAtMs).toBeLessThanOrEqual(world.clock.now() + 4_000);
  });

  test("lease lost: the signer is demoted, nobody promoted, no signer, and none comes back", async () => {
    let c: ClusterObs = { maySign: true, mustStopByMs: 0, takeoverSafeAtMs: null };
    const { world, master, tick } = await setup(() => c);
    for (let i = 0; i < 40 && master.memory.signer === null; i++) {
      c = { ...c, mustStopByMs: world.clock.now() + 4_000 };
      await tick();
      await world.runUntil(world.clock.now() + 300);
    }
    const signer = master.memory.signer;
    expect(signer).not.toBeNull();
    c = { maySign: false, mustStopByMs: null, takeoverSafeAtMs: null, holder: "host-b" };
    const r = await tick();
    expect(r.plan.fences).toContainEqual(expect.objectContaining({ kind: "demote", id: signer }));
    expect(r.plan.promote).toBeNull();
    expect(r.memory.signer).toBeNull();
    expect(r.plan.notes.join("\n")).toContain("does not hold the signer lease (host-b does)");
    // Told in the status line and the metrics
    const cfg = simConfig(2, { keyMode: "boot" });
    expect(statusLine(r.observation, r.views, r.memory, cfg, world.clock.now())).toContain("cluster: host-b signs");
    const metrics = new MasterMetrics({ version: "test" });
    metrics.update(r, cfg, { poolToolFailures: 0 });
    expect(metrics.render()).toContain("\njorm_master_cluster_may_sign 0\n");
    // Still key-less on the next tick: nobody is promoted back.
    const again = await tick();
    expect(again.plan.promote).toBeNull();
    expect(world.node(signer!)?.leaderIds() ?? []).toEqual([]);
  });

  test("clusterBlock: no cluster, no block; not holding, allowance over, takeover not yet safe: blocked with why", () => {
    expect(clusterBlock(undefined, 0)).toBeNull();
    expect(clusterBlock({ maySign: true, mustStopByMs: 1_000, takeoverSafeAtMs: 500 }, 600)).toBeNull();
    expect(clusterBlock({ maySign: false, mustStopByMs: null, takeoverSafeAtMs: null }, 0)).toContain("does not hold");
    expect(clusterBlock({ maySign: true, mustStopByMs: 1_000, takeoverSafeAtMs: null }, 1_000)).toContain("allowance has run out");
    expect(clusterBlock({ maySign: true, mustStopByMs: null, takeoverSafeAtMs: null }, 0)).toContain("allowance has run out");
    expect(clusterBlock({ maySign: true, mustStopByMs: 9_000, takeoverSafeAtMs: 2_000 }, 500)).toContain("just taken over");
    // Stable while it lasts: the loop logs a note only when it changes
    expect(clusterBlock({ maySign: true, mustStopByMs: 9_000, takeoverSafeAtMs: 2_000 }, 700)).toBe(clusterBlock({ maySign: true, mustStopByMs: 9_000, takeoverSafeAtMs: 2_000 }, 500));
  });

  test("just taken over: nobody is promoted before takeoverSafeAt", async () => {
    let c: ClusterObs = { maySign: true, mustStopByMs: 0, takeoverSafeAtMs: null };
    const { world, tick } = await setup(() => c);
    const safeAt = world.clock.now() + 30_000;
    for (let i = 0; i < 40; i++) {
      c = { maySign: true, mustStopByMs: world.clock.now() + 4_000, takeoverSafeAtMs: safeAt };
      const r = await tick();
      expect(r.plan.promote).toBeNull();
      await world.runUntil(world.clock.now() + 300);
    }
  });

  test("the window rule spans hosts: a window open before the takeover was safe stays the previous host's", async () => {
    // Runners booted with the key computed this epoch's schedule: the pool's windows are known.
    let c: ClusterObs = { maySign: false, mustStopByMs: null, takeoverSafeAtMs: null, holder: "host-b" };
    const { world, master, tick } = await setup(() => c, "boot");
    const r0 = await tick();
    const clock = epochClock(r0.observation.settings!);
    const guardMs = simConfig(2).slotGuardMs;
    const next = master.memory.events.map((abs) => clock.slotStartMs(abs)).find((t) => t - guardMs > world.clock.now() + 2_000);
    expect(next).toBeDefined();
    await tick();
    await world.runUntil(next! - guardMs + 200);
    // This host took the lease over; its takeover became safe 50 ms ago, after the window opened.
    c = { maySign: true, mustStopByMs: world.clock.now() + 4_000, takeoverSafeAtMs: world.clock.now() - 50 };
    const inside = await tick();
    expect(inside.plan.promote).toBeNull();
    expect(inside.plan.notes.join("\n")).toContain("the previous signing host may have signed in it");
    // Once that window has closed, the promotion goes ahead.
    let promotedAt: number | null = null;
    for (let i = 0; i < 40 && promotedAt === null; i++) {
      await world.runUntil(world.clock.now() + 300);
      c = { ...c, mustStopByMs: world.clock.now() + 4_000 };
      if ((await tick()).plan.promote) promotedAt = world.clock.now();
    }
    expect(promotedAt).not.toBeNull();
    expect(promotedAt!).toBeGreaterThanOrEqual(next! + clock.slotMs);
  });
});
