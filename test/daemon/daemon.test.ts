// The daemon object against a simulated world in virtual time: a reload really rebuilds the ports
// (PoolTool turned on shares the tip at the next tick; renamed units are what systemctl is asked
// about), refuses keys only a restart can change, and a streak of failing ticks ends it with exit 1.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResolvedConfig } from "../../src/config/types.ts";
import { Daemon, RESTART_KEYS } from "../../src/daemon/daemon.ts";
import { buildPorts } from "../../src/daemon/ports.ts";
import { EXIT_FAILURE } from "../../src/errors.ts";
import { createFakeEtcd } from "../cluster/fake-etcd.ts";
import type { MasterDeps } from "../../src/master/act.ts";
import { silentLog, simConfig, simDeps } from "../../src/lab/harness.ts";
import type { MasterLog, TickReport } from "../../src/master/loop.ts";
import type { Clock } from "../../src/ports.ts";
import { testChainParams } from "../../src/sim/chain.ts";
import { World } from "../../src/sim/world.ts";
import type { RunResult, Spawner } from "../../src/systemd/systemctl.ts";

const POOLTOOL = { poolId: "p", userId: "u", genesis: "g", sendWaitMs: 1_000, recvWaitMs: 30_000, endpTip: "http://127.0.0.1:9/tip", endpStats: "http://127.0.0.1:9/stats" };

/** Two runners up and Running in a virtual-time world. */
async function warmWorld(): Promise<World> {
  const world = new World({ chain: testChainParams({ seed: 3, leaderSlotsPerEpoch: 8 }), runners: 2, keyMode: "rest", boot: { Bootstrapping: 1_000 }, restTimeoutMs: 500 });
  for (const id of world.ids) await world.services.start(id);
  await world.runUntil(world.clock.now() + 10_000);
  return world;
}

/** One tick, letting virtual time run while it waits. */
async function tick(world: World, d: Daemon): Promise<TickReport> {
  let done: TickReport | null = null;
  const p = d.master.tick().then((r) => (done = r));
  for (let i = 0; i < 100 && done === null; i++) await world.runUntil(world.clock.now() + 100);
  return p;
}

function recordingLog(): MasterLog & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`), debug: () => {} };
}

describe("Daemon.reload", () => {
  test("turning PoolTool on: the next tick shares the tip (it used to answer 'PoolTool is off')", async () => {
    const world = await warmWorld();
    const before = simConfig(2, { keyMode: "rest" });
    let next = before;
    const d = new Daemon({ config: before, load: async () => next, log: silentLog, lockPath: null, ports: (c) => simDeps(world, c.pooltool !== null) });
    // Warm up: a signer is chosen and holds the key.
    for (let i = 0; i < 40 && d.master.memory.signer === null; i++) {
      await tick(world, d);
      await world.runUntil(world.clock.now() + 500);
    }
    expect(d.master.memory.signer).not.toBeNull();
    const off = await tick(world, d);
    expect(off.plan.other.some((a) => a.kind === "reportTip")).toBe(false);

    next = { ...before, pooltool: POOLTOOL };
    expect(await d.reload()).toMatchObject({ applied: true });
    const on = await tick(world, d);
    const tip = on.outcomes.find((o) => o.action.kind === "reportTip");
    expect(tip).toMatchObject({ ok: true, detail: "sent" });
    await world.runUntil(world.clock.now() + 100);
    expect(world.journal.entries().some((e) => e.kind === "tip_shared")).toBe(true);
  });

  test("turning PoolTool off: its majority max stops counting as the reference height", async () => {
    const world = await warmWorld();
    const on = simConfig(2, { keyMode: "rest", pooltool: POOLTOOL });
    let next = on;
    const d = new Daemon({ config: on, load: async () => next, log: silentLog, lockPath: null, ports: (c) => simDeps(world, c.pooltool !== null) });
    await tick(world, d);
    await world.runUntil(world.clock.now() + 100);
    expect(d.master.state.majorityMax).not.toBeNull();
    next = { ...on, pooltool: null };
    await d.reload();
    expect(d.master.state.majorityMax).toBeNull();
    const r = await tick(world, d);
    expect(r.observation.majorityMax).toBeNull();
    expect(d.master.deps.pooltool).toBeNull();
  });

  test("renamed units: the next tick asks systemctl about the new names", async () => {
    const world = await warmWorld();
    const argvs: string[][] = [];
    const spawner: Spawner = async (argv): Promise<RunResult> => {
      argvs.push([...argv]);
      return { exitCode: 1, stdout: "", stderr: "not here", timedOut: false };
    };
    const ports = (c: ResolvedConfig): MasterDeps => ({
      ...buildPorts(c, { spawner, transport: (_http, id) => world.transport(id), clock: world.clock }),
      readSecret: simDeps(world).readSecret,
    });
    const before = simConfig(2, { keyMode: "rest" });
    const renamed: ResolvedConfig = {
      ...before,
      runners: before.runners.map((r) => ({ ...r, unit: `renamed@${r.id}.service` })),
      systemd: { ...before.systemd, runnerUnitTemplate: "renamed@{id}.service" },
    };
    let next = before;
    const d = new Daemon({ config: before, load: async () => next, log: silentLog, lockPath: null, ports });
    await tick(world, d);
    expect(argvs.at(-1)!.join(" ")).toContain("show");
    expect(argvs.at(-1)).toContain("jorm_runner@0.service");
    next = renamed;
    expect(await d.reload()).toMatchObject({ applied: true });
    argvs.length = 0;
    await tick(world, d);
    const show = argvs.find((a) => a.includes("show"))!;
    expect(show).toContain("renamed@0.service");
    expect(show).toContain("renamed@5.service"); // ids watched beyond cnt_runners follow the template
    expect(show.join(" ")).not.toContain("jorm_runner@");
  });

  test("keys only a restart can change are refused by name; the old config stays in force", async () => {
    const world = await warmWorld();
    const before = simConfig(2, { keyMode: "rest" });
    const log = recordingLog();
    let next: ResolvedConfig = { ...before, maxOffset: 9, systemd: { ...before.systemd, scope: "user", user: "someone" } };
    let built = 0;
    const d = new Daemon({ config: before, load: async () => next, log, lockPath: null, ports: (c) => (built++, simDeps(world, c.pooltool !== null)) });
    const r = await d.reload();
    expect(r).toEqual({ applied: false, reason: expect.stringContaining("systemd.scope, systemd.user cannot change"), restartKeys: ["systemd.scope", "systemd.user"] });
    expect(d.config).toBe(before);
    expect(d.master.config).toBe(before);
    expect(built).toBe(1);
    expect(log.lines.join("\n")).toContain("SIGHUP: refused, keeping the old config: systemd.scope, systemd.user cannot change while the daemon runs");
    expect([...RESTART_KEYS]).toEqual(["systemd.scope", "systemd.user"]);
    // A file that cannot be loaded is refused the same way, naming no keys.
    const broken = new Daemon({ config: before, load: async () => Promise.reject(new Error("max_ofset: unknown key")), log, lockPath: null, ports: () => simDeps(world) });
    expect(await broken.reload()).toEqual({ applied: false, reason: "max_ofset: unknown key", restartKeys: [] });
    // Ports that cannot be built (an unusable REST URL) are refused too, and the old ones kept.
    next = { ...before, runners: before.runners.map((r) => ({ ...r, restUrl: "http://exa mple:3100/api/v0" })) };
    const real = new Daemon({ config: before, load: async () => next, log, lockPath: null, ports: (c) => buildPorts(c) });
    const bad = await real.reload();
    expect(bad).toMatchObject({ applied: false, restartKeys: [], reason: expect.stringContaining("is not a usable URL") });
    expect(real.config).toBe(before);
  });
});

describe("Daemon.start: a streak of failing ticks", () => {
  /** A clock whose sleep moves time on at once: the loop runs as fast as it can. */
  function fastClock(): Clock {
    let t = 1_000_000;
    return { now: () => t, sleep: async (ms) => void (t += Math.max(1, ms)) };
  }

  test("ends the daemon with exit 1 once it lasts both the tick count and the time bound", async () => {
    const clock = fastClock();
    const config = simConfig(2, { loopPeriodMs: 500 });
    const log = recordingLog();
    let ticks = 0;
    const ports = (): MasterDeps => ({
      node: () => {
        ticks++;
        throw new TypeError("Invalid URL");
      },
      services: { showAll: async () => new Map(), start: async () => {}, stop: async () => {}, restart: async () => {}, kill: async () => {} },
      clock,
      pooltool: null,
      readSecret: async () => ({ genesis: { node_id: "x" } }),
    });
    const exits: string[] = [];
    const d = new Daemon({ config, load: async () => config, log, lockPath: null, ports, tickFailureLimit: { ticks: 4, ms: 2_000 }, beforeExit: async (why) => void exits.push(why) });
    const code = await d.start();
    expect(code).toBe(EXIT_FAILURE);
    expect(exits).toEqual(["ticks kept failing (Invalid URL)"]);
    // 5 ticks: 4 reach the count at 1.5 s, the 5th reaches 2 s. Then the parting look fails too.
    expect(log.lines.filter((l) => l.startsWith("error tick failed")).length).toBe(5);
    expect(log.lines.join("\n")).toContain("5 ticks in a row failed over 2 s; last: Invalid URL: the daemon is blind, exiting so systemd restarts it");
    expect(ticks).toBeGreaterThanOrEqual(5);
  });

  test("a tick that works ends the streak: failures apart never stop the daemon", async () => {
    const clock = fastClock();
    const config = simConfig(1, { loopPeriodMs: 500 });
    const log = recordingLog();
    let n = 0;
    const ok = { ok: false as const, error: { kind: "unreachable" as const, reason: "refused" as const, message: "refused" } };
    const api = new Proxy({}, { get: () => async () => ok });
    const d: { current: Daemon | null } = { current: null };
    const ports = (): MasterDeps => ({
      node: () => {
        n++;
        // Every third tick throws; after 40 the test stops the daemon.
        if (n >= 40) d.current!.stop("test");
        if (n % 3 === 0) throw new TypeError("Invalid URL");
        return api as never;
      },
      services: { showAll: async () => new Map(), start: async () => {}, stop: async () => {}, restart: async () => {}, kill: async () => {} },
      clock,
      pooltool: null,
      readSecret: async () => ({ genesis: { node_id: "x" } }),
    });
    const hooks: string[] = [];
    d.current = new Daemon({
      config,
      load: async () => config,
      log,
      lockPath: null,
      ports,
      tickFailureLimit: { ticks: 2, ms: 0 },
      onReady: (line) => hooks.push(`ready: ${line}`),
      beforeExit: async (why, last) => void hooks.push(`exit: ${why}; ${last}`),
    });
    expect(await d.current.start()).toBe(0);
    expect(hooks).toEqual(["ready: no signer · 0/1 warm · no known slot ahead", "exit: stopped by test; no signer · 0/1 warm · no known slot ahead"]);
    expect(log.lines.filter((l) => l.startsWith("error tick failed")).length).toBeGreaterThan(5);
  });
});

describe("Daemon.start: boot permits and the READY bound", () => {
  const refused = { ok: false as const, error: { kind: "unreachable" as const, reason: "refused" as const, message: "refused" } };
  const services = { showAll: async () => new Map(), start: async () => {}, stop: async () => {}, restart: async () => {}, kill: async () => {} };

  test("a permit per runner after every observation; none left once stopped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jm-daemon-permits-"));
    try {
      let t = 1_000_000;
      const clock: Clock = { now: () => t, sleep: async (ms) => void (t += Math.max(1, ms)) };
      const config = simConfig(2, { loopPeriodMs: 500, keyMode: "boot" });
      let calls = 0;
      const seen: string[][] = [];
      const d: { current: Daemon | null } = { current: null };
      const ports = (): MasterDeps => ({
        node: () => {
          calls++;
          if (calls === 9) seen.push(readdirSync(dir).sort());
          if (calls >= 12) d.current!.stop("test");
          return new Proxy({}, { get: () => async () => refused }) as never;
        },
        services,
        clock,
        pooltool: null,
        readSecret: async () => ({ genesis: { node_id: "x" } }),
      });
      d.current = new Daemon({ config, load: async () => config, log: silentLog, lockPath: null, ports, bootPermitDir: dir });
      expect(await d.current.start()).toBe(0);
      expect(seen).toEqual([["0", "1"]]);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("no complete observation within the bound: exit 1, and no permit written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jm-daemon-ready-"));
    try {
      const config = simConfig(1);
      const log = recordingLog();
      const ports = (): MasterDeps => ({
        // Every REST call hangs: the first observation never completes.
        node: () => new Proxy({}, { get: () => () => new Promise(() => {}) }) as never,
        services,
        clock: { now: () => Date.now(), sleep: (ms) => Bun.sleep(ms) },
        pooltool: null,
        readSecret: async () => ({ genesis: { node_id: "x" } }),
      });
      const exited = Promise.withResolvers<number>();
      const d = new Daemon({ config, load: async () => config, log, lockPath: null, ports, bootPermitDir: dir, readyTimeoutMs: 100, exit: (code) => exited.resolve(code) });
      void d.start();
      expect(await exited.promise).toBe(1);
      expect(log.lines.join("\n")).toContain("no complete observation within 0.1 s of starting");
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("cluster mode (issue 13): the daemon holds the etcd signer lease", () => {
  const CLUSTER = { name: "host-a", etcdEndpoints: ["http://127.0.0.1:23791"], prefix: "/jorm-master", leaseTtlS: 5, etcdTimeoutMs: 2_000 };

  test("signs only while holding the lease: the signer carries a dead-man switch; etcd lost, it is fenced before the lease could end", async () => {
    const world = await warmWorld();
    const etcd = createFakeEtcd(world.clock.now());
    // The fake follows the world's clock: each call first lets the virtual time that passed expire leases.
    const synced = new Proxy(etcd, {
      get(t, prop) {
        const f = (t as unknown as Record<string, unknown>)[prop as string];
        return typeof f !== "function" ? f : (...a: unknown[]) => (t.advance(Math.max(0, world.clock.now() - t.nowMs())), (f as (...x: unknown[]) => unknown).apply(t, a));
      },
    });
    const config: ResolvedConfig = { ...simConfig(2, { keyMode: "rest" }), cluster: CLUSTER };
    const log = recordingLog();
    const arms: { id: number; atMs: number; armedAt: number }[] = [];
    const ports = () => {
      const deps = simDeps(world);
      const arm = deps.services.armFreeze!;
      deps.services = { ...deps.services, armFreeze: (id, atMs) => (arms.push({ id, atMs, armedAt: world.clock.now() }), arm(id, atMs)) };
      return deps;
    };
    const d = new Daemon({ config, load: async () => config, log, lockPath: null, ports, etcd: () => synced, mono: () => world.clock.now() });
    const done = d.start();
    for (let i = 0; i < 100 && d.master.memory.signer === null; i++) await world.runUntil(world.clock.now() + 500);
    const signer = d.master.memory.signer;
    expect(signer).not.toBeNull();
    expect(etcd.kv.get("/jorm-master/signer")?.value).toBe("host-a");
    expect(world.node(signer!)!.leaderIds().length).toBeGreaterThan(0);
    // Its switch is re-armed after keep-alives, each time to under one TTL ahead.
    await world.runUntil(world.clock.now() + 5_000);
    const own = arms.filter((a) => a.id === signer);
    expect(own.length).toBeGreaterThanOrEqual(3);
    for (const a of own) expect(a.atMs - a.armedAt).toBeLessThan(5_000);
    // etcd gone: no keep-alive succeeds; the lease would end in etcd 5 s after the last one.
    etcd.down = true;
    const cutAt = world.clock.now();
    let stoppedAt: number | null = null;
    for (let i = 0; i < 100 && stoppedAt === null; i++) {
      await world.runUntil(world.clock.now() + 100);
      // Frozen by its switch, then killed by the daemon (a host that may not sign keeps no runner
      // frozen with the key): no process at all is fenced too.
      const n = world.node(signer!);
      if (n === null || n.isFrozen || n.leaderIds().length === 0) stoppedAt = world.clock.now();
    }
    expect(stoppedAt).not.toBeNull();
    expect(stoppedAt! - cutAt).toBeLessThan(5_000);
    expect(log.lines.join("\n")).toContain("cluster: keep-alive failed");
    d.stop("test");
    for (let i = 0; i < 100; i++) await world.runUntil(world.clock.now() + 100);
    expect(await done).toBe(0);
  });

  test("a reload changing the cluster section is refused: only a restart changes it", async () => {
    const world = await warmWorld();
    const before = simConfig(2, { keyMode: "rest" });
    const log = recordingLog();
    const d = new Daemon({ config: before, load: async () => ({ ...before, cluster: CLUSTER }), log, lockPath: null, ports: () => simDeps(world) });
    const r = await d.reload();
    expect(r).toMatchObject({ applied: false, restartKeys: ["cluster"], reason: expect.stringContaining("cluster cannot change while the daemon runs") });
    expect(d.config).toBe(before);
    expect(d.master.config).toBe(before);
  });
});
