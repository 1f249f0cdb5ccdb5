import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireLock, isLiveDaemon } from "../../src/master/lock.ts";
import { EXIT_LOCKED, UserError } from "../../src/errors.ts";

const dir = () => mkdtempSync(join(tmpdir(), "jm-lock-"));

describe("daemon lock", () => {
  test("the first daemon takes it; a second one exits non-zero and says which pid holds it", () => {
    const path = join(dir(), "run", "daemon.pid");
    const lock = acquireLock(path, () => false);
    expect(readFileSync(path, "utf8").trim()).toBe(String(process.pid));
    let err: unknown;
    try {
      acquireLock(path, (pid) => pid === process.pid);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(EXIT_LOCKED);
    expect((err as UserError).message).toContain(`another jorm-master daemon (pid ${process.pid}) is already running`);
    lock.release();
    expect(existsSync(path)).toBe(false);
  });

  test("a lock left by a daemon killed with -9 is taken over", () => {
    const path = join(dir(), "daemon.pid");
    writeFileSync(path, "999999\n");
    const lock = acquireLock(path); // pid 999999 does not run a jorm-master daemon
    expect(readFileSync(path, "utf8").trim()).toBe(String(process.pid));
    lock.release();
  });

  test("release leaves a lock that another daemon took over alone", () => {
    const path = join(dir(), "daemon.pid");
    const lock = acquireLock(path, () => false);
    writeFileSync(path, "12345\n");
    lock.release();
    expect(readFileSync(path, "utf8").trim()).toBe("12345");
  });

  test("isLiveDaemon: only a process whose command line is a jorm-master daemon counts (pid reuse)", () => {
    expect(isLiveDaemon(42, () => "/usr/local/bin/jorm-master\0daemon\0--config\0/etc/cardano/jorm_master.yaml\0")).toBe(true);
    expect(isLiveDaemon(42, () => "bun\0src/cli.ts\0daemon\0")).toBe(true);
    expect(isLiveDaemon(42, () => ["/usr/bin/sleep", "100", ""].join("\0"))).toBe(false);
    expect(isLiveDaemon(42, () => "/usr/local/bin/jorm-master\0status\0")).toBe(false);
    expect(isLiveDaemon(42, () => { throw new Error("ENOENT"); })).toBe(false);
    expect(isLiveDaemon(NaN)).toBe(false);
  });
});

test("a second `jorm-master daemon` exits 75 and names the running one", async () => {
  const path = join(dir(), "daemon.pid");
  // A stand-in whose command line reads like a running daemon.
  const holder = Bun.spawn(["bun", "-e", "setTimeout(() => {}, 60000)", "jorm-master", "daemon"], { stdout: "ignore", stderr: "ignore" });
  try {
    writeFileSync(path, `${holder.pid}\n`);
    const cli = join(import.meta.dir, "..", "..", "src", "cli.ts");
    const p = Bun.spawn(["bun", cli, "daemon", "--config", join(import.meta.dir, "..", "fixtures", "seed", "jorm_master.yaml")], {
      env: { ...process.env, JORM_MASTER_LOCK: path },
      stdout: "pipe",
      stderr: "pipe",
    });
    const err = await new Response(p.stderr).text();
    expect(await p.exited).toBe(EXIT_LOCKED);
    expect(err).toContain(`another jorm-master daemon (pid ${holder.pid}) is already running`);
    expect(err).not.toMatch(/^\s+at /m);
  } finally {
    holder.kill();
  }
});
