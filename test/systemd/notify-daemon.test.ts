// The daemon under a real systemd user manager, with the notify settings of jorm_master.service
// (WatchdogSec shortened so the test is quick): the unit becomes active only after READY=1 (sent
// once the first observation is complete), STATUS= shows the summary line, a scrape of its /metrics
// passes promtool, and a loop stalled on purpose is killed by the watchdog and restarted.
// Runners do not exist: one "runner" accepts connections and never answers, so every observation
// waits out the REST deadline, which makes the time before READY measurable.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TCPSocketListener } from "bun";
import { STALL_AFTER_TICKS_ENV } from "../../src/commands/daemon.ts";
import { ensureUserManager, requireUserManager, type UserManager } from "../e2e/user-manager.ts";
import { freePort } from "../ports.ts";

const ROOT = join(import.meta.dir, "../..");
const CLI = join(ROOT, "src/cli.ts");
const TEMPLATE = readFileSync(join(ROOT, "systemd/jorm_master.service"), "utf8");
const TEST_WATCHDOG_S = 3;
const REST_TIMEOUT_S = 1.5;

/** `Key=value` of the template's [Service] section (last one wins, as in systemd). */
function serviceSetting(key: string): string | undefined {
  const values = [...TEMPLATE.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1]!.trim());
  return values.at(-1);
}

let um: UserManager = { ok: false, reason: "not started" };
const dir = mkdtempSync(join(tmpdir(), "jm-notify-"));
let hang: TCPSocketListener<undefined> | null = null;
const units: string[] = [];

beforeAll(async () => {
  um = await ensureUserManager();
  if (!um.ok && requireUserManager) throw new Error(`a systemd user manager is required: ${um.reason}`);
  hang = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {}, open() {} } });
}, 90_000);

afterAll(async () => {
  for (const u of units) {
    // A stalled daemon cannot run its SIGTERM handler: kill it outright.
    await sh(["systemctl", "--user", "kill", "-s", "SIGKILL", u]);
    await sh(["systemctl", "--user", "stop", u]);
    await sh(["systemctl", "--user", "reset-failed", u]);
  }
  hang?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

async function sh(argv: string[]): Promise<{ code: number; out: string }> {
  const env = um.ok ? um.env : process.env;
  const p = Bun.spawn(argv, { env, stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return { code, out: out + err };
}

async function show(unit: string): Promise<Record<string, string>> {
  const r = await sh(["systemctl", "--user", "show", unit, "-p", "ActiveState,SubState,Result,NRestarts,StatusText,MainPID,ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic"]);
  return Object.fromEntries(r.out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

/** Starts the daemon as a transient unit with the template's notify settings; returns at once. */
async function startUnit(name: string, opts: { env?: Record<string, string>; metricsPort: number }): Promise<string> {
  if (!um.ok) throw new Error("no user manager");
  const unit = `${name}-${process.pid}.service`;
  units.push(unit);
  const cfg = join(dir, `${name}.yaml`);
  writeFileSync(
    cfg,
    `cnt_runners: 1\nrest_host: 127.0.0.1\nrest_base_port: ${hang!.port}\nrest_timeout: ${REST_TIMEOUT_S}\n` +
      `metrics_listen: "127.0.0.1:${opts.metricsPort}"\n` +
      // Runner units of its own that do not exist: the shared user manager may run other tests'
      // jorm_runner@ units, which this daemon must never fence, retire or start.
      `systemd:\n  scope: user\n  runner_unit: "${name}-absent-runner-{id}.service"\n`,
  );
  const props = ["Type", "NotifyAccess", "Restart", "RestartSec", "TimeoutStartSec"].flatMap((k) => {
    const v = serviceSetting(k);
    return v === undefined ? [] : ["-p", `${k}=${v}`];
  });
  const env = { JORM_MASTER_LOCK: join(dir, `${name}.pid`), XDG_RUNTIME_DIR: um.xdgRuntimeDir, DBUS_SESSION_BUS_ADDRESS: um.env.DBUS_SESSION_BUS_ADDRESS!, ...opts.env };
  const r = await sh([
    "systemd-run", "--user", "--no-block", `--unit=${unit}`, ...props, "-p", `WatchdogSec=${TEST_WATCHDOG_S}s`,
    ...Object.entries(env).flatMap(([k, v]) => ["-E", `${k}=${v}`]),
    "--", process.execPath, CLI, "daemon", "--config", cfg,
  ]);
  expect(r.code, r.out).toBe(0);
  return unit;
}

async function until<T>(what: string, fn: () => Promise<T | null>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await Bun.sleep(100);
  }
}

describe("jorm_master.service's notify settings", () => {
  test("the template asks for Type=notify and a watchdog", () => {
    expect(serviceSetting("Type")).toBe("notify");
    expect(serviceSetting("WatchdogSec")).toMatch(/^\d+s$/);
    expect(serviceSetting("NotifyAccess")).toBe("main");
  });
});

describe.skipIf(!requireUserManager && process.getuid?.() !== 0)("the daemon under a real user manager", () => {
  test("active only after READY (the first complete observation); STATUS shows the summary; /metrics passes promtool", async () => {
    if (!um.ok) return console.warn(`skipped: ${um.reason}`);
    const port = freePort();
    const unit = await startUnit("jm-notify-ready", { metricsPort: port });
    const states: string[] = [];
    const s = await until(
      "the unit becomes active",
      async () => {
        const s = await show(unit);
        if (states.at(-1) !== s.ActiveState) states.push(s.ActiveState!);
        return s.ActiveState === "active" ? s : null;
      },
      30_000,
    );
    // It was starting (the process ran) before it was active; READY came after a whole REST deadline.
    expect(states).toContain("activating");
    const readyAfterMs = (Number(s.ActiveEnterTimestampMonotonic) - Number(s.ExecMainStartTimestampMonotonic)) / 1000;
    expect(readyAfterMs).toBeGreaterThanOrEqual(REST_TIMEOUT_S * 1000);
    expect(s.StatusText).toBe("no signer · 0/1 warm · no known slot ahead");

    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    writeFileSync(join(dir, "scrape.prom"), body);
    // .ci/run's promtool step checks every scrape saved here
    const saveDir = process.env.JORM_METRICS_SCRAPE_DIR;
    if (saveDir) writeFileSync(join(saveDir, "daemon-user-manager.prom"), body);
    expect(body).toContain('jorm_master_runner_up{runner="0"} 0');
    // status next to the running daemon, unit states from the real manager (the runner unit does not exist).
    const st = await sh([process.execPath, CLI, "status", "--config", join(dir, "jm-notify-ready.yaml")]);
    expect(st.code).toBe(2);
    expect(st.out).toMatch(/#0 +inactive\/dead +no answer \(timeout\)/);
    expect(st.out).not.toContain("systemd:");

    const promtool = Bun.which("promtool");
    if (promtool) {
      const r = await sh(["sh", "-c", `${promtool} check metrics < ${join(dir, "scrape.prom")}`]);
      expect({ code: r.code, out: r.out.trim() }).toEqual({ code: 0, out: "" });
    }
  }, 60_000);

  test("a loop stalled on purpose is killed by the watchdog and restarted", async () => {
    if (!um.ok) return console.warn(`skipped: ${um.reason}`);
    const unit = await startUnit("jm-notify-stall", { metricsPort: freePort(), env: { [STALL_AFTER_TICKS_ENV]: "2" } });
    const first = await until("active", async () => {
      const s = await show(unit);
      return s.ActiveState === "active" ? s : null;
    }, 30_000);
    let sawWatchdog = false;
    const after = await until(
      "restarted by the watchdog",
      async () => {
        const s = await show(unit);
        if (s.Result === "watchdog") sawWatchdog = true;
        return Number(s.NRestarts) >= 1 && s.ActiveState === "active" && s.MainPID !== first.MainPID ? s : null;
      },
      (TEST_WATCHDOG_S + 3 * REST_TIMEOUT_S + 15) * 1000,
    );
    expect(sawWatchdog).toBe(true);
    expect(Number(after.NRestarts)).toBeGreaterThanOrEqual(1);
  }, 90_000);
});
