// The election against the in-memory etcd (fake-etcd.ts), in virtual time; election-etcd.test.ts
// runs the same primitive against the real 3-member cluster.

import { describe, expect, test } from "bun:test";
import { allowanceMs, DEFAULT_TIME_BOUNDS } from "../../src/cluster/deadline.ts";
import { createElection, signerKey } from "../../src/cluster/election.ts";
import { createFakeEtcd, type FakeEtcd } from "./fake-etcd.ts";

const PREFIX = "/jorm/pool";
const KEY = signerKey(PREFIX);

function contender(etcd: FakeEtcd, candidate: string, ttlS = 5) {
  return createElection({ etcd, prefix: PREFIX, candidate, ttlS, now: () => etcd.nowMs() });
}

describe("campaign", () => {
  test("on a free key: won, the key names us under our lease, signing allowed until sent + allowance", async () => {
    const etcd = createFakeEtcd(10_000);
    const a = contender(etcd, "host-a");
    const won = await a.campaign();
    expect(won.kind).toBe("won");
    if (won.kind !== "won") return;
    expect(etcd.kv.get(KEY)).toMatchObject({ value: "host-a", lease: won.lease });
    expect(won.signUntilMs).toBeCloseTo(10_000 + allowanceMs(5), 6);
    expect(a.maySign()).toBe(true);
  });

  test("two contenders: one wins, the loser learns the winner's name and leaves no lease behind", async () => {
    const etcd = createFakeEtcd();
    const a = contender(etcd, "host-a");
    const b = contender(etcd, "host-b");
    expect((await a.campaign()).kind).toBe("won");
    const lost = await b.campaign();
    expect(lost).toMatchObject({ kind: "lost", holder: { value: "host-a" } });
    expect(b.maySign()).toBe(false);
    expect(b.holding()).toBeNull();
    expect(etcd.leases.size).toBe(1);
  });

  test("the grant is timed from its send: a slow network shortens the allowance, never lengthens it", async () => {
    const etcd = createFakeEtcd(0);
    etcd.latencyMs = 700;
    const won = await contender(etcd, "host-a").campaign();
    // grant sent at 0 (answered 700), txn answered 1400: the deadline still counts from 0
    expect(won.kind === "won" && won.signUntilMs).toBeCloseTo(allowanceMs(5), 6);
  });

  test("a txn that committed but whose answer was lost: not won, and the lease is revoked so the key is freed", async () => {
    const etcd = createFakeEtcd();
    etcd.loseAnswer = ["txn"];
    const a = contender(etcd, "host-a");
    const r = await a.campaign();
    expect(r.kind).toBe("error");
    expect(a.maySign()).toBe(false);
    expect(etcd.kv.has(KEY)).toBe(false);
    expect(etcd.leases.size).toBe(0);
    expect((await a.campaign()).kind).toBe("won");
  });

  test("etcd down: an error value, no signing", async () => {
    const etcd = createFakeEtcd();
    etcd.down = true;
    const a = contender(etcd, "host-a");
    expect((await a.campaign()).kind).toBe("error");
    expect(a.maySign()).toBe(false);
  });
});

describe("renew", () => {
  test("a keep-alive moves the deadline to ITS send time + allowance, not its answer's", async () => {
    const etcd = createFakeEtcd(0);
    const a = contender(etcd, "host-a");
    await a.campaign();
    etcd.advance(1_000);
    etcd.latencyMs = 400; // each of keep-alive and range takes 400 ms
    const r = await a.renew();
    expect(r.kind).toBe("renewed");
    expect(r.kind === "renewed" && r.signUntilMs).toBeCloseTo(1_000 + allowanceMs(5), 6);
  });

  test("etcd unreachable: the deadline stays; signing stops when it passes", async () => {
    const etcd = createFakeEtcd(0);
    const a = contender(etcd, "host-a");
    const won = await a.campaign();
    if (won.kind !== "won") throw new Error("not won");
    etcd.down = true;
    etcd.advance(2_000);
    const r = await a.renew();
    expect(r).toMatchObject({ kind: "error", signUntilMs: won.signUntilMs });
    expect(a.maySign()).toBe(true);
    etcd.advance(won.signUntilMs! - 2_000);
    expect(a.maySign()).toBe(false);
  });

  test("the deadline always ends before etcd frees the key for another host", async () => {
    const etcd = createFakeEtcd(0);
    const a = contender(etcd, "host-a");
    await a.campaign();
    etcd.down = true;
    const freedAt = 5_000;
    // Step through time: wherever a may still sign, the key is still a's in etcd
    for (let t = 0; t < 6_000; t += 50) {
      if (a.maySign(t)) expect(t).toBeLessThan(freedAt - DEFAULT_TIME_BOUNDS.schedulingMarginMs);
    }
  });

  test("the lease expired (keep-alives stopped longer than the TTL): lost, no signing", async () => {
    const etcd = createFakeEtcd(0);
    const a = contender(etcd, "host-a");
    await a.campaign();
    etcd.advance(5_001);
    expect(await a.renew()).toMatchObject({ kind: "lost" });
    expect(a.maySign()).toBe(false);
    expect(a.holding()).toBeNull();
  });

  test("etcd revoked the lease early (a stuck old leader, etcd #15247): the next renew drops the right", async () => {
    const etcd = createFakeEtcd(0);
    const a = contender(etcd, "host-a");
    const won = await a.campaign();
    if (won.kind !== "won") throw new Error("not won");
    etcd.revoke(won.lease);
    expect(await a.renew()).toMatchObject({ kind: "lost", reason: expect.stringContaining("gone") });
    expect(a.maySign()).toBe(false);
  });

  test("the key deleted and taken by another host while our lease lives on: lost", async () => {
    const etcd = createFakeEtcd(0);
    const a = contender(etcd, "host-a");
    const b = contender(etcd, "host-b");
    await a.campaign();
    await etcd.deleteRange(KEY);
    expect((await b.campaign()).kind).toBe("won");
    expect(await a.renew()).toMatchObject({ kind: "lost", reason: expect.stringContaining("host-b") });
    expect(a.maySign()).toBe(false);
  });

  test("renew without holding: not-holding; two renews at once share one round trip", async () => {
    const etcd = createFakeEtcd(0);
    const a = contender(etcd, "host-a");
    expect(await a.renew()).toEqual({ kind: "not-holding" });
    await a.campaign();
    etcd.calls.length = 0;
    const [r1, r2] = await Promise.all([a.renew(), a.renew()]);
    expect(r1).toEqual(r2);
    expect(etcd.calls).toEqual(["leaseKeepAlive", "range"]);
  });
});

describe("resign and holder", () => {
  test("resign: no signing from that moment, the lease revoked, the key free for the next host", async () => {
    const etcd = createFakeEtcd(0);
    const a = contender(etcd, "host-a");
    const b = contender(etcd, "host-b");
    await a.campaign();
    const resigning = a.resign();
    expect(a.maySign()).toBe(false);
    expect((await resigning).ok).toBe(true);
    expect(await b.holder()).toMatchObject({ ok: true, value: null });
    expect((await b.campaign()).kind).toBe("won");
    expect(await a.holder()).toMatchObject({ ok: true, value: { value: "host-b" } });
  });
});

describe("boundary grants (issue 13 point 4)", () => {
  test("the holder's grant lives under its lease: other hosts read it; it ends with the lease", async () => {
    const etcd = createFakeEtcd();
    const a = contender(etcd, "host-a");
    const b = contender(etcd, "host-b");
    expect((await b.grantHandout(3)).ok).toBe(false); // not holding: no grant
    await a.campaign();
    expect((await a.grantHandout(3)).ok).toBe(true);
    expect(await b.handoutGrants()).toMatchObject({ ok: true, value: [3] });
    const lease = a.holding()!.lease;
    etcd.revoke(lease);
    expect(await b.handoutGrants()).toMatchObject({ ok: true, value: [] });
  });

  test("a grant not under the signer key's lease is no grant (a stale key, an operator's put)", async () => {
    const etcd = createFakeEtcd();
    const a = contender(etcd, "host-a");
    const b = contender(etcd, "host-b");
    await a.campaign();
    await etcd.put(`${PREFIX}/handout/4`, "host-x");
    expect(await b.handoutGrants()).toMatchObject({ ok: true, value: [] });
  });

  test("etcd unreachable: the read fails (the daemon treats it as no grant)", async () => {
    const etcd = createFakeEtcd();
    const b = contender(etcd, "host-b");
    etcd.down = true;
    expect((await b.handoutGrants()).ok).toBe(false);
  });
});
