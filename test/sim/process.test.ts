import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import { Chain } from "../../src/sim/chain.ts";
import { readJournalFile } from "../../src/sim/journal.ts";
import { REJECT_TOO_LATE } from "../../src/sim/node.ts";
import { parseListen, parseNodeFlags, readNodeConfig, readSecret, runnerIdOf, startSimNode } from "../../src/sim/process.ts";
import { parseWorld, renderWorld, WORLD_FILE } from "../../src/sim/worldfile.ts";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A world with 4-slot epochs of 1 s where slots 1..3 are all the pool's, and a fast boot. */
function makeWorld(port: number) {
  const dir = mkdtempSync(join(tmpdir(), "jm-simproc-"));
  dirs.push(dir);
  const text = renderWorld({
    block0TimeMs: Math.floor(Date.now() / 1000) * 1000 - 100 * 4000,
    slotMs: 1000,
    slotsPerEpoch: 4,
    seed: 5,
    density: 3,
    activeSlotCoeff: 0.5,
    bootstrapMs: 100,
    computeMs: 0,
  }).replace(/starting_rest_server: \d+/, "starting_rest_server: 20").replace(/preparing_storage: \d+/, "preparing_storage: 20");
  writeFileSync(join(dir, WORLD_FILE), text);
  const config = join(dir, "jorm_runner_2.yaml");
  writeFileSync(config, `storage: "${dir}/storage_jorm_runner_2"\nrest:\n  listen: "127.0.0.1:${port}"\nleadership:\n  logs_capacity: 50\n`);
  const secret = join(dir, "node_secret.yaml");
  writeFileSync(secret, `genesis:\n  sig_key: kes25519-12-sk1FAKE\n  vrf_key: vrf_sk1FAKE\n  node_id: "${"0".repeat(63)}1"\n`);
  const world = parseWorld(text, join(dir, WORLD_FILE));
  return { dir, config, secret, world, chain: new Chain(world.chain), journal: world.journalPath };
}

const freePort = () => {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const port = s.port!;
  s.stop(true);
  return port;
};

describe("jormungandr command line", () => {
  test("flags as jormungandr takes them: --flag value, --flag=value, --secret repeatable, the rest ignored", () => {
    const f = parseNodeFlags([
      "--genesis-block-hash",
      "ab",
      "--config=/etc/cardano/jorm_runner_1.yaml",
      "--secret",
      "/a.yaml",
      "--secret=/b.yaml",
      "--rest-listen",
      "127.0.0.1:3101",
      "--storage",
      "/home/cardano/storage_jorm_runner_1",
      "--trusted-peer",
      "/ip4/1.2.3.4/tcp/3000@abc",
      "--enable-explorer",
    ]);
    expect(f).toEqual({
      genesisBlockHash: "ab",
      config: "/etc/cardano/jorm_runner_1.yaml",
      secrets: ["/a.yaml", "/b.yaml"],
      restListen: "127.0.0.1:3101",
      storage: "/home/cardano/storage_jorm_runner_1",
      ignored: ["--trusted-peer", "--enable-explorer"],
    });
    expect(() => parseNodeFlags(["--config"])).toThrow("--config needs a value");
    expect(parseNodeFlags(["--full-version"]).version).toBe("full");
  });

  test("runner id from the storage dir, else the port's last digit; listen addresses", () => {
    expect(runnerIdOf("/home/cardano/storage_jorm_runner_7/", 3100)).toBe(7);
    expect(runnerIdOf(undefined, 3102)).toBe(2);
    expect(parseListen("127.0.0.1:3100")).toEqual({ hostname: "127.0.0.1", port: 3100 });
    expect(parseListen("[::1]:3100")).toEqual({ hostname: "::1", port: 3100 });
    expect(() => parseListen("localhost")).toThrow(ConfigError);
  });

  test("node config: rest.listen, storage, logs_capacity, secret_files; secrets read as YAML mappings", () => {
    const { config, secret, dir } = makeWorld(3999);
    expect(readNodeConfig(config)).toMatchObject({ restListen: "127.0.0.1:3999", logsCapacity: 50, secretFiles: [] });
    expect(readSecret(secret)).toMatchObject({ genesis: { vrf_key: "vrf_sk1FAKE" } });
    expect(() => readSecret(join(dir, "missing.yaml"))).toThrow("no such file");
  });
});

describe("one simulated node process", () => {
  test("in-process: serves the REST port, journals to the world, numbers incarnations from the journal", async () => {
    const port = freePort();
    const w = makeWorld(port);
    const first = startSimNode(parseNodeFlags(["--config", w.config]), {});
    expect(first.node.runner).toBe(2);
    expect(first.node.incarnation).toBe(1);
    expect(existsSync(join(w.dir, "storage_jorm_runner_2"))).toBe(true);
    const stats = (await (await fetch(`http://127.0.0.1:${port}/api/v0/node/stats`)).json()) as { state: string };
    expect(typeof stats.state).toBe("string");
    first.node.kill("crash");
    expect(await first.exited).toBe(1);
    const second = startSimNode(parseNodeFlags(["--config", w.config, "--secret", w.secret]), {});
    expect(second.node.incarnation).toBe(2);
    expect(second.node.leaderIds()).toEqual([1]);
    second.node.terminate(0);
    expect(await second.exited).toBe(0);
    expect(readJournalFile(w.journal).map((e) => e.kind).filter((k) => k !== "alive")).toEqual(["proc_start", "proc_exit", "proc_start", "proc_exit"]);
  });

  test("as a process: SIGSTOP over a leader slot → too late on SIGCONT (and the freeze journalled); SIGTERM exits 0; audit", async () => {
    const port = freePort();
    const w = makeWorld(port);
    const proc = Bun.spawn(
      ["bun", CLI, "sim", "node", "--genesis-block-hash", "ab".repeat(32), "--config", w.config, "--secret", w.secret, "--log-level", "info"],
      { stdout: "pipe", stderr: "pipe", env: { ...process.env, JORM_SIM_WORLD: "" } },
    );
    const base = `http://127.0.0.1:${port}/api/v0`;
    let state = "";
    for (let i = 0; i < 100 && state !== "Running"; i++) {
      await Bun.sleep(50);
      state = await fetch(`${base}/node/stats`)
        .then((r) => r.json() as Promise<{ state: string }>)
        .then((s) => s.state)
        .catch(() => "");
    }
    expect(state).toBe("Running");
    const settings = (await (await fetch(`${base}/settings`)).json()) as { block0Hash: string };
    expect(settings.block0Hash).toBe("ab".repeat(32));

    // The next leader slot (not slot 0) starting at least 400 ms from now.
    let abs = w.chain.absSlotAt(Date.now() + 400) + 1;
    if (abs % 4 === 0) abs++;
    const slotStart = w.chain.absSlotStartMs(abs);
    await Bun.sleep(slotStart - 200 - Date.now());
    proc.kill("SIGSTOP");
    await Bun.sleep(slotStart + 1300 - Date.now());
    proc.kill("SIGCONT");
    await Bun.sleep(300);
    const epoch = Math.floor(abs / 4);
    const slot = abs % 4;
    const entries = readJournalFile(w.journal);
    expect(entries.filter((e) => e.kind === "reject" && e.epoch === epoch && e.slot === slot).map((e) => (e as { reason: string }).reason)).toEqual([
      REJECT_TOO_LATE,
    ]);
    expect(entries.some((e) => e.kind === "freeze")).toBe(true);
    expect(entries.some((e) => e.kind === "alive")).toBe(true);
    expect(entries.find((e) => e.kind === "proc_start")).toMatchObject({ beatMs: expect.any(Number) });
    expect(entries.some((e) => e.kind === "block")).toBe(true);

    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    const stderr = await new Response(proc.stderr).text();
    expect(stderr).toContain("ignoring --log-level");
    expect(readJournalFile(w.journal).at(-1)).toMatchObject({ kind: "proc_exit", reason: "sigterm" });

    const audit = Bun.spawnSync(["bun", CLI, "sim", "audit", "--world", w.dir, "--json"], { stdout: "pipe", stderr: "pipe" });
    expect(audit.exitCode).toBe(0);
    const report = JSON.parse(audit.stdout.toString()) as { scheduled: number; produced: number; doubleProduced: number; unproducibleReasons: Record<string, number> };
    expect(report.doubleProduced).toBe(0);
    expect(report.produced).toBeGreaterThan(0);
    expect(report.unproducibleReasons.frozen).toBe(1);
  }, 20_000);

  test("an unwritable journal is a config error naming the world file", () => {
    const w = makeWorld(freePort());
    writeFileSync(join(w.dir, WORLD_FILE), `${readFileSync(join(w.dir, WORLD_FILE), "utf8").replace("journal: journal.jsonl", `journal: ${w.dir}/no/such/dir/j.jsonl`)}`);
    expect(() => startSimNode(parseNodeFlags(["--config", w.config]), {})).toThrow("not writable (ENOENT)");
  });

  test("CLI: --full-version prints the node's version like jormungandr", () => {
    const r = Bun.spawnSync(["bun", CLI, "sim", "node", "--full-version"], { stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe("jormungandr 0.8.14-9ca427ef\n");
  });

  test("CLI: --version prints it too, and $JORM_SIM_NODE_VERSION makes another build (upgrade tests)", () => {
    const r = Bun.spawnSync(["bun", CLI, "sim", "node", "--version"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, JORM_SIM_NODE_VERSION: "jormungandr 0.8.15-sim" } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe("jormungandr 0.8.15-sim\n");
  });

  test("CLI: a node without a world is a config error (78) with a precise message, no stack", () => {
    const dir = mkdtempSync(join(tmpdir(), "jm-simproc-"));
    dirs.push(dir);
    const r = Bun.spawnSync(["bun", CLI, "sim", "node", "--config", join(dir, "jorm_runner_0.yaml")], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, JORM_SIM_WORLD: "" },
    });
    expect(r.exitCode).toBe(78);
    expect(r.stderr.toString()).toContain("sim world init");
    expect(r.stderr.toString()).not.toMatch(/^\s+at /m);
  });

  test("CLI: sim pooltool serves the majority max of the world's tip and journals shared tips", async () => {
    const port = freePort();
    const w = makeWorld(port);
    const pt = Bun.spawn(["bun", CLI, "sim", "pooltool", "--listen", `127.0.0.1:${port}`, "--world", w.dir], { stdout: "pipe", stderr: "pipe" });
    try {
      const before = w.chain.tipHeight(Date.now());
      let stats: { majoritymax: number } | null = null;
      for (let i = 0; i < 100 && !stats; i++) {
        await Bun.sleep(30);
        stats = await fetch(`http://127.0.0.1:${port}/stats/stats.json`)
          .then((r) => r.json() as Promise<{ majoritymax: number }>)
          .catch(() => null);
      }
      expect(stats!.majoritymax).toBeGreaterThanOrEqual(before);
      expect(stats!.majoritymax).toBeLessThanOrEqual(w.chain.tipHeight(Date.now()));
      expect((await fetch(`http://127.0.0.1:${port}/v0/sharemytip?mytip=77`)).status).toBe(200);
      expect(readJournalFile(w.journal).map((e) => e.kind === "tip_shared" && e.height)).toEqual([77]);
    } finally {
      pt.kill("SIGTERM");
      expect(await pt.exited).toBe(0);
    }
  });

  test("CLI: sim world init writes a world a node can load, and refuses to overwrite", () => {
    const dir = mkdtempSync(join(tmpdir(), "jm-simproc-"));
    dirs.push(dir);
    const init = (extra: string[] = []) =>
      Bun.spawnSync(["bun", CLI, "sim", "world", "init", dir, "--slots-per-epoch", "120", "--density", "10", ...extra], { stdout: "pipe", stderr: "pipe" });
    expect(init().exitCode).toBe(0);
    // The wrapper is a working drop-in: it reaches `sim node`.
    const help = Bun.spawnSync([join(dir, "jormungandr-sim"), "--help"], { stdout: "pipe", stderr: "pipe" });
    expect(help.exitCode).toBe(0);
    expect(help.stdout.toString()).toContain("simulated Jormungandr v0.8.14 node");
    const again = init();
    expect(again.exitCode).toBe(1);
    expect(again.stderr.toString()).toContain("already exists");
    const bad = init(["--force", "--slot-ms", "1500"]);
    expect(bad.exitCode).toBe(64);
    // --force replaces the world: without a terminal only with --yes
    const forced = init(["--force"]);
    expect(forced.exitCode).toBe(64);
    expect(forced.stderr.toString()).toContain("pass --yes");
    expect(init(["--force", "--yes"]).exitCode).toBe(0);
  });
});

test("sim audit exits 1 when two processes could sign one slot one after the other, though never at once", () => {
  const w = makeWorld(freePort());
  const epoch = 200;
  const t0 = w.chain.absSlotStartMs(epoch * 4);
  const start = w.chain.absSlotStartMs(epoch * 4 + 1);
  const proc = (runner: number) => [
    { t: t0, kind: "proc_start", runner, inc: 1, pid: 100 + runner, keys: [1] },
    { t: t0 + 1, kind: "schedule_start", runner, inc: 1, epoch, slots: [1, 2, 3], keys: [1], trigger: "boot" },
    { t: t0 + 2, kind: "schedule_done", runner, inc: 1, epoch, slots: [1, 2, 3], keys: [1] },
  ];
  // #1 gives the key back, #0 is frozen 200 ms into slot 1, then #1 gets the key again.
  const entries = [
    ...proc(0),
    ...proc(1),
    { t: t0 + 3, kind: "keys", runner: 1, inc: 1, keys: [] },
    { t: start + 200, kind: "freeze", runner: 0, inc: 1 },
    { t: start + 300, kind: "keys", runner: 1, inc: 1, keys: [1] },
  ];
  writeFileSync(w.journal, entries.map((e) => JSON.stringify(e)).join("\n") + "\n");
  const audit = Bun.spawnSync(
    ["bun", CLI, "sim", "audit", "--world", w.dir, "--from", String(t0), "--to", String(t0 + 4000), "--guard-ms", "400", "--margin-ms", "400", "--json"],
    { stdout: "pipe", stderr: "pipe" },
  );
  const report = JSON.parse(audit.stdout.toString()) as { signOverlapMs: number; sharedWindows: number };
  expect(report).toMatchObject({ signOverlapMs: 0, sharedWindows: 1 });
  expect(audit.exitCode).toBe(1);
});
