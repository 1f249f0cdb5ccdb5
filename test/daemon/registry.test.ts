// The daemon's host registry wiring (issue 13 point 6), over the fake etcd in virtual time: in
// cluster mode the daemon publishes <prefix>/hosts/<name> under a member lease of its own (not the
// signer lease), says in it which runner signs, feeds each read to its metrics and to onRegistry,
// and revokes the member lease when it stops. One server publishes nothing. The same registry over
// the real etcd: registry-etcd.test.ts.
import { describe, expect, test } from "bun:test";
import type { ResolvedConfig } from "../../src/config/types.ts";
import { Daemon } from "../../src/daemon/daemon.ts";
import { HostRegistry } from "../../src/daemon/registry.ts";
import { silentLog, simConfig, simDeps } from "../../src/lab/harness.ts";
import { hostEntrySchema, type RegistryRound } from "../../src/master/registry.ts";
import { realClock } from "../../src/ports.ts";
import { testChainParams } from "../../src/sim/chain.ts";
import { World } from "../../src/sim/world.ts";
import { createFakeEtcd, type FakeEtcd } from "../cluster/fake-etcd.ts";

const CLUSTER = { name: "host-a", etcdEndpoints: ["http://127.0.0.1:23791"], prefix: "/jm", leaseTtlS: 5, etcdTimeoutMs: 2_000 };

async function warmWorld(): Promise<World> {
  const world = new World({ chain: testChainParams({ seed: 3, leaderSlotsPerEpoch: 8 }), runners: 2, keyMode: "rest", boot: { Bootstrapping: 1_000 }, restTimeoutMs: 500 });
  for (const id of world.ids) await world.services.start(id);
  await world.runUntil(world.clock.now() + 10_000);
  return world;
}

/** The fake follows the world's clock: each call first lets the virtual time that passed expire leases. */
function synced(etcd: FakeEtcd, world: World): FakeEtcd {
  return new Proxy(etcd, {
    get(t, prop) {
      const f = (t as unknown as Record<string, unknown>)[prop as string];
      return typeof f !== "function" ? f : (...a: unknown[]) => (t.advance(Math.max(0, world.clock.now() - t.nowMs())), (f as (...x: unknown[]) => unknown).apply(t, a));
    },
  });
}

describe("the daemon's host registry", () => {
  test("cluster mode: publishes its entry under a member lease of its own, with its signer; reads go to metrics and onRegistry; stopping removes it", async () => {
    const world = await warmWorld();
    const etcd = createFakeEtcd(world.clock.now());
    const config: ResolvedConfig = { ...simConfig(2, { keyMode: "rest" }), cluster: CLUSTER };
    const rounds: RegistryRound[] = [];
    const d = new Daemon({ config, load: async () => config, log: silentLog, lockPath: null, ports: () => simDeps(world), etcd: () => synced(etcd, world), mono: () => world.clock.now(), onRegistry: (r) => rounds.push(r) });
    const done = d.start();
    for (let i = 0; i < 100 && d.master.memory.signer === null; i++) await world.runUntil(world.clock.now() + 500);
    await world.runUntil(world.clock.now() + 5_000);
    const kv = etcd.kv.get("/jm/hosts/host-a");
    expect(kv).toBeDefined();
    const entry = hostEntrySchema.parse(JSON.parse(kv!.value));
    expect(entry).toMatchObject({ host: "host-a", maySign: true, signer: d.master.memory.signer, etcd: { ok: true } });
    expect(entry.runners.map((r) => r.signer)).toEqual([0, 1].map((id) => id === d.master.memory.signer));
    // Its own lease, not the signer key's: the entry outlives neither, and they end independently.
    expect(kv!.lease).not.toBe("0");
    expect(kv!.lease).not.toBe(etcd.kv.get("/jm/signer")!.lease);
    expect(etcd.leases.get(kv!.lease)!.ttlS).toBe(10);
    // Every ~2 s a read: the signer key and this host's entry.
    expect(rounds.length).toBeGreaterThanOrEqual(2);
    expect(rounds.at(-1)!.read).toMatchObject({ signer: { host: "host-a" }, entries: [{ host: "host-a" }] });
    expect(d.metrics.render()).toContain('jorm_master_cluster_signer{host="host-a"} 1');
    expect(d.metrics.render()).toContain("jorm_master_cluster_hosts 1\n");
    d.stop("test");
    for (let i = 0; i < 100; i++) await world.runUntil(world.clock.now() + 100);
    expect(await done).toBe(0);
    // Gone at once: the other hosts see this daemon stopped, not a TTL later.
    expect(etcd.kv.has("/jm/hosts/host-a")).toBe(false);
    // The signer lease is kept (a restarted daemon takes it up), as before.
    expect(etcd.kv.get("/jm/signer")?.value).toBe("host-a");
  });

  test("a registry whose etcd hangs delays neither the ticks nor the signer lease's keep-alives; a stop cancels its call", async () => {
    const world = await warmWorld();
    const etcd = createFakeEtcd(world.clock.now());
    let clients = 0;
    const hung: string[] = [];
    // The first client is the signer lease's; the second, the registry's, never answers until cancelled.
    const hanging = new Proxy({} as FakeEtcd, {
      get: (_t, prop) => (...a: unknown[]) => {
        hung.push(String(prop));
        const signal = (a.at(-1) as { signal?: AbortSignal } | undefined)?.signal;
        return new Promise((resolve) => signal?.addEventListener("abort", () => resolve({ ok: false, error: { kind: "unavailable", message: "cancelled" } })));
      },
    });
    const config: ResolvedConfig = { ...simConfig(2, { keyMode: "rest" }), cluster: CLUSTER };
    const lines: string[] = [];
    const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m), debug: () => {} };
    const d = new Daemon({ config, load: async () => config, log, lockPath: null, ports: () => simDeps(world), etcd: () => (clients++ === 0 ? synced(etcd, world) : hanging), mono: () => world.clock.now() });
    const ticks = () => Number(/^jorm_master_ticks_total (\d+)/m.exec(d.metrics.render())?.[1] ?? 0);
    const done = d.start();
    for (let i = 0; i < 100 && d.master.memory.signer === null; i++) await world.runUntil(world.clock.now() + 500);
    const keepAlivesBefore = etcd.calls.filter((c) => c === "leaseKeepAlive").length;
    const ticksBefore = ticks();
    await world.runUntil(world.clock.now() + 10_000);
    expect(hung).toEqual(["leaseGrant"]);
    expect(d.master.memory.signer).not.toBeNull();
    expect(d.lease!.observe().maySign).toBe(true);
    // A keep-alive every third of the TTL (5 s): 6 in 10 s, give or take one.
    expect(etcd.calls.filter((c) => c === "leaseKeepAlive").length - keepAlivesBefore).toBeGreaterThanOrEqual(5);
    expect(ticks()).toBeGreaterThan(ticksBefore + 10);
    d.stop("test");
    for (let i = 0; i < 100; i++) await world.runUntil(world.clock.now() + 100);
    expect(await done).toBe(0);
    expect(lines.filter((l) => l.startsWith("cluster registry:"))).toEqual([]);
  });

  test("one server: no registry, nothing published", async () => {
    const world = await warmWorld();
    const d = new Daemon({ config: simConfig(2, { keyMode: "rest" }), load: async () => simConfig(2), log: silentLog, lockPath: null, ports: () => simDeps(world) });
    expect(d.registry).toBeNull();
  });

  test("a member lease etcd forgot is granted anew; an onRound that throws costs a log line, not the round", async () => {
    const etcd = createFakeEtcd(0);
    const lines: string[] = [];
    const r = new HostRegistry({
      etcd,
      prefix: "/jm",
      name: "host-b",
      pid: 1,
      version: "t",
      report: () => null,
      config: () => simConfig(1),
      cluster: () => null,
      clock: realClock,
      log: { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), debug: () => {} },
      onRound: () => {
        throw new Error("boom");
      },
    });
    await r.step();
    const first = etcd.kv.get("/jm/hosts/host-b")!.lease;
    etcd.revoke(first);
    expect(etcd.kv.has("/jm/hosts/host-b")).toBe(false);
    await r.step();
    expect(etcd.kv.get("/jm/hosts/host-b")!.lease).not.toBe(first);
    expect(lines).toContain("cluster registry: boom");
    // etcd down: a logged state, once per streak, then "again" when it answers.
    etcd.down = true;
    await r.step();
    await r.step();
    etcd.down = false;
    await r.step();
    expect(lines.filter((l) => l.startsWith("cluster registry: member lease keep-alive failed"))).toHaveLength(1);
    expect(lines).toContain("cluster registry: publishing /jm/hosts/host-b again");
  });
});
