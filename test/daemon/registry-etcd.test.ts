// The host registry against the real etcd (issue 13 point 6), in real time: daemons' registries
// publish under <prefix>/hosts/<name> with member leases of their own; `status` reads them back
// (readClusterRegistry, the command's reader) and judges the cluster; an entry goes at once when its
// daemon stops (revoke) and by itself when its daemon dies (TTL); etcd unreachable is a logged state.
// Needs the shared cluster (JORM_ETCD_ENDPOINTS); skips locally without it, fails under CI.
import { afterAll, expect, test } from "bun:test";
import { createElection } from "../../src/cluster/election.ts";
import { createGatewayClient } from "../../src/cluster/gateway.ts";
import { readClusterRegistry, runStatus, statusDeps } from "../../src/commands/status.ts";
import { RegistryAlertWatcher, type AlertEvent } from "../../src/alerts/events.ts";
import { HostRegistry } from "../../src/daemon/registry.ts";
import { simConfig } from "../../src/lab/harness.ts";
import type { ClusterObs } from "../../src/master/cluster.ts";
import type { TickReport } from "../../src/master/loop.ts";
import { hostKey, type RegistryRound } from "../../src/master/registry.ts";
import type { RunnerView } from "../../src/master/types.ts";
import { MasterMetrics } from "../../src/metrics/master.ts";
import { realClock } from "../../src/ports.ts";
import { statusModel, type StatusInput } from "../../src/status/model.ts";
import { renderStatus } from "../../src/status/render.ts";
import { requireEtcd, sharedEndpoints, uniquePrefix } from "../cluster/etcd-harness.ts";

const it = sharedEndpoints.length > 0 ? test : requireEtcd ? test : test.skip;
if (sharedEndpoints.length === 0 && !requireEtcd) console.error("skipping the registry-over-etcd tests: JORM_ETCD_ENDPOINTS is unset");

const gw = (endpoints = sharedEndpoints) => createGatewayClient({ endpoints, attemptTimeoutMs: 400, callTimeoutMs: 900 });
const config = simConfig(2);
const view = (id: number, cap: RunnerView["cap"]): RunnerView =>
  ({ id, cap, pid: 100 + id, running: true, responsive: true, nodeState: "Running", height: 500, leaderIds: cap === "holder" ? [1] : [], busy: false, unitActive: true, frozen: false }) as RunnerView;
/** A tick as of now: its runners' capabilities and its signer */
const report = (caps: RunnerView["cap"][], signer: number | null) => (): TickReport =>
  ({ startedMs: Date.now(), durationMs: 1, observation: { atMs: Date.now(), settings: null }, views: caps.map((c, i) => view(i, c)), plan: {}, outcomes: [], memory: { signer, boundary: null } }) as unknown as TickReport;
const signs: ClusterObs = { maySign: true, mustStopByMs: Date.now() + 3_600_000, takeoverSafeAtMs: null };
const notSigning: ClusterObs = { maySign: false, mustStopByMs: null, takeoverSafeAtMs: null };

interface Log {
  lines: string[];
  info(m: string): void;
  warn(m: string): void;
  error(m: string): void;
  debug(m: string): void;
}
const recLog = (): Log => {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), debug: () => {} };
};

const made: HostRegistry[] = [];
afterAll(async () => {
  for (const r of made) await r.close();
});
function registry(prefix: string, name: string, caps: RunnerView["cap"][], signer: number | null, cluster: ClusterObs, o: { ttlS?: number; endpoints?: string[]; onRound?: (r: RegistryRound) => void; log?: Log } = {}) {
  const r = new HostRegistry({
    etcd: gw(o.endpoints),
    prefix,
    name,
    pid: process.pid,
    version: "test",
    report: report(caps, signer),
    config: () => config,
    cluster: () => cluster,
    clock: realClock,
    log: o.log ?? recLog(),
    ...(o.ttlS ? { ttlS: o.ttlS } : {}),
    ...(o.onRound ? { onRound: o.onRound } : {}),
  });
  made.push(r);
  return r;
}

/** status on host-a: its own runners key-less (read by status itself), the cluster from etcd */
async function statusOnA(prefix: string) {
  const reg = await readClusterRegistry(gw(), { name: "host-a", etcdEndpoints: sharedEndpoints, prefix, leaseTtlS: 2, etcdTimeoutMs: 900 });
  const input: StatusInput = {
    nowMs: Date.now(),
    cntRunners: 1,
    runners: [{ id: 0, unit: { id: 0, activeState: "active", subState: "running", mainPid: 5, sinceMs: 0, restarts: 0, frozen: false }, stats: { ok: true, value: { state: "Running", version: "v", height: 500, lastBlockDate: null, lastBlockTimeMs: null, lastReceivedBlockTimeMs: null, uptimeS: 9, nodeId: null } }, leaders: { ok: true, value: [] }, logs: { ok: true, value: [] } }],
    settings: null,
    pooltool: null,
    systemdError: null,
    cluster: "error" in reg ? { self: "host-a", holder: null, error: reg.error, registry: null } : { self: "host-a", holder: reg.signer?.host ?? null, error: null, registry: reg },
  };
  return statusModel(input);
}

it("status across hosts from the real registry: OK, then CRITICAL when a non-signing host reports a key holder, then WARNING when its entry goes", async () => {
  const prefix = uniquePrefix("h21-registry-status");
  // host-b holds the signer key for real; host-a (where status runs) and host-c are standbys.
  const election = createElection({ etcd: gw(), prefix, candidate: "host-b", ttlS: 2 });
  expect((await election.campaign()).kind).toBe("won");
  const a = registry(prefix, "host-a", ["keyless"], null, notSigning);
  const b = registry(prefix, "host-b", ["holder", "keyless"], 0, signs);
  let cCaps: RunnerView["cap"][] = ["keyless", "keyless"];
  const c = new HostRegistry({ etcd: gw(), prefix, name: "host-c", pid: 1, version: "test", report: () => report(cCaps, null)(), config: () => config, cluster: () => notSigning, clock: realClock, log: recLog() });
  made.push(c);
  try {
    for (let i = 0; i < 2; i++) for (const r of [a, b, c]) await r.step();
    let m = await statusOnA(prefix);
    console.error(renderStatus(m));
    expect(m.cluster?.hosts.map((h) => [h.host, h.role])).toEqual([
      ["host-a", "standby"],
      ["host-b", "signs"],
      ["host-c", "standby"],
    ]);
    expect(m.cluster?.signer).toMatchObject({ host: "host-b", seenBy: expect.any(String), ttl: { grantedS: 2 } });
    expect({ code: m.exitCode as number, verdict: m.verdict }).toEqual({ code: 0, verdict: "host-b signs (it holds the etcd signer lease); this host's runners are key-less" });

    cCaps = ["keyless", "holder"];
    await c.step();
    m = await statusOnA(prefix);
    expect(m.exitCode as number).toBe(2);
    expect(m.verdict).toContain("host-c does not hold the signer key (host-b does), yet its #1 holder may hold the pool's key");

    // host-c's daemon stops: its entry goes at once (revoked), and the others still know it.
    await c.close();
    expect((await gw().range(hostKey(prefix, "host-c"))).ok && (await gw().range(hostKey(prefix, "host-c")))).toMatchObject({ value: { kvs: [] } });
    m = await statusOnA(prefix);
    expect(m.exitCode as number).toBe(1);
    expect(m.verdict).toContain("host-c has no registry entry (seen by host-a, host-b since their daemons started)");
  } finally {
    await election.resign();
  }
}, 30_000);

it("a dead daemon's entry goes by itself after its member lease's TTL; a stopped one's at once", async () => {
  const prefix = uniquePrefix("h21-registry-ttl");
  const dead = registry(prefix, "host-d", ["keyless"], null, notSigning, { ttlS: 2 });
  await dead.step();
  const present = async () => ((await gw().range(hostKey(prefix, "host-d"))) as { value: { kvs: unknown[] } }).value.kvs.length > 0;
  expect(await present()).toBe(true);
  const diedAt = Date.now();
  made.splice(made.indexOf(dead), 1); // never closed: it "died"
  let goneAfter: number | null = null;
  while (Date.now() - diedAt < 8_000) {
    if (!(await present())) {
      goneAfter = Date.now() - diedAt;
      break;
    }
    await Bun.sleep(100);
  }
  console.error(`dead host's entry gone ${goneAfter} ms after its last round (member lease TTL 2 s)`);
  expect(goneAfter).not.toBeNull();
  expect(goneAfter!).toBeGreaterThan(1_000);
  expect(goneAfter!).toBeLessThan(4_000);
}, 20_000);

it("the metrics and the alerts follow the signer key: host-b → host-a counted once and told with both names", async () => {
  const prefix = uniquePrefix("h21-registry-change");
  const metrics = new MasterMetrics({ version: "t" });
  const alerts: AlertEvent[] = [];
  const watcher = new RegistryAlertWatcher((e) => alerts.push(e));
  const a = registry(prefix, "host-a", ["keyless"], null, notSigning, { onRound: (r) => (metrics.updateRegistry(r), watcher.onRound(r)) });
  const eb = createElection({ etcd: gw(), prefix, candidate: "host-b", ttlS: 2 });
  const ea = createElection({ etcd: gw(), prefix, candidate: "host-a", ttlS: 2 });
  try {
    expect((await eb.campaign()).kind).toBe("won");
    await a.step();
    expect(metrics.render()).toContain('jorm_master_cluster_signer{host="host-b"} 1');
    await eb.resign();
    await a.step();
    expect((await ea.campaign()).kind).toBe("won");
    await a.step();
    const t = metrics.render();
    expect(t).toContain('jorm_master_cluster_signer{host="host-a"} 1');
    expect(t).toContain("jorm_master_cluster_lease_changes_total 1\n");
    expect(t).toContain("jorm_master_cluster_hosts 1\n");
    expect(alerts.map((e) => [e.kind, e.title])).toEqual([["cluster_signer", "signing host changed: host-b → host-a"]]);
  } finally {
    await ea.resign();
  }
}, 20_000);

it("etcd unreachable: a round is a logged state within its deadline, never a throw; publishing resumes when etcd answers", async () => {
  const prefix = uniquePrefix("h21-registry-down");
  const log = recLog();
  const down = registry(prefix, "host-x", ["keyless"], null, notSigning, { endpoints: ["http://127.0.0.1:9"], log });
  const t0 = performance.now();
  await down.step();
  await down.step();
  const took = performance.now() - t0;
  expect(took).toBeLessThan(2 * 900 + 500);
  expect(log.lines.filter((l) => l.includes("cluster registry: cannot grant a member lease"))).toHaveLength(1);
  expect(down.etcd.ok).toBe(false);
  const ok = registry(prefix, "host-y", ["keyless"], null, notSigning, { log });
  await ok.step();
  expect(ok.etcd).toEqual({ ok: true, error: null });
}, 20_000);

it("the status command's own ports read the cluster from etcd: --json carries the cluster section", async () => {
  const prefix = uniquePrefix("h21-registry-cli");
  const election = createElection({ etcd: gw(), prefix, candidate: "host-b", ttlS: 2 });
  expect((await election.campaign()).kind).toBe("won");
  const b = registry(prefix, "host-b", ["holder"], 0, signs);
  await b.step();
  try {
    const cfg = { ...simConfig(1), cluster: { name: "host-a", etcdEndpoints: sharedEndpoints, prefix, leaseTtlS: 2, etcdTimeoutMs: 900 } };
    const out: string[] = [];
    const code = await runStatus(cfg, statusDeps(cfg, { restOnly: true }), { json: true, watch: false, intervalMs: 1000, isTTY: false, write: (t) => out.push(t) });
    const json = JSON.parse(out.join(""));
    expect(json.cluster.signer).toMatchObject({ host: "host-b", ttl: { grantedS: 2 } });
    expect(json.cluster.hosts.map((h: { host: string; role: string }) => [h.host, h.role])).toEqual([
      ["host-a", "no entry"],
      ["host-b", "signs"],
    ]);
    // This host's runner does not answer (--rest-only, nothing listens): its keys are unknown while
    // host-b signs, so CRITICAL, and this host's daemon publishes no entry.
    expect(code).toBe(2);
    expect(json.warnings).toContain("host-a has no registry entry (the daemon on this host does not publish it)");
  } finally {
    await election.resign();
  }
}, 20_000);
