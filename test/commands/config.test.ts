// End to end through the CLI: exit codes, stdout/stderr split, and no stack trace for a user mistake.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { DEFAULT_CONFIG_YAML } from "../../src/config/default-text.ts";
import { defaultConfig, parseConfigText } from "../../src/config/load.ts";
import { checkSummary, etcdFinding, takeoverFinding } from "../../src/commands/config.ts";
import { renderUnits } from "../../src/systemd/units.ts";
import { mkdirSync } from "node:fs";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const SEEDS = ["jorm_master.yaml", "jorm_master.strict-2020-01.yaml"].map((f) => join(import.meta.dir, "../fixtures/seed", f));
const dir = mkdtempSync(join(tmpdir(), "jm-cmd-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = {}) {
  const { JORM_MASTER_CONFIG: _c, ...base } = process.env;
  const r = Bun.spawnSync(["bun", CLI, ...args], { env: { ...base, ...env }, stdout: "pipe", stderr: "pipe", cwd: dir });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

const STACK_LINE = /^\s+at /m;

describe("config check", () => {
  for (const seed of SEEDS) {
    test(`exits 0 on the seed file ${seed.split("/").pop()}`, () => {
      const r = cli(["config", "check", "--config", seed]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`${seed}: OK`);
      expect(r.stdout).toContain("#2  127.0.0.1:3102");
      expect(r.stdout).toContain("PoolTool:  off");
    });
  }

  const BAD: [string, string][] = [
    ["max_ofset: 5\n", 'max_ofset: unknown key; did you mean "max_offset"?'],
    ["cnt_runners: 11\n", "11 runners do not fit the rest_prefix port scheme"],
    ["cnt_runners: [1\n", "YAML syntax error"],
    ["", "the config file is empty"],
  ];
  for (const [i, [yaml, fragment]] of BAD.entries()) {
    test(`a bad config exits 78 with the message and no stack trace (${fragment})`, () => {
      const file = join(dir, `bad-${i}.yaml`);
      writeFileSync(file, yaml);
      const r = cli(["config", "check", "--config", file]);
      expect(r.code).toBe(78);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(fragment);
      expect(r.stderr).toContain(file);
      expect(r.stderr).not.toMatch(STACK_LINE);
    });
  }

  test("a missing file exits 78 and suggests config init", () => {
    const r = cli(["config", "check", "--config", join(dir, "nope.yaml")]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`config init --config ${join(dir, "nope.yaml")}`);
  });

  test("JORM_MASTER_CONFIG names the file when --config is absent", () => {
    const r = cli(["config", "check"], { JORM_MASTER_CONFIG: SEEDS[1]! });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${SEEDS[1]}: OK`);
  });

  test("summary of a config with PoolTool on and notes", () => {
    const loaded = parseConfigText('pooltool:\n  pool_id: "abc"\n  user_id: "u"\nrest_base_port: 4000\nrest_prefix: 310\n', "/x/jm.yaml");
    const text = checkSummary(loaded);
    expect(text).toContain("PoolTool:  on (pool abc, tip every 60 s, majority max every 30 s)");
    expect(text).toContain("#0  127.0.0.1:4000");
    expect(text).toContain("rest_prefix is ignored because rest_base_port is set (ports 4000..4002)");
  });
});

describe("config init", () => {
  test("writes the commented defaults, creating the directory; refuses to overwrite without --force", () => {
    const file = join(dir, "etc/cardano/jorm_master.yaml");
    const first = cli(["config", "init", "--config", file]);
    expect(first.code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(DEFAULT_CONFIG_YAML);
    expect(cli(["config", "check", "--config", file]).code).toBe(0);

    writeFileSync(file, "cnt_runners: 1\n");
    const again = cli(["config", "init", "--config", file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${file} already exists; not overwriting it.`);
    expect(again.stderr).not.toMatch(STACK_LINE);
    expect(readFileSync(file, "utf8")).toBe("cnt_runners: 1\n");

    // --force replaces the operator's settings: without a terminal only with --yes
    const forced = cli(["config", "init", "--force", "--config", file]);
    expect(forced.code).toBe(64);
    expect(forced.stderr).toContain("pass --yes");
    expect(readFileSync(file, "utf8")).toBe("cnt_runners: 1\n");
    expect(cli(["config", "init", "--force", "--yes", "--config", file]).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(DEFAULT_CONFIG_YAML);
  });
});

describe("config print", () => {
  test("prints the resolved config as YAML, the secret's path but never its content", () => {
    const secret = join(dir, "node_secret.yaml");
    writeFileSync(secret, "genesis:\n  sig_key: ed25519_sk1-VERY-SECRET\n");
    const file = join(dir, "print.yaml");
    writeFileSync(file, `node_secret: "${secret}"\n`);
    const r = cli(["config", "print", "--config", file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(secret);
    expect(r.stdout).not.toContain("VERY-SECRET");
    const printed = parse(r.stdout);
    expect(printed).toEqual({ ...defaultConfig(), source: file, nodeSecretPath: secret });
  });
});

describe("the CLI", () => {
  test("an unknown subcommand is a usage error (64) with a --help hint", () => {
    const r = cli(["config", "bogus"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(`jorm-master config: unknown command "bogus"; commands: init, check, print`);
    expect(r.stderr).toContain("See: jorm-master config --help");
  });
  test("--help teaches: what, the default path, an example", () => {
    const r = cli(["config", "check", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("/etc/cardano/jorm_master.yaml");
    expect(r.stdout).toContain("Example: jorm-master config check");
  });
});

describe("config check against the installed units", () => {
  test("warns when PoolTool is on but the installed master unit (rendered with it off) denies IP traffic", () => {
    const units = join(dir, "units");
    mkdirSync(units, { recursive: true });
    const off = join(dir, "pt-off.yaml");
    writeFileSync(off, "cnt_runners: 2\n");
    const unit = renderUnits({ config: parseConfigText(readFileSync(off, "utf8"), off).config, configPath: off, execPath: "/usr/local/bin/jorm-master" });
    expect(unit.master.text).toContain("IPAddressDeny=any");
    writeFileSync(join(units, unit.master.name), unit.master.text);
    // The same configuration as installed: nothing to say.
    const same = cli(["config", "check", "--config", off, "--unit-dir", units]);
    expect(same.code).toBe(0);
    expect(same.stderr).toBe("");
    // PoolTool turned on afterwards: the unit would block it.
    const on = join(dir, "pt-on.yaml");
    writeFileSync(on, `cnt_runners: 2\npooltool:\n  pool_id: "abc"\n  user_id: "u"\n`);
    const r = cli(["config", "check", "--config", on, "--unit-dir", units]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("PoolTool:  on");
    expect(r.stderr).toContain(`warning: ${join(units, "jorm_master.service")}: PoolTool is on, but the unit lets the daemon reach only localhost: PoolTool is unreachable; re-run jorm-master install`);
    // No unit installed there: nothing to contradict.
    expect(cli(["config", "check", "--config", on, "--unit-dir", join(dir, "none")]).stderr).toBe("");
  });
  test("warns when an alert channel is configured but the installed master unit (rendered without it) denies IP traffic", () => {
    const units = join(dir, "units-alerts");
    mkdirSync(units, { recursive: true });
    const off = join(dir, "alerts-off.yaml");
    writeFileSync(off, "cnt_runners: 2\n");
    const unit = renderUnits({ config: parseConfigText(readFileSync(off, "utf8"), off).config, configPath: off, execPath: "/usr/local/bin/jorm-master" });
    expect(unit.master.text).toContain("IPAddressDeny=any");
    writeFileSync(join(units, unit.master.name), unit.master.text);
    const on = join(dir, "alerts-on.yaml");
    writeFileSync(
      on,
      `cnt_runners: 2\nalerts:\n  channels:\n    - name: ops\n      type: webhook\n      preset: slack\n      url: "https://hooks.slack.com/services/T/B/X"\n` +
        `    - name: local\n      type: webhook\n      url: "http://127.0.0.1:9999/hook"\n`,
    );
    const r = cli(["config", "check", "--config", on, "--unit-dir", units]);
    expect(r.code).toBe(0);
    // Only the channel the unit blocks is named, by host (a webhook URL's path is its secret).
    expect(r.stderr).toContain(
      `warning: ${join(units, "jorm_master.service")}: alerts go to "ops" (hooks.slack.com), but the unit lets the daemon reach only localhost: those alerts cannot leave the host; re-run jorm-master install`,
    );
    expect(r.stderr).not.toContain('"local"');
    expect(r.stderr).not.toContain("/services/");
    // A channel on loopback alone: the installed unit is what this configuration renders.
    const local = join(dir, "alerts-local.yaml");
    writeFileSync(local, `cnt_runners: 2\nalerts:\n  channels:\n    - name: local\n      type: webhook\n      url: "http://127.0.0.1:9999/hook"\n`);
    expect(cli(["config", "check", "--config", local, "--unit-dir", units]).stderr).toBe("");
  });
});

describe("config check with a cluster section (issue 13)", () => {
  test("the summary names the cluster; an unreachable etcd is a warning, the file still valid (exit 0)", () => {
    const file = join(dir, "cluster.yaml");
    writeFileSync(file, 'cluster:\n  name: host-a\n  etcd: ["http://127.0.0.1:9"]\n  etcd_timeout: 0.3\n');
    const r = cli(["config", "check", "--config", file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("cluster:   this host is host-a; signer key /jorm-master/signer, lease 5 s; etcd http://127.0.0.1:9");
    expect(r.stderr).toContain("warning: etcd:      unreachable (");
  });

  test("takeoverFinding says whether a takeover waits, and why", () => {
    expect(takeoverFinding([{ name: "m1", version: "3.5.23" }], 5)).toMatch(/^takeover:  a host that takes the signer key over signs at once: every etcd member/);
    expect(takeoverFinding([{ name: "m1", version: "3.4.23" }], 5)).toMatch(/waits 6\.0 s first: member m1 runs etcd 3\.4\.23.*fixed in 3\.4\.38, 3\.5\.23, 3\.6\.5/);
    expect(takeoverFinding(null, 5)).toContain("could not be read");
  });

  test("etcdFinding says who holds the signer key", () => {
    expect(etcdFinding("host-a", { holder: null, endpoint: "http://e:2379" })).toBe("etcd:      reached at http://e:2379; no host holds the signer key");
    expect(etcdFinding("host-a", { holder: "host-a", endpoint: "http://e:2379" })).toContain("this host holds the signer key");
    expect(etcdFinding("host-a", { holder: "host-b", endpoint: "http://e:2379" })).toContain("host-b holds the signer key");
  });
});
