// PoolTool slots: what is uploaded at each epoch start (pure), and the real uploader on a master
// over a simulated world, checked by the fake PoolTool against the world's schedule.
import { afterAll, describe, expect, test } from "bun:test";
import type { PoolToolConfig } from "../../src/config/types.ts";
import { emptyMemory } from "../../src/master/decide.ts";
import { masterOnWorld, simConfig } from "../../src/lab/harness.ts";
import { epochClock } from "../../src/master/schedule.ts";
import type { Memory } from "../../src/master/types.ts";
import { emptySlotsState, epochSlotsText, planSlotsUpload, sha256Hex, SLOTS_RETRY_MS, SlotsUploader } from "../../src/pooltool/slots.ts";
import { Chain, testChainParams } from "../../src/sim/chain.ts";
import { MemoryJournal } from "../../src/sim/journal.ts";
import { serveFakePoolTool } from "../../src/sim/pooltool.ts";
import { World } from "../../src/sim/world.ts";
import { SETTINGS } from "../master/fixtures.ts";
import { FAST_BOOT } from "../sim/helpers.ts";

const cfg: PoolToolConfig = { poolId: "pool", userId: "user", genesis: "8e4d", sendWaitMs: 0, recvWaitMs: 30_000, endpTip: "http://x/t", endpStats: "http://x/s", sendSlots: true, endpSlots: "http://x/sendlogs" };
const clock = epochClock(SETTINGS); // 1 s slots, 100 per epoch, block0 at 0
const mem = (events: number[], knownEpochs: number[]): Memory => ({ ...emptyMemory(), events, knownEpochs });

describe("planSlotsUpload", () => {
  test("off unless send_slots; nothing until the epoch's schedule is known whole", () => {
    expect(planSlotsUpload(mem([205], [2]), SETTINGS, { ...cfg, sendSlots: false }, 200_500, emptySlotsState()).payload).toBeNull();
    expect(planSlotsUpload(mem([205], [1]), SETTINGS, cfg, 200_500, emptySlotsState()).payload).toBeNull();
    expect(planSlotsUpload(mem([205], [2]), null, cfg, 200_500, emptySlotsState()).payload).toBeNull();
  });

  test("the count and hash of this epoch, the previous epoch's list as the proof of the hash sent then", () => {
    const events = [105, 150, 205, 207, 290];
    const first = planSlotsUpload(mem(events, [1]), SETTINGS, cfg, 100_500, emptySlotsState());
    expect(first.payload).toEqual({
      currentepoch: "1",
      poolid: "pool",
      genesispref: "8e4d",
      userid: "user",
      assigned_slots: "2",
      this_epoch_hash: sha256Hex(epochSlotsText(events, clock, 1)),
      last_epoch_slots: "",
    });
    expect(JSON.parse(epochSlotsText(events, clock, 1))).toEqual([
      { scheduled_at_date: "1.5", scheduled_at_time: "1970-01-01T00:01:45.000Z" },
      { scheduled_at_date: "1.50", scheduled_at_time: "1970-01-01T00:02:30.000Z" },
    ]);
    const sent = { ...first.state, sentEpoch: 1 };
    expect(planSlotsUpload(mem(events, [1]), SETTINGS, cfg, 150_000, sent).payload).toBeNull(); // once per epoch
    const second = planSlotsUpload(mem(events, [1, 2]), SETTINGS, cfg, 200_600, sent).payload!;
    expect(second.assigned_slots).toBe("3");
    expect(sha256Hex(second.last_epoch_slots)).toBe(first.payload!.this_epoch_hash);
  });

  test("a restarted daemon re-derives the previous list (same hash) when that epoch is still known, else sends no proof", () => {
    const events = [105, 150, 205];
    const hashThen = sha256Hex(epochSlotsText(events, clock, 1));
    expect(sha256Hex(planSlotsUpload(mem(events, [1, 2]), SETTINGS, cfg, 200_600, emptySlotsState()).payload!.last_epoch_slots)).toBe(hashThen);
    expect(planSlotsUpload(mem(events, [2]), SETTINGS, cfg, 200_600, emptySlotsState()).payload!.last_epoch_slots).toBe("");
  });

  test("after a failure nothing is tried before the retry time", () => {
    const s = { ...emptySlotsState(), retryAtMs: 200_600 + SLOTS_RETRY_MS };
    expect(planSlotsUpload(mem([205], [2]), SETTINGS, cfg, 200_600, s).payload).toBeNull();
    expect(planSlotsUpload(mem([205], [2]), SETTINGS, cfg, 200_600 + SLOTS_RETRY_MS, s).payload).not.toBeNull();
  });
});

describe("the uploader on a simulated world, against the fake PoolTool", () => {
  const chain = testChainParams({ leaderSlotsPerEpoch: 8 });
  // Key mode boot on both sides: the runners compute the current epoch when they boot.
  const world = new World({ chain, runners: 3, keyMode: "boot", boot: FAST_BOOT, restTimeoutMs: 300, scheduleComputeMs: 500 });
  const fake = serveFakePoolTool({ chain, journal: new MemoryJournal(), clock: world.clock });
  afterAll(() => fake.stop());

  test("one upload per epoch, the world's count, each validated by the next epoch's", async () => {
    const config = simConfig(3, { keyMode: "boot", restTimeoutMs: 300, pooltool: { ...cfg, endpSlots: `${fake.url}/v0/sendlogs` } });
    const lines: string[] = [];
    const uploader = new SlotsUploader({ info: (m) => lines.push(m), warn: (m) => lines.push(`warn ${m}`) });
    for (const id of world.ids) await world.services.start(id);
    const master = masterOnWorld(world, config, { onTick: (r) => uploader.onTick(r, config) });
    const ac = new AbortController();
    const done = master.run(ac.signal);
    const epochMs = chain.slotDurationMs * chain.slotsPerEpoch;
    const t0 = world.clock.now();
    // Virtual time runs far ahead of the real HTTP exchange: step in small strides with real pauses.
    for (let t = t0; t < t0 + 3.5 * epochMs; t += 2_000) {
      await world.runUntil(t);
      await Bun.sleep(1);
    }
    ac.abort();
    let finished = false;
    void done.then(() => (finished = true));
    for (let t = world.clock.now() + 100; !finished; t += 100) await world.runUntil(t);
    await Bun.sleep(50);
    const epoch0 = new Chain(chain).epochAt(t0);
    expect(fake.slots.map((s) => [s.epoch, s.accepted, s.assigned === s.expected, s.validated])).toEqual([
      [epoch0, true, true, null],
      [epoch0 + 1, true, true, true],
      [epoch0 + 2, true, true, true],
      [epoch0 + 3, true, true, true],
    ]);
    expect(lines.filter((l) => l.startsWith("warn"))).toEqual([]);
  });

  test("the fake refuses a previous list that does not match the hash it was sent", async () => {
    const body = { currentepoch: "9", poolid: "p", genesispref: "g", userid: "u", assigned_slots: "1", this_epoch_hash: sha256Hex("[]"), last_epoch_slots: "" };
    expect((await fetch(`${fake.url}/v0/sendlogs`, { method: "POST", body: JSON.stringify(body) })).status).toBe(200);
    const next = { ...body, currentepoch: "10", last_epoch_slots: '[{"scheduled_at_date":"9.1"}]' };
    const res = await fetch(`${fake.url}/v0/sendlogs`, { method: "POST", body: JSON.stringify(next) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe("last_epoch_slots do not match the hash sent for epoch 9");
    expect((await fetch(`${fake.url}/v0/sendlogs`, { method: "POST", body: JSON.stringify({ ...body, assigned_slots: 3 }) })).status).toBe(400);
  });
});
