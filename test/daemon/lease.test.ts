// The daemon's SignerLease against the fake etcd on a virtual clock: the signer's dead-man switch is
// re-armed only after a keep-alive that succeeded, to the deadline counted from its send time; a
// failed re-arm freezes the signer at once and stops the host signing.
import { quietServices } from "../fake-services.ts";
import { describe, expect, test } from "bun:test";
import { allowanceMs, takeoverSafeAtMs } from "../../src/cluster/deadline.ts";
import { createElection } from "../../src/cluster/election.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileLeaseStore, readBootId, settledHandoutEpoch, SignerLease, type LeaseStore, type SavedLease } from "../../src/daemon/lease.ts";
import { silentLog } from "../../src/lab/harness.ts";
import type { Clock, Signal } from "../../src/ports.ts";
import { createFakeEtcd, FIXED_ETCD_VERSIONS } from "../cluster/fake-etcd.ts";

type Saved = Omit<SavedLease, "bootId">;
function memoryStore(): LeaseStore & { saved: Saved | null } {
  const st = { saved: null as Saved | null, load: () => st.saved, save: (x: Saved | null) => void (st.saved = x) };
  return st;
}

function setup(store: LeaseStore | null = null) {
  const etcd = createFakeEtcd(1_000_000);
  const clock: Clock = { now: () => etcd.nowMs() + 5_000_000, sleep: async () => {} };
  const arms: { id: number; atMs: number }[] = [];
  let co: { ids: number[]; untilMs: number } | null = null;
  const kills: { id: number; sig: Signal }[] = [];
  let armFails = false;
  const services = quietServices({
    kill: async (id: number, sig: Signal) => void kills.push({ id, sig }),
    armFreeze: async (id: number, atMs: number) => {
      if (armFails) throw new Error("systemd-run: Failed to start transient timer unit");
      arms.push({ id, atMs });
    },
  });
  const election = createElection({ etcd, prefix: "/p", candidate: "host-a", ttlS: 5, now: () => etcd.nowMs() });
  const lease = new SignerLease({ election, services: () => services, clock, mono: () => etcd.nowMs(), signer: () => 1, coHolders: () => co, log: silentLog, prefix: "/p", store });
  /** A new daemon on the same host: same etcd, same disk */
  const restart = () => {
    const e2 = createElection({ etcd, prefix: "/p", candidate: "host-a", ttlS: 5, now: () => etcd.nowMs() });
    return new SignerLease({ election: e2, services: () => services, clock, mono: () => etcd.nowMs(), signer: () => 1, log: silentLog, prefix: "/p", store });
  };
  return { etcd, clock, lease, arms, kills, setArmFails: (v: boolean) => (armFails = v), restart, setCoHolders: (v: typeof co) => (co = v) };
}

describe("SignerLease: the takeover wait follows etcd's versions", () => {
  test("every member with the lease fixes: signing at once after the win (the old lease ran its TTL out)", async () => {
    const { etcd, clock, lease } = setup();
    etcd.versions = [...FIXED_ETCD_VERSIONS];
    // The previous holder, seen at every round until its lease ran its TTL out (its daemon died)
    const previous = createElection({ etcd, prefix: "/p", candidate: "host-z", ttlS: 5, now: () => etcd.nowMs() });
    expect((await previous.campaign()).kind).toBe("won");
    await lease.step();
    for (let i = 0; i < 4 && lease.observe().holder !== "host-a"; i++) (etcd.advance(1_500), await lease.step());
    expect(lease.observe().holder).toBe("host-a");
    const o = lease.observe();
    expect(o.maySign).toBe(true);
    // The win's confirmation, in decide's clock: no later than now
    expect(o.takeoverSafeAtMs).not.toBeNull();
    expect(o.takeoverSafeAtMs!).toBeLessThanOrEqual(clock.now());
  });
  test("one member on 3.4.23, or one that cannot be asked: the full wait", async () => {
    for (const versions of [["3.5.23", "3.4.23", "3.5.23"], ["3.5.23", null, "3.5.23"]]) {
      const { etcd, clock, lease } = setup();
      etcd.versions = versions;
      await lease.step();
      expect(lease.observe().takeoverSafeAtMs!).toBeGreaterThan(clock.now() + takeoverSafeAtMs(0, 5) - 100);
    }
  });
  test("the member list unreadable (its answer lost): the full wait", async () => {
    const { etcd, clock, lease } = setup();
    etcd.versions = [...FIXED_ETCD_VERSIONS];
    etcd.loseAnswer.push("memberVersions");
    await lease.step();
    expect(lease.observe().takeoverSafeAtMs!).toBeGreaterThan(clock.now() + takeoverSafeAtMs(0, 5) - 100);
  });
});

describe("SignerLease", () => {
  test("won, then each keep-alive re-arms the signer's switch to send time + allowance (in decide's clock)", async () => {
    const { etcd, clock, lease, arms } = setup();
    await lease.step();
    expect(arms).toHaveLength(1);
    const o = lease.observe();
    expect(o.maySign).toBe(true);
    expect(o.takeoverSafeAtMs).toBeGreaterThan(clock.now());
    etcd.advance(1_500);
    etcd.latencyMs = 300; // the keep-alive applies 300 ms after it was sent
    const sentAt = clock.now();
    await lease.step();
    expect(arms).toHaveLength(2);
    expect(arms[1]!.atMs).toBeCloseTo(sentAt + allowanceMs(5), 6);
    expect(lease.observe().mustStopByMs).toBeCloseTo(arms[1]!.atMs, 6);
  });

  test("a keep-alive that fails re-arms nothing: the switch fires at the old deadline, and the host stops signing then", async () => {
    const { etcd, clock, lease, arms } = setup();
    await lease.step();
    const deadline = arms[0]!.atMs;
    etcd.down = true;
    etcd.advance(1_500);
    await lease.step();
    expect(arms).toHaveLength(1);
    expect(lease.observe().mustStopByMs).toBeCloseTo(deadline, 6);
    expect(lease.observe().maySign).toBe(true);
    etcd.advance(deadline - clock.now());
    expect(lease.observe().maySign).toBe(false);
  });

  test("re-arming fails: the signer is frozen at once and the host may not sign until an arm succeeds", async () => {
    const { etcd, lease, kills, setArmFails } = setup();
    await lease.step();
    setArmFails(true);
    etcd.advance(1_500);
    await lease.step();
    expect(kills).toEqual([{ id: 1, sig: "SIGSTOP" }]);
    expect(lease.observe().maySign).toBe(false);
    setArmFails(false);
    etcd.advance(1_500);
    await lease.step();
    expect(lease.observe().maySign).toBe(true);
  });

  test("another host holds the key: this one campaigns, loses, may not sign, and names the holder", async () => {
    const { etcd, lease } = setup();
    const other = createElection({ etcd, prefix: "/p", candidate: "host-b", ttlS: 5, now: () => etcd.nowMs() });
    expect((await other.campaign()).kind).toBe("won");
    await lease.step();
    expect(lease.observe()).toMatchObject({ maySign: false, holder: "host-b", mustStopByMs: null });
  });

  test("a restarted daemon takes the lease up again: signing at once when the takeover wait was over, else after a new wait", async () => {
    const store = memoryStore();
    const { etcd, lease, restart, clock } = setup(store);
    await lease.step();
    expect(store.saved).toMatchObject({ takeoverSafe: false });
    // Renewed past the takeover wait: remembered as safe
    for (let i = 0; i < 6; i++) (etcd.advance(1_500), await lease.step());
    expect(store.saved).toMatchObject({ takeoverSafe: true });
    const next = restart();
    await next.step();
    const o = next.observe();
    expect(o).toMatchObject({ maySign: true, takeoverSafeAtMs: null, holder: "host-a" });
    expect(etcd.calls.filter((c) => c === "leaseGrant")).toHaveLength(1);
    // A daemon that died during its own takeover wait: the next one waits anew
    store.saved = { ...store.saved!, takeoverSafe: false };
    const third = restart();
    await third.step();
    expect(third.observe().takeoverSafeAtMs).toBeGreaterThan(clock.now());
  });

  test("the remembered lease is gone: the restarted daemon forgets it and campaigns", async () => {
    const store = memoryStore();
    const { etcd, lease, restart } = setup(store);
    await lease.step();
    const old = store.saved!.lease;
    etcd.advance(6_000); // no keep-alive: the lease ends
    const next = restart();
    await next.step();
    expect(next.observe().maySign).toBe(true);
    expect(store.saved!.lease).not.toBe(old);
    expect(etcd.calls.filter((c) => c === "leaseGrant")).toHaveLength(2);
  });

  test("the lease file: taken up only in the boot that wrote it (not after a reboot, nor from a copied disk)", () => {
    const dir = mkdtempSync(join(tmpdir(), "jm-lease-"));
    try {
      const path = join(dir, "state", "cluster-lease.json");
      const saved = { prefix: "/p", lease: "7587", createRevision: 12, takeoverSafe: true };
      fileLeaseStore(path, "boot-1").save(saved);
      expect(fileLeaseStore(path, "boot-1").load() as unknown).toEqual({ ...saved, bootId: "boot-1" });
      expect(fileLeaseStore(path, "boot-2").load()).toBeNull();
      expect(fileLeaseStore(path, null).load()).toBeNull();
      writeFileSync(path, "{garbage");
      expect(fileLeaseStore(path, "boot-1").load()).toBeNull();
      fileLeaseStore(path, "boot-1").save(null);
      expect(fileLeaseStore(path, "boot-1").load()).toBeNull();
      expect(readBootId()).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("boundary co-holders' switches follow the allowance too, never past their slot-1 deadline", async () => {
    const { etcd, clock, lease, arms, setCoHolders } = setup();
    await lease.step();
    const slot1 = clock.now() + 3_000;
    setCoHolders({ ids: [2, 3], untilMs: slot1 });
    etcd.advance(1_000);
    await lease.step();
    const signerAt = arms.filter((a) => a.id === 1).at(-1)!.atMs;
    expect(arms.filter((a) => a.id === 2).at(-1)!.atMs).toBe(Math.min(signerAt, slot1));
    expect(arms.filter((a) => a.id === 3).at(-1)!.atMs).toBe(Math.min(signerAt, slot1));
    expect(signerAt).toBeGreaterThan(slot1);
  });
});

describe("boundary grants in the lease shell", () => {
  function host(etcd: ReturnType<typeof createFakeEtcd>, name: string, settled: () => number | null) {
    const clock: Clock = { now: () => etcd.nowMs(), sleep: async () => {} };
    const services = quietServices();
    const election = createElection({ etcd, prefix: "/p", candidate: name, ttlS: 5, now: () => etcd.nowMs() });
    return new SignerLease({ election, services: () => services, clock, mono: () => etcd.nowMs(), signer: () => null, log: silentLog, prefix: "/p", handoutSettled: settled });
  }

  test("the signing host grants the epoch it settled, once past its takeover wait; another host reads it; etcd down: no grant", async () => {
    const etcd = createFakeEtcd(1_000_000);
    let settled: number | null = null;
    const a = host(etcd, "host-a", () => settled);
    const b = host(etcd, "host-b", () => 9);
    await a.step(); // won
    settled = 4;
    await a.step(); // renewed, but still in the takeover wait: no grant yet
    await b.step();
    expect(b.observe().handoutGrant).toBeNull();
    // Past the takeover wait, keeping the lease alive
    for (let i = 0; i < 15; i++) (etcd.advance(1_000), await a.step());
    await b.step();
    expect(a.observe().handoutGrant).toBeNull(); // the holder never reads its own
    expect(b.observe().handoutGrant).toEqual({ epoch: 4 });
    etcd.down = true;
    await b.step();
    expect(b.observe().handoutGrant).toBeNull();
  });

  test("settled: done, or no standby to hand to; anything else is not", () => {
    expect(settledHandoutEpoch({ epoch: 5, why: "done" })).toBe(5);
    expect(settledHandoutEpoch({ epoch: 5, why: "no_standby: no healthy key-less standby" })).toBe(5);
    expect(settledHandoutEpoch({ epoch: 5, why: "window: a leader slot's window lies before or across the boundary" })).toBeNull();
    expect(settledHandoutEpoch(undefined)).toBeNull();
  });
});

describe("SignerLease: a key deleted by hand is not a lease that ran out", () => {
  test("the previous holder's lease still alive when this host wins: the full wait, even on a fixed etcd", async () => {
    const etcd = createFakeEtcd(1_000_000);
    etcd.versions = [...FIXED_ETCD_VERSIONS];
    const clock: Clock = { now: () => etcd.nowMs(), sleep: async () => {} };
    const services = quietServices();
    const host = (name: string) =>
      new SignerLease({ election: createElection({ etcd, prefix: "/p", candidate: name, ttlS: 5, now: () => etcd.nowMs() }), services: () => services, clock, mono: () => etcd.nowMs(), signer: () => 1, log: silentLog, prefix: "/p" });
    const a = host("host-a");
    const b = host("host-b");
    await a.step();
    await b.step(); // lost: host-b saw host-a's lease
    // An operator deletes the key; host-a's lease lives on (its daemon keeps it alive)
    await etcd.deleteRange("/p/signer");
    await b.step();
    expect(b.observe().takeoverSafeAtMs!).toBeGreaterThan(clock.now() + takeoverSafeAtMs(0, 5) - 100);
    // The same, but host-a's lease ran out (expired): no wait
    const etcd2 = createFakeEtcd(1_000_000);
    etcd2.versions = [...FIXED_ETCD_VERSIONS];
    const clock2: Clock = { now: () => etcd2.nowMs(), sleep: async () => {} };
    const host2 = (name: string) =>
      new SignerLease({ election: createElection({ etcd: etcd2, prefix: "/p", candidate: name, ttlS: 5, now: () => etcd2.nowMs() }), services: () => services, clock: clock2, mono: () => etcd2.nowMs(), signer: () => 1, log: silentLog, prefix: "/p" });
    const a2 = host2("host-a");
    const b2 = host2("host-b");
    await a2.step();
    await b2.step();
    // host-a's daemon dies; host-b campaigns every round until the lease has run out
    for (let i = 0; i < 4 && b2.observe().holder !== "host-b"; i++) (etcd2.advance(1_500), await b2.step());
    expect(b2.observe().holder).toBe("host-b");
    expect(b2.observe().takeoverSafeAtMs!).toBeLessThanOrEqual(clock2.now());
  });
});
