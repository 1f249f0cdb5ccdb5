// The daemon's SignerLease against the real etcd, in real time (issue 13's "cut the signing host off
// from etcd through a TCP proxy the test controls"): two hosts, host A reaching etcd only through
// proxies that the test turns into a black hole. A's signer's dead-man switch, as last armed, fires
// before host B may let any runner sign; A itself stops allowing signing by then too.
// Needs the shared cluster (JORM_ETCD_ENDPOINTS); skips locally without it, fails under CI.
import { quietServices } from "../fake-services.ts";
import { afterAll, expect, test } from "bun:test";
import { createElection } from "../../src/cluster/election.ts";
import { createGatewayClient } from "../../src/cluster/gateway.ts";
import { SignerLease } from "../../src/daemon/lease.ts";
import { silentLog } from "../../src/lab/harness.ts";
import { realClock, type ServiceManager } from "../../src/ports.ts";
import { requireEtcd, sharedEndpoints, uniquePrefix } from "./etcd-harness.ts";
import { tcpProxy, type Proxy } from "./tcp-proxy.ts";

const it = sharedEndpoints.length > 0 ? test : requireEtcd ? test : test.skip;
if (sharedEndpoints.length === 0 && !requireEtcd) console.error("skipping the lease-over-etcd test: JORM_ETCD_ENDPOINTS is unset");

const proxies: Proxy[] = [];
afterAll(() => {
  for (const p of proxies) p.stop();
});

function recordingServices(arms: { atMs: number; armedAt: number }[]): ServiceManager {
  return quietServices({ armFreeze: async (_id, atMs) => void arms.push({ atMs, armedAt: Date.now() }) });
}

it("host A cut off from etcd: its signer's switch fires before host B may sign; A stops allowing signing first", async () => {
  const TTL_S = 2;
  const prefix = uniquePrefix("lease-proxy");
  for (const e of sharedEndpoints) proxies.push(tcpProxy({ hostname: new URL(e).hostname, port: Number(new URL(e).port) }));
  const gw = (endpoints: string[]) => createGatewayClient({ endpoints, attemptTimeoutMs: 400, callTimeoutMs: 900 });
  const mono = () => performance.now();
  const host = (name: string, endpoints: string[]) => {
    const arms: { atMs: number; armedAt: number }[] = [];
    const election = createElection({ etcd: gw(endpoints), prefix, candidate: name, ttlS: TTL_S, now: mono });
    const lease = new SignerLease({ election, services: () => recordingServices(arms), clock: realClock, mono, signer: () => 0, log: silentLog });
    return { lease, arms, election };
  };
  const a = host("host-a", proxies.map((p) => p.url));
  const b = host("host-b", sharedEndpoints);
  const ac = new AbortController();
  await a.lease.step();
  expect(a.lease.observe().maySign).toBe(true);
  const loops = [a.lease.run(ac.signal, TTL_S), b.lease.run(ac.signal, TTL_S)];
  try {
    await Bun.sleep(2_000);
    expect(b.lease.observe()).toMatchObject({ maySign: false, holder: "host-a" });
    expect(a.arms.length).toBeGreaterThanOrEqual(2);
    // The cut: A's requests and answers vanish from now on.
    for (const p of proxies) p.cut(true);
    const cutAt = Date.now();
    /** When B's lease first allows signing (holding, takeover safe): polled every 20 ms */
    let bMaySignAt: number | null = null;
    let aStoppedAt: number | null = null;
    const until = Date.now() + 15_000;
    while (Date.now() < until && bMaySignAt === null) {
      const now = Date.now();
      const ob = b.lease.observe();
      if (aStoppedAt === null && !a.lease.observe().maySign) aStoppedAt = now;
      if (ob.maySign && ob.mustStopByMs !== null && now < ob.mustStopByMs && (ob.takeoverSafeAtMs === null || now >= ob.takeoverSafeAtMs)) bMaySignAt = now;
      await Bun.sleep(20);
    }
    expect(bMaySignAt).not.toBeNull();
    const aSwitchAt = a.arms.at(-1)!.atMs;
    console.error(`cut at 0; A's switch fires at ${aSwitchAt - cutAt} ms; A stops allowing at ${aStoppedAt! - cutAt} ms; B may sign at ${bMaySignAt! - cutAt} ms`);
    // A's last armed switch ends within one TTL of the cut, and before B may sign.
    expect(aSwitchAt - cutAt).toBeLessThan(TTL_S * 1000);
    expect(aSwitchAt).toBeLessThan(bMaySignAt!);
    expect(aStoppedAt).not.toBeNull();
    expect(aStoppedAt!).toBeLessThan(bMaySignAt!);
  } finally {
    ac.abort();
    for (const p of proxies) p.cut(false);
    await Promise.all(loops);
    await a.lease.resign();
    await b.lease.resign();
  }
}, 30_000);
