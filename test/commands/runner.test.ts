import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prepareRunner, shellQuote } from "../../src/commands/runner.ts";
import { resolveConfig } from "../../src/config/load.ts";
import type { ResolvedConfig } from "../../src/config/types.ts";
import { EXIT_CONFIG, type ConfigError } from "../../src/errors.ts";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const HASH = "8e4d2a343f3dcf9330ad9035b3e8d168e6728904262f2c434a4f8f934ec7b676";
const root = mkdtempSync(join(tmpdir(), "jm-runner-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
interface Setup {
  dir: string;
  configFile: string;
  input: Record<string, unknown>;
  config: (extra?: Record<string, unknown>) => ResolvedConfig;
}

/** A complete, valid runner setup in a fresh directory; tests break one piece each. */
function setup(): Setup {
  const dir = join(root, `s${n++}`);
  mkdirSync(join(dir, "bin"), { recursive: true });
  // The "node": prints its pid and arguments, so the exec test can see who ran
  const node = join(dir, "bin", "jormungandr_test");
  writeFileSync(node, '#!/bin/sh\necho "pid=$$ argv0=$0 args=$*"\n');
  chmodSync(node, 0o755);
  for (const id of [0, 1]) symlinkSync(node, join(dir, "bin", `jormungandr_runner_${id}`));
  writeFileSync(join(dir, "genesis.txt"), `${HASH}\n`);
  for (const id of [0, 1]) writeFileSync(join(dir, `jorm_runner_${id}.yaml`), "rest:\n  listen: 127.0.0.1:3100\n");
  writeFileSync(join(dir, "node_secret.yaml"), "genesis: {}\n", { mode: 0o600 });
  chmodSync(join(dir, "node_secret.yaml"), 0o600);
  const input = {
    cnt_runners: 2,
    node_secret: join(dir, "node_secret.yaml"),
    genesis_hash_file: join(dir, "genesis.txt"),
    runner_binary: join(dir, "bin", "jormungandr_runner_{id}"),
    runner_config: join(dir, "jorm_runner_{id}.yaml"),
    runner_storage: join(dir, "storage_{id}"),
  };
  const configFile = join(dir, "jorm_master.yaml");
  writeFileSync(configFile, JSON.stringify(input)); // JSON is YAML
  return { dir, configFile, input, config: (extra = {}) => resolveConfig({ ...input, ...extra }, configFile) };
}

function failure(f: () => unknown): { message: string; exitCode: number } {
  try {
    f();
  } catch (error) {
    return { message: (error as ConfigError).message, exitCode: (error as ConfigError).exitCode };
  }
  throw new Error("expected a ConfigError");
}

let s: Setup;
beforeEach(() => {
  s = setup();
});

describe("command line", () => {
  test("key mode boot: symlink, genesis hash, config, REST listen, storage and --secret", () => {
    const cmd = prepareRunner(s.config(), "1", {});
    expect(cmd.file).toBe(join(s.dir, "bin", "jormungandr_runner_1"));
    expect(cmd.argv).toEqual([
      join(s.dir, "bin", "jormungandr_runner_1"),
      "--genesis-block-hash",
      HASH,
      "--config",
      join(s.dir, "jorm_runner_1.yaml"),
      "--rest-listen",
      "127.0.0.1:3101",
      "--storage",
      join(s.dir, "storage_1"),
      "--secret",
      join(s.dir, "node_secret.yaml"),
    ]);
  });
  test("key mode rest: no --secret, and the secret file is not even needed", () => {
    rmSync(join(s.dir, "node_secret.yaml"));
    const cmd = prepareRunner(s.config({ key_mode: "rest" }), "0", {});
    expect(cmd.argv).not.toContain("--secret");
    expect(cmd.argv).toContain("--genesis-block-hash");
  });
  test("key mode boot with no master running: starts passive (no --secret), the secret still checked", () => {
    const cmd = prepareRunner(s.config(), "1", {}, false);
    expect(cmd.passive).toBe(true);
    expect(cmd.argv).not.toContain("--secret");
    chmodSync(join(s.dir, "node_secret.yaml"), 0o644);
    expect(() => prepareRunner(s.config(), "1", {}, false)).toThrow("has mode 0644");
  });
  test("under systemd the secret comes from $CREDENTIALS_DIRECTORY", () => {
    const creds = join(s.dir, "creds");
    mkdirSync(creds);
    writeFileSync(join(creds, "node_secret"), "genesis: {}\n", { mode: 0o400 });
    chmodSync(join(creds, "node_secret"), 0o400);
    const cmd = prepareRunner(s.config(), "0", { CREDENTIALS_DIRECTORY: creds });
    expect(cmd.argv.slice(-2)).toEqual(["--secret", join(creds, "node_secret")]);
  });
  test("the storage dir is created when missing", () => {
    prepareRunner(s.config(), "0", {});
    expect(Bun.file(join(s.dir, "storage_0")).size).toBeGreaterThanOrEqual(0);
    expect(require("node:fs").statSync(join(s.dir, "storage_0")).isDirectory()).toBe(true);
  });
  test("with createStorage false (--print) nothing is created; a missing storage dir is only reported", () => {
    const cmd = prepareRunner(s.config(), "0", {}, true, false);
    expect(cmd.storageMissing).toBe(true);
    expect(existsSync(join(s.dir, "storage_0"))).toBe(false);
    writeFileSync(join(s.dir, "storage_1"), "");
    expect(() => prepareRunner(s.config(), "1", {}, true, false)).toThrow("storage dir");
  });
  test("shell quoting of --print output", () => {
    expect(shellQuote("/usr/bin/x")).toBe("/usr/bin/x");
    expect(shellQuote("a b")).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });
});

describe("pre-checks: one line each, exit 78", () => {
  const cases: [string, (s: Setup) => { config?: Record<string, unknown>; id?: string }, RegExp][] = [
    ["id out of range", () => ({ id: "2" }), /runner 2 is out of range: cnt_runners is 2 in .*jorm_master\.yaml \(runner ids 0\.\.1\)/],
    ["id not a number", () => ({ id: "x" }), /runner id must be a number 0\.\.1, found "x"/],
    [
      "symlink missing",
      (s) => (unlinkSync(join(s.dir, "bin", "jormungandr_runner_0")), {}),
      /runner 0: jormungandr binary .*jormungandr_runner_0 does not exist; link it .*ln -s /,
    ],
    [
      "broken symlink",
      (s) => (rmSync(join(s.dir, "bin", "jormungandr_test")), {}),
      /runner 0: jormungandr binary .*jormungandr_runner_0 is a broken symlink to .*jormungandr_test/,
    ],
    [
      "target not executable",
      (s) => (chmodSync(join(s.dir, "bin", "jormungandr_test"), 0o644), {}),
      /jormungandr binary .*jormungandr_test \(via .*jormungandr_runner_0\) is not an executable file/,
    ],
    ["genesis file missing", (s) => (rmSync(join(s.dir, "genesis.txt")), {}), /genesis hash file .*genesis\.txt does not exist/],
    [
      "genesis hash malformed",
      (s) => (writeFileSync(join(s.dir, "genesis.txt"), "abc123\n"), {}),
      /genesis hash file .*genesis\.txt must hold the genesis block hash \(64 hex characters\), found "abc123"/,
    ],
    [
      "runner config missing",
      (s) => (rmSync(join(s.dir, "jorm_runner_0.yaml")), {}),
      /runner 0: node config .*jorm_runner_0\.yaml does not exist \(runner_config in /,
    ],
    [
      "storage cannot be created",
      (s) => (writeFileSync(join(s.dir, "blocker"), ""), { config: { runner_storage: join(s.dir, "blocker", "storage_{id}") } }),
      /runner 0: storage dir .*blocker\/storage_0 does not exist and cannot be created \(ENOTDIR/,
    ],
    ["secret missing", (s) => (rmSync(join(s.dir, "node_secret.yaml")), {}), /node secret .*node_secret\.yaml does not exist/],
    [
      "secret readable by others",
      (s) => (chmodSync(join(s.dir, "node_secret.yaml"), 0o644), {}),
      /node secret .*node_secret\.yaml has mode 0644, so other users can read it; restrict it: chmod 600 /,
    ],
    [
      "secret readable by the group",
      (s) => (chmodSync(join(s.dir, "node_secret.yaml"), 0o640), {}),
      /has mode 0640, so other users can read it/,
    ],
    [
      "secret writable by others (another user could replace the key)",
      (s) => (chmodSync(join(s.dir, "node_secret.yaml"), 0o602), {}),
      /node secret .*node_secret\.yaml has mode 0602, so other users can write it; restrict it: chmod 600 /,
    ],
  ];
  for (const [name, breakIt, message] of cases) {
    test(name, () => {
      const { config = {}, id = "0" } = breakIt(s);
      const f = failure(() => prepareRunner(s.config(config), id, {}));
      expect(f.message).toMatch(message);
      expect(f.message).not.toContain("\n");
      expect(f.exitCode).toBe(EXIT_CONFIG);
    });
  }
});

describe("the CLI", () => {
  test("--print prints the command line and exits 0; with no master unit active, key mode boot starts passive and says why", async () => {
    // No jorm_master.service runs on this machine's system manager, so the runner must not boot holding the key.
    const p = Bun.spawn(["bun", CLI, "runner", "0", "--config", s.configFile, "--print"], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(p.stdout).text();
    const err = await new Response(p.stderr).text();
    expect(await p.exited).toBe(0);
    expect(out.trim()).toBe(
      `${join(s.dir, "bin/jormungandr_runner_0")} --genesis-block-hash ${HASH} --config ${join(s.dir, "jorm_runner_0.yaml")} ` +
        `--rest-listen 127.0.0.1:3100 --storage ${join(s.dir, "storage_0")}`,
    );
    expect(err).toContain("jorm_master.service is not active: starting runner 0 without --secret");
    // --print only prints: the missing storage dir is reported, not created
    expect(err).toContain(`storage dir ${join(s.dir, "storage_0")} does not exist yet`);
    expect(existsSync(join(s.dir, "storage_0"))).toBe(false);
  });
  test("a failed check exits 78 with one line and no stack trace", async () => {
    chmodSync(join(s.dir, "node_secret.yaml"), 0o644);
    const p = Bun.spawn(["bun", CLI, "runner", "0", "--config", s.configFile], { stdout: "pipe", stderr: "pipe" });
    const err = await new Response(p.stderr).text();
    expect(await p.exited).toBe(EXIT_CONFIG);
    expect(err).toContain("has mode 0644");
    expect(err).not.toMatch(/^\s+at /m);
  });
  test("exec: the node replaces the runner process (same PID, argv0 is the runner symlink)", async () => {
    const p = Bun.spawn(["bun", CLI, "runner", "1", "--config", s.configFile], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(p.stdout).text();
    expect(await p.exited).toBe(0);
    expect(out).toContain(`pid=${p.pid} `);
    expect(out).toContain(`argv0=${join(s.dir, "bin/jormungandr_runner_1")}`);
    expect(out).toContain(`--rest-listen 127.0.0.1:3101 --storage ${join(s.dir, "storage_1")}`);
  });
});
