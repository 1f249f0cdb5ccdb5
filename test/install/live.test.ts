import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureUserManager, requireUserManager, type UserManager } from "../e2e/user-manager.ts";

// The installed, hardened user-scope units under a real `systemd --user`: a runner's pre-checks pass
// inside the sandbox, it execs the node (MainPID is the node), it can write its storage, a failed
// pre-check exits 78 without a restart loop, and uninstall leaves nothing.

const REPO = join(import.meta.dir, "../..");
const HASH = "8e4d2a343f3dcf9330ad9035b3e8d168e6728904262f2c434a4f8f934ec7b676";
const UNIT_WAIT_MS = 10_000;
// PrivateTmp= hides /tmp and /var/tmp from the units, so the test tree lives elsewhere.
const TEST_PARENT = "/var/lib";

let manager: UserManager = { ok: false, reason: "not started" };
let dir = "";
const tag = `jmlive${process.pid}`;

beforeAll(async () => {
  manager = await ensureUserManager();
  if (!manager.ok) return;
  dir = mkdtempSync(join(TEST_PARENT, "jm-live-"));
}, 70_000);
afterAll(async () => {
  if (!manager.ok) return;
  await systemctl("stop", `${tag}_runner@0.service`, `${tag}_runner@1.service`).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

async function sh(argv: string[]): Promise<{ code: number; out: string }> {
  const env = manager.ok ? manager.env : process.env;
  const p = Bun.spawn(argv, { env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: out + err };
}

async function systemctl(...args: string[]) {
  const r = await sh(["systemctl", "--user", ...args]);
  if (r.code !== 0) throw new Error(`systemctl --user ${args.join(" ")}: ${r.out}`);
  return r.out;
}

async function show(unit: string): Promise<Record<string, string>> {
  const out = await systemctl("show", "-p", "ActiveState,SubState,MainPID,ExecMainStatus,NRestarts,Result", unit);
  return Object.fromEntries(out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

async function waitFor(unit: string, ok: (s: Record<string, string>) => boolean): Promise<Record<string, string>> {
  const until = Date.now() + UNIT_WAIT_MS;
  let s = await show(unit);
  while (!ok(s) && Date.now() < until) {
    await Bun.sleep(100);
    s = await show(unit);
  }
  return s;
}

const skip = !requireUserManager && !(await ensureUserManager()).ok;
if (skip) console.warn(`test/install/live.test.ts skipped: ${((await ensureUserManager()) as { reason: string }).reason}`);

describe.skipIf(skip)("install --scope user under a real user manager", () => {
  test("runner units pass their checks in the sandbox, exec the node, fail with 78 without looping; uninstall cleans up", async () => {
    expect(manager.ok).toBe(true);
    const bin = join(dir, "build/jorm-master");
    const build = await sh(["bun", "build", "--compile", join(REPO, "src/cli.ts"), "--outfile", bin]);
    expect(build.code).toBe(0);

    // A stand-in node: proves it can write its storage, then stays as the unit's main process
    const node = join(dir, "in/node.sh");
    await Bun.write(node, '#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = --storage ] && storage="$2"; shift; done\necho ok > "$storage/written" && exec sleep 600\n');
    chmodSync(node, 0o755);
    const secret = join(dir, "in/secret.yaml");
    writeFileSync(secret, "genesis: {}\n");
    const cfg = join(dir, "cfg");
    const port = 39000 + (process.pid % 1000) * 2;
    await Bun.write(
      join(cfg, "jorm_master.yaml"),
      [
        "cnt_runners: 2",
        `node_secret: ${cfg}/node_secret.yaml`,
        `genesis_hash_file: ${cfg}/genesis.txt`,
        `runner_binary: ${dir}/bin/jormungandr_runner_{id}`,
        `runner_config: ${cfg}/jorm_runner_{id}.yaml`,
        `runner_storage: ${dir}/storage/storage_{id}`,
        `rest_base_port: ${port}`,
        "systemd:",
        "  scope: user",
        `  master_unit: ${tag}_master.service`,
        `  runner_unit: ${tag}_runner@{id}.service`,
        "",
      ].join("\n"),
    );
    const unitDir = join(manager.ok ? manager.env.HOME ?? "/root" : "/root", ".config/systemd/user");
    await Bun.write(join(dir, "in/template.yaml"), `p2p:\n  public_address: /ip4/127.0.0.1/tcp/${port + 1000}\n`);
    const args = [
      bin, "install", "--scope", "user", "--no-start", "--runners", "2",
      "--config-dir", cfg, "--bin-dir", join(dir, "bin"), "--storage-dir", join(dir, "storage"), "--state-dir", join(dir, "state"),
      "--unit-dir", unitDir, "--jormungandr", node, "--genesis-hash", HASH, "--secret", secret, "--node-config", join(dir, "in/template.yaml"),
    ];
    const ok = await sh(args);
    expect(ok.out).toContain("systemctl --user daemon-reload");
    expect(ok.code).toBe(0);
    expect((await sh(args)).out).toStartWith("nothing to do");

    await systemctl("start", `${tag}_runner@0.service`);
    const s0 = await waitFor(`${tag}_runner@0.service`, (s) => s.ActiveState === "active" && existsSync(join(dir, "storage/storage_0/written")));
    expect(s0.ActiveState).toBe("active");
    const comm = (await Bun.file(`/proc/${s0.MainPID}/comm`).text()).trim();
    expect(comm).toBe("sleep"); // the runner exec'd the node: MainPID is the node itself
    expect(existsSync(join(dir, "storage/storage_0/written"))).toBe(true);

    // A broken symlink: exit 78 and no restart loop
    unlinkSync(join(dir, "bin/jormungandr_runner_1"));
    await systemctl("start", `${tag}_runner@1.service`).catch(() => {});
    const s1 = await waitFor(`${tag}_runner@1.service`, (s) => s.ActiveState === "failed");
    expect({ state: s1.ActiveState, status: s1.ExecMainStatus, restarts: s1.NRestarts }).toEqual({ state: "failed", status: "78", restarts: "0" });
    await systemctl("reset-failed", `${tag}_runner@1.service`).catch(() => {});

    const un = await sh([join(dir, "bin/jorm-master"), "uninstall", "--scope", "user", "--state-dir", join(dir, "state"), "--purge", "--yes"]);
    expect(un.code).toBe(0);
    expect((await show(`${tag}_runner@0.service`)).ActiveState).toBe("inactive");
    expect(existsSync(join(unitDir, `${tag}_master.service`))).toBe(false);
    expect(existsSync(join(unitDir, `${tag}_runner@.service`))).toBe(false);
    // Left: only what the test itself made (the build, the inputs, the config it wrote)
    expect(readdirSync(dir).sort()).toEqual(["build", "cfg", "in"]);
    expect(readdirSync(cfg)).toEqual(["jorm_master.yaml"]);
  }, 60_000);
});
