// Shared fixtures for the simulator tests: a small chain, a fast boot, one node in virtual time.
import { Chain, type ChainParams, testChainParams } from "../../src/sim/chain.ts";
import { VirtualClock } from "../../src/sim/clock.ts";
import { MemoryJournal } from "../../src/sim/journal.ts";
import { type BootDurations, SimNode, type SimNodeOptions } from "../../src/sim/node.ts";
import { SIM_POOL_SECRET } from "../../src/sim/world.ts";
import type { RawResponse } from "../../src/node/types.ts";

/** Running 1400 ms after start */
export const FAST_BOOT: BootDurations = {
  StartingRestServer: 100,
  PreparingStorage: 100,
  PreparingBlock0: 100,
  Bootstrapping: 1000,
  StartingWorkers: 100,
};
export const FAST_BOOT_TOTAL_MS = 1400;
export const POOL_SECRET = SIM_POOL_SECRET;
export const OTHER_SECRET = { genesis: { sig_key: "kes25519-12-sk1OTHERFAKE", vrf_key: "vrf_sk1OTHERFAKE", node_id: "ff".repeat(32) } };

export function nodeFixture(over: Partial<SimNodeOptions> = {}, params: Partial<ChainParams> = {}, startMs?: number) {
  const chain = new Chain(testChainParams(params));
  const clock = new VirtualClock(startMs ?? chain.epochStartMs(1) + 5000);
  const journal = new MemoryJournal();
  const node = new SimNode({ runner: 0, incarnation: 1, chain, sched: clock, journal, boot: FAST_BOOT, ...over });
  const call = (method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<RawResponse> =>
    node.handle({ method, path, body: body === undefined ? undefined : JSON.stringify(body) });
  const getJson = async (path: string): Promise<unknown> => {
    const res = await call("GET", path);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.body}`);
    return JSON.parse(res.body);
  };
  const boot = () => clock.advance(FAST_BOOT_TOTAL_MS);
  const slotStart = (epoch: number, slot: number) => chain.slotStartMs(epoch, slot);
  return { chain, clock, journal, node, call, getJson, boot, slotStart };
}

/** Settle an in-flight request that the model answers without time passing. */
export async function settled<T>(p: Promise<T>): Promise<{ done: boolean; value?: T }> {
  let done = false;
  let value: T | undefined;
  p.then((v) => {
    done = true;
    value = v;
  }).catch(() => {
    done = true;
  });
  await new Promise((r) => setImmediate(r));
  return { done, value };
}
