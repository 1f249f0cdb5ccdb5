// `status` end to end against the HTTP simulator: runners on loopback ports (a real-time World),
// REST through the real HTTP client, unit states from the World's service manager; then the CLI
// itself (--rest-only, so no systemd is needed) in a subprocess.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runStatus } from "../../src/commands/status.ts";
import { parseConfigText } from "../../src/config/load.ts";
import type { ResolvedConfig } from "../../src/config/types.ts";
import { httpNodeApi } from "../../src/node/client.ts";
import { testChainParams } from "../../src/sim/chain.ts";
import { RealScheduler } from "../../src/sim/clock.ts";
import { serveWorld, type WorldServers } from "../../src/sim/server.ts";
import { SIM_POOL_SECRET, World } from "../../src/sim/world.ts";
import type { StatusDeps } from "../../src/status/gather.ts";
import type { StatusModel } from "../../src/status/model.ts";

import { freeLowPorts } from "../ports.ts";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const dir = mkdtempSync(join(tmpdir(), "jm-status-"));
let world: World<RealScheduler>;
let http: WorldServers;
let config: ResolvedConfig;
let configPath: string;


beforeAll(async () => {
  // Below the ephemeral range: the port after a kernel-picked one is often the next client socket's
  const base = freeLowPorts(3);
  world = new World({
    chain: testChainParams({ block0TimeMs: Math.floor(Date.now() / 1000) * 1000 - 600_000, leaderSlotsPerEpoch: 20 }),
    runners: 3,
    clock: new RealScheduler(),
    boot: { StartingRestServer: 10, PreparingStorage: 10, PreparingBlock0: 10, Bootstrapping: 50, StartingWorkers: 10 },
    scheduleComputeMs: 20,
    restartDelayMs: 150,
    keyMode: "rest",
  });
  http = serveWorld(world, { portOf: (id) => base + id });
  const yaml = `cnt_runners: 3\nrest_host: 127.0.0.1\nrest_base_port: ${base}\nrest_timeout: 0.5\nmetrics_listen: ""\n`;
  configPath = join(dir, "jorm_master.yaml");
  writeFileSync(configPath, yaml);
  config = parseConfigText(yaml, configPath).config;
  for (const id of world.ids) await world.services.start(id);
  await Bun.sleep(300);
});

afterAll(() => {
  http?.stop();
  world?.dispose?.();
  rmSync(dir, { recursive: true, force: true });
});

function deps(): StatusDeps {
  return {
    node: (id) => httpNodeApi(config.runners[id]!.restUrl, { timeoutMs: config.restTimeoutMs }),
    // The World has units 0..2 only; the ids status scans beyond cnt_runners are inactive units.
    services: {
      ...world.services,
      async showAll(ids) {
        const own = await world.services.showAll(ids.filter((id) => id < 3));
        for (const id of ids) if (id >= 3) own.set(id, { id, activeState: "inactive", subState: "dead", mainPid: 0, sinceMs: null, restarts: 0, frozen: null });
        return own;
      },
    },
    pooltool: null,
    now: () => Date.now(),
  };
}

async function look(): Promise<{ code: number; model: StatusModel }> {
  let out = "";
  const code = await runStatus(config, deps(), { json: true, watch: false, intervalMs: 1000, isTTY: false, write: (t) => (out += t) });
  return { code, model: JSON.parse(out) as StatusModel };
}

describe("status against simulated runners over HTTP", () => {
  test("no key anywhere: exit 2, every runner Running and key-less, unit states from the service manager", async () => {
    const { code, model } = await look();
    expect(code).toBe(2);
    expect(model.rows.map((r) => [r.id, r.unitState, r.nodeState, r.keyHeld])).toEqual([
      [0, "active", "Running", false],
      [1, "active", "Running", false],
      [2, "active", "Running", false],
    ]);
    expect(model.epoch).toBe(world.chain.epochAt(Date.now()));
    expect(model.rows.every((r) => r.height !== null && r.lag !== null)).toBe(true);
  });

  test("one holder: exit 0 and it is the signer; a second holder: exit 2; the other's REST down shows as refused", async () => {
    expect((await world.api(1).addLeader(SIM_POOL_SECRET)).ok).toBe(true);
    let r = await look();
    expect(r.code).toBe(0);
    expect(r.model.signer).toBe(1);
    expect(r.model.rows[1]!.eventsLeft).not.toBeNull();

    expect((await world.api(2).addLeader(SIM_POOL_SECRET)).ok).toBe(true);
    r = await look();
    expect(r.code).toBe(2);
    expect(r.model.holders).toEqual([1, 2]);

    await world.api(2).removeLeader(1);
    await world.services.stop(0);
    r = await look();
    expect(r.code).toBe(0);
    expect(r.model.rows[0]).toMatchObject({ unitState: "inactive", restError: "refused", keyHeld: null });
    await world.services.start(0);
    // Booting (key_mode boot: it may boot holding the key) it is a WARNING until Running and key-less.
    for (let i = 0; i < 100 && (r = await look()).code !== 0; i++) await Bun.sleep(20);
    expect(r.code).toBe(0);
  });

  test("a boundary hand-out read through the real gather: armed switch → 0 and shown; no switch → 2", async () => {
    // #1 signs; #2 is given the key as the daemon does before a boundary. The status clock is put
    // 5 s before the next boundary; its dead-man switch fires just before slot 1's window opens.
    expect((await world.api(1).addLeader(SIM_POOL_SECRET)).ok).toBe(true);
    expect((await world.api(2).addLeader(SIM_POOL_SECRET)).ok).toBe(true);
    const chain = world.chain;
    const boundary = chain.epochStartMs(chain.epochAt(Date.now()) + 1);
    const fireAtMs = boundary + chain.slotMs - config.slotGuardMs - 100;
    const at = async (switches: StatusDeps["switches"]) => {
      let out = "";
      const d = { ...deps(), now: () => boundary - 5_000, switches };
      const code = await runStatus(config, d, { json: true, watch: false, intervalMs: 1000, isTTY: false, write: (t) => (out += t) });
      let table = "";
      await runStatus(config, d, { json: false, watch: false, intervalMs: 1000, isTTY: false, write: (t) => (table += t) });
      return { code, model: JSON.parse(out) as StatusModel, table };
    };
    const armed = await at(async (ids) => new Map(ids.map((id) => [id, id === 2 ? { armed: true, fireAtMs } : { armed: false, fireAtMs: null }])));
    expect(armed.code).toBe(0);
    expect(armed.model.signer).toBe(1);
    expect(armed.model.handout?.coHolders).toEqual([2]);
    expect(armed.model.rows[2]).toMatchObject({ handout: true, signing: "hand-out" });
    expect(armed.table).toMatch(/#2 .* hand-out /);
    expect(armed.table).toContain("OK: #1 holds the key and is Running; boundary hand-out to #2");
    const bare = await at(async (ids) => new Map(ids.map((id) => [id, { armed: false, fireAtMs: null }])));
    expect(bare.code).toBe(2);
    expect(bare.model.handout).toBeNull();
    await world.api(2).removeLeader(1);
  });

  test("--watch redraws in place on a TTY and stops on the signal", async () => {
    const frames: string[] = [];
    const ac = new AbortController();
    const code = await runStatus(config, deps(), {
      json: false,
      watch: true,
      intervalMs: 10,
      isTTY: true,
      write: (t) => {
        frames.push(t);
        if (frames.length === 3) ac.abort();
      },
      signal: ac.signal,
      sleep: (ms) => Bun.sleep(ms),
    });
    expect(code).toBe(0);
    expect(frames).toHaveLength(3);
    expect(frames[0]!.startsWith("\x1b[")).toBe(false);
    const lines = frames[0]!.split("\n").length - 1;
    expect(frames[1]!.startsWith(`\x1b[${lines}F\x1b[J`)).toBe(true);
    expect(frames[1]).toContain("OK: #1 holds the key and is Running");
  });
});

describe("the status command", () => {
  // Async: the simulated runners answer from this very process, so it must not block while waiting.
  async function cli(args: string[]) {
    const { JORM_MASTER_CONFIG: _c, ...env } = process.env;
    const p = Bun.spawn(["bun", CLI, "status", ...args], { env, stdout: "pipe", stderr: "pipe" });
    const [code, stdout, stderr] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
    return { code, stdout, stderr };
  }

  test("prints the table and exits with the check's code (--rest-only: no systemd needed)", async () => {
    const r = await cli(["--config", configPath, "--rest-only"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("RUNNER  UNIT  NODE");
    expect(r.stdout).toMatch(/#1 +- +Running +\d+ +\d+ +SIGNER/);
    expect(r.stdout).toContain("systemd: not asked (--rest-only)");
    expect(r.stdout).toContain("OK: #1 holds the key and is Running");
  });

  test("--json prints one object with the same verdict", async () => {
    const r = await cli(["--config", configPath, "--rest-only", "--json"]);
    expect(r.code).toBe(0);
    const m = JSON.parse(r.stdout) as StatusModel;
    expect(m.signer).toBe(1);
    expect(m.rows).toHaveLength(3);
  });

  test("a bad --interval is a usage error without a stack trace; a broken config is UNKNOWN (3), not 78", async () => {
    const bad = await cli(["--config", configPath, "--watch", "--interval", "0"]);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain("--interval: expected a positive number of seconds");
    expect(bad.stderr).not.toMatch(/^\s+at /m);
    const cfg = join(dir, "bad.yaml");
    writeFileSync(cfg, "cnt_runners: 0\n");
    const broken = await cli(["--config", cfg]);
    expect(broken.code).toBe(3);
    expect(broken.stderr).toContain("UNKNOWN: status could not evaluate:");
    expect(broken.stderr).toContain("cnt_runners");
    expect(broken.stderr).not.toMatch(/^\s+at /m);
    const missing = await cli(["--config", join(dir, "nowhere.yaml")]);
    expect(missing.code).toBe(3);
  });
});
