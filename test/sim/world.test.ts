import { describe, expect, test } from "bun:test";
import { testChainParams } from "../../src/sim/chain.ts";
import { DEFAULT_RESTART_DELAY_MS, DEFAULT_SHUTDOWN_MS, World, type WorldOptions } from "../../src/sim/world.ts";
import type { MemoryJournal } from "../../src/sim/journal.ts";
import { FAST_BOOT, FAST_BOOT_TOTAL_MS, OTHER_SECRET, POOL_SECRET } from "./helpers.ts";

// Epoch 1 leader slots of testChainParams: 19 25 32 47 50 (1 s slots, 60 per epoch).

function world(over: Partial<WorldOptions> = {}) {
  const w = new World({ chain: testChainParams(), runners: 3, boot: FAST_BOOT, ...over });
  const slot = (epoch: number, s: number) => w.chain.slotStartMs(epoch, s);
  const journal = w.journal as MemoryJournal;
  const state = async (id: number) => (await w.services.showAll([id])).get(id)!;
  return { w, slot, journal, state };
}

describe("service manager (systemd, Restart=always)", () => {
  test("units start inactive; start spawns a process with a fresh pid that boots", async () => {
    const { w, state } = world();
    expect(await state(0)).toMatchObject({ activeState: "inactive", subState: "dead", mainPid: 0, restarts: 0, frozen: null });
    await w.services.start(0);
    const s = await state(0);
    expect(s).toMatchObject({ activeState: "active", subState: "running", frozen: false, sinceMs: w.clock.now() });
    expect(s.mainPid).toBeGreaterThan(0);
    expect(w.node(0)!.state).toBe("StartingRestServer");
    await w.clock.advance(FAST_BOOT_TOTAL_MS);
    expect(w.node(0)!.state).toBe("Running");
    const all = await w.services.showAll([0, 1, 2]);
    expect([...all.keys()]).toEqual([0, 1, 2]);
  });

  test("key mode boot: the process holds the key from boot (--secret); rest: passive", async () => {
    const boot = world({ keyMode: "boot" });
    await boot.w.services.start(0);
    expect(boot.journal.ofKind("proc_start")[0]!.keys).toEqual([1]);
    const rest = world({ keyMode: "rest" });
    await rest.w.services.start(0);
    expect(rest.journal.ofKind("proc_start")[0]!.keys).toEqual([]);
    const mixed = world({ keyMode: (id) => (id === 1 ? "boot" : "rest") });
    await mixed.w.services.start(0);
    await mixed.w.services.start(1);
    expect(mixed.journal.ofKind("proc_start").map((e) => e.keys)).toEqual([[], [1]]);
  });

  test("crash: process gone, auto-restart after restartDelayMs with a new pid and incarnation, NRestarts+1", async () => {
    const { w, state } = world();
    await w.services.start(0);
    const pid1 = (await state(0)).mainPid;
    w.inject(0, { kind: "crash" });
    expect(await state(0)).toMatchObject({ activeState: "activating", subState: "auto-restart", mainPid: 0, restarts: 0 });
    await w.clock.advance(DEFAULT_RESTART_DELAY_MS - 1);
    expect(w.node(0)).toBeNull();
    await w.clock.advance(1);
    const s = await state(0);
    expect(s).toMatchObject({ activeState: "active", restarts: 1 });
    expect(s.mainPid).not.toBe(pid1);
    expect(w.node(0)!.incarnation).toBe(2);
  });

  test("SIGKILL and SIGTERM through kill also end in an automatic restart", async () => {
    const { w, state } = world({ restartDelayMs: 500 });
    await w.services.start(0);
    await w.services.kill(0, "SIGKILL");
    await w.clock.advance(500);
    expect((await state(0)).restarts).toBe(1);
    await w.services.kill(0, "SIGTERM");
    expect(w.node(0)!.isAlive).toBe(true);
    await w.clock.advance(DEFAULT_SHUTDOWN_MS + 500);
    expect((await state(0)).restarts).toBe(2);
    expect(w.node(0)!.incarnation).toBe(3);
  });

  test("stop: SIGTERM, deactivating for shutdownMs, then inactive and not restarted; resolves when stopped", async () => {
    const { w, state } = world();
    await w.services.start(0);
    const t0 = w.clock.now();
    let stoppedAt = -1;
    void w.services.stop(0).then(() => (stoppedAt = w.clock.now()));
    expect(await state(0)).toMatchObject({ activeState: "deactivating", subState: "stop-sigterm" });
    await w.clock.advance(10_000);
    expect(stoppedAt).toBe(t0 + DEFAULT_SHUTDOWN_MS);
    expect(await state(0)).toMatchObject({ activeState: "inactive", mainPid: 0, restarts: 0 });
    expect(w.node(0)).toBeNull();
  });

  test("stop of a frozen key holder: systemd's SIGCONT thaws it and it signs a due slot while shutting down", async () => {
    const { w, slot, journal } = world({ keyMode: "boot" });
    await w.services.start(0);
    await w.runUntil(slot(1, 18) + 500);
    await w.services.kill(0, "SIGSTOP");
    await w.runUntil(slot(1, 19) + 100);
    expect(journal.ofKind("block")).toEqual([]);
    void w.services.stop(0);
    await w.runUntil(slot(1, 21));
    expect(journal.ofKind("block").map((b) => [b.slot, b.t])).toEqual([[19, slot(1, 19) + 100]]);
  });

  test("with KillSignal=SIGKILL the frozen key holder dies without signing", async () => {
    const { w, slot, journal, state } = world({ keyMode: "boot", killSignal: "SIGKILL" });
    await w.services.start(0);
    await w.runUntil(slot(1, 18) + 500);
    await w.services.kill(0, "SIGSTOP");
    await w.runUntil(slot(1, 19) + 100);
    await w.services.stop(0);
    await w.runUntil(slot(1, 21));
    expect(journal.ofKind("block")).toEqual([]);
    expect((await state(0)).activeState).toBe("inactive");
  });

  test("SIGSTOP / SIGCONT show in UnitState.frozen", async () => {
    const { w, state } = world();
    await w.services.start(0);
    await w.services.kill(0, "SIGSTOP");
    expect((await state(0)).frozen).toBe(true);
    await w.services.kill(0, "SIGCONT");
    expect((await state(0)).frozen).toBe(false);
  });

  test("restart: a new incarnation, NRestarts unchanged (it counts automatic restarts only)", async () => {
    const { w, state } = world();
    await w.services.start(0);
    const pid = (await state(0)).mainPid;
    const done = w.services.restart(0);
    await w.clock.advance(DEFAULT_SHUTDOWN_MS);
    await done;
    const s = await state(0);
    expect(s).toMatchObject({ activeState: "active", restarts: 0 });
    expect(s.mainPid).not.toBe(pid);
  });

  test("start while waiting for the automatic restart starts now; stop cancels the restart", async () => {
    const { w, state } = world();
    await w.services.start(0);
    await w.services.start(1);
    w.inject(0, { kind: "crash" });
    w.inject(1, { kind: "crash" });
    await w.services.start(0);
    expect((await state(0)).activeState).toBe("active");
    await w.services.stop(1);
    await w.clock.advance(DEFAULT_RESTART_DELAY_MS * 3);
    expect((await state(1)).activeState).toBe("inactive");
    expect(w.node(1)).toBeNull();
  });
});

test("dispose: every process gone, no automatic restart, no timer left behind", async () => {
  const { w, state } = world();
  await w.services.start(0);
  await w.services.start(1);
  w.dispose();
  expect(w.node(0)).toBeNull();
  await w.clock.advance(DEFAULT_RESTART_DELAY_MS * 2);
  expect((await state(1)).activeState).toBe("inactive");
  expect(w.node(1)).toBeNull();
  await expect(w.services.start(0)).rejects.toThrow("disposed");
});

describe("NodeApi per runner", () => {
  test("typed answers through the real parser: not ready while booting, stats when running", async () => {
    const { w } = world();
    await w.services.start(0);
    const booting = await w.api(0).leaders();
    expect(booting).toMatchObject({ ok: false, error: { kind: "not_ready", status: 503 } });
    await w.clock.advance(FAST_BOOT_TOTAL_MS);
    const stats = await w.api(0).stats();
    expect(stats.ok && stats.value.state === "Running" && typeof stats.value.height === "number").toBe(true);
    expect(await w.api(0).addLeader(POOL_SECRET)).toEqual({ ok: true, value: 1 });
    expect(await w.api(0).removeLeader(1)).toEqual({ ok: true, value: true });
    expect(await w.api(0).removeLeader(1)).toEqual({ ok: true, value: false });
  });

  test("a stopped runner is refused; a hanging one times out in virtual time", async () => {
    const { w } = world({ restTimeoutMs: 700 });
    expect(await w.api(1).stats()).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "refused" } });
    await w.services.start(0);
    w.inject(0, { kind: "restHang" });
    const t0 = w.clock.now();
    let at = -1;
    const res = w.api(0).stats().then((r) => {
      at = w.clock.now();
      return r;
    });
    await w.clock.advance(5000);
    expect(await res).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "timeout" } });
    expect(at).toBe(t0 + 700);
  });

  test("a frozen runner does not answer within the deadline", async () => {
    const { w } = world({ restTimeoutMs: 500 });
    await w.services.start(0);
    await w.clock.advance(FAST_BOOT_TOTAL_MS);
    await w.services.kill(0, "SIGSTOP");
    const res = w.api(0).stats();
    await w.clock.advance(1000);
    expect(await res).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "timeout" } });
  });

  test("REST 500 is an http error; the transport of a crashed process is reset", async () => {
    const { w } = world({ restTimeoutMs: 5000 });
    await w.services.start(0);
    await w.clock.advance(FAST_BOOT_TOTAL_MS);
    w.inject(0, { kind: "rest500" });
    expect(await w.api(0).stats()).toMatchObject({ ok: false, error: { kind: "http", status: 500 } });
    w.inject(0, { kind: "rest500", on: false });
    w.inject(0, { kind: "restHang" });
    const res = w.transport(0)({ method: "GET", path: "/node/stats" });
    w.inject(0, { kind: "crash" });
    expect(await res).toMatchObject({ kind: "unreachable", reason: "reset" });
  });
});

describe("faults and PoolTool", () => {
  test("faults can be scheduled at a virtual time", async () => {
    const { w, state } = world();
    await w.services.start(0);
    w.inject(0, { kind: "crash" }, w.clock.now() + 10_000);
    await w.clock.advance(9_999);
    expect((await state(0)).activeState).toBe("active");
    await w.clock.advance(1);
    expect((await state(0)).subState).toBe("auto-restart");
    expect((w.journal as MemoryJournal).ofKind("fault").map((f) => f.fault)).toEqual(['{"kind":"crash"}']);
  });

  test("stuck: height frozen until the process restarts", async () => {
    const { w } = world({ restartDelayMs: 0 });
    await w.services.start(0);
    await w.clock.advance(FAST_BOOT_TOTAL_MS);
    w.inject(0, { kind: "stuck" });
    const h = w.node(0)!.height();
    await w.clock.advance(60_000);
    expect(w.node(0)!.height()).toBe(h);
    w.inject(0, { kind: "crash" });
    await w.clock.advance(FAST_BOOT_TOTAL_MS + 1);
    expect(w.node(0)!.height()).toBeGreaterThan(h);
  });

  test("slow boot applies to the current boot and to later ones until cleared", async () => {
    const { w } = world({ restartDelayMs: 0 });
    await w.services.start(0);
    w.inject(0, { kind: "slowBoot", bootstrapMs: 20_000 });
    await w.clock.advance(FAST_BOOT_TOTAL_MS);
    expect(w.node(0)!.state).toBe("Bootstrapping");
    w.inject(0, { kind: "crash" });
    await w.clock.advance(FAST_BOOT_TOTAL_MS + 1);
    expect(w.node(0)!.state).toBe("Bootstrapping");
    w.inject(0, { kind: "slowBoot", bootstrapMs: null });
    w.inject(0, { kind: "crash" });
    await w.clock.advance(FAST_BOOT_TOTAL_MS + 1);
    expect(w.node(0)!.state).toBe("Running");
  });

  test("slow schedule computation applies from the next computation on", async () => {
    const { w, slot, journal } = world({ keyMode: "boot" });
    await w.services.start(0);
    await w.clock.advance(FAST_BOOT_TOTAL_MS);
    w.inject(0, { kind: "slowSchedule", computeMs: 30_000 });
    await w.runUntil(slot(2, 40));
    const done = journal.ofKind("schedule_done").map((d) => d.t - journal.ofKind("schedule_start").find((s) => s.epoch === d.epoch)!.t);
    expect(done).toEqual([0, 30_000]);
    expect(journal.ofKind("reject").map((r) => `${r.epoch}.${r.slot}`)).toEqual(["2.5", "2.8"]);
  });

  test("PoolTool: majority max from the same tip (minus a lag); shared tips journalled; down throws", async () => {
    const { w, journal } = world({ pooltoolLagBlocks: 2 });
    expect(await w.pooltool.majorityMax()).toBe(w.chain.tipHeight(w.clock.now()) - 2);
    await w.pooltool.shareTip(1234);
    expect(journal.ofKind("tip_shared").map((e) => e.height)).toEqual([1234]);
    w.pooltool.down = true;
    await expect(w.pooltool.majorityMax()).rejects.toThrow("PoolTool");
  });

  test("only the world's pool secret leads: a master posting another pool's key gets no slots", async () => {
    const { w, slot, journal } = world();
    await w.services.start(0);
    await w.services.start(1);
    await w.clock.advance(FAST_BOOT_TOTAL_MS);
    await w.api(0).addLeader(OTHER_SECRET);
    await w.api(1).addLeader(POOL_SECRET);
    await w.runUntil(slot(3, 0));
    expect(new Set(journal.ofKind("block").map((b) => b.runner))).toEqual(new Set([1]));
  });

  test("audit through the world: a --secret runner alone produces every slot after its boot", async () => {
    const { w, slot } = world({ keyMode: "boot" });
    await w.services.start(0);
    await w.runUntil(slot(3, 0));
    const report = w.audit({ fromMs: slot(1, 10), toMs: slot(3, 0) });
    expect(report).toMatchObject({ scheduled: 10, produced: 10, doubleProduced: 0, missed: 0, unproducible: 0, coveragePct: 100 });
  });
});
