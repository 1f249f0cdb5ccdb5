// The daemon's side of the boot permits and its bounded start (issue 9, point 4), as a process
// against runners that do not exist (every runner unreachable: observations still complete).
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { READY_TIMEOUT_ENV, readyTimeoutMs } from "../../src/commands/daemon.ts";
import { READY_TIMEOUT_MS, bootDecision } from "../../src/master/bootpolicy.ts";
import { freePort } from "../ports.ts";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const dir = mkdtempSync(join(tmpdir(), "jm-permits-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function daemon(configText: string, env: Record<string, string> = {}) {
  const path = join(dir, `c-${Math.random()}.yaml`);
  writeFileSync(path, configText);
  const bootDir = join(dir, `boot-${Math.random()}`);
  const { JORM_MASTER_CONFIG: _c, JOURNAL_STREAM: _j, NOTIFY_SOCKET: _n, ...base } = process.env;
  const proc = Bun.spawn(["bun", CLI, "daemon", "--config", path], {
    env: { ...base, JORM_MASTER_LOCK: join(dir, `lock-${Math.random()}`), JORM_MASTER_BOOT_DIR: bootDir, ...env },
    stdout: "ignore",
    stderr: "pipe",
  });
  return { proc, bootDir, stderr: new Response(proc.stderr).text() };
}

const config = (extra = "") =>
  `cnt_runners: 2\nrest_host: 127.0.0.1\nrest_base_port: ${freePort()}\nmetrics_listen: \"\"\nloop_period: 0.2\n` +
  `systemd:\n  runner_unit: "jm-permits-test-absent-{id}.service"\n${extra}`;

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(50);
  }
}

describe("the daemon writes boot permits", () => {
  test("after every observation a fresh permit per runner says key; stopping removes them", async () => {
    const d = daemon(config());
    try {
      await until(() => existsSync(join(d.bootDir, "0")) && existsSync(join(d.bootDir, "1")));
      const first = readFileSync(join(d.bootDir, "0"), "utf8");
      expect(bootDecision({ keyMode: "boot", masterRunning: true, permitText: first, nowMs: Date.now() }).key).toBe(true);
      expect(existsSync(join(d.bootDir, "2"))).toBe(false);
      // Rewritten every tick: it stays fresh.
      await until(() => readFileSync(join(d.bootDir, "0"), "utf8") !== first);
    } finally {
      d.proc.kill("SIGTERM");
    }
    expect(await d.proc.exited).toBe(0);
    expect(existsSync(join(d.bootDir, "0"))).toBe(false);
    expect(existsSync(join(d.bootDir, "1"))).toBe(false);
  }, 20_000);

  test("no complete observation within the bound: the daemon exits non-zero and writes no permit", async () => {
    // REST that accepts and never answers, with a rest_timeout (10 s, the ceiling) beyond the bound: the first observation hangs.
    const hang = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
    try {
      const d = daemon(
        `cnt_runners: 1\nrest_host: 127.0.0.1\nrest_base_port: ${hang.port}\nmetrics_listen: \"\"\nrest_timeout: 10\n` +
          `systemd:\n  runner_unit: "jm-permits-test-absent-{id}.service"\n`,
        { [READY_TIMEOUT_ENV]: "1500" },
      );
      const started = Date.now();
      const code = await d.proc.exited;
      expect(code).not.toBe(0);
      expect(code).not.toBe(78);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await d.stderr).toContain("no complete observation within 1.5 s");
      expect(existsSync(join(d.bootDir, "0"))).toBe(false);
    } finally {
      void hang.stop(true);
    }
  }, 20_000);

  test("the test hook can only shorten the bound", () => {
    expect(readyTimeoutMs({})).toBe(READY_TIMEOUT_MS);
    expect(readyTimeoutMs({ [READY_TIMEOUT_ENV]: "100" })).toBe(100);
    expect(readyTimeoutMs({ [READY_TIMEOUT_ENV]: String(READY_TIMEOUT_MS * 10) })).toBe(READY_TIMEOUT_MS);
    expect(readyTimeoutMs({ [READY_TIMEOUT_ENV]: "x" })).toBe(READY_TIMEOUT_MS);
  });
});
