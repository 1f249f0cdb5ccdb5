// Review h23: ways the lease shell could let two hosts sign at once, or keep the host that holds the
// lease from ever signing again. Each test failed on main before its fix.
import { quietServices } from "../fake-services.ts";
import { describe, expect, test } from "bun:test";
import { takeoverSafeAtMs } from "../../src/cluster/deadline.ts";
import { createElection } from "../../src/cluster/election.ts";
import { SignerLease, type LeaseStore } from "../../src/daemon/lease.ts";
import { silentLog } from "../../src/lab/harness.ts";
import type { Clock, ServiceManager } from "../../src/ports.ts";
import { clusterBlock } from "../../src/master/cluster.ts";
import { createFakeEtcd, FIXED_ETCD_VERSIONS, type FakeEtcd } from "../cluster/fake-etcd.ts";

const TTL_S = 5;

function world() {
  const etcd = createFakeEtcd(1_000_000);
  etcd.versions = [...FIXED_ETCD_VERSIONS];
  const clock: Clock = { now: () => etcd.nowMs(), sleep: async () => {} };
  return { etcd, clock };
}

function host(etcd: FakeEtcd, clock: Clock, name: string, opts: { signer?: () => number | null; services?: ServiceManager } = {}) {
  const services = opts.services ?? quietServices();
  const election = createElection({ etcd, prefix: "/p", candidate: name, ttlS: TTL_S, now: () => etcd.nowMs() });
  return new SignerLease({ election, services: () => services, clock, mono: () => etcd.nowMs(), signer: opts.signer ?? (() => 1), log: silentLog, prefix: "/p" });
}

/** Both hosts' gates open at `now`: both would let a runner sign. */
function bothMaySign(a: SignerLease, b: SignerLease, now: number): boolean {
  return clusterBlock(a.observe(), now) === null && clusterBlock(b.observe(), now) === null;
}

describe("takeover without a wait needs the previous holder's lease proven ended (fixed etcd, key deleted by hand)", () => {
  test("a host that never saw who held the key (its daemon just started) waits the full takeover", async () => {
    const { etcd, clock } = world();
    const a = host(etcd, clock, "host-a");
    await a.step();
    for (let i = 0; i < 6; i++) (etcd.advance(1_500), await a.step()); // past its own takeover wait: it signs
    expect(clusterBlock(a.observe(), clock.now())).toBeNull();
    // An operator deletes the key; host-a's lease lives on. host-b's daemon starts just now.
    await etcd.deleteRange("/p/signer");
    const b = host(etcd, clock, "host-b");
    await b.step();
    expect(b.observe().maySign).toBe(true);
    expect(bothMaySign(a, b, clock.now())).toBe(false);
    expect(b.observe().takeoverSafeAtMs!).toBeGreaterThan(clock.now() + takeoverSafeAtMs(0, TTL_S) - 100);
  });

  test("a host whose daemon was stopped (SIGSTOP) while the holder changed does not trust the holder it saw before", async () => {
    const { etcd, clock } = world();
    const a = host(etcd, clock, "host-a");
    const b = host(etcd, clock, "host-b");
    const c = host(etcd, clock, "host-c");
    await a.step();
    await b.step(); // lost to host-a: remembers host-a's lease
    await c.step(); // lost to host-a
    // host-b's daemon is stopped. host-a dies; its lease runs out; host-c, campaigning every round,
    // takes over (no wait: it saw host-a's lease end).
    for (let i = 0; i < 4 && c.observe().holder !== "host-c"; i++) (etcd.advance(1_500), await c.step());
    expect(c.observe().holder).toBe("host-c");
    expect(clusterBlock(c.observe(), clock.now())).toBeNull();
    // The key is deleted by hand while host-c signs; host-b's daemon resumes and wins.
    etcd.advance(200);
    await etcd.deleteRange("/p/signer");
    await b.step();
    expect(b.observe().maySign).toBe(true);
    expect(bothMaySign(b, c, clock.now())).toBe(false);
  });

  test("campaign rounds that failed in between: the holder seen before may have changed, so the full wait", async () => {
    const { etcd, clock } = world();
    const a = host(etcd, clock, "host-a");
    const b = host(etcd, clock, "host-b");
    const c = host(etcd, clock, "host-c");
    await a.step();
    await b.step();
    // host-a's lease runs out; host-c holds, signs at once (it saw host-a's lease end); host-b's
    // campaigns fail meanwhile (their answers lost)
    for (let i = 0; i < 4 && c.observe().holder !== "host-c"; i++) {
      etcd.advance(1_500);
      await c.step();
      etcd.loseAnswer.push("leaseGrant");
      await b.step();
    }
    etcd.advance(200);
    await etcd.deleteRange("/p/signer");
    await b.step();
    expect(b.observe().maySign).toBe(true);
    expect(bothMaySign(b, c, clock.now())).toBe(false);
  });
});

describe("what the taker knows of the previous holder comes from etcd, not from its own rounds", () => {
  test("etcd down for everyone, then back: the predecessor's lease ran out meanwhile, so the taker signs at once", async () => {
    const { etcd, clock } = world();
    const a = host(etcd, clock, "host-a");
    const b = host(etcd, clock, "host-b");
    await a.step();
    for (let i = 0; i < 6; i++) (etcd.advance(1_500), await a.step(), await b.step());
    etcd.down = true;
    for (let i = 0; i < 5; i++) (etcd.advance(1_500), await a.step(), await b.step()); // host-a's lease runs out
    etcd.down = false;
    await b.step();
    expect(b.observe().holder).toBe("host-b");
    expect(clusterBlock(b.observe(), clock.now())).toBeNull();
  });

  test("a daemon that just started, its predecessor's lease run out: signs at once; the first holder ever waits", async () => {
    const { etcd, clock } = world();
    const a = host(etcd, clock, "host-a");
    await a.step();
    expect(clusterBlock(a.observe(), clock.now())).not.toBeNull(); // nobody known before it: the full wait
    etcd.advance(6_000); // host-a's daemon is gone; its lease runs out
    const b = host(etcd, clock, "host-b");
    await b.step();
    expect(b.observe().holder).toBe("host-b");
    expect(clusterBlock(b.observe(), clock.now())).toBeNull();
  });
});

describe("a lease with less than a second left is alive (etcd reads it as TTL 0)", () => {
  test("key deleted by hand while its holder, cut off, still signs on its last keep-alive: the taker waits", async () => {
    const { etcd, clock } = world();
    const a = host(etcd, clock, "host-a");
    const b = host(etcd, clock, "host-b");
    await a.step();
    for (let i = 0; i < 6; i++) (etcd.advance(1_500), await a.step(), await b.step()); // host-a signs, host-b sees it
    // host-a is cut off from etcd now: its lease has TTL 5 s from its last keep-alive, its allowance 4.4 s
    const lastKeepAlive = clock.now();
    etcd.advance(1_500);
    await b.step();
    etcd.advance(1_500);
    await b.step();
    etcd.advance(1_200); // 4.2 s after host-a's last keep-alive: its lease has 0.8 s left
    await etcd.deleteRange("/p/signer");
    await b.step();
    expect(clock.now() - lastKeepAlive).toBe(4_200);
    expect(clusterBlock(a.observe(), clock.now())).toBeNull(); // host-a may still sign (until 4.4 s)
    expect(b.observe().maySign).toBe(true);
    expect(bothMaySign(a, b, clock.now())).toBe(false);
  });
});

describe("hosts with different lease_ttl (review h23)", () => {
  test("an etcd that can end a lease early: the taker waits out the previous holder's allowance, bought with ITS TTL", async () => {
    const etcd = createFakeEtcd(1_000_000); // Debian's 3.4.23: leases can end early
    const clock: Clock = { now: () => etcd.nowMs(), sleep: async () => {} };
    const services = quietServices();
    const mk = (name: string, ttlS: number) =>
      new SignerLease({ election: createElection({ etcd, prefix: "/p", candidate: name, ttlS, now: () => etcd.nowMs() }), services: () => services, clock, mono: () => etcd.nowMs(), signer: () => 1, log: silentLog, prefix: "/p" });
    const a = mk("host-a", 10);
    const b = mk("host-b", 5);
    await a.step();
    for (let i = 0; i < 8; i++) (etcd.advance(1_500), await a.step(), await b.step()); // host-a signs
    // A stuck old etcd leader revokes host-a's lease early (etcd #15247), right after its keep-alive
    etcd.revoke([...etcd.leases.keys()][0]!);
    etcd.advance(100);
    await b.step();
    expect(b.observe().holder).toBe("host-b");
    // host-a is cut off from etcd (it cannot learn its lease is gone); host-b keeps its lease.
    // Walk time forward: never may both hosts sign at once.
    let bSigned = false;
    for (let t = 0; t < 15_000; t += 100) {
      expect([t, bothMaySign(a, b, clock.now())]).toEqual([t, false]);
      bSigned ||= clusterBlock(b.observe(), clock.now()) === null;
      etcd.advance(100);
      if (t % 1_500 === 0) await b.step();
    }
    expect(bSigned).toBe(true);
  });
});

describe("a daemon restarted during its takeover wait (review h23)", () => {
  test("waits anew for the previous holder's allowance, bought with that holder's (longer) TTL", async () => {
    const etcd = createFakeEtcd(1_000_000); // leases can end early: the wait applies
    const clock: Clock = { now: () => etcd.nowMs(), sleep: async () => {} };
    const services = quietServices();
    let saved: Parameters<LeaseStore["save"]>[0] = null;
    const store: LeaseStore = { load: () => saved, save: (x) => void (saved = x) };
    const mk = (name: string, ttlS: number) =>
      new SignerLease({ election: createElection({ etcd, prefix: "/p", candidate: name, ttlS, now: () => etcd.nowMs() }), services: () => services, clock, mono: () => etcd.nowMs(), signer: () => 1, log: silentLog, prefix: "/p", store: name === "host-b" ? store : null });
    const a = mk("host-a", 10);
    const b = mk("host-b", 5);
    await a.step();
    for (let i = 0; i < 8; i++) (etcd.advance(1_500), await a.step(), await b.step());
    etcd.revoke([...etcd.leases.keys()][0]!); // host-a's lease ended early; host-a, cut off, signs on
    etcd.advance(100);
    await b.step();
    expect(b.observe().holder).toBe("host-b");
    // host-b's daemon restarts 1 s into its wait and takes its lease up again
    etcd.advance(1_000);
    const b2 = mk("host-b", 5);
    await b2.step();
    expect(b2.observe().holder).toBe("host-b");
    for (let t = 0; t < 15_000; t += 100) {
      expect([t, bothMaySign(a, b2, clock.now())]).toEqual([t, false]);
      etcd.advance(100);
      if (t % 1_500 === 0) await b2.step();
    }
  });
});

describe("a failed re-arm does not stop the host signing for good", () => {
  test("the signer frozen after a failed arm and fenced by decide (no signer left): the next round lets the host sign again", async () => {
    const { etcd, clock } = world();
    let armFails = false;
    let signer: number | null = 1;
    const services = quietServices({
      armFreeze: async () => {
        if (armFails) throw new Error("systemd-run: Failed to start transient timer unit");
      },
    });
    const a = host(etcd, clock, "host-a", { signer: () => signer, services });
    await a.step();
    armFails = true;
    etcd.advance(1_500);
    await a.step(); // the arm fails: the signer is frozen, the host may not sign
    expect(a.observe().maySign).toBe(false);
    // decide fences the frozen signer (killed, back passive): this host has no signer now, and a
    // promotion would arm the new signer's switch itself (act.ts refuses to promote without one).
    signer = null;
    armFails = false;
    for (let i = 0; i < 4; i++) (etcd.advance(1_500), await a.step());
    expect(a.observe().maySign).toBe(true);
  });
});

describe("known, not fixed (review h23)", () => {
  // (Fixed: a wall-clock step back between the observation and a promotion's arm; act.ts reads the
  // lease's deadline again right before arming. Left: a step inside systemctl.ts's armFreeze, between
  // its disarm and its arm, milliseconds wide.)
  // A lease revoked by hand (etcdctl lease revoke) cannot be told from one that ran its TTL out: on a
  // fixed etcd the taker skips the wait while the holder signs until its next keep-alive round
  // (≤ TTL/3 + a tick). Documented in the README's bounds; h22's hand-over revokes only after fencing.
  test.todo("a holder's lease revoked by hand does not let another host sign before the holder has stopped");
});
