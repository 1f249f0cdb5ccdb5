// The lease shell's side of switchover --host against the fake etcd: the signing host stops signing
// while it fences, gives the key up only by the txn, then holds off; the target wins on the record,
// polls for it between rounds, and skips the takeover wait (the window rule stays).
import { quietServices } from "../fake-services.ts";
import { describe, expect, test } from "bun:test";
import { createElection, handoverKey } from "../../src/cluster/election.ts";
import { clusterBlock } from "../../src/master/cluster.ts";
import { HANDOVER_POLL_MS, SignerLease } from "../../src/daemon/lease.ts";
import { silentLog } from "../../src/lab/harness.ts";
import type { Clock } from "../../src/ports.ts";
import { createFakeEtcd, type FakeEtcd } from "../cluster/fake-etcd.ts";

function host(etcd: FakeEtcd, name: string, sleep: Clock["sleep"] = async () => {}) {
  const clock: Clock = { now: () => etcd.nowMs() + 5_000_000, sleep };
  const disarmed: number[] = [];
  const services = quietServices({ disarmFreeze: async (id: number) => void disarmed.push(id) });
  const election = createElection({ etcd, prefix: "/p", candidate: name, ttlS: 5, now: () => etcd.nowMs() });
  const lease = new SignerLease({ election, services: () => services, clock, mono: () => etcd.nowMs(), signer: () => 1, log: silentLog, prefix: "/p" });
  return { lease, election, clock, disarmed };
}

/** host-a holding past its takeover wait */
async function signing(etcd: FakeEtcd) {
  const a = host(etcd, "host-a");
  await a.lease.step();
  for (let i = 0; i < 6; i++) (etcd.advance(1_500), await a.lease.step());
  expect(a.lease.observe().maySign).toBe(true);
  expect(clusterBlock(a.lease.observe(), a.clock.now())).toBeNull();
  return a;
}

describe("SignerLease: handing over (the signing host)", () => {
  test("fencing: nobody here may sign (the gate says why); abandoned, it signs on as before", async () => {
    const etcd = createFakeEtcd(1_000_000);
    const a = await signing(etcd);
    expect(a.lease.beginHandover("host-b")).toBeNull();
    const o = a.lease.observe();
    expect(o.maySign).toBe(false);
    expect(clusterBlock(o, a.clock.now())).toContain("handing the signer lease over to host-b");
    // Still renewing its lease while fencing (the key must stay ours until the txn)
    etcd.advance(1_500);
    await a.lease.step();
    expect(a.election.holding()).not.toBeNull();
    a.lease.abortHandover("test");
    expect(a.lease.observe().maySign).toBe(true);
  });

  test("refused when not holding, to itself, or during its own takeover wait", async () => {
    const etcd = createFakeEtcd(1_000_000);
    const a = host(etcd, "host-a");
    expect(a.lease.beginHandover("host-b")).toContain("does not hold");
    await a.lease.step();
    expect(a.lease.beginHandover("host-b")).toContain("takeover wait");
    for (let i = 0; i < 6; i++) (etcd.advance(1_500), await a.lease.step());
    expect(a.lease.beginHandover("host-a")).toContain("is this host");
  });

  test("committed: holding nothing, the old signer's switch disarmed, no campaign during the grace (it learns who took the key)", async () => {
    const etcd = createFakeEtcd(1_000_000);
    const a = await signing(etcd);
    a.lease.beginHandover("host-b");
    expect((await a.lease.commitHandover(123)).kind).toBe("handed-over");
    expect(a.election.holding()).toBeNull();
    expect(a.disarmed).toEqual([1]);
    const b = host(etcd, "host-b");
    await b.lease.step();
    const grants = etcd.calls.filter((c) => c === "leaseGrant").length;
    etcd.advance(1_500);
    await a.lease.step();
    expect(etcd.calls.filter((c) => c === "leaseGrant").length).toBe(grants);
    expect(a.lease.holder()).toBe("host-b");
    expect(a.lease.observe().maySign).toBe(false);
  });

  test("etcd down at the commit: nothing handed over, the host signs on", async () => {
    const etcd = createFakeEtcd(1_000_000);
    const a = await signing(etcd);
    a.lease.beginHandover("host-b");
    etcd.down = true;
    expect((await a.lease.commitHandover(1)).kind).toBe("not-started");
    etcd.down = false;
    expect(a.lease.observe().maySign).toBe(true);
  });

  test("the txn's answer lost: the lease is revoked, the host holds off and signs nothing", async () => {
    const etcd = createFakeEtcd(1_000_000);
    const a = await signing(etcd);
    const lease = a.election.holding()!.lease;
    a.lease.beginHandover("host-b");
    etcd.loseAnswer = ["txn"];
    expect((await a.lease.commitHandover(1)).kind).toBe("unknown");
    expect(etcd.leases.has(lease)).toBe(false);
    expect(a.lease.observe().maySign).toBe(false);
  });
});

describe("SignerLease: taking a hand-over up (the target host)", () => {
  test("won on the record: no takeover wait (signing at once), the window rule kept from the win on", async () => {
    const etcd = createFakeEtcd(1_000_000);
    const a = await signing(etcd);
    a.lease.beginHandover("host-b");
    await a.lease.commitHandover(1);
    const b = host(etcd, "host-b");
    await b.lease.step();
    const o = b.lease.observe();
    expect(o.maySign).toBe(true);
    expect(clusterBlock(o, b.clock.now())).toBeNull();
    // The window rule: windows that opened before the win stay the old host's
    expect(o.takeoverSafeAtMs).not.toBeNull();
    expect(o.takeoverSafeAtMs!).toBeLessThanOrEqual(b.clock.now());
    expect(o.takeoverSafeAtMs!).toBeGreaterThan(b.clock.now() - 1_000);
    expect(etcd.kv.has(handoverKey("/p"))).toBe(false);
  });

  test("a third host holds off while the record names another; a normal win waits the full takeover wait", async () => {
    const etcd = createFakeEtcd(1_000_000);
    const a = await signing(etcd);
    a.lease.beginHandover("host-b");
    await a.lease.commitHandover(1);
    const c = host(etcd, "host-c");
    await c.lease.step();
    expect(c.election.holding()).toBeNull();
    etcd.advance(5_000);
    await c.lease.step();
    const o = c.lease.observe();
    expect(o.maySign).toBe(true);
    expect(clusterBlock(o, c.clock.now())).toContain("just taken over");
  });

  test("run(): between rounds the target polls for the record and campaigns within one poll, not one round", async () => {
    const etcd = createFakeEtcd(1_000_000);
    const a = await signing(etcd);
    const ac = new AbortController();
    let sleeps = 0;
    let handedAt: number | null = null;
    let wonAt: number | null = null;
    const b = host(etcd, "host-b", async (ms) => {
      if (wonAt === null && handedAt !== null && b.election.holding() !== null) wonAt = etcd.nowMs();
      etcd.advance(ms);
      sleeps++;
      if (sleeps === 3) {
        // keep host-a's lease alive up to here, then hand over
        await a.election.renew();
        a.lease.beginHandover("host-b");
        await a.lease.commitHandover(1);
        handedAt = etcd.nowMs();
      }
      if (sleeps > 20) ac.abort();
    });
    await b.lease.run(ac.signal, 5);
    expect(wonAt).not.toBeNull();
    expect(wonAt! - handedAt!).toBeLessThanOrEqual(HANDOVER_POLL_MS);
  });
});
