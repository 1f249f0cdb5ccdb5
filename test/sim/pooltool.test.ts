import { afterAll, describe, expect, test } from "bun:test";
import { createPoolTool } from "../../src/pooltool/client.ts";
import { Chain, testChainParams } from "../../src/sim/chain.ts";
import { VirtualClock } from "../../src/sim/clock.ts";
import { MemoryJournal } from "../../src/sim/journal.ts";
import { serveFakePoolTool } from "../../src/sim/pooltool.ts";

const params = testChainParams();
const chain = new Chain(params);
const clock = new VirtualClock(chain.epochStartMs(3) + 12_345);
const journal = new MemoryJournal();
const fake = serveFakePoolTool({ chain: params, journal, clock, lagBlocks: 1 });
afterAll(() => fake.stop());

describe("fake PoolTool", () => {
  test("the project's PoolTool client reads the majority max from the same tip and shares tips into the journal", async () => {
    const client = createPoolTool({
      poolId: "pool",
      userId: "user",
      genesis: "8e4d",
      sendWaitMs: 0,
      recvWaitMs: 0,
      endpTip: `${fake.url}/v0/sharemytip`,
      endpStats: `${fake.url}/stats/stats.json`,
    });
    expect(await client.majorityMax()).toBe(chain.tipHeight(clock.now()) - 1);
    await client.shareTip(4242);
    expect(journal.ofKind("tip_shared")).toEqual([{ t: clock.now(), kind: "tip_shared", height: 4242 }]);
  });

  test("sharemytip by POST (JSON or form) is recorded; without a numeric mytip it is a 400", async () => {
    await fetch(`${fake.url}/v0/sharemytip`, { method: "POST", body: JSON.stringify({ mytip: 7 }) });
    await fetch(`${fake.url}/v0/sharemytip`, { method: "POST", body: "poolid=p&mytip=8" });
    expect(journal.ofKind("tip_shared").map((e) => e.height).slice(-2)).toEqual([7, 8]);
    expect((await fetch(`${fake.url}/v0/sharemytip?mytip=x`)).status).toBe(400);
    expect((await fetch(`${fake.url}/nope`)).status).toBe(404);
  });
});
