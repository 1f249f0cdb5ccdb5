import { describe, expect, test } from "bun:test";
import { Chain, hash32, ITN_CHAIN, testChainParams, validateChainParams } from "../../src/sim/chain.ts";

describe("epoch clock", () => {
  const chain = new Chain(ITN_CHAIN);
  test("ITN parameters: 2 s slots, 43200 slots per epoch, epoch = floor((t − block0) / epoch length)", () => {
    expect(chain.epochMs).toBe(86_400_000);
    const t = ITN_CHAIN.block0TimeMs + 84 * 86_400_000 + 13650 * 2000 + 1999;
    expect(chain.slotAt(t)).toEqual({ epoch: 84, slot: 13650, abs: 84 * 43200 + 13650 });
    expect(chain.slotStartMs(84, 13650)).toBe(t - 1999);
    expect(chain.epochAt(chain.epochStartMs(85) - 1)).toBe(84);
    expect(chain.epochAt(chain.epochStartMs(85))).toBe(85);
  });

  test("rejects parameters the node could not print (fractional seconds)", () => {
    expect(validateChainParams({ ...ITN_CHAIN, slotDurationMs: 1500 })).toHaveLength(1);
    expect(validateChainParams({ ...ITN_CHAIN, block0TimeMs: ITN_CHAIN.block0TimeMs + 1 })).toHaveLength(1);
    expect(() => new Chain({ ...ITN_CHAIN, slotsPerEpoch: 1 })).toThrow("slotsPerEpoch");
  });
});

describe("leader schedule", () => {
  test("a sorted set of exactly `density` slots in 1..slotsPerEpoch-1, never slot 0", () => {
    const chain = new Chain(testChainParams({ slotsPerEpoch: 20, leaderSlotsPerEpoch: 19 }));
    for (let e = 0; e < 50; e++) {
      const slots = chain.leaderSlots(e);
      expect(slots).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    }
    const itn = new Chain(ITN_CHAIN);
    for (let e = 0; e < 20; e++) {
      const slots = itn.leaderSlots(e);
      expect(slots.length).toBe(50);
      expect(new Set(slots).size).toBe(50);
      expect([...slots].sort((a, b) => a - b)).toEqual([...slots]);
      expect(slots[0]!).toBeGreaterThanOrEqual(1);
      expect(slots[slots.length - 1]!).toBeLessThanOrEqual(43199);
    }
  });

  test("a pure function of (seed, epoch, density): same in any instance, different across epochs and seeds", () => {
    const a = new Chain(ITN_CHAIN);
    const b = new Chain(ITN_CHAIN);
    expect(a.leaderSlots(7)).toEqual(b.leaderSlots(7));
    expect(a.leaderSlots(7)).not.toEqual(a.leaderSlots(8));
    expect(new Chain({ ...ITN_CHAIN, seed: 2 }).leaderSlots(7)).not.toEqual(a.leaderSlots(7));
    expect(new Chain({ ...ITN_CHAIN, leaderSlotsPerEpoch: 3 }).leaderSlots(7)).toHaveLength(3);
  });

  test("edgeLeaderSlotsEvery: every n-th epoch's first and last slots are the pool's", () => {
    const chain = new Chain(testChainParams({ edgeLeaderSlotsEvery: 2 }));
    for (let e = 0; e < 20; e += 2) {
      const slots = chain.leaderSlots(e);
      expect(slots[0]).toBe(1);
      expect(slots[slots.length - 1]).toBe(59);
    }
    expect([1, 3, 5, 7, 9, 11].some((e) => chain.leaderSlots(e)[0] !== 1 || chain.leaderSlots(e).at(-1) !== 59)).toBe(true);
  });

  test("leaderSlotsBetween lists the slots starting in [from, to)", () => {
    const chain = new Chain(testChainParams());
    const from = chain.epochStartMs(3);
    const to = chain.epochStartMs(5);
    const got = chain.leaderSlotsBetween(from, to);
    expect(got.map((p) => `${p.epoch}.${p.slot}`)).toEqual([
      ...chain.leaderSlots(3).map((s) => `3.${s}`),
      ...chain.leaderSlots(4).map((s) => `4.${s}`),
    ]);
    const first = got[0]!;
    expect(chain.leaderSlotsBetween(chain.slotStartMs(first.epoch, first.slot) + 1, to)[0]).not.toEqual(first);
  });
});

describe("network tip", () => {
  test("deterministic, monotone, one block per slot at most, about activeSlotCoeff blocks per slot", () => {
    const chain = new Chain(ITN_CHAIN);
    const other = new Chain(ITN_CHAIN);
    const t0 = chain.epochStartMs(80);
    let prev = chain.tipHeight(t0);
    const slots = 43200;
    for (let i = 1; i <= slots; i++) {
      const h = chain.tipHeight(t0 + i * 2000);
      expect(h - prev === 0 || h - prev === 1).toBe(true);
      prev = h;
    }
    const perSlot = (prev - chain.tipHeight(t0)) / slots;
    expect(perSlot).toBeGreaterThan(0.09);
    expect(perSlot).toBeLessThan(0.11);
    expect(other.tipHeight(t0 + 12345678)).toBe(chain.tipHeight(t0 + 12345678));
    expect(chain.tipHeight(ITN_CHAIN.block0TimeMs - 1)).toBe(0);
  });

  test("lastBlockAtSlot names the slot where the tip's block sits", () => {
    const chain = new Chain(testChainParams());
    for (let abs = 0; abs < 500; abs++) {
      const last = chain.lastBlockAtSlot(abs);
      expect(last.abs).toBeLessThanOrEqual(abs);
      if (last.height > 0) {
        expect(chain.lastBlockAtSlot(last.abs).height).toBe(last.height);
        expect(chain.lastBlockAtSlot(last.abs - 1).height).toBe(last.height - 1);
      }
    }
  });

  test("block hashes are 64 hex, distinct per height; block0 hash from the seed or given", () => {
    const chain = new Chain(testChainParams());
    expect(chain.blockHash(5)).toMatch(/^[0-9a-f]{64}$/);
    expect(chain.blockHash(5)).not.toBe(chain.blockHash(6));
    expect(chain.blockHash(0)).toBe(chain.block0Hash);
    expect(new Chain(testChainParams({ block0Hash: "ab".repeat(32) })).block0Hash).toBe("ab".repeat(32));
  });

  test("hash32 separates large integers (times in ms)", () => {
    expect(hash32(1583452800000)).not.toBe(hash32(1583452800001));
    expect(hash32(1, 2)).not.toBe(hash32(2, 1));
  });
});
