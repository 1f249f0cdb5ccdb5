import { describe, expect, test } from "bun:test";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, EXIT_CONFIG } from "../../src/errors.ts";
import { KEYS_BY_SECTION } from "../../src/config/schema.ts";
import type { ResolvedConfig } from "../../src/config/types.ts";
import { DEFAULT_CONFIG_YAML } from "../../src/config/default-text.ts";
import {
  CONFIG_PATH_ENV,
  DEFAULT_CONFIG_PATH,
  configPath,
  defaultConfig,
  loadConfig,
  loadConfigWithNotes,
  parseConfigText,
  readErrorMessage,
  resolveConfig,
} from "../../src/config/load.ts";

const SEED = join(import.meta.dir, "../fixtures/seed/jorm_master.yaml");
const STRICT = join(import.meta.dir, "../fixtures/seed/jorm_master.strict-2020-01.yaml");

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("seed files load unchanged and keep their meaning", () => {
  test("jorm_master.yaml", async () => {
    const { config, notes } = await loadConfigWithNotes(SEED);
    expect(config.source).toBe(SEED);
    expect(config.cntRunners).toBe(3);
    expect(config.nodeSecretPath).toBe("/etc/cardano/node_secret.yaml");
    expect(config.maxOffset).toBe(5);
    expect(config.maxBootMs).toBe(900_000);
    expect(config.eventActionMs).toBe(15_000);
    expect(config.startBeforeEventMs).toBe(600_000);
    expect(config.bootCatchUpMs).toBe(1_500_000);
    expect(config.runners.map((r) => r.restListen)).toEqual(["127.0.0.1:3100", "127.0.0.1:3101", "127.0.0.1:3102"]);
    expect(config.pooltool).toBeNull();
    expect(config.legacy).toEqual({});
    expect(notes.join("\n")).toContain("PoolTool is off (pool_id and user_id are still the placeholders)");
  });

  test("the strict 2020-01 variant: legacy keys kept in ms and noted as not needed", async () => {
    const { config, notes } = await loadConfigWithNotes(STRICT);
    expect(config.maxBootMs).toBe(900_000);
    expect(config.startBeforeEventMs).toBe(300_000);
    expect(config.bootCatchUpMs).toBe(300_000);
    expect(config.eventActionMs).toBe(15_000); // not in the file: default
    expect(config.legacy).toEqual({ event_boot_stop: 30_000, epoch_kill: 15_000, event_hibernate: 10_000 });
    expect(notes.join("\n")).toContain("event_boot_stop, epoch_kill, event_hibernate (from the strict 2020-01 master) are accepted but not needed any more");
  });
});

describe("defaults", () => {
  test("equal the seed's layout", () => {
    const c = defaultConfig();
    expect(c.source).toBeNull();
    expect(c.runners[1]).toEqual({
      id: 1,
      binary: "/usr/local/bin/jormungandr_runner_1",
      nodeConfig: "/etc/cardano/jorm_runner_1.yaml",
      storage: "/home/cardano/storage_jorm_runner_1",
      restListen: "127.0.0.1:3101",
      restUrl: "http://127.0.0.1:3101/api/v0",
      unit: "jorm_runner@1.service",
    });
    expect(c.genesisHashPath).toBe("/etc/cardano/genesis.txt");
    expect(c.keyMode).toBe("boot");
    expect(c.loopPeriodMs).toBe(500);
    expect(c.restTimeoutMs).toBe(500);
    expect(c.slotGuardMs).toBe(1000);
    expect(c.slotMarginMs).toBe(1000);
    expect(c.metricsListen).toBe("127.0.0.1:9310");
    expect(c.logLevel).toBe("info");
    expect(c.systemd).toEqual({ scope: "system", masterUnit: "jorm_master.service", runnerUnitTemplate: "jorm_runner@{id}.service", user: "cardano" });
    expect(c.pooltool).toBeNull();
  });

  test("the embedded default.yaml loads to exactly defaultConfig()", () => {
    const { config, notes } = parseConfigText(DEFAULT_CONFIG_YAML, "/etc/cardano/jorm_master.yaml");
    const normalised: ResolvedConfig = { ...config, source: null };
    expect(normalised).toEqual(defaultConfig());
    expect(notes).toEqual(["PoolTool is off (pool_id and user_id are still the placeholders): heights are compared between local runners only."]);
  });

  test("default.yaml mentions every key it sets with a comment above it", () => {
    // a key added to the schema but not to default.yaml would be undocumented for operators
    const documented = new Set<string>();
    for (const m of DEFAULT_CONFIG_YAML.matchAll(/^\s*#?\s*([a-z_]+):/gm)) if (m[1]) documented.add(m[1]);
    const legacy = new Set(["event_boot_stop", "epoch_kill", "event_hibernate"]);
    for (const [, keys] of Object.entries(KEYS_BY_SECTION)) {
      for (const key of keys) if (!legacy.has(key)) expect(documented.has(key) ? key : `missing ${key}`).toBe(key);
    }
  });
});

describe("new keys", () => {
  test("rest_base_port: port = base + id, and allows more than 10 runners", () => {
    const c = resolveConfig({ cnt_runners: 12, rest_base_port: 4000 }, null);
    expect(c.runners.map((r) => r.restListen)[11]).toBe("127.0.0.1:4011");
    expect(c.runners).toHaveLength(12);
  });
  test("IPv6 rest_host is bracketed in listen address and URL", () => {
    const c = resolveConfig({ rest_host: "::1", cnt_runners: 1 }, null);
    expect(c.runners[0]!.restListen).toBe("[::1]:3100");
    expect(c.runners[0]!.restUrl).toBe("http://[::1]:3100/api/v0");
  });
  test("rest_host: bracketed IPv6 is the same as bare; every runner's REST URL parses as the daemon parses it", () => {
    const c = resolveConfig({ rest_host: "[::1]", cnt_runners: 2 }, null);
    expect(c.runners.map((r) => r.restUrl)).toEqual(["http://[::1]:3100/api/v0", "http://[::1]:3101/api/v0"]);
    for (const host of ["127.0.0.1", "10.0.0.5", "::1", "[fd00::5]"]) {
      for (const r of resolveConfig({ rest_host: host, cnt_runners: 10 }, null).runners) expect(new URL(r.restUrl).port).toBe(String(3100 + r.id));
    }
  });
  test("metrics_listen takes an IP literal or a host name; durations at their floors are accepted", () => {
    expect(resolveConfig({ metrics_listen: "localhost:9310" }, null).metricsListen).toBe("localhost:9310");
    expect(resolveConfig({ metrics_listen: "[::1]:9310" }, null).metricsListen).toBe("[::1]:9310");
    const c = resolveConfig({ rest_timeout: 0.05, loop_period: 0.05, max_boot: 10, slot_guard: 0, slot_margin: 0 }, null);
    expect([c.restTimeoutMs, c.loopPeriodMs, c.maxBootMs, c.slotGuardMs, c.slotMarginMs]).toEqual([50, 50, 10_000, 0, 0]);
  });
  test("fractional seconds become whole ms", () => {
    const c = resolveConfig({ loop_period: 0.25, rest_timeout: 0.3333, slot_guard: 0 }, null);
    expect(c.loopPeriodMs).toBe(250);
    expect(c.restTimeoutMs).toBe(333);
    expect(c.slotGuardMs).toBe(0);
  });
  test("metrics_listen empty switches metrics off", () => {
    expect(resolveConfig({ metrics_listen: "" }, null).metricsListen).toBeNull();
  });
  test("a partial systemd section keeps the other defaults", () => {
    const c = resolveConfig({ systemd: { scope: "user" } }, null);
    expect(c.systemd).toEqual({ scope: "user", masterUnit: "jorm_master.service", runnerUnitTemplate: "jorm_runner@{id}.service", user: "cardano" });
  });
  test("templates expand {id} everywhere, including the unit", () => {
    const c = resolveConfig({ runner_storage: "/srv/{id}/data-{id}", systemd: { runner_unit: "node-{id}.service" } }, null);
    expect(c.runners[2]!.storage).toBe("/srv/2/data-2");
    expect(c.runners[2]!.unit).toBe("node-2.service");
  });
  test("relative paths are taken from the config file's directory", () => {
    const { config } = parseConfigText('node_secret: "secret.yaml"\nrunner_storage: "st/{id}"\n', "/srv/jm/jorm_master.yaml");
    expect(config.nodeSecretPath).toBe("/srv/jm/secret.yaml");
    expect(config.runners[1]!.storage).toBe("/srv/jm/st/1");
  });
  test("a single runner needs no {id} in templates", () => {
    const c = resolveConfig({ cnt_runners: 1, runner_binary: "/usr/local/bin/jormungandr" }, null);
    expect(c.runners[0]!.binary).toBe("/usr/local/bin/jormungandr");
  });
});

describe("PoolTool", () => {
  test("no section: off", () => {
    expect(resolveConfig({}, null).pooltool).toBeNull();
    expect(resolveConfig({ pooltool: null }, null).pooltool).toBeNull();
  });
  test("real ids: on, seconds to ms, seed endpoints by default", () => {
    const c = resolveConfig({ pooltool: { pool_id: "abc", user_id: "u-1", send_wait: 61 } }, null);
    expect(c.pooltool).toEqual({
      poolId: "abc",
      userId: "u-1",
      genesis: "8e4d2a343f3dcf9330ad9035b3e8d168e6728904262f2c434a4f8f934ec7b676",
      sendWaitMs: 61_000,
      recvWaitMs: 30_000,
      endpTip: "https://api.pooltool.io/v0/sharemytip",
      endpStats: "https://pooltool.s3-us-west-2.amazonaws.com/stats/stats.json",
      sendSlots: false,
      endpSlots: "https://api.pooltool.io/v0/sendlogs",
    });
  });
});

describe("config path", () => {
  test("--config > env > default", () => {
    expect(configPath("/a.yaml", { [CONFIG_PATH_ENV]: "/b.yaml" })).toBe("/a.yaml");
    expect(configPath(undefined, { [CONFIG_PATH_ENV]: "/b.yaml" })).toBe("/b.yaml");
    expect(configPath(undefined, {})).toBe(DEFAULT_CONFIG_PATH);
    expect(configPath("", { [CONFIG_PATH_ENV]: "" })).toBe(DEFAULT_CONFIG_PATH);
  });
});

describe("file errors", () => {
  test("missing file names the path and suggests config init", async () => {
    const err = await loadConfig("/nonexistent/dir/jm.yaml").catch((e: unknown) => e as ConfigError);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(EXIT_CONFIG);
    expect((err as ConfigError).message).toContain("/nonexistent/dir/jm.yaml: config file not found");
    expect((err as ConfigError).message).toContain("jorm-master config init --config /nonexistent/dir/jm.yaml");
  });
  test("empty file is an error naming the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "jm-cfg-"));
    const file = join(dir, "empty.yaml");
    await writeFile(file, "");
    const err = (await loadConfig(file).catch((e: unknown) => e)) as ConfigError;
    expect(err.exitCode).toBe(EXIT_CONFIG);
    expect(err.message).toContain(`${file}: the config file is empty`);
    // comments only is just as empty
    expect(configErrorOf(() => parseConfigText("# nothing\n---\n", file)).message).toContain("the config file is empty");
  });
  test("a directory is named as such", async () => {
    const dir = await mkdtemp(join(tmpdir(), "jm-cfg-"));
    const err = (await loadConfig(dir).catch((e: unknown) => e)) as ConfigError;
    expect(err.message).toContain("is a directory");
  });
  test("unreadable file says permission denied (errno mapped without needing a non-root user)", () => {
    const eacces = Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
    expect(readErrorMessage("/etc/cardano/jorm_master.yaml", eacces)).toBe(
      "/etc/cardano/jorm_master.yaml: permission denied reading the config file (run as root or as a user that can read it)",
    );
    const other = Object.assign(new Error("EIO: i/o error"), { code: "EIO" });
    expect(readErrorMessage("/x.yaml", other)).toBe("/x.yaml: cannot read the config file: EIO: i/o error");
  });
});

describe("example configs in test/fixtures/config", () => {
  const fixture = (name: string) => join(import.meta.dir, "../fixtures/config", name);
  test("twelve runners on rest_base_port, user scope, metrics off", async () => {
    const c = await loadConfig(fixture("twelve-runners.yaml"));
    expect(c.runners).toHaveLength(12);
    expect(c.runners[11]!.restUrl).toBe("http://127.0.0.1:4111/api/v0");
    expect(c.runners[11]!.storage).toBe("/srv/jorm/storage_11");
    expect(c.keyMode).toBe("rest");
    expect(c.metricsListen).toBeNull();
    expect(c.systemd.scope).toBe("user");
    expect(c.systemd.user).toBe("pool");
  });
  test("PoolTool on", async () => {
    const { config, notes } = await loadConfigWithNotes(fixture("pooltool-on.yaml"));
    expect(config.pooltool?.sendWaitMs).toBe(30_500);
    expect(config.pooltool?.userId).toBe("3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d");
    expect(notes).toEqual([]);
  });
  test("a single runner", async () => {
    const c = await loadConfig(fixture("single-runner.yaml"));
    expect(c.runners.map((r) => [r.binary, r.nodeConfig, r.storage, r.restListen])).toEqual([
      ["/usr/local/bin/jormungandr", "/etc/cardano/node.yaml", "/var/lib/jormungandr", "127.0.0.1:3100"],
    ]);
    expect(c.loopPeriodMs).toBe(250);
    expect(c.logLevel).toBe("debug");
  });
});
