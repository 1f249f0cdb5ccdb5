// Runners boot with --secret only on a fresh permit from a daemon that observes (issue 9, point 4).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decideBootMode } from "../../src/runner/prepare.ts";
import { defaultConfig } from "../../src/config/load.ts";
import { MASTER_TEMPLATE, RUNNER_TEMPLATE } from "../../src/systemd/units.ts";
import { BOOT_PERMIT_MAX_AGE_MS, BOOT_PERMIT_WAIT_MS, READY_TIMEOUT_MS, bootDecision, bootPermitDir, formatBootPermit, parseBootPermit } from "../../src/master/bootpolicy.ts";
import { bootPermits, clearBootPermits, writeBootPermits } from "../../src/master/bootpermits.ts";

const NOW = 1_800_000_000_000;
const permit = (atMs: number, boot: "key" | "passive" = "key") => formatBootPermit({ at_ms: atMs, boot });
const decide = (over: Partial<Parameters<typeof bootDecision>[0]>) =>
  bootDecision({ keyMode: "boot", masterRunning: true, permitText: permit(NOW - 500), nowMs: NOW, ...over });

describe("bootDecision: the runner wrapper's choice", () => {
  test("a fresh permit that says key, from a running master: boot with --secret", () => {
    expect(decide({})).toMatchObject({ key: true });
  });

  test("an activating master that has not observed yet (no permit): passive, worth waiting for one", () => {
    expect(decide({ permitText: null })).toEqual({ key: false, wait: true, why: expect.stringContaining("not observed") });
  });

  test("a master that stopped observing (permit older than the limit): passive", () => {
    expect(decide({ permitText: permit(NOW - BOOT_PERMIT_MAX_AGE_MS - 1) }).key).toBe(false);
    expect(decide({ permitText: permit(NOW - BOOT_PERMIT_MAX_AGE_MS) }).key).toBe(true);
  });

  test("any doubt is passive: master unit not running, garbage, a future date, a permit saying passive, key mode rest", () => {
    expect(decide({ masterRunning: false })).toMatchObject({ key: false, wait: false });
    for (const text of ["", "key", "{}", '{"at_ms": "now", "boot": "key"}', '{"at_ms": 1, "boot": "yes"}', `{"at_ms": ${NOW}, "boot": "key", "x": 1}`]) {
      expect(decide({ permitText: text }).key).toBe(false);
    }
    expect(decide({ permitText: permit(NOW + 60_000) }).key).toBe(false);
    expect(decide({ permitText: permit(NOW, "passive") })).toMatchObject({ key: false, wait: false });
    expect(decide({ keyMode: "rest" }).key).toBe(false);
  });

  test("permits round-trip; the directory is the master's runtime directory (gone when it stops)", () => {
    expect(parseBootPermit(permit(NOW))).toEqual({ at_ms: NOW, boot: "key" });
    expect(bootPermitDir("system", {})).toBe("/run/jorm-master/boot");
    expect(bootPermitDir("user", { XDG_RUNTIME_DIR: "/run/user/1000" })).toBe("/run/user/1000/jorm-master/boot");
    expect(bootPermitDir("system", { JORM_MASTER_BOOT_DIR: "/tmp/x" })).toBe("/tmp/x");
  });
});

describe("the daemon's permits", () => {
  const root = mkdtempSync(join(tmpdir(), "jm-permits-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  test("one file per runner in scope, readable by the runners' user, dated with the observation", () => {
    const dir = join(root, "boot");
    const old = process.umask(0o077); // the daemon's UMask=
    try {
      writeBootPermits(dir, bootPermits(3, "boot", NOW));
    } finally {
      process.umask(old);
    }
    for (const id of [0, 1, 2]) {
      const text = readFileSync(join(dir, String(id)), "utf8");
      expect(bootDecision({ keyMode: "boot", masterRunning: true, permitText: text, nowMs: NOW + 100 }).key).toBe(true);
      expect(statSync(join(dir, String(id))).mode & 0o777).toBe(0o644);
    }
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    expect(existsSync(join(dir, "3"))).toBe(false);
    clearBootPermits(dir);
    expect(existsSync(join(dir, "0"))).toBe(false);
    clearBootPermits(join(root, "absent"));
  });

  test("key mode rest: the permits say passive", () => {
    expect([...bootPermits(2, "rest", NOW).values()].map((p) => p.boot)).toEqual(["passive", "passive"]);
  });

  test("a runner the tick's plan did not decide for (a reload raised cnt_runners during the tick) boots passive (review h23)", () => {
    // In a cluster every mode is passive (the key only comes by a promotion, with its switch armed);
    // runner 2 was not in the plan, which the daemon's new config counts.
    expect([...bootPermits(3, "boot", NOW, { 0: "passive", 1: "passive" }).values()].map((p) => p.boot)).toEqual(["passive", "passive", "passive"]);
  });
});

describe("the runner wrapper's shell (decideBootMode)", () => {
  const config = { ...defaultConfig(), keyMode: "boot" as const };
  const clock = () => {
    let t = NOW;
    return { now: () => t, sleep: async (ms: number) => void (t += ms) };
  };

  test("the master starting: waits for the daemon's first permit, and boots with the key once it comes", async () => {
    const c = clock();
    const read: string[] = [];
    const d = await decideBootMode(config, "1", {
      waitMs: BOOT_PERMIT_WAIT_MS,
      masterRunning: async () => true,
      // The first observation completes 3 s after the runner starts.
      readPermit: (path) => (read.push(path), c.now() >= NOW + 3_000 ? permit(c.now()) : null),
      ...c,
    });
    expect(d.key).toBe(true);
    expect(read[0]).toBe("/run/jorm-master/boot/1");
    expect(c.now() - NOW).toBeGreaterThanOrEqual(3_000);
  });

  test("an activating master that never observes: passive after a bounded wait, not the 90 s start timeout", async () => {
    const c = clock();
    const d = await decideBootMode(config, "0", { waitMs: BOOT_PERMIT_WAIT_MS, masterRunning: async () => true, readPermit: () => null, ...c });
    expect(d).toMatchObject({ key: false, masterRunning: true });
    expect(c.now() - NOW).toBeLessThan(BOOT_PERMIT_WAIT_MS + 1_000);
  });

  test("no master unit running: passive at once, the permit not even waited for", async () => {
    const c = clock();
    const d = await decideBootMode(config, "0", { waitMs: BOOT_PERMIT_WAIT_MS, masterRunning: async () => false, readPermit: () => permit(NOW), ...c });
    expect(d).toMatchObject({ key: false, masterRunning: false });
    expect(c.now()).toBe(NOW);
  });
});

describe("the units around the permits", () => {
  test("the master's start timeout is just above the daemon's bound on its first observation", () => {
    const m = /^TimeoutStartSec=(\d+)s$/m.exec(MASTER_TEMPLATE);
    expect(m).not.toBeNull();
    const s = Number(m![1]);
    expect(s * 1000).toBeGreaterThan(READY_TIMEOUT_MS);
    expect(s * 1000).toBeLessThanOrEqual(READY_TIMEOUT_MS + 10_000);
    // A runner waits for a first permit no longer than systemd waits for the master to get ready.
    expect(BOOT_PERMIT_WAIT_MS).toBeLessThanOrEqual(s * 1000);
  });

  test("the permits live in the master's RuntimeDirectory, which the runners can read", () => {
    expect(MASTER_TEMPLATE).toMatch(/^RuntimeDirectory=jorm-master$/m);
    expect(MASTER_TEMPLATE).not.toMatch(/^RuntimeDirectoryPreserve=/m);
    expect(bootPermitDir("system", {})).toStartWith("/run/jorm-master/");
    // Nothing in the runner unit hides /run/jorm-master from it.
    expect(RUNNER_TEMPLATE).not.toMatch(/^(InaccessiblePaths|TemporaryFileSystem|ProtectSystem=full|RootDirectory|RootImage)/m);
  });
});
