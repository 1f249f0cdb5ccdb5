// The planned hand-over between hosts (switchover --host) against the in-memory etcd: the holder's
// one txn (key deleted, record written, only while the key is bound to its lease), the target's win
// on the record, the other hosts holding off, and the records that must not count.

import { describe, expect, test } from "bun:test";
import { createElection, HANDOVER_GRACE_S, handoverKey, signerKey } from "../../src/cluster/election.ts";
import { createFakeEtcd, type FakeEtcd } from "./fake-etcd.ts";

const PREFIX = "/jorm/pool";
const KEY = signerKey(PREFIX);
const HKEY = handoverKey(PREFIX);

const contender = (etcd: FakeEtcd, candidate: string) => createElection({ etcd, prefix: PREFIX, candidate, ttlS: 5, now: () => etcd.nowMs() });

async function holding(etcd: FakeEtcd) {
  const a = contender(etcd, "host-a");
  const won = await a.campaign();
  if (won.kind !== "won") throw new Error("host-a did not win");
  return { a, lease: won.lease };
}

describe("handOver (the signing host)", () => {
  test("one txn: the signer key deleted, the record naming the target written under a lease of its own; the old lease revoked; nothing held", async () => {
    const etcd = createFakeEtcd(10_000);
    const { a, lease } = await holding(etcd);
    const createRevision = etcd.kv.get(KEY)!.createRevision;
    const r = await a.handOver("host-b", 123);
    expect(r.kind).toBe("handed-over");
    expect(etcd.kv.has(KEY)).toBe(false);
    const rec = etcd.kv.get(HKEY)!;
    expect(JSON.parse(rec.value)).toEqual({ from: "host-a", to: "host-b", lease, createRevision, fencedAtMs: 123 });
    expect(rec.lease).not.toBe(lease);
    expect(etcd.leases.get(rec.lease)!.ttlS).toBe(HANDOVER_GRACE_S);
    expect(etcd.leases.has(lease)).toBe(false);
    expect(a.holding()).toBeNull();
    expect(a.maySign()).toBe(false);
  });

  test("a keep-alive that completes while the record's lease is being granted does not abort the hand-over (same lease, later deadline)", async () => {
    const etcd = createFakeEtcd(10_000);
    const { a } = await holding(etcd);
    const grant = etcd.leaseGrant;
    etcd.leaseGrant = async (ttlS) => {
      etcd.leaseGrant = grant;
      expect((await a.renew()).kind).toBe("renewed");
      return grant(ttlS);
    };
    expect((await a.handOver("host-b", 1)).kind).toBe("handed-over");
  });

  test("the key no longer bound to our lease (taken meanwhile): lost, no record left behind", async () => {
    const etcd = createFakeEtcd(10_000);
    const { a, lease } = await holding(etcd);
    etcd.revoke(lease);
    const c = contender(etcd, "host-c");
    expect((await c.campaign()).kind).toBe("won");
    const r = await a.handOver("host-b", 1);
    expect(r.kind).toBe("lost");
    expect(etcd.kv.has(HKEY)).toBe(false);
    expect(etcd.kv.get(KEY)!.value).toBe("host-c");
    expect(a.holding()).toBeNull();
  });

  test("etcd down before the txn: nothing changed, still holding (the host signs on)", async () => {
    const etcd = createFakeEtcd(10_000);
    const { a, lease } = await holding(etcd);
    etcd.down = true;
    const r = await a.handOver("host-b", 1);
    expect(r.kind).toBe("not-started");
    expect(a.holding()?.lease).toBe(lease);
    etcd.down = false;
    expect(etcd.kv.get(KEY)!.lease).toBe(lease);
  });

  test("the txn's answer lost: holding nothing, the old lease revoked; the record (the txn did commit) still names the target", async () => {
    const etcd = createFakeEtcd(10_000);
    const { a, lease } = await holding(etcd);
    etcd.loseAnswer = ["txn"];
    const r = await a.handOver("host-b", 1);
    expect(r).toMatchObject({ kind: "unknown", revoked: true });
    expect(a.holding()).toBeNull();
    expect(etcd.leases.has(lease)).toBe(false);
    expect(etcd.kv.has(KEY)).toBe(false);
    const b = await contender(etcd, "host-b").campaign();
    expect(b.kind === "won" && b.handover?.from).toBe("host-a");
  });

  test("the txn's answer lost and it did not commit: the revoke ends the key, another host takes over with the full wait", async () => {
    const etcd = createFakeEtcd(10_000);
    const { a, lease } = await holding(etcd);
    // The txn's request is lost on the way (it never reaches etcd): one failed call, then etcd again
    const txn = etcd.txn;
    etcd.txn = async () => ((etcd.txn = txn), { ok: false, error: { kind: "unavailable", message: "lost request" } });
    const r = await a.handOver("host-b", 1);
    expect(r.kind).toBe("unknown");
    expect(etcd.leases.has(lease)).toBe(false);
    expect(etcd.kv.has(KEY)).toBe(false);
    expect(etcd.kv.has(HKEY)).toBe(false);
    const c = await contender(etcd, "host-c").campaign();
    expect(c.kind).toBe("won");
    expect(c.kind === "won" && c.handover).toBeUndefined();
  });
});

describe("campaign with a hand-over record", () => {
  test("the named host wins on it at once (the record says who fenced what) and consumes the record", async () => {
    const etcd = createFakeEtcd(10_000);
    const { a } = await holding(etcd);
    await a.handOver("host-b", 55);
    const b = await contender(etcd, "host-b").campaign();
    expect(b.kind).toBe("won");
    if (b.kind !== "won") return;
    expect(b.handover).toMatchObject({ from: "host-a", to: "host-b", fencedAtMs: 55 });
    expect(etcd.kv.get(KEY)).toMatchObject({ value: "host-b", lease: b.lease });
    expect(etcd.kv.has(HKEY)).toBe(false);
  });

  test("a third host holds off while the record stands (its campaign fails in etcd and leaves no lease); after the grace it may campaign, with the full wait", async () => {
    const etcd = createFakeEtcd(10_000);
    const { a } = await holding(etcd);
    await a.handOver("host-b", 1);
    const c = contender(etcd, "host-c");
    const leasesBefore = etcd.leases.size;
    expect(await c.campaign()).toMatchObject({ kind: "held-off", record: { to: "host-b" } });
    expect(etcd.leases.size).toBe(leasesBefore);
    expect(etcd.kv.has(KEY)).toBe(false);
    // The old holder itself holds off too
    expect((await a.campaign()).kind).toBe("held-off");
    etcd.advance(HANDOVER_GRACE_S * 1000);
    const late = await c.campaign();
    expect(late.kind).toBe("won");
    expect(late.kind === "won" && late.handover).toBeUndefined();
  });

  test("the record expired before the target came: it wins like anyone, with the full takeover wait", async () => {
    const etcd = createFakeEtcd(10_000);
    const { a } = await holding(etcd);
    await a.handOver("host-b", 1);
    etcd.advance(HANDOVER_GRACE_S * 1000 + 1);
    const b = await contender(etcd, "host-b").campaign();
    expect(b.kind).toBe("won");
    expect(b.kind === "won" && b.handover).toBeUndefined();
  });

  test("a stale record not bound to a lease (it would never end) is not honoured: the named host wins with the full wait, a third host is not held off, and it is deleted", async () => {
    for (const who of ["host-b", "host-c"]) {
      const etcd = createFakeEtcd(10_000);
      await etcd.put(HKEY, JSON.stringify({ from: "host-a", to: "host-b", lease: "999", createRevision: 2, fencedAtMs: 1 }));
      const r = await contender(etcd, who).campaign();
      expect(r.kind).toBe("won");
      expect(r.kind === "won" && r.handover).toBeUndefined();
      expect(etcd.kv.has(HKEY)).toBe(false);
    }
  });

  test("a record naming us while another host holds the key: lost, the record is not used", async () => {
    const etcd = createFakeEtcd(10_000);
    const { a } = await holding(etcd);
    await a.handOver("host-b", 1);
    const grace = etcd.kv.get(HKEY)!;
    // A host that ignores records (an older daemon) took the key meanwhile.
    const lease = (await etcd.leaseGrant(5)) as { ok: true; value: { id: string } };
    await etcd.put(KEY, "host-old", { lease: lease.value.id });
    const b = await contender(etcd, "host-b").campaign();
    expect(b).toMatchObject({ kind: "lost", holder: { value: "host-old" } });
    expect(etcd.kv.get(HKEY)?.value).toBe(grace.value);
  });

  test("handoverRecord reads only an honoured record", async () => {
    const etcd = createFakeEtcd(10_000);
    const { a } = await holding(etcd);
    const b = contender(etcd, "host-b");
    expect(await b.handoverRecord()).toMatchObject({ ok: true, value: null });
    await a.handOver("host-b", 1);
    expect(await b.handoverRecord()).toMatchObject({ ok: true, value: { to: "host-b" } });
    await etcd.put(HKEY, "not json");
    expect(await b.handoverRecord()).toMatchObject({ ok: true, value: null });
  });
});
