import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parse } from "yaml";
import { EXIT_USAGE, type UserError } from "../../src/errors.ts";
import { runInstall, runUninstall, selfInstall, type InstallDeps, type InstallFlags } from "../../src/install/install.ts";
import type { Systemctl } from "../../src/install/systemctl.ts";
import { stagedInside } from "../../src/install/layout.ts";
import { sha256Hex } from "../../src/install/plan.ts";

const HASH = "8e4d2a343f3dcf9330ad9035b3e8d168e6728904262f2c434a4f8f934ec7b676";
const base = mkdtempSync(join(tmpdir(), "jm-install-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

let n = 0;
let dir: string;
let inputs: { jormungandr: string; secret: string; template: string };
beforeEach(() => {
  dir = join(base, `t${n++}`);
  mkdirSync(join(dir, "in"), { recursive: true });
  inputs = { jormungandr: join(dir, "in/jormungandr_546497fc"), secret: join(dir, "in/secret.yaml"), template: join(dir, "in/itn.yaml") };
  writeFileSync(inputs.jormungandr, "#!/bin/sh\n");
  chmodSync(inputs.jormungandr, 0o755);
  writeFileSync(inputs.secret, "genesis:\n  node_id: 00\n");
  writeFileSync(inputs.template, "p2p:\n  public_address: /ip4/203.0.113.10/tcp/4000\n  trusted_peers: []\n");
});

class FakeSystemctl implements Systemctl {
  readonly prefix = "systemctl --user";
  calls: string[] = [];
  enabled = new Set<string>();
  active = new Set<string>();
  async run(args: readonly string[]) {
    this.calls.push(args.join(" "));
    const unit = args.at(-1)!;
    if (args[0] === "enable") this.enabled.add(unit);
    if (args.includes("--now") && args[0] === "enable") this.active.add(unit);
    if (args[0] === "start" || args[0] === "restart") this.active.add(unit);
    if (args[0] === "stop") this.active.delete(unit);
    if (args[0] === "disable") {
      this.enabled.delete(unit);
      if (args.includes("--now")) this.active.delete(unit);
    }
  }
  async isEnabled(unit: string) {
    return this.enabled.has(unit);
  }
  async isActive(unit: string) {
    return this.active.has(unit);
  }
}

function deps(extra: Partial<InstallDeps> = {}): InstallDeps & { output: string[]; systemctl: FakeSystemctl } {
  const output: string[] = [];
  const systemctl = new FakeSystemctl();
  return {
    output,
    systemctl,
    systemctlFor: () => systemctl,
    prompt: null,
    out: (t) => output.push(t),
    home: join(dir, "home"),
    currentUser: "op",
    isRoot: false,
    self: (execPath, root) => selfInstall(execPath, root, { compiled: false, executable: "/usr/bin/bun", script: "/src/jorm-master/src/cli.ts" }),
    userExists: () => true,
    apply: { lookupUser: () => null, exec: () => {} },
    ...extra,
  };
}

function flags(extra: Partial<InstallFlags> = {}): InstallFlags {
  return { dryRun: false, start: true, force: false, dirs: {}, ...extra };
}

const full = () =>
  flags({ runners: "2", jormungandr: inputs.jormungandr, genesisHash: HASH, secret: inputs.secret, nodeConfig: inputs.template });

/** Every path under `root`, with a fingerprint (type, mode, content or link target). */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string) => {
    for (const name of readdirSync(p)) {
      const full = join(p, name);
      const st = lstatSync(full);
      const key = relative(root, full);
      if (st.isSymbolicLink()) out[key] = `-> ${readlinkSync(full)}`;
      else if (st.isDirectory()) {
        out[key] = `dir ${(st.mode & 0o777).toString(8)}`;
        walk(full);
      } else out[key] = `${(st.mode & 0o777).toString(8)} ${st.mtimeMs} ${readFileSync(full, "utf8")}`;
    }
  };
  if (existsSync(root)) walk(root);
  return out;
}

describe("install --root (staging)", () => {
  test("stages the whole tree; second run changes nothing; uninstall removes exactly that", async () => {
    const root = join(dir, "root");
    mkdirSync(join(root, "etc/cardano"), { recursive: true });
    writeFileSync(join(root, "etc/cardano/unrelated.txt"), "operator's\n");
    const before = snapshot(root);
    const d = deps();
    const first = await runInstall({ ...full(), root }, d);
    expect(first.applied).toBe(true);
    expect(d.systemctl.calls).toEqual([]);

    const at = (p: string) => join(root, p);
    expect(statSync(at("etc/cardano/node_secret.yaml")).mode & 0o777).toBe(0o600);
    expect(readFileSync(at("etc/cardano/node_secret.yaml"), "utf8")).toBe(readFileSync(inputs.secret, "utf8"));
    expect(readFileSync(at("etc/cardano/genesis.txt"), "utf8")).toBe(`${HASH}\n`);
    expect(readlinkSync(at("usr/local/bin/jormungandr_runner_1"))).toBe(inputs.jormungandr);
    expect(statSync(at("usr/local/bin/jorm-master")).mode & 0o777).toBe(0o755);
    expect(readFileSync(at("usr/local/bin/jorm-master"), "utf8")).toContain(`exec '/usr/bin/bun' '/src/jorm-master/src/cli.ts' "$@"`);
    expect(statSync(at("home/cardano/storage_jorm_runner_1")).isDirectory()).toBe(true);
    const config = parse(readFileSync(at("etc/cardano/jorm_master.yaml"), "utf8"));
    expect(config.cnt_runners).toBe(2);
    expect(config.systemd.user).toBe("cardano");
    const runner1 = parse(readFileSync(at("etc/cardano/jorm_runner_1.yaml"), "utf8"));
    expect(runner1.rest.listen).toBe("127.0.0.1:3101");
    expect(runner1.p2p.public_address).toBe("/ip4/203.0.113.10/tcp/4001");
    expect(runner1.storage).toBe("/home/cardano/storage_jorm_runner_1");
    const unit = readFileSync(at("etc/systemd/system/jorm_runner@.service"), "utf8");
    expect(unit).toContain("ExecStart=/usr/local/bin/jorm-master runner %i --config /etc/cardano/jorm_master.yaml");
    const manifest = JSON.parse(readFileSync(at("var/lib/jorm-master/manifest.json"), "utf8"));
    expect(manifest.runners).toBe(2);
    expect(d.output.join("\n")).toContain("staged only: no systemctl calls");

    const installed = snapshot(root);
    const again = deps();
    const second = await runInstall({ ...flags(), root }, again);
    expect(second.plan.ops).toEqual([]);
    expect(again.output[0]).toStartWith("nothing to do");
    expect(snapshot(root)).toEqual(installed);

    const un = deps();
    await runUninstall({ root, purge: true, force: false, dryRun: false, yes: true }, un);
    expect(snapshot(root)).toEqual(before);
  });

  test("a changed file is kept and its diff shown; --force overwrites it", async () => {
    const root = join(dir, "root");
    await runInstall({ ...full(), root }, deps());
    const unit = join(root, "etc/systemd/system/jorm_master.service");
    const edited = readFileSync(unit, "utf8").replace("RestartSec=1", "RestartSec=9");
    writeFileSync(unit, edited);
    const kept = deps();
    await runInstall(flags({ root }), kept);
    const text = kept.output.join("\n");
    expect(text).toStartWith("nothing to do");
    expect(text).toContain("= keep /etc/systemd/system/jorm_master.service: changed since install; kept (pass --force to overwrite)");
    expect(text).toContain("    - RestartSec=9\n    + RestartSec=1");
    expect(readFileSync(unit, "utf8")).toBe(edited);
    const forced = deps();
    await runInstall({ ...flags({ root, force: true, yes: true }) }, forced);
    expect(forced.output.join("\n")).toContain("~ overwrite /etc/systemd/system/jorm_master.service");
    expect(readFileSync(unit, "utf8")).toContain("RestartSec=1");
  });

  test("uninstall keeps storage and the secret without --purge", async () => {
    const root = join(dir, "root");
    await runInstall({ ...full(), root }, deps());
    writeFileSync(join(root, "home/cardano/storage_jorm_runner_0/blocks.sqlite"), "chain");
    await runUninstall({ root, purge: false, force: false, dryRun: false }, deps());
    expect(readFileSync(join(root, "home/cardano/storage_jorm_runner_0/blocks.sqlite"), "utf8")).toBe("chain");
    expect(existsSync(join(root, "etc/cardano/node_secret.yaml"))).toBe(true);
    expect(existsSync(join(root, "etc/cardano/jorm_master.yaml"))).toBe(false);
    expect(existsSync(join(root, "etc/systemd/system/jorm_master.service"))).toBe(false);
    expect(existsSync(join(root, "var/lib/jorm-master"))).toBe(false);
  });

  test("directories that existed before install stay, even empty (the state dir included)", async () => {
    const root = join(dir, "root");
    for (const d of ["var/lib/jorm-master", "etc/cardano"]) mkdirSync(join(root, d), { recursive: true });
    await runInstall({ ...full(), root }, deps());
    await runUninstall({ root, purge: true, force: true, dryRun: false, yes: true }, deps());
    expect(existsSync(join(root, "var/lib/jorm-master"))).toBe(true);
    expect(readdirSync(join(root, "var/lib/jorm-master"))).toEqual([]);
    expect(existsSync(join(root, "etc/cardano"))).toBe(true);
  });

  test("--dry-run prints the plan and writes nothing", async () => {
    const root = join(dir, "root");
    const d = deps();
    const r = await runInstall({ ...full(), root, dryRun: true }, d);
    expect(r.applied).toBe(false);
    expect(d.output[0]).toContain("+ write /etc/cardano/jorm_master.yaml");
    expect(existsSync(root)).toBe(false);
  });
});

describe("install --root never writes outside the root", () => {
  test("a config path climbing out with .. is refused before anything is written", async () => {
    const root = join(dir, "root");
    mkdirSync(join(root, "etc/cardano"), { recursive: true });
    // root/etc/cardano/../../../outside is dir/outside: a sibling of the root
    writeFileSync(join(root, "etc/cardano/jorm_master.yaml"), "cnt_runners: 2\nnode_secret: /etc/cardano/../../../outside/node_secret.yaml\n");
    const before = snapshot(root);
    const error = (await runInstall({ ...full(), root }, deps()).catch((e) => e)) as UserError;
    expect(error.message).toContain("refusing to stage /etc/cardano/../../../outside");
    expect(error.message).toContain(`would land at ${join(dir, "outside")}`);
    expect(existsSync(join(dir, "outside"))).toBe(false);
    expect(snapshot(root)).toEqual(before);
    // --dry-run says so too
    expect(await runInstall({ ...full(), root, dryRun: true }, deps()).catch((e) => e)).toBeInstanceOf(Error);
  });

  test("a symlinked etc/cardano pointing out of the root is refused; nothing lands where it points", async () => {
    const root = join(dir, "root");
    const elsewhere = join(dir, "elsewhere");
    mkdirSync(elsewhere, { recursive: true });
    mkdirSync(join(root, "etc"), { recursive: true });
    symlinkSync(elsewhere, join(root, "etc/cardano"));
    const error = (await runInstall({ ...full(), root }, deps()).catch((e) => e)) as UserError;
    expect(error.message).toContain("refusing to stage /etc/cardano/");
    expect(error.message).toContain("through a symlink");
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(existsSync(join(root, "usr"))).toBe(false);
  });

  test("uninstall with a manifest naming a path out of the root deletes nothing", async () => {
    const root = join(dir, "root");
    await runInstall({ ...full(), root }, deps());
    const victim = join(dir, "victim.txt");
    writeFileSync(victim, "not ours\n");
    const manifestPath = join(root, "var/lib/jorm-master/manifest.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    manifest.entries.push({ type: "file", path: "/../victim.txt", role: "unit", sha256: sha256Hex("not ours\n") });
    writeFileSync(manifestPath, JSON.stringify(manifest));
    const before = snapshot(root);
    const error = (await runUninstall({ root, purge: false, force: false, dryRun: false }, deps()).catch((e) => e)) as UserError;
    expect(error.message).toContain("refusing to stage /../victim.txt");
    expect(readFileSync(victim, "utf8")).toBe("not ours\n");
    expect(snapshot(root)).toEqual(before);
  });

  test("a symlink that stays inside the root is fine", async () => {
    const root = join(dir, "root");
    mkdirSync(join(root, "srv/cardano-etc"), { recursive: true });
    mkdirSync(join(root, "etc"), { recursive: true });
    symlinkSync(join(root, "srv/cardano-etc"), join(root, "etc/cardano"));
    expect((await runInstall({ ...full(), root }, deps())).applied).toBe(true);
    expect(existsSync(join(root, "srv/cardano-etc/jorm_master.yaml"))).toBe(true);
  });

  test("stagedInside: .., an outward symlink above the target, a dangling one; a symlink at the target only with followTarget", () => {
    const root = join(dir, "root");
    mkdirSync(join(root, "a"), { recursive: true });
    mkdirSync(join(dir, "out"), { recursive: true });
    symlinkSync(join(dir, "out"), join(root, "a/link"));
    symlinkSync(join(dir, "missing"), join(root, "a/dangling"));
    expect(stagedInside(root, "/a/b/c", { followTarget: true })).toBe(join(root, "a/b/c"));
    expect(stagedInside(root, "/a/../a/x", { followTarget: false })).toBe(join(root, "a/x"));
    expect(() => stagedInside(root, "/a/../../x", { followTarget: false })).toThrow("climbs out");
    expect(() => stagedInside(root, "/a/link/x", { followTarget: false })).toThrow("through a symlink");
    expect(() => stagedInside(root, "/a/dangling/x", { followTarget: false })).toThrow("points nowhere");
    expect(stagedInside(root, "/a/link", { followTarget: false })).toBe(join(root, "a/link"));
    expect(() => stagedInside(root, "/a/link", { followTarget: true })).toThrow("through a symlink");
  });
});

describe("install --scope user (fake systemctl)", () => {
  const userFlags = () => ({ ...full(), scope: "user" });

  test("installs under $HOME, daemon-reload, enable --now; a second run calls nothing", async () => {
    const d = deps();
    await runInstall(userFlags(), d);
    const home = join(dir, "home");
    expect(existsSync(join(home, ".config/systemd/user/jorm_runner@.service"))).toBe(true);
    expect(readlinkSync(join(home, ".local/bin/jormungandr_runner_0"))).toBe(inputs.jormungandr);
    expect(d.systemctl.calls).toEqual(["daemon-reload", "enable --now jorm_master.service"]);
    const unit = readFileSync(join(home, ".config/systemd/user/jorm_master.service"), "utf8");
    expect(unit).toContain(`ExecStart=${home}/.local/bin/jorm-master daemon --config ${home}/.config/jorm-master/jorm_master.yaml`);
    expect(unit).not.toMatch(/^User=/m);

    const again = deps({ systemctlFor: () => d.systemctl });
    d.systemctl.calls = [];
    await runInstall({ ...flags(), scope: "user" }, again);
    expect(d.systemctl.calls).toEqual([]);
    expect(again.output[0]).toStartWith("nothing to do");
  });

  test("fewer runners: master stopped, extra runner disabled --now, master started; then uninstall", async () => {
    const d = deps();
    await runInstall({ ...userFlags(), runners: "3" }, d);
    d.systemctl.calls = [];
    await runInstall({ ...flags(), scope: "user", runners: "2", yes: true }, deps({ systemctlFor: () => d.systemctl }));
    expect(d.systemctl.calls).toEqual(["stop jorm_master.service", "disable --now jorm_runner@2.service", "start jorm_master.service"]);
    const home = join(dir, "home");
    expect(existsSync(join(home, ".local/bin/jormungandr_runner_2"))).toBe(false);
    expect(existsSync(join(home, ".config/jorm-master/jorm_runner_2.yaml"))).toBe(false);
    expect(existsSync(join(home, ".local/share/jorm-master/storage_jorm_runner_2"))).toBe(true);

    d.systemctl.calls = [];
    await runUninstall({ scope: "user", purge: true, force: false, dryRun: false, yes: true }, deps({ systemctlFor: () => d.systemctl }));
    expect(d.systemctl.calls).toEqual([
      "disable --now jorm_master.service",
      "disable --now jorm_runner@0.service",
      "disable --now jorm_runner@1.service",
      "daemon-reload",
    ]);
    expect(snapshot(home)).toEqual({});
  });

  test("adding runners reuses the existing symlink target without --jormungandr", async () => {
    await runInstall(userFlags(), deps());
    await runInstall({ ...flags(), scope: "user", runners: "3" }, deps());
    expect(readlinkSync(join(dir, "home/.local/bin/jormungandr_runner_2"))).toBe(inputs.jormungandr);
  });

  test("--no-start installs and reloads but does not enable or start", async () => {
    const d = deps();
    await runInstall({ ...userFlags(), start: false }, d);
    expect(d.systemctl.calls).toEqual(["daemon-reload"]);
  });
});

describe("what cannot be undone is confirmed first", () => {
  const userFlags = () => ({ ...full(), scope: "user" });
  const answering = (answer: string, questions: string[]) => deps({ prompt: async (q) => (questions.push(q), answer) });

  test("uninstall --purge without a terminal: the plan, then a refusal naming --yes (exit 64); nothing deleted", async () => {
    const root = join(dir, "root");
    await runInstall({ ...full(), root }, deps());
    const installed = snapshot(root);
    const d = deps();
    const error = (await runUninstall({ root, purge: true, force: false, dryRun: false }, d).catch((e) => e)) as UserError;
    expect(error.exitCode).toBe(EXIT_USAGE);
    expect(error.message).toContain("pass --yes");
    expect(error.message).toContain("delete the node secret /etc/cardano/node_secret.yaml");
    expect(error.message).toContain("delete /home/cardano/storage_jorm_runner_0 and everything in it (storage)");
    expect(d.output[0]).toContain("- remove /etc/cardano/node_secret.yaml (secret)");
    expect(snapshot(root)).toEqual(installed);
  });

  test("uninstall --purge on a terminal: asks; no keeps everything, yes deletes", async () => {
    const root = join(dir, "root");
    await runInstall({ ...full(), root }, deps());
    const installed = snapshot(root);
    const questions: string[] = [];
    const no = await runUninstall({ root, purge: true, force: false, dryRun: false }, answering("n", questions)).catch((e) => e);
    expect((no as UserError).exitCode).toBe(1);
    expect(questions[0]).toContain("delete the node secret");
    expect(questions[0]).toEndWith("Go ahead? [y/N]");
    expect(snapshot(root)).toEqual(installed);
    const yes = await runUninstall({ root, purge: true, force: false, dryRun: false }, answering("yes", questions));
    expect(yes.applied).toBe(true);
    expect(existsSync(join(root, "etc/cardano/node_secret.yaml"))).toBe(false);
  });

  test("a plain uninstall and a plain re-install ask nothing", async () => {
    const root = join(dir, "root");
    const never = deps({ prompt: async () => { throw new Error("asked"); } });
    await runInstall({ ...full(), root }, never);
    await runInstall({ ...full(), root, runners: "3" }, never);
    expect((await runUninstall({ root, purge: false, force: false, dryRun: false }, never)).applied).toBe(true);
  });

  test("fewer runners without a terminal needs --yes; nothing stopped or removed", async () => {
    const d = deps();
    await runInstall({ ...userFlags(), runners: "3" }, d);
    d.systemctl.calls = [];
    const home = join(dir, "home");
    const before = snapshot(home);
    const error = (await runInstall({ ...flags(), scope: "user", runners: "2" }, deps({ systemctlFor: () => d.systemctl })).catch((e) => e)) as UserError;
    expect(error.exitCode).toBe(EXIT_USAGE);
    expect(error.message).toContain("stop and disable jorm_runner@2.service");
    expect(error.message).toContain("pass --yes");
    expect(d.systemctl.calls).toEqual([]);
    expect(snapshot(home)).toEqual(before);
  });

  test("--force overwriting a changed file asks on a terminal; --dry-run never asks", async () => {
    const root = join(dir, "root");
    await runInstall({ ...full(), root }, deps());
    const unit = join(root, "etc/systemd/system/jorm_master.service");
    const edited = readFileSync(unit, "utf8").replace("RestartSec=1", "RestartSec=9");
    writeFileSync(unit, edited);
    const dry = await runInstall(flags({ root, force: true, dryRun: true }), deps());
    expect(dry.applied).toBe(false);
    const questions: string[] = [];
    await runInstall(flags({ root, force: true }), answering("", questions)).catch(() => {});
    expect(questions[0]).toContain("overwrite /etc/systemd/system/jorm_master.service (changed since install)");
    expect(readFileSync(unit, "utf8")).toBe(edited);
    await runInstall(flags({ root, force: true }), answering("y", questions));
    expect(readFileSync(unit, "utf8")).toContain("RestartSec=1");
  });
});

describe("missing inputs", () => {
  const failure = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (error) {
      return error as UserError;
    }
    throw new Error("expected an error");
  };

  const cases: [string, Partial<InstallFlags>, string][] = [
    ["runners", { runners: undefined }, "the number of runners is not set: pass --runners N (no terminal to ask on)"],
    ["genesis", { genesisHash: undefined }, "genesis.txt does not exist: pass --genesis-hash HASH or --genesis-file FILE"],
    ["secret", { secret: undefined }, "node_secret.yaml does not exist: pass --secret FILE"],
    ["jormungandr", { jormungandr: undefined }, "jormungandr_runner_0 does not exist: pass --jormungandr PATH"],
  ];
  for (const [name, missing, message] of cases) {
    test(`${name}: an error naming the flag without a TTY (exit ${EXIT_USAGE})`, async () => {
      const e = await failure(runInstall({ ...full(), scope: "user", ...missing }, deps()));
      expect(e.message).toContain(message);
      expect(e.exitCode).toBe(EXIT_USAGE);
    });
  }

  test("in a TTY the missing values are asked for", async () => {
    const questions: string[] = [];
    const answers = ["2", HASH, inputs.secret, inputs.jormungandr];
    const d = deps({ prompt: async (q) => (questions.push(q), answers.shift()!) });
    await runInstall(flags({ scope: "user" }), d);
    expect(questions).toHaveLength(4);
    expect(questions[0]).toContain("How many runners");
    expect(readlinkSync(join(dir, "home/.local/bin/jormungandr_runner_1"))).toBe(inputs.jormungandr);
  });

  test("bad values name the flag", async () => {
    expect((await failure(runInstall({ ...full(), scope: "user", runners: "0" }, deps()))).message).toContain("--runners must be a whole number of at least 1");
    expect((await failure(runInstall({ ...full(), scope: "user", genesisHash: "xyz" }, deps()))).message).toContain("--genesis-hash must be the genesis block hash");
    expect((await failure(runInstall({ ...full(), scope: "user", jormungandr: join(dir, "nope") }, deps()))).message).toContain("is not an executable file");
    expect((await failure(runInstall({ ...full(), scope: "bogus" }, deps()))).message).toContain("--scope must be system or user");
  });

  test("--genesis-hash and --genesis-file together are refused", async () => {
    const e = await failure(runInstall({ ...full(), scope: "user", genesisFile: inputs.secret }, deps()));
    expect(e.message).toContain("pass either --genesis-hash or --genesis-file, not both");
  });

  test("system scope without root is refused unless staging", async () => {
    const e = await failure(runInstall(full(), deps()));
    expect(e.message).toContain("needs root");
  });

  test("uninstall without a manifest says so", async () => {
    const e = await failure(runUninstall({ scope: "user", purge: false, force: false, dryRun: false }, deps()));
    expect(e.message).toContain("nothing to uninstall: no install manifest at");
  });
});

describe("selfInstall", () => {
  test("a compiled binary is copied unless it already is the installed one; a source tree gets a launcher", () => {
    const exe = join(dir, "in/jorm-master-linux-x64");
    writeFileSync(exe, "binary bytes");
    const copy = selfInstall("/usr/local/bin/jorm-master", null, { compiled: true, executable: exe, script: "/$bunfs/root/cli" });
    expect(copy).toEqual({ kind: "binary", source: exe, sha256: new Bun.CryptoHasher("sha256").update("binary bytes").digest("hex") });
    const root = join(dir, "stage");
    mkdirSync(join(root, "usr/local/bin"), { recursive: true });
    writeFileSync(join(root, "usr/local/bin/jorm-master"), "binary bytes");
    const inPlace = selfInstall("/usr/local/bin/jorm-master", root, { compiled: true, executable: join(root, "usr/local/bin/jorm-master"), script: "" });
    expect(inPlace).toEqual({ kind: "in-place" });
    const launcher = selfInstall("/x/jorm-master", null, { compiled: false, executable: "/usr/bin/bun", script: "/src/it's/cli.ts" });
    expect(launcher.kind === "launcher" && launcher.content).toContain(`exec '/usr/bin/bun' '/src/it'\\''s/cli.ts' "$@"`);
  });
});

describe("install --scope system (as root, fake systemctl and useradd)", () => {
  const isRoot = process.getuid?.() === 0;
  test.skipIf(!isRoot)("creates the missing run-as user, storage owned by it, unit with User=", async () => {
    const execs: string[][] = [];
    const d = deps({
      isRoot: true,
      userExists: () => false,
      apply: { lookupUser: (name) => (name === "pooluser" ? { uid: 65534, gid: 65534 } : null), exec: (argv) => void execs.push(argv) },
    });
    const t = (p: string) => join(dir, "sys", p);
    await runInstall(
      {
        ...full(),
        user: "pooluser",
        dirs: { configDir: t("etc"), binDir: t("bin"), storageDir: t("home/pooluser"), unitDir: t("units"), stateDir: t("state") },
      },
      d,
    );
    expect(execs[0]).toEqual(["useradd", "--system", "--user-group", "--home-dir", t("home/pooluser"), "--no-create-home", "--shell", "/usr/sbin/nologin", "pooluser"]);
    expect(statSync(t("home/pooluser/storage_jorm_runner_1")).uid).toBe(65534);
    expect(statSync(t("home/pooluser/storage_jorm_runner_1")).mode & 0o777).toBe(0o750);
    expect(statSync(t("etc/node_secret.yaml")).uid).toBe(0);
    expect(readFileSync(t("units/jorm_runner@.service"), "utf8")).toMatch(/^User=pooluser$/m);
    expect(d.systemctl.calls).toEqual(["daemon-reload", "enable --now jorm_master.service"]);
  });
});

describe("the CLI in a terminal", () => {
  const script = Bun.which("script");
  test.skipIf(script === null)("asks for a missing value on a TTY and uses the answer", async () => {
    const cli = join(import.meta.dir, "../../src/cli.ts");
    const root = join(dir, "root");
    const command = [
      "bun", cli, "install", "--scope", "user", "--root", root, "--dry-run", "--jormungandr", inputs.jormungandr,
      "--genesis-hash", HASH, "--secret", inputs.secret,
    ].join(" ");
    // script(1) gives the child a pseudo-terminal; the answer is typed into it
    const p = Bun.spawn([script!, "-qfec", command, "/dev/null"], { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { ...process.env, HOME: join(dir, "home") } });
    p.stdin.write("3\r");
    p.stdin.flush();
    const timer = setTimeout(() => p.kill(), 15_000);
    const out = await new Response(p.stdout).text();
    clearTimeout(timer);
    p.stdin.end();
    expect(await p.exited).toBe(0);
    expect(out).toContain("How many runners (Jormungandr nodes)?");
    expect(out).toContain("jorm_runner_2.yaml");
    expect(out).not.toContain("jorm_runner_3.yaml");
  }, 20_000);
});

describe("install --cluster", () => {
  test("writes the cluster section; a second run with the same flag changes nothing; a new etcd list replaces the old, other keys kept", async () => {
    const root = join(dir, "root");
    const cluster = "name=host-a,etcd=http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379,lease_ttl=6";
    await runInstall({ ...full(), root, cluster }, deps());
    const path = join(root, "etc/cardano/jorm_master.yaml");
    expect(parse(readFileSync(path, "utf8")).cluster).toEqual({ name: "host-a", etcd: ["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"], lease_ttl: 6 });
    const again = deps();
    expect((await runInstall({ ...flags(), root, cluster }, again)).plan.ops).toEqual([]);
    await runInstall({ ...flags({ root, cluster: "name=host-a,etcd=http://10.0.0.9:2379" }) }, deps());
    expect(parse(readFileSync(path, "utf8")).cluster).toEqual({ name: "host-a", etcd: ["http://10.0.0.9:2379"], lease_ttl: 6 });
  });

  test("a malformed --cluster is a usage error naming the problem", async () => {
    const root = join(dir, "root");
    for (const [value, why] of [
      ["etcd=http://10.0.0.1:2379", /name=HOST is missing/],
      ["name=a", /etcd=URL/],
      ["name=a,etcd=10.0.0.1:2379", /not a URL/],
      ["name=a,etcd=ftp://10.0.0.1:2379", /must be http/],
      ["name=a,etcd=http://x:2379,ttl=5", /unknown part "ttl=5"/],
      ["name=a,etcd=http://x:2379,lease_ttl=2.5", /whole number/],
    ] as const) {
      const e = (await runInstall({ ...full(), root, cluster: value }, deps()).catch((x) => x)) as UserError;
      expect(e.exitCode).toBe(EXIT_USAGE);
      expect(e.message).toMatch(why);
    }
  });
});
