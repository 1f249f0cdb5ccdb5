// The daemon as a process, against runners that do not exist (it still completes observations:
// every runner is unreachable): SIGHUP re-reads the config and logs what changed, keeps the old one
// when the new one is invalid; /metrics is served on metrics_listen; the stall hook stalls the loop.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loopLooksAlive, stallAfterTicks, STALL_AFTER_TICKS_ENV, TICK_STALL_LIMIT_MS } from "../../src/commands/daemon.ts";
import { freePort } from "../ports.ts";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const dir = mkdtempSync(join(tmpdir(), "jm-daemon-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A running daemon whose stderr is collected; waitFor resolves when a line matches. */
function startDaemon(configPath: string, env: Record<string, string> = {}) {
  const { JORM_MASTER_CONFIG: _c, JOURNAL_STREAM: _j, NOTIFY_SOCKET: _n, ...base } = process.env;
  const proc = Bun.spawn(["bun", CLI, "daemon", "--config", configPath], {
    env: { ...base, JORM_MASTER_LOCK: join(dir, `lock-${Math.random()}`), JORM_MASTER_BOOT_DIR: join(dir, `boot-${Math.random()}`), ...env },
    stdout: "ignore",
    stderr: "pipe",
  });
  let text = "";
  const waiters: { re: RegExp; resolve: (m: string) => void }[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) {
      text += decoder.decode(chunk, { stream: true });
      for (const w of [...waiters]) {
        const m = w.re.exec(text);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m[0]);
        }
      }
    }
  })();
  return {
    proc,
    get text() {
      return text;
    },
    waitFor(re: RegExp, timeoutMs = 10_000): Promise<string> {
      const m = re.exec(text);
      if (m) return Promise.resolve(m[0]);
      return new Promise((resolve, reject) => {
        const w = { re, resolve };
        waiters.push(w);
        setTimeout(() => reject(new Error(`timed out waiting for ${re} in:\n${text}`)), timeoutMs);
      });
    },
  };
}

const config = (extra: string, metricsPort: number) =>
  `cnt_runners: 2\nrest_host: 127.0.0.1\nrest_base_port: ${freePort()}\nmetrics_listen: "127.0.0.1:${metricsPort}"\nloop_period: 0.5\n` +
  // Units of its own that exist nowhere: where a service manager answers, this daemon must never
  // fence, retire or start anyone's real jorm_runner@ units.
  `systemd:\n  runner_unit: "jm-daemon-test-absent-{id}.service"\n${extra}`;

describe("daemon against runners that do not exist", () => {
  test("SIGHUP re-reads the config and logs the change; an invalid one is refused and the old kept", async () => {
    const path = join(dir, "hup.yaml");
    const port = freePort();
    writeFileSync(path, config("max_offset: 5\n", port));
    const d = startDaemon(path);
    try {
      await d.waitFor(/first observation done: no signer · 0\/2 warm/);
      // A new metrics address is taken up at once; the old one is closed.
      const port2 = freePort();
      writeFileSync(path, config("max_offset: 9\n", port2));
      d.proc.kill("SIGHUP");
      const changed = await d.waitFor(/SIGHUP: config re-read: .*/);
      expect(changed).toContain("maxOffset: 5 → 9");
      expect(changed).toContain(`metricsListen: "127.0.0.1:${port}" → "127.0.0.1:${port2}"`);
      expect((await fetch(`http://127.0.0.1:${port2}/metrics`)).status).toBe(200);
      expect(await fetch(`http://127.0.0.1:${port}/metrics`).then(() => "open", () => "closed")).toBe("closed");

      writeFileSync(path, config("max_ofset: 12\n", port));
      d.proc.kill("SIGHUP");
      const refused = await d.waitFor(/SIGHUP: the new config is invalid, keeping the old one:[^]*max_ofset[^\n]*/);
      expect(refused).toContain('did you mean "max_offset"');
      // Still running, still on the old config, metrics still served.
      const body = await (await fetch(`http://127.0.0.1:${port2}/metrics`)).text();
      expect(body).toContain("jorm_master_ticks_total");
      expect(d.proc.exitCode).toBeNull();
      expect(d.text).not.toMatch(/^\s+at /m);
    } finally {
      d.proc.kill("SIGTERM");
      await d.proc.exited;
    }
    expect(d.text).toContain("SIGTERM: stopping; the signer is left as it is, standbys that would sign without a daemon are fenced");
  }, 30_000);

  test("/metrics on metrics_listen: every runner down, ticks counted, last observation recent", async () => {
    const path = join(dir, "metrics.yaml");
    const port = freePort();
    writeFileSync(path, config("", port));
    const d = startDaemon(path);
    try {
      await d.waitFor(/first observation done/);
      await Bun.sleep(300);
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.headers.get("content-type")).toContain("version=0.0.4");
      const body = await res.text();
      expect(body).toContain('jorm_master_runner_up{runner="0"} 0\n');
      expect(body).toContain('jorm_master_runner_up{runner="1"} 0\n');
      const ticks = Number(/^jorm_master_ticks_total (\d+)$/m.exec(body)![1]);
      expect(ticks).toBeGreaterThan(0);
      const last = Number(/^jorm_master_last_observation_timestamp_seconds (\S+)$/m.exec(body)![1]);
      expect(Math.abs(Date.now() / 1000 - last)).toBeLessThan(5);
    } finally {
      d.proc.kill("SIGTERM");
      await d.proc.exited;
    }
  }, 30_000);

  test("the test-only stall hook blocks the loop after N ticks (metrics stop answering too)", async () => {
    const path = join(dir, "stall.yaml");
    const port = freePort();
    writeFileSync(path, config("", port));
    const d = startDaemon(path, { [STALL_AFTER_TICKS_ENV]: "3" });
    try {
      await d.waitFor(/stalling the loop on purpose \(test hook\)/);
      const ac = AbortSignal.timeout(1_000);
      const scrape = fetch(`http://127.0.0.1:${port}/metrics`, { signal: ac }).then(() => "answered", () => "no answer");
      expect(await scrape).toBe("no answer");
      expect(d.proc.exitCode).toBeNull();
    } finally {
      d.proc.kill("SIGKILL");
      await d.proc.exited;
    }
  }, 30_000);

  test("the stall hook is off unless set to a whole number", () => {
    expect(stallAfterTicks({})).toBeNull();
    expect(stallAfterTicks({ [STALL_AFTER_TICKS_ENV]: "x" })).toBeNull();
    expect(stallAfterTicks({ [STALL_AFTER_TICKS_ENV]: "3" })).toBe(3);
  });
});

describe("loopLooksAlive", () => {
  test("vouches for the loop between ticks only while the last tick is recent enough", () => {
    expect(loopLooksAlive(10_000, 9_500, 500)).toBe(true);
    // A long loop_period (longer than WatchdogSec) is not a stall…
    expect(loopLooksAlive(100_000, 10_000, 90_000)).toBe(true);
    // …but no tick for loop_period plus the longest healthy tick is.
    expect(loopLooksAlive(10_000 + 500 + TICK_STALL_LIMIT_MS + 1, 10_000, 500)).toBe(false);
  });
});

describe("daemon with a cluster section (issue 13)", () => {
  test("etcd unreachable: the daemon runs, says it cannot campaign, and lets no runner sign (boot permits passive)", async () => {
    const path = join(dir, "cluster.yaml");
    const boot = join(dir, `boot-cluster-${Math.random()}`);
    writeFileSync(path, config('cluster:\n  name: host-a\n  etcd: ["http://127.0.0.1:9"]\n  etcd_timeout: 0.2\n', freePort()));
    const d = startDaemon(path, { JORM_MASTER_BOOT_DIR: boot });
    try {
      await d.waitFor(/cluster \/jorm-master as host-a: signing only while holding \/jorm-master\/signer/);
      await d.waitFor(/cluster: cannot campaign for \/jorm-master\/signer/);
      await d.waitFor(/first observation done/);
      await Bun.sleep(300);
      for (const id of ["0", "1"]) {
        const permit = readFileSync(join(boot, id), "utf8");
        expect(JSON.parse(permit).boot).toBe("passive");
      }
    } finally {
      d.proc.kill("SIGTERM");
      await d.proc.exited;
    }
  });
});
