// The gateway client and the election against the real 3-member etcd that CI starts
// (scripts/etcd-cluster.sh; endpoints in JORM_ETCD_ENDPOINTS). Locally, without it, these skip:
//   eval "$(scripts/etcd-cluster.sh)" && bun test test/cluster

import { afterAll, describe, expect, test } from "bun:test";
import { allowanceMs } from "../../src/cluster/deadline.ts";
import type { WatchEvent } from "../../src/cluster/etcd.ts";
import { createElection } from "../../src/cluster/election.ts";
import { createGatewayClient } from "../../src/cluster/gateway.ts";
import { requireEtcd, sharedEndpoints, uniquePrefix } from "./etcd-harness.ts";

const haveEtcd = sharedEndpoints.length > 0;
if (!haveEtcd) console.warn("skipping the real-etcd tests: JORM_ETCD_ENDPOINTS is unset (eval \"$(scripts/etcd-cluster.sh)\")");

test.if(requireEtcd)("CI has a real 3-member etcd for the cluster tests (JORM_ETCD_ENDPOINTS)", () => {
  expect(sharedEndpoints.length).toBe(3);
});

const it = haveEtcd ? test : test.skip;
const client = () => createGatewayClient({ endpoints: haveEtcd ? sharedEndpoints : ["http://127.0.0.1:1"] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** etcd's minimum TTL at default timings; asking for less gets this */
const MIN_TTL_S = 2;

const cleanup: string[] = [];
afterAll(async () => {
  if (!haveEtcd) return;
  const etcd = client();
  for (const prefix of cleanup) await etcd.deleteRange(prefix, { prefix: true });
});
function prefix(name: string): string {
  const p = uniquePrefix(name);
  cleanup.push(p);
  return p;
}

describe("members", () => {
  it("memberVersions: each of the three members answers with its server version (Debian's 3.4.23 has no lease fixes)", async () => {
    const r = await client().memberVersions();
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toHaveLength(3);
    for (const m of r.value) expect(m.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe("leases", () => {
  it("grant, keep-alive, time-to-live, revoke; a revoked lease keeps alive with TTL 0", async () => {
    const etcd = client();
    const grant = await etcd.leaseGrant(5);
    expect(grant.ok).toBe(true);
    if (!grant.ok) return;
    expect(grant.value.ttlS).toBe(5);
    expect(grant.value.id).toMatch(/^\d+$/);
    const alive = await etcd.leaseKeepAlive(grant.value.id);
    expect(alive).toMatchObject({ ok: true, value: { ttlS: 5 } });
    const p = prefix("lease");
    expect((await etcd.put(`${p}/k`, "v", { lease: grant.value.id })).ok).toBe(true);
    const ttl = await etcd.leaseTimeToLive(grant.value.id);
    expect(ttl).toMatchObject({ ok: true, value: { id: grant.value.id, grantedTtlS: 5, keys: [`${p}/k`] } });
    if (ttl.ok) expect(ttl.value.ttlS).toBeGreaterThan(3);
    expect((await etcd.leaseRevoke(grant.value.id)).ok).toBe(true);
    expect(await etcd.range(`${p}/k`)).toMatchObject({ ok: true, value: { kvs: [] } });
    expect(await etcd.leaseKeepAlive(grant.value.id)).toMatchObject({ ok: true, value: { ttlS: 0 } });
    expect(await etcd.leaseTimeToLive(grant.value.id)).toMatchObject({ ok: true, value: { ttlS: -1 } });
    // Revoking twice: the outcome holds, so it succeeds
    expect((await etcd.leaseRevoke(grant.value.id)).ok).toBe(true);
  });

  it("a live lease with less than a second left reads TTL 0 (etcd truncates and omits it), a gone one -1: leaseAlive says alive, then gone (review h23)", async () => {
    const etcd = client();
    const grant = await etcd.leaseGrant(MIN_TTL_S);
    expect(grant.ok).toBe(true);
    if (!grant.ok) return;
    const election = createElection({ etcd, prefix: prefix("ttl0"), candidate: "h23", ttlS: MIN_TTL_S });
    await Bun.sleep(MIN_TTL_S * 1000 - 600);
    expect(await etcd.leaseTimeToLive(grant.value.id)).toMatchObject({ ok: true, value: { ttlS: 0 } });
    expect(await election.leaseAlive(grant.value.id)).toMatchObject({ ok: true, value: true });
    await Bun.sleep(1_500);
    expect(await election.leaseAlive(grant.value.id)).toMatchObject({ ok: true, value: false });
  });

  it("etcd raises a TTL below its minimum to the minimum, and says so in the grant", async () => {
    const etcd = client();
    const grant = await etcd.leaseGrant(1);
    expect(grant).toMatchObject({ ok: true, value: { ttlS: MIN_TTL_S } });
    if (grant.ok) await etcd.leaseRevoke(grant.value.id);
  });

  it(
    "keep-alives hold a lease past its TTL; once they stop, its key is gone within TTL + 1 s and not before TTL",
    async () => {
      const etcd = client();
      const p = prefix("expiry");
      const grant = await etcd.leaseGrant(MIN_TTL_S);
      if (!grant.ok) throw new Error(grant.error.message);
      await etcd.put(`${p}/k`, "v", { lease: grant.value.id });
      // 3 s of keep-alives every 500 ms: longer than the TTL, the key stays
      for (let i = 0; i < 6; i++) {
        await sleep(500);
        expect(await etcd.leaseKeepAlive(grant.value.id)).toMatchObject({ ok: true, value: { ttlS: MIN_TTL_S } });
      }
      const lastSent = performance.now();
      await etcd.leaseKeepAlive(grant.value.id);
      let goneAfterMs = Number.NaN;
      while (performance.now() - lastSent < MIN_TTL_S * 1000 + 3_000) {
        const r = await etcd.range(`${p}/k`);
        if (r.ok && r.value.kvs.length === 0) {
          goneAfterMs = performance.now() - lastSent;
          break;
        }
        await sleep(50);
      }
      console.info(`lease TTL ${MIN_TTL_S} s: key gone ${Math.round(goneAfterMs)} ms after the last keep-alive was sent`);
      expect(goneAfterMs).toBeGreaterThanOrEqual(MIN_TTL_S * 1000);
      // etcd's lessor checks expiry every 500 ms, then revokes through raft
      expect(goneAfterMs).toBeLessThan(MIN_TTL_S * 1000 + 1_000);
      // And the holder's allowance ended well before
      expect(allowanceMs(MIN_TTL_S)).toBeLessThan(goneAfterMs - 400);
    },
    15_000,
  );
});

describe("kv", () => {
  it("put, range (one key and a prefix), delete range; values are UTF-8", async () => {
    const etcd = client();
    const p = prefix("kv");
    await etcd.put(`${p}/a`, "ä→1");
    await etcd.put(`${p}/b`, "2");
    await etcd.put(`${p}0`, "outside the prefix");
    const one = await etcd.range(`${p}/a`);
    expect(one).toMatchObject({ ok: true, value: { kvs: [{ key: `${p}/a`, value: "ä→1", version: 1, lease: "0" }] } });
    const all = await etcd.range(`${p}/`, { prefix: true });
    expect(all.ok && all.value.kvs.map((kv) => kv.value)).toEqual(["ä→1", "2"]);
    expect(await etcd.deleteRange(`${p}/`, { prefix: true })).toMatchObject({ ok: true, value: { deleted: 2 } });
    expect(await etcd.range(`${p}0`)).toMatchObject({ ok: true, value: { kvs: [{ value: "outside the prefix" }] } });
  });

  it("create-if-absent: of two contenders at once exactly one wins; the loser gets the winner's value", async () => {
    const p = prefix("race");
    for (let round = 0; round < 5; round++) {
      const a = createElection({ etcd: client(), prefix: `${p}/${round}`, candidate: "host-a", ttlS: 5 });
      const b = createElection({ etcd: client(), prefix: `${p}/${round}`, candidate: "host-b", ttlS: 5 });
      const [ra, rb] = await Promise.all([a.campaign(), b.campaign()]);
      const kinds = [ra.kind, rb.kind].sort();
      expect(kinds).toEqual(["lost", "won"]);
      const [winner, loser] = ra.kind === "won" ? ["host-a", rb] : ["host-b", ra];
      expect(loser).toMatchObject({ kind: "lost", holder: { value: winner } });
      expect((await a.holder()).ok && (await a.holder())).toMatchObject({ value: { value: winner } });
      expect([a.maySign(), b.maySign()].filter(Boolean).length).toBe(1);
      await a.resign();
      await b.resign();
    }
  });

  it("a txn whose compare fails changes nothing", async () => {
    const etcd = client();
    const p = prefix("txn");
    await etcd.put(`${p}/k`, "first");
    const r = await etcd.txn([{ key: `${p}/k`, target: "create_revision", equals: 0 }], [{ put: { key: `${p}/k`, value: "second" } }], [{ range: { key: `${p}/k` } }]);
    expect(r).toMatchObject({ ok: true, value: { succeeded: false, responses: [{ range: { kvs: [{ value: "first" }] } }] } });
    const v = await etcd.txn([{ key: `${p}/k`, target: "value", equals: "first" }], [{ deleteRange: { key: `${p}/k` } }], []);
    expect(v).toMatchObject({ ok: true, value: { succeeded: true, responses: [{ deleteRange: { deleted: 1 } }] } });
  });
});

describe("watch", () => {
  it("streams puts and deletes under a prefix until aborted", async () => {
    const etcd = client();
    const p = prefix("watch");
    const events: WatchEvent[] = [];
    const controller = new AbortController();
    const watching = etcd.watch(`${p}/`, { prefix: true, signal: controller.signal, onEvents: (e) => events.push(...e) });
    await sleep(300);
    await etcd.put(`${p}/x`, "1");
    await etcd.deleteRange(`${p}/x`);
    for (let i = 0; i < 40 && events.length < 2; i++) await sleep(50);
    controller.abort();
    expect(await watching).toMatchObject({ ok: true });
    expect(events.map((e) => [e.type, e.kv.key, e.kv.value])).toEqual([
      ["put", `${p}/x`, "1"],
      ["delete", `${p}/x`, ""],
    ]);
  });
});

describe("election on the real cluster", () => {
  it(
    "the holder renews past its TTL; when it stops, the other contender wins after the lease ends, and the holder's allowance ended first",
    async () => {
      const p = prefix("election");
      const a = createElection({ etcd: client(), prefix: p, candidate: "host-a", ttlS: MIN_TTL_S });
      const b = createElection({ etcd: client(), prefix: p, candidate: "host-b", ttlS: MIN_TTL_S });
      expect((await a.campaign()).kind).toBe("won");
      for (let i = 0; i < 4; i++) {
        await sleep(600);
        expect((await a.renew()).kind).toBe("renewed");
        expect((await b.campaign()).kind).toBe("lost");
      }
      const signUntil = a.holding()!.signUntilMs!;
      // a stops renewing (a hung or cut-off host); b keeps trying
      let wonAt = Number.NaN;
      const started = performance.now();
      while (performance.now() - started < 5_000) {
        if ((await b.campaign()).kind === "won") {
          wonAt = performance.now();
          break;
        }
        await sleep(50);
      }
      console.info(`takeover ${Math.round(wonAt - signUntil)} ms after the old holder's allowance ended`);
      expect(wonAt).toBeGreaterThan(signUntil);
      expect(a.maySign(wonAt)).toBe(false);
      expect((await a.renew()).kind).toBe("lost");
      await b.resign();
    },
    15_000,
  );

  it("the winning txn reads whose lease created the key before (review h23): none at first, then the previous holder's, even after a key deleted by hand", async () => {
    const p = prefix("holder-lease");
    const etcd = client();
    const a = createElection({ etcd, prefix: p, candidate: "host-a", ttlS: MIN_TTL_S });
    const b = createElection({ etcd, prefix: p, candidate: "host-b", ttlS: MIN_TTL_S });
    const first = await a.campaign();
    expect(first).toMatchObject({ kind: "won", previous: null });
    // An operator deletes the key; host-a's lease lives on
    expect((await etcd.deleteRange(`${p}/signer`)).ok).toBe(true);
    const second = await b.campaign();
    expect(second).toMatchObject({ kind: "won", previous: { lease: first.kind === "won" ? first.lease : "?", ttlS: MIN_TTL_S } });
    expect(await b.leaseAlive(first.kind === "won" ? first.lease : "0")).toMatchObject({ ok: true, value: true });
    expect((await b.renew()).kind).toBe("renewed");
    await a.resign();
    await b.resign();
  });
});
