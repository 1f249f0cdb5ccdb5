import { describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveConfig } from "../../src/config/load.ts";
import type { ResolvedConfig } from "../../src/config/types.ts";
import { fill, idPattern, renderUnits, runnerTemplateName, unitPath } from "../../src/systemd/units.ts";

const MAX_EXPOSURE = 1.5;
const CONFIG_PATH = "/etc/cardano/jorm_master.yaml";
const EXEC = "/usr/local/bin/jorm-master";

function config(input: Record<string, unknown> = {}): ResolvedConfig {
  return resolveConfig(input, CONFIG_PATH);
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
}

describe("renderUnits, system scope (defaults)", () => {
  const units = renderUnits({ config: config(), configPath: CONFIG_PATH, execPath: EXEC });
  const master = lines(units.master.text);
  const runner = lines(units.runner.text);

  test("names follow the config", () => {
    expect(units.master.name).toBe("jorm_master.service");
    expect(units.runner.name).toBe("jorm_runner@.service");
  });
  test("ExecStart runs the daemon and the runner wrapper with the config path", () => {
    expect(master).toContain(`ExecStart=${EXEC} daemon --config ${CONFIG_PATH}`);
    expect(runner).toContain(`ExecStart=${EXEC} runner %i --config ${CONFIG_PATH}`);
  });
  test("restart policy: always, but never after a config error (exit 78)", () => {
    for (const unit of [master, runner]) {
      expect(unit).toContain("Restart=always");
      expect(unit).toContain("RestartPreventExitStatus=78");
    }
    // The master never gives up restarting (a runner that does is started again by the master).
    expect(master.indexOf("StartLimitIntervalSec=0")).toBeGreaterThan(master.indexOf("[Unit]"));
    expect(master.indexOf("StartLimitIntervalSec=0")).toBeLessThan(master.indexOf("[Service]"));
    expect(runner).toContain("LimitNOFILE=65536");
  });
  test("runners are independent of the master", () => {
    for (const unit of [master, runner]) {
      expect(unit.some((l) => /^(PartOf|BindsTo|Requires|Requisite)=/.test(l))).toBe(false);
    }
  });
  test("runners run as the configured user; the master as root without capabilities", () => {
    expect(runner).toContain("User=cardano");
    expect(master.some((l) => l.startsWith("User="))).toBe(false);
    expect(master).toContain("CapabilityBoundingSet=");
  });
  test("the master's primary group is the runners' group (the control socket is born with it); the runner's is not set", () => {
    expect(master).toContain("Group=cardano");
    expect(master.filter((l) => /^(Group|SupplementaryGroups)=/.test(l))).toEqual(["Group=cardano"]);
    expect(runner.some((l) => l.startsWith("Group="))).toBe(false);
    const other = renderUnits({ config: config({ systemd: { user: "jorm" } }), configPath: CONFIG_PATH, execPath: EXEC });
    expect(other.master.text).toMatch(/^Group=jorm$/m);
    const given = renderUnits({ config: config(), configPath: CONFIG_PATH, execPath: EXEC, runnerGroup: "pool" });
    expect(given.master.text).toMatch(/^Group=pool$/m);
    expect(() => renderUnits({ config: config(), configPath: CONFIG_PATH, execPath: EXEC, runnerGroup: "a b\nUser=x" })).toThrow(/group name/);
  });
  test("the secret is a credential for the master and, in key mode boot, for the runner", () => {
    expect(master).toContain("LoadCredential=node_secret:/etc/cardano/node_secret.yaml");
    expect(runner).toContain("LoadCredential=node_secret:/etc/cardano/node_secret.yaml");
    const rest = renderUnits({ config: config({ key_mode: "rest" }), configPath: CONFIG_PATH, execPath: EXEC });
    expect(rest.runner.text).not.toContain("LoadCredential=");
    expect(rest.master.text).toContain("LoadCredential=");
  });
  test("each runner writes only its own storage", () => {
    expect(runner).toContain("ReadWritePaths=-/home/cardano/storage_jorm_runner_%i");
  });
  test("ExecReload sends SIGHUP; WantedBy multi-user; no MemoryDenyWriteExecute for Bun", () => {
    expect(master).toContain("ExecReload=/bin/kill -HUP $MAINPID");
    expect(master).toContain("WantedBy=multi-user.target");
    expect(units.master.text + units.runner.text).not.toMatch(/^MemoryDenyWriteExecute=/m);
  });
  test("AF_UNIX stays allowed so the master can reach the service manager", () => {
    expect(master).toContain("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6");
  });
  test("the master is limited to localhost unless PoolTool or remote metrics need the network", () => {
    expect(master).toContain("IPAddressDeny=any");
    expect(master).toContain("IPAddressAllow=localhost");
    const withPoolTool = renderUnits({
      config: config({ pooltool: { pool_id: "abc", user_id: "def" } }),
      configPath: CONFIG_PATH,
      execPath: EXEC,
    });
    expect(withPoolTool.master.text).not.toContain("IPAddressDeny=");
    const remoteMetrics = renderUnits({ config: config({ metrics_listen: "0.0.0.0:9310" }), configPath: CONFIG_PATH, execPath: EXEC });
    expect(remoteMetrics.master.text).not.toContain("IPAddressDeny=");
    const lanRest = renderUnits({ config: config({ rest_host: "10.0.0.5" }), configPath: CONFIG_PATH, execPath: EXEC });
    expect(lanRest.master.text).toContain("IPAddressAllow=localhost 10.0.0.5");
  });
  test("alerts can leave the host: a channel behind a host name opens the network, as PoolTool does", () => {
    const render = (channels: unknown[]) => renderUnits({ config: config({ alerts: { channels } }), configPath: CONFIG_PATH, execPath: EXEC }).master.text;
    const webhook = render([{ name: "ops", type: "webhook", preset: "slack", url: "https://hooks.slack.com/services/T/B/X" }]);
    expect(webhook).not.toContain("IPAddressDeny=");
    expect(webhook).not.toContain("IPAddressAllow=");
    const telegram = render([{ name: "phone", type: "telegram", chat_id: "-100123", token_env: "JORM_TELEGRAM_TOKEN" }]);
    expect(telegram).not.toContain("IPAddressDeny=");
    // One channel behind a name is enough, whatever the others are.
    expect(render([{ name: "lan", type: "webhook", url: "http://10.0.0.9:8080/hook" }, { name: "ops", type: "webhook", url: "https://ntfy.sh/pool" }])).not.toContain("IPAddressDeny=");
  });
  test("alert channels on IP addresses stay behind the filter, each address allowed", () => {
    const render = (channels: unknown[]) => lines(renderUnits({ config: config({ alerts: { channels } }), configPath: CONFIG_PATH, execPath: EXEC }).master.text);
    const local = render([{ name: "local", type: "webhook", url: "http://127.0.0.1:9999/hook" }]);
    expect(local).toContain("IPAddressDeny=any");
    expect(local).toContain("IPAddressAllow=localhost");
    const lan = render([
      { name: "lan", type: "webhook", url: "http://10.0.0.9:8080/hook" },
      { name: "v6", type: "webhook", url: "http://[fd00::9]:8080/hook" },
      { name: "bot", type: "telegram", chat_id: "-100123", token_env: "T", api_url: "http://10.0.0.9:8081" },
    ]);
    expect(lan).toContain("IPAddressDeny=any");
    expect(lan).toContain("IPAddressAllow=localhost 10.0.0.9 fd00::9");
  });
  test("no placeholder or scope marker is left", () => {
    for (const line of [...master, ...runner]) expect(line).not.toMatch(/\{\{|^@(system|user):/);
  });
});

describe("renderUnits, user scope", () => {
  const units = renderUnits({
    config: config({ systemd: { scope: "user" }, runner_storage: "/home/op/.local/share/jorm-master/storage_{id}" }),
    configPath: "/home/op/.config/jorm-master/jorm_master.yaml",
    execPath: "/home/op/.local/bin/jorm-master",
  });
  test("no User=, default.target, no network-online.target, no credentials", () => {
    for (const text of [units.master.text, units.runner.text]) {
      expect(text).not.toMatch(/^User=/m);
      // The user's own group: nothing to hand over (and a user manager cannot change groups).
      expect(text).not.toMatch(/^(Group|SupplementaryGroups)=/m);
      expect(text).toMatch(/^WantedBy=default\.target$/m);
      expect(text).not.toContain("network-online.target");
      expect(text).not.toMatch(/^LoadCredential=/m);
    }
  });
  test("options a user manager cannot apply are left out", () => {
    for (const text of [units.master.text, units.runner.text]) {
      expect(text).not.toMatch(/^(ProtectKernelTunables|ProtectKernelLogs|ProtectControlGroups)=/m);
      expect(text).not.toMatch(/^ProtectHome=yes/m);
    }
  });
});

describe("helpers", () => {
  test("runner template names", () => {
    expect(runnerTemplateName("jorm_runner@{id}.service")).toBe("jorm_runner@.service");
    expect(() => runnerTemplateName("jorm_runner_{id}.service")).toThrow(/name@\{id\}\.service/);
  });
  test("unit paths: % escaped, relative and whitespace refused", () => {
    expect(unitPath("/a/100%/b", "x")).toBe("/a/100%%/b");
    expect(() => unitPath("rel/path", "x")).toThrow(/absolute/);
    expect(() => unitPath("/a b", "x")).toThrow(/whitespace/);
  });
  test("fill drops lines of the other scope and empty placeholder lines", () => {
    expect(fill("A\n@system:S\n@user:U\n{{X}}\nB={{Y}}", "user", { X: "", Y: "1" })).toBe("A\nU\nB=1");
    expect(() => fill("{{MISSING}}", "system", {})).toThrow(/MISSING/);
  });
  test("idPattern finds the id position, or gives up", () => {
    expect(idPattern([{ id: 0, value: "/s0/x_0" }, { id: 1, value: "/s0/x_1" }])).toEqual({ before: "/s0/x_", after: "" });
    expect(idPattern([{ id: 0, value: "/a/0" }, { id: 1, value: "/b/1" }])).toBeNull();
    const units = renderUnits({
      config: config({ cnt_runners: 2, runner_storage: "/data/{id}/store" }),
      configPath: CONFIG_PATH,
      execPath: EXEC,
    });
    expect(units.runner.text).toContain("ReadWritePaths=-/data/%i/store");
  });
});

// systemd-analyze checks the rendered text for real: unknown keys, bad values, the score.
const analyze = Bun.which("systemd-analyze");
describe.skipIf(analyze === null)("systemd-analyze on rendered units", () => {
  function stage(scope: "system" | "user"): { dir: string; master: string; runnerTemplate: string; runnerInstance: string } {
    const dir = mkdtempSync(join(tmpdir(), "jm-units-"));
    // verify wants the ExecStart binary to exist
    const exec = join(dir, "jorm-master");
    copyFileSync("/bin/true", exec);
    chmodSync(exec, 0o755);
    const cfg = scope === "system" ? config() : config({ systemd: { scope: "user" } });
    const units = renderUnits({ config: cfg, configPath: CONFIG_PATH, execPath: exec });
    const master = join(dir, units.master.name);
    const runnerTemplate = join(dir, units.runner.name);
    const runnerInstance = join(dir, units.runner.name.replace("@.service", "@0.service"));
    writeFileSync(master, units.master.text);
    writeFileSync(runnerTemplate, units.runner.text);
    writeFileSync(runnerInstance, units.runner.text);
    return { dir, master, runnerTemplate, runnerInstance };
  }

  function run(args: string[]): { code: number; out: string } {
    // --user needs a runtime dir even for offline checks
    const runtimeDir = mkdtempSync(join(tmpdir(), "jm-xdg-"));
    const env = { ...process.env, XDG_RUNTIME_DIR: runtimeDir };
    const r = Bun.spawnSync([analyze!, ...args], { stdout: "pipe", stderr: "pipe", env });
    rmSync(runtimeDir, { recursive: true, force: true });
    return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
  }

  test("verify passes (system and user scope)", () => {
    for (const scope of ["system", "user"] as const) {
      const s = stage(scope);
      try {
        const r = run([...(scope === "user" ? ["--user"] : []), "verify", s.master, s.runnerTemplate]);
        // systemd 252 also warns about the host's own units; only lines about ours count
        const ours = r.out.split("\n").filter((l) => l.includes(s.dir));
        expect({ code: r.code, ours }).toEqual({ code: 0, ours: [] });
      } finally {
        rmSync(s.dir, { recursive: true, force: true });
      }
    }
  });

  test(`security --offline exposure ≤ ${MAX_EXPOSURE} for both units (system scope)`, () => {
    const s = stage("system");
    try {
      for (const unit of [s.master, s.runnerInstance]) {
        const r = run(["security", "--offline=true", unit]);
        const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.out);
        expect(m, r.out).not.toBeNull();
        const exposure = Number(m![1]);
        expect(exposure).toBeLessThanOrEqual(MAX_EXPOSURE);
      }
    } finally {
      rmSync(s.dir, { recursive: true, force: true });
    }
  });
});
