// One signer across hosts, in virtual time (issue 13): two or three hosts, each the real Master over
// its own runners with the daemon's SignerLease, one shared fake etcd with TTLs, one simulated world
// whose audit sees every runner of every host. Whatever is cut or killed: 0 slots produced twice and
// 0 windows two processes could sign in.
import { describe, expect, test } from "bun:test";
import { testChainParams } from "../../src/sim/chain.ts";
import { runClusterScenario, type ClusterEvent, type HostSpec } from "./cluster-world.ts";

const chain = (seed: number) => testChainParams({ seed, leaderSlotsPerEpoch: 12 });
const TWO: HostSpec[] = [
  { name: "host-a", runners: 2 },
  { name: "host-b", runners: 2 },
];

async function run(events: ClusterEvent[], hosts: HostSpec[] = TWO, durationMs = 180_000, seed = 7) {
  const r = await runClusterScenario({ chain: chain(seed), hosts, ttlS: 5, durationMs, events, etcdLatencyMs: 20 });
  if (r.sharedWindows > 0 || r.doubleProduced > 0) console.error(JSON.stringify({ firstShared: r.firstShared, promotions: r.promotions }));
  return r;
}

describe("cluster in virtual time: one signing host", () => {
  test("calm: one host signs, the other's runners stay key-less; slots are produced", async () => {
    const r = await run([]);
    expect(r.doubleProduced).toBe(0);
    expect(r.sharedWindows).toBe(0);
    expect(new Set(r.promotions.map((p) => p.host)).size).toBe(1);
    expect(r.produced).toBeGreaterThan(0);
  });

  test("the signing host cut off from etcd: it fences its signer at the allowance's end; the other host signs only after", async () => {
    const r = await run([{ atMs: 60_000, kind: "partition", host: 0, forMs: 60_000 }]);
    const first = r.promotions[0]!;
    expect(first.host).toBe("host-a");
    const takeover = r.promotions.find((p) => p.host === "host-b");
    expect(takeover).toBeDefined();
    expect(takeover!.atMs - r.fromMs).toBeGreaterThan(60_000);
    expect(r.doubleProduced).toBe(0);
    expect(r.sharedWindows).toBe(0);
  });

  test("the signing host's daemon killed for good (its runners keep running): the switch freezes its signer before the lease ends; the other host takes over", async () => {
    // Nothing of host-a's daemon comes back: only its dead-man switch (in the service manager) can
    // stop its signer, which would otherwise sign on into the epochs host-b signs too.
    const r = await run([{ atMs: 50_000, kind: "daemonCrash", host: 0, downMs: 1e9 }], TWO, 240_000);
    const killedAt = r.fromMs + 50_000;
    const takeover = r.promotions.find((p) => p.host === "host-b");
    expect(takeover).toBeDefined();
    const frozen = r.world.journal.entries().find((e) => e.kind === "freeze" && e.runner === r.promotions[0]!.id && e.t > killedAt);
    expect(frozen).toBeDefined();
    // Frozen within one allowance of the kill (5 s TTL: under 5 s), and before host-b's first promotion.
    expect(frozen!.t - killedAt).toBeLessThan(5_000);
    expect(frozen!.t).toBeLessThan(takeover!.atMs);
    expect(r.doubleProduced).toBe(0);
    expect(r.sharedWindows).toBe(0);
  });

  test("the signing host's daemon restarted at once: it takes its lease up again, no other host signs", async () => {
    const r = await run([{ atMs: 50_000, kind: "daemonCrash", host: 0, downMs: 1_000 }]);
    expect(r.promotions.every((p) => p.host === "host-a")).toBe(true);
    expect(r.holderAtEnd).toBe("host-a");
    expect(r.doubleProduced).toBe(0);
    expect(r.sharedWindows).toBe(0);
  });

  test("boundary hand-outs under the lease: the signing host's standby is warm, takes over from its crashed signer and signs the epoch's slots", async () => {
    // Epoch 2 (120-180 s): host-a's signer crashes at 130 s; #1 got the key at the 120 s boundary.
    const r = await run([{ atMs: 130_000, kind: "signerCrash", host: 0 }], TWO, 180_000);
    const second = r.promotions.find((p) => p.atMs - r.fromMs > 130_000);
    expect(r.promotions.every((p) => p.host === "host-a")).toBe(true);
    expect(r.doubleProduced).toBe(0);
    expect(r.sharedWindows).toBe(0);
    // Produced after the crash: the standby held epoch 2's schedule (warm)
    const after = r.world.audit({ fromMs: r.fromMs + 135_000, toMs: r.toMs, guardMs: 400, marginMs: 400 });
    expect(after.scheduled).toBeGreaterThan(0);
    expect(after.produced).toBe(after.scheduled);
    void second;
  });

  test("the whole signing host down, then back: never two signing hosts", async () => {
    const r = await run([{ atMs: 40_000, kind: "hostDown", host: 0, downMs: 30_000 }]);
    expect(r.promotions.some((p) => p.host === "host-b")).toBe(true);
    expect(r.doubleProduced).toBe(0);
    expect(r.sharedWindows).toBe(0);
  });

  test("etcd down for everyone (no quorum): nobody signs once the allowance ends; slots lost, never doubled", async () => {
    const r = await run([{ atMs: 60_000, kind: "etcdDown", forMs: 30_000 }]);
    expect(r.doubleProduced).toBe(0);
    expect(r.sharedWindows).toBe(0);
  });

  test("three hosts, clocks 1 % fast and slow, partitions and crashes one after the other", async () => {
    const hosts: HostSpec[] = [
      { name: "host-a", runners: 2, drift: -0.01 },
      { name: "host-b", runners: 2, drift: 0.01 },
      { name: "host-c", runners: 1, drift: -0.005 },
    ];
    const r = await run(
      [
        { atMs: 40_000, kind: "partition", host: 0, forMs: 20_000 },
        { atMs: 80_000, kind: "partition", host: 1, forMs: 20_000 },
        { atMs: 120_000, kind: "daemonCrash", host: 2, downMs: 10_000 },
        { atMs: 130_000, kind: "partition", host: 0, forMs: 15_000 },
      ],
      hosts,
      200_000,
    );
    expect(r.doubleProduced).toBe(0);
    expect(r.sharedWindows).toBe(0);
    expect(new Set(r.promotions.map((p) => p.host)).size).toBeGreaterThan(1);
  });
});
