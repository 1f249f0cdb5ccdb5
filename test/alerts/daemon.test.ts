// The daemon process with alerts configured, against runners that do not exist: it says when it
// starts and stops (delivered to a local receiver, Telegram's bot API included), counts deliveries
// in /metrics, never prints the token, and refuses to start (exit 78) without its token.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../ports.ts";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const dir = mkdtempSync(join(tmpdir(), "jm-alerts-daemon-"));
const TOKEN = "4242:daemon-test-SECRET";
const received: { path: string; body: { kind?: string; text?: string } }[] = [];
const receiver = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    received.push({ path: new URL(req.url).pathname, body: (await req.json()) as { kind?: string; text?: string } });
    return Response.json({ ok: true });
  },
});
afterAll(() => {
  receiver.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

function spawnDaemon(configPath: string, env: Record<string, string>) {
  const { JORM_MASTER_CONFIG: _c, JOURNAL_STREAM: _j, NOTIFY_SOCKET: _n, ...base } = process.env;
  return Bun.spawn(["bun", CLI, "daemon", "--config", configPath], {
    env: { ...base, JORM_MASTER_LOCK: join(dir, `lock-${Math.random()}`), ...env },
    stdout: "ignore",
    stderr: "pipe",
  });
}

const config = (metricsPort: number) =>
  `cnt_runners: 2\nrest_host: 127.0.0.1\nrest_base_port: ${freePort()}\nmetrics_listen: "127.0.0.1:${metricsPort}"\n` +
  `systemd:\n  runner_unit: "jm-alerts-test-absent-{id}.service"\n` +
  `alerts:\n  channels:\n` +
  `    - { name: hook, type: webhook, url: "http://127.0.0.1:${receiver.port}/hook" }\n` +
  `    - { name: tg, type: telegram, chat_id: 7, token_env: JM_TEST_TG_TOKEN, api_url: "http://127.0.0.1:${receiver.port}" }\n`;

async function until(cond: () => boolean, timeoutMs: number) {
  for (const end = Date.now() + timeoutMs; !cond(); await Bun.sleep(50)) if (Date.now() > end) throw new Error("timed out");
}

test("the daemon's start and stop reach every channel; deliveries are counted; the token is never printed", async () => {
  const path = join(dir, "alerts.yaml");
  const port = freePort();
  writeFileSync(path, config(port));
  const proc = spawnDaemon(path, { JM_TEST_TG_TOKEN: TOKEN });
  const stderr = new Response(proc.stderr).text();
  try {
    await until(() => received.filter((r) => r.path === "/hook" && r.body.kind === "daemon_start").length === 1 && received.some((r) => r.path === `/bot${TOKEN}/sendMessage`), 15_000);
    await Bun.sleep(300);
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(body).toContain('jorm_master_alerts_total{channel="hook",result="sent"} 1\n');
    expect(body).toContain('jorm_master_alerts_total{channel="tg",result="sent"} 1\n');
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
  const stop = received.find((r) => r.path === "/hook" && r.body.kind === "daemon_stop");
  expect(stop?.body.text).toStartWith("stopped by SIGTERM; no signer");
  const log = await stderr;
  expect(log).toContain("alerts to hook (json), tg (telegram)");
  expect(log).not.toContain(TOKEN);
}, 30_000);

test("a telegram channel whose token is missing stops the daemon with exit 78, naming the variable", async () => {
  const path = join(dir, "no-token.yaml");
  writeFileSync(path, config(freePort()));
  const proc = spawnDaemon(path, {});
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  expect(code).toBe(78);
  expect(err).toContain('alerts channel "tg": token_env JM_TEST_TG_TOKEN is not set');
  expect(err).not.toMatch(/^\s+at /m);
}, 30_000);
