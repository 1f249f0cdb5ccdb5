// The measure the guarantee is judged by must itself be able to fail.
import { describe, expect, test } from "bun:test";
import { signOverlapMs } from "../../src/sim/audit.ts";
import { Chain, testChainParams } from "../../src/sim/chain.ts";
import type { JournalEntry } from "../../src/sim/journal.ts";

const chain = new Chain(testChainParams({ seed: 7, leaderSlotsPerEpoch: 5 }));
const slot = chain.leaderSlots(1)[2]!;
const start = chain.slotStartMs(1, slot);
const t0 = chain.epochStartMs(1);
const opts = { fromMs: t0, toMs: chain.epochStartMs(2), guardMs: 400, marginMs: 400 };

function proc(runner: number, o: { keys?: number[]; schedule?: [number, number] | null } = {}): JournalEntry[] {
  const e: JournalEntry[] = [{ t: t0, kind: "proc_start", runner, inc: 1, pid: 100 + runner, keys: o.keys ?? [1] }];
  const [s, d] = o.schedule === undefined ? [t0 + 1, t0 + 2] : (o.schedule ?? [0, 0]);
  if (o.schedule !== null) {
    e.push({ t: s, kind: "schedule_start", runner, inc: 1, epoch: 1, slots: [slot], keys: o.keys ?? [1], trigger: "boot" });
    e.push({ t: d, kind: "schedule_done", runner, inc: 1, epoch: 1, slots: [slot], keys: o.keys ?? [1] });
  }
  return e;
}

describe("signOverlapMs", () => {
  test("two processes holding the key with the slot in a finished schedule overlap for the whole window", () => {
    const r = signOverlapMs([...proc(0), ...proc(1)], chain, opts);
    expect(r.overlapMs).toBe(1000 + 400 + 400);
    expect(r.worst).toEqual({ epoch: 1, slot, ms: 1800 });
  });
  test("no schedule, no overlap: a key holder that never computed the slot cannot sign it", () => {
    expect(signOverlapMs([...proc(0), ...proc(1, { schedule: null })], chain, opts).overlapMs).toBe(0);
  });
  test("a key-less enclave computes nothing", () => {
    expect(signOverlapMs([...proc(0), ...proc(1, { keys: [] })], chain, opts).overlapMs).toBe(0);
  });
  test("while a computation holds the enclave, signing waits: that time does not count", () => {
    // Runner 1's computation runs until 200 ms into the slot.
    const r = signOverlapMs([...proc(0), ...proc(1, { schedule: [t0 + 1, start - 500] }), { t: start - 500, kind: "schedule_start", runner: 1, inc: 1, epoch: 1, slots: [], keys: [1], trigger: "boundary" }, { t: start + 200, kind: "schedule_done", runner: 1, inc: 1, epoch: 1, slots: [], keys: [1] }], chain, opts);
    expect(r.overlapMs).toBe(1800 - 600);
  });
  test("a frozen process cannot sign", () => {
    const r = signOverlapMs([...proc(0), ...proc(1), { t: start - 1000, kind: "freeze", runner: 1, inc: 1 }], chain, opts);
    expect(r.overlapMs).toBe(0);
  });
  test("one after the other in the same window counts as shared: the second signs the slot again", () => {
    // #0 may sign until 200 ms into the slot (then frozen); #1, which computed the slot and gave the
    // key back, gets it again right after.
    const r = signOverlapMs(
      [...proc(0), ...proc(1), { t: t0 + 3, kind: "keys", runner: 1, inc: 1, keys: [] }, { t: start + 200, kind: "freeze", runner: 0, inc: 1 }, { t: start + 300, kind: "keys", runner: 1, inc: 1, keys: [1] }],
      chain,
      opts,
    );
    expect(r.overlapMs).toBe(0);
    expect(r.sharedWindows).toBe(1);
    expect(r.firstShared).toEqual({ epoch: 1, slot, processes: ["0:1", "1:1"] });
  });
  test("a handover after the window has closed shares nothing", () => {
    const r = signOverlapMs(
      [...proc(0), ...proc(1), { t: t0 + 3, kind: "keys", runner: 1, inc: 1, keys: [] }, { t: start + 200, kind: "freeze", runner: 0, inc: 1 }, { t: start + 1000 + 400, kind: "keys", runner: 1, inc: 1, keys: [1] }],
      chain,
      opts,
    );
    expect(r.sharedWindows).toBe(0);
  });
});

test("the audit reports the same figure, and `sim audit` fails on it", async () => {
  const { audit } = await import("../../src/sim/audit.ts");
  expect(audit([...proc(0), ...proc(1)], chain, opts).signOverlapMs).toBe(1800);
  expect(audit([...proc(0), ...proc(1)], chain, opts).sharedWindows).toBe(1);
  expect(audit([...proc(0), ...proc(1, { schedule: null })], chain, opts).signOverlapMs).toBe(0);
});

describe("the real master on a simulated world: who listens on the port", () => {
  async function run(listener?: import("../../src/ports.ts").ListenerCheck) {
    const { World } = await import("../../src/sim/world.ts");
    const { masterOnWorld, simConfig } = await import("../../src/lab/harness.ts");
    const world = new World({ chain: testChainParams({ seed: 3, leaderSlotsPerEpoch: 5 }), runners: 2, keyMode: "rest", boot: { Bootstrapping: 1_000 } });
    for (const id of world.ids) await world.services.start(id);
    const promotions: { ok: boolean; detail: string }[] = [];
    const onTick = (t: import("../../src/master/loop.ts").TickReport) => {
      for (const o of t.outcomes) if (o.action.kind === "promote") promotions.push({ ok: o.ok, detail: o.detail });
    };
    const m = masterOnWorld(world, simConfig(2, { keyMode: "rest" }), { listener, onTick });
    const ac = new AbortController();
    const done = m.run(ac.signal);
    await world.runUntil(world.clock.now() + 20_000);
    ac.abort();
    let finished = false;
    void done.then(() => (finished = true));
    const end = world.clock.now() + 5_000;
    for (let t = world.clock.now() + 100; !finished && t < end; t += 100) await world.runUntil(t);
    expect(finished).toBe(true);
    const keyed = world.journal.entries().filter((e) => e.kind === "keys" && e.keys.length > 0);
    return { keyed: keyed.length, promotions };
  }

  test("the harness's check says yes: a standby is promoted", async () => {
    const r = await run();
    expect(r.promotions.some((p) => p.ok)).toBe(true);
    expect(r.keyed).toBeGreaterThan(0);
  });

  test("it says no (another process holds the port): the key is never posted, nobody signs", async () => {
    const r = await run({ whyNotRunner: async () => "port held by pid 4242" });
    expect(r.promotions.length).toBeGreaterThan(0);
    expect(r.promotions.every((p) => !p.ok && p.detail.includes("port held by pid 4242"))).toBe(true);
    expect(r.keyed).toBe(0);
  });
});
