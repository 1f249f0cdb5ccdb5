// etcd faults on a private 3-member cluster (its own ports and data dir, so killing members never
// disturbs the shared one): a member down, the etcd leader down, the quorum lost. Runs where the
// shared cluster is set up (JORM_ETCD_ENDPOINTS) and always under CI; skips locally otherwise.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { createElection } from "../../src/cluster/election.ts";
import { createGatewayClient } from "../../src/cluster/gateway.ts";
import { etcdInstalled, requireEtcd, sharedEndpoints, startPrivateCluster, type PrivateCluster } from "./etcd-harness.ts";

const CLIENT_PORT = 23821;
const PEER_PORT = 23831;
const ATTEMPT_TIMEOUT_MS = 500;
const CALL_TIMEOUT_MS = 1_500;
/** Time for the test's own process scheduling on a loaded 2-core box, on top of a call's deadline */
const SLACK_MS = 700;

const wanted = sharedEndpoints.length > 0 || requireEtcd;
test.if(requireEtcd)("CI has etcd installed for the fault tests", () => {
  expect(etcdInstalled).toBe(true);
});
const it = wanted && etcdInstalled ? test : test.skip;

let cluster: PrivateCluster | null = null;
beforeAll(async () => {
  if (wanted && etcdInstalled) cluster = await startPrivateCluster("faults", CLIENT_PORT, PEER_PORT);
}, 60_000);
// Every test starts from three healthy members, whatever the previous one left behind
beforeEach(async () => {
  await cluster?.start();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
}, 30_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const client = (endpoints = cluster!.endpoints) =>
  createGatewayClient({ endpoints, attemptTimeoutMs: ATTEMPT_TIMEOUT_MS, callTimeoutMs: CALL_TIMEOUT_MS });

/** Which member (1..3) etcd's status says leads, asked of every live member. */
async function leaderMember(): Promise<1 | 2 | 3> {
  for (let tries = 0; tries < 50; tries++) {
    for (const [i, endpoint] of cluster!.endpoints.entries()) {
      try {
        const res = await fetch(`${endpoint}/v3/maintenance/status`, { method: "POST", body: "{}", signal: AbortSignal.timeout(500) });
        const s = (await res.json()) as { header: { member_id: string }; leader?: string };
        if (s.leader && s.leader === s.header.member_id) return (i + 1) as 1 | 2 | 3;
      } catch {
        // that member is down or busy: ask the next
      }
    }
    await sleep(100);
  }
  throw new Error("no etcd leader found");
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const r = await f();
  return [r, performance.now() - started];
}

describe("etcd faults (private 3-member cluster)", () => {
  it(
    "a follower killed: calls fail over to another member at once; the dead one is skipped next time; restarted, it serves again",
    async () => {
      const leader = await leaderMember();
      const follower = leader === 1 ? 2 : 1;
      // The client prefers the follower we kill, so the failover is exercised
      const eps = cluster!.endpoints;
      const etcd = client([eps[follower - 1]!, ...eps.filter((_, i) => i !== follower - 1)]);
      await cluster!.kill(follower);
      const [r, ms] = await timed(() => etcd.put("/faults/one-down", "x"));
      expect(r).toMatchObject({ ok: true });
      expect(r.ok && r.endpoint).not.toBe(eps[follower - 1]);
      expect(ms).toBeLessThan(ATTEMPT_TIMEOUT_MS + SLACK_MS);
      // The dead endpoint is skipped for the next call, which goes straight to a live one
      expect(etcd.preferredEndpoint()).not.toBe(eps[follower - 1]);
      const [again, next] = await timed(() => etcd.range("/faults/one-down"));
      expect(again.ok).toBe(true);
      expect(next).toBeLessThan(300);
      await cluster!.start();
      const onlyRestarted = client([eps[follower - 1]!]);
      expect(await onlyRestarted.range("/faults/one-down")).toMatchObject({ ok: true, value: { kvs: [{ value: "x" }] } });
    },
    60_000,
  );

  it(
    "the etcd leader killed: the holder's lease survives (the new leader extends it) and renewals resume",
    async () => {
      const etcd = client();
      const a = createElection({ etcd, prefix: "/faults/leader", candidate: "host-a", ttlS: 5 });
      const b = createElection({ etcd: client(), prefix: "/faults/leader", candidate: "host-b", ttlS: 5 });
      expect((await a.campaign()).kind).toBe("won");
      const leader = await leaderMember();
      await cluster!.kill(leader);
      const outcomes: string[] = [];
      const started = performance.now();
      let renewedAfterMs = Number.NaN;
      while (performance.now() - started < 8_000) {
        const r = await a.renew();
        outcomes.push(r.kind);
        expect(r.kind).not.toBe("lost");
        if (r.kind === "renewed") {
          renewedAfterMs = performance.now() - started;
          break;
        }
        await sleep(200);
      }
      console.info(`etcd leader m${leader} killed: holder renewed after ${Math.round(renewedAfterMs)} ms (${outcomes.join(", ")})`);
      expect(outcomes.at(-1)).toBe("renewed");
      expect(a.maySign()).toBe(true);
      expect(await b.campaign()).toMatchObject({ kind: "lost", holder: { value: "host-a" } });
      await a.resign();
    },
    60_000,
  );

  it(
    "quorum lost (2 of 3 down): every call returns an error within its deadline, never hangs; the holder's allowance runs out",
    async () => {
      const etcd = client();
      const a = createElection({ etcd, prefix: "/faults/quorum", candidate: "host-a", ttlS: 3 });
      const won = await a.campaign();
      if (won.kind !== "won") throw new Error(`campaign: ${JSON.stringify(won)}`);
      // The leader is among the two killed: a surviving leader may rightly answer keep-alives until
      // it notices the lost quorum (one election timeout), which is not what this test is about
      const leader = await leaderMember();
      await cluster!.kill(leader);
      await cluster!.kill(leader === 1 ? 2 : 1);
      const calls: [string, () => Promise<{ ok: boolean }>][] = [
        ["range", () => etcd.range("/faults/quorum/signer")],
        ["put", () => etcd.put("/faults/quorum/x", "y")],
        ["lease grant", () => etcd.leaseGrant(5)],
        ["lease keep-alive", () => etcd.leaseKeepAlive(won.lease)],
        // The campaign's shape; a txn with no write op would be answered from the member's local,
        // possibly stale state (etcd 3.4 counts an op-less txn as serializable): see Etcd.txn
        [
          "txn",
          () =>
            etcd.txn(
              [{ key: "/faults/quorum/signer", target: "create_revision", equals: 0 }],
              [{ put: { key: "/faults/quorum/signer", value: "host-b" } }],
              [{ range: { key: "/faults/quorum/signer" } }],
            ),
        ],
        ["renew", async () => ({ ok: (await a.renew()).kind === "renewed" })],
      ];
      const took: string[] = [];
      for (const [name, call] of calls) {
        const [r, ms] = await timed(call);
        took.push(`${name} ${Math.round(ms)} ms${r.ok ? " (ok!)" : ""}`);
        expect(ms).toBeLessThan(CALL_TIMEOUT_MS + SLACK_MS);
      }
      console.info(`without quorum: ${took.join(", ")}`);
      expect(took.filter((t) => t.includes("ok!"))).toEqual([]);
      // Renewals keep failing, so the holder stops at its deadline, before the lease could end
      while (a.maySign()) await sleep(50);
      expect(performance.now()).toBeGreaterThanOrEqual(won.signUntilMs!);
      await cluster!.start();
      // Quorum back: calls succeed again
      const again = await client().range("/faults/quorum/signer");
      expect(again.ok).toBe(true);
    },
    60_000,
  );
});
