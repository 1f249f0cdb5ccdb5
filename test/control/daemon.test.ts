// The daemon as a process (against runners that do not exist): it serves its control socket beside
// its lock, `status` shows its view (text and --json) and falls back without it, it records its start
// and stop in the event log, and `history` and `leaders` read what they can.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { askDaemon } from "../../src/control/client.ts";
import { daemonViewSchema } from "../../src/control/protocol.ts";
import { freePort } from "../ports.ts";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const dir = mkdtempSync(join(tmpdir(), "jm-ctl-daemon-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lock = join(dir, "daemon.pid");
const { JORM_MASTER_CONFIG: _c, JOURNAL_STREAM: _j, NOTIFY_SOCKET: _n, ...base } = process.env;
const env = { ...base, JORM_MASTER_LOCK: lock, NO_COLOR: "1" };
const configPath = join(dir, "jorm_master.yaml");
writeFileSync(
  configPath,
  `cnt_runners: 2\nrest_host: 127.0.0.1\nrest_base_port: ${freePort()}\nrest_timeout: 0.3\nmetrics_listen: ""\nloop_period: 0.5\n` +
    // Units that exist nowhere: where a service manager answers, nothing real is touched.
    `systemd:\n  runner_unit: "jm-control-test-absent-{id}.service"\n`,
);

async function cli(...args: string[]) {
  const p = Bun.spawn(["bun", CLI, ...args], { env, stdout: "pipe", stderr: "pipe" });
  const [code, stdout, stderr] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return { code, stdout, stderr };
}

describe("the daemon's control socket and event log", () => {
  test("status asks the daemon, falls back without it; start and stop land in the event log; history reads it", async () => {
    const socket = `${lock}.control.sock`;
    // No daemon yet: status says so and reads the runners as before.
    const before = await cli("status", "--rest-only", "--json", "--config", configPath);
    expect((JSON.parse(before.stdout) as { daemon: unknown }).daemon).toEqual({ running: false, reason: `no daemon answers on ${socket}` });

    const d = Bun.spawn(["bun", CLI, "daemon", "--config", configPath], { env, stdout: "ignore", stderr: "pipe" });
    let text = "";
    void (async () => {
      for await (const chunk of d.stderr) text += new TextDecoder().decode(chunk);
    })();
    try {
      for (let i = 0; i < 200 && !text.includes("first observation done"); i++) await Bun.sleep(50);
      expect(text).toContain(`control socket ${socket}`);
      expect(statSync(socket).mode & 0o777).toBe(0o660);
      const view = await askDaemon(socket, { cmd: "status" }, daemonViewSchema);
      if (view.kind !== "answer") throw new Error(JSON.stringify(view));
      expect(view.result).toMatchObject({ pid: d.pid, signer: null, boundary: null });
      expect(view.result.ticks).toBeGreaterThan(0);

      const json = await cli("status", "--rest-only", "--json", "--config", configPath);
      const daemon = (JSON.parse(json.stdout) as { daemon: { running: boolean; pid: number } }).daemon;
      expect(daemon).toMatchObject({ running: true, pid: d.pid });
      const plain = await cli("status", "--rest-only", "--config", configPath);
      expect(plain.stdout.split("\n")[0]).toStartWith(`daemon (pid ${d.pid}): no signer`);
      // The exit code is status's own, from the runners (none answers: CRITICAL), daemon or not.
      expect(plain.code).toBe(before.code);
    } finally {
      d.kill("SIGTERM");
      await d.exited;
    }
    expect(existsSync(socket)).toBe(false);

    const h = await cli("history", "--json", "--config", configPath);
    expect(h.code).toBe(0);
    const kinds = h.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { kind: string }).kind);
    expect(kinds[0]).toBe("daemon_start");
    expect(kinds.at(-1)).toBe("daemon_stop");
    const table = await cli("history", "--since", "1h", "--kind", "daemon", "--config", configPath);
    expect(table.stdout).toMatch(/^TIME +KIND +RUNNER +WHAT\n/);
    expect(table.stdout).toContain("daemon_stop   -       daemon stopping — stopped by SIGTERM");
  }, 60_000);

  test("history: a bad --since or --kind is a usage error; leaders without a Running runner exits 1 and says why", async () => {
    const since = await cli("history", "--since", "yesterday", "--config", configPath);
    expect(since.code).toBe(64);
    expect(since.stderr).toContain("--since: expected a duration before now");
    const kind = await cli("history", "--kind", "failovers", "--config", configPath);
    expect(kind.code).toBe(64);
    expect(kind.stderr).toContain('--kind: unknown kind "failovers"');
    const odd = join(dir, "odd-state");
    mkdirSync(join(odd, "history.jsonl"), { recursive: true });
    const unreadable = await cli("history", "--state-dir", odd);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toContain(`cannot read the event log in ${odd}`);
    expect(unreadable.stderr).not.toMatch(/^\s+at /m);
    const leaders = await cli("leaders", "--config", configPath);
    expect(leaders.code).toBe(1);
    expect(leaders.stderr).toContain("leaders: no runner answered with the chain's settings");
    const epoch = await cli("leaders", "--epoch", "-3", "--config", configPath);
    expect(epoch.code).toBe(64);
  }, 30_000);
});
