import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AlertEvent } from "../../src/alerts/events.ts";
import { ALERT_REPLY_MAX_BYTES, createNotifier, loadChannels, type AlertCount } from "../../src/alerts/notifier.ts";
import type { Channel } from "../../src/alerts/presets.ts";
import type { AlertsConfig } from "../../src/config/types.ts";
import { realClock } from "../../src/master/ports.ts";

const TOKEN = "123456:SECRET-token-never-logged";

interface Hit {
  path: string;
  body: any;
}
const hits: Hit[] = [];
/** Paths answered with this status instead of 200 (a failing channel) */
const failing = new Map<string, number>();
/** Paths that answer only after this many ms */
const slow = new Map<string, number>();
let endlessPulled = 0;
const receiver = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const path = new URL(req.url).pathname;
    const body = await req.json().catch(() => null);
    if (path === "/endless-error") {
      // A failing endpoint that answers with an endless error page
      endlessPulled = 0;
      const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
      return new Response(new ReadableStream({ pull: (c) => (endlessPulled++, c.enqueue(chunk)) }), { status: 500 });
    }
    const wait = slow.get(path);
    if (wait) await Bun.sleep(wait);
    const status = failing.get(path) ?? 200;
    hits.push({ path, body });
    return new Response(status === 200 ? "ok" : "boom", { status });
  },
});
afterAll(() => receiver.stop(true));
const base = `http://127.0.0.1:${receiver.port}`;

beforeEach(() => {
  hits.length = 0;
  failing.clear();
  slow.clear();
});

const cfg = (over: Partial<AlertsConfig> = {}): AlertsConfig => ({ channels: [], dedupWindowMs: 600_000, rateLimit: 10, rateWindowMs: 600_000, retries: 2, timeoutMs: 1_000, ...over });
let n = 0;
const event = (over: Partial<AlertEvent> = {}): AlertEvent => ({ kind: "failover", severity: "warning", key: `k${n++}`, title: "failover: #0 → #1 signs", text: "#0 died", atMs: Date.UTC(2026, 0, 2, 3, 4, 5), runner: 1, ...over });

function logs() {
  const lines: string[] = [];
  return { lines, log: { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`) } };
}
const count = (cs: AlertCount[], channel: string, result: string) => cs.find((c) => c.channel === channel && c.result === result)?.value;

describe("alert bodies per preset (as received by a local HTTP server)", () => {
  test("json, slack, discord, ntfy and telegram", async () => {
    const channels: Channel[] = [
      { name: "j", type: "webhook", preset: "json", url: `${base}/json` },
      { name: "s", type: "webhook", preset: "slack", url: `${base}/slack` },
      { name: "d", type: "webhook", preset: "discord", url: `${base}/discord` },
      { name: "n", type: "webhook", preset: "ntfy", url: `${base}/pool-alerts` },
      { name: "t", type: "telegram", chatId: "-1001", apiUrl: base, token: { env: "X" }, secret: TOKEN },
    ];
    const notifier = createNotifier(cfg(), channels, { clock: realClock, log: logs().log, host: "pool1" });
    notifier.notify(event({ text: "#0 <died> & @everyone" }));
    await notifier.flush(2_000);
    const by = Object.fromEntries(hits.map((h) => [h.path, h.body]));
    expect(by["/json"]).toEqual({ source: "jorm-master", host: "pool1", kind: "failover", severity: "warning", title: "failover: #0 → #1 signs", text: "#0 <died> & @everyone", runner: 1, at: "2026-01-02T03:04:05.000Z" });
    expect(by["/slack"]).toEqual({ text: "🟠 *jorm-master@pool1: failover: #0 → #1 signs*\n#0 &lt;died&gt; &amp; @everyone" });
    expect(by["/discord"]).toEqual({ content: "**🟠 jorm-master@pool1: failover: #0 → #1 signs**\n#0 <died> & @everyone", allowed_mentions: { parse: [] } });
    // ntfy: JSON publishing goes to the server root, the topic comes from the configured URL
    expect(by["/"]).toEqual({ topic: "pool-alerts", title: "jorm-master@pool1: failover: #0 → #1 signs", message: "#0 <died> & @everyone", priority: 4, tags: ["warning", "failover"] });
    expect(by[`/bot${TOKEN}/sendMessage`]).toEqual({ chat_id: "-1001", text: "🟠 jorm-master@pool1: failover: #0 → #1 signs\n#0 <died> & @everyone", disable_web_page_preview: true });
    expect(count(notifier.counts(), "t", "sent")).toBe(1);
  });
});

describe("delivery", () => {
  const chan = (path: string, name = "hook"): Channel => ({ name, type: "webhook", preset: "json", url: `${base}${path}` });

  test("the same key within the dedup window is sent once", async () => {
    const notifier = createNotifier(cfg(), [chan("/dedup")], { clock: realClock, log: logs().log, host: "h" });
    notifier.notify(event({ key: "same" }));
    notifier.notify(event({ key: "same" }));
    notifier.notify(event({ key: "other" }));
    await notifier.flush(2_000);
    expect(hits.length).toBe(2);
    expect(count(notifier.counts(), "hook", "deduplicated")).toBe(1);
  });

  test("the rate limit holds alerts back and the next one sent says how many", async () => {
    let now = 0;
    const clock = { now: () => now, sleep: realClock.sleep };
    const notifier = createNotifier(cfg({ rateLimit: 2, rateWindowMs: 60_000 }), [chan("/rate")], { clock, log: logs().log, host: "h" });
    for (let i = 0; i < 5; i++) notifier.notify(event());
    await notifier.flush(2_000);
    expect(hits.length).toBe(2);
    expect(count(notifier.counts(), "hook", "rate_limited")).toBe(3);
    now = 60_000;
    notifier.notify(event({ text: "later" }));
    await notifier.flush(2_000);
    expect(hits.map((h) => h.body.text)).toEqual(["#0 died", "#0 died", "later\n(3 more alerts held back by the rate limit)"]);
  });

  test("a failed send is retried with backoff and counts as sent when a retry succeeds", async () => {
    failing.set("/retry", 502);
    const { lines, log } = logs();
    const notifier = createNotifier(cfg({ retries: 3 }), [chan("/retry")], { clock: realClock, log, host: "h", backoffBaseMs: 40 });
    const t0 = Date.now();
    notifier.notify(event());
    await Bun.sleep(60); // attempt 1 at 0 ms, attempt 2 at ~40 ms
    failing.delete("/retry");
    await notifier.flush(2_000);
    expect(hits.length).toBe(3); // 0, 40, 40+80 ms
    expect(Date.now() - t0).toBeGreaterThanOrEqual(120);
    expect(count(notifier.counts(), "hook", "sent")).toBe(1);
    expect(count(notifier.counts(), "hook", "failed")).toBe(0);
    expect(lines).toEqual([]);
  });

  test("a failing channel is counted, logged once per streak without its secret, and once when it recovers", async () => {
    failing.set(`/bot${TOKEN}/sendMessage`, 401);
    const { lines, log } = logs();
    const tg: Channel = { name: "tg", type: "telegram", chatId: "1", apiUrl: base, token: { env: "X" }, secret: TOKEN };
    const notifier = createNotifier(cfg({ retries: 1 }), [tg], { clock: realClock, log, host: "h", backoffBaseMs: 5 });
    for (let i = 0; i < 3; i++) notifier.notify(event());
    await notifier.flush(2_000);
    expect(hits.length).toBe(6);
    expect(count(notifier.counts(), "tg", "failed")).toBe(3);
    expect(lines.length).toBe(1);
    expect(lines[0]).toStartWith(`warn alerts: telegram channel "tg" (127.0.0.1:${receiver.port}) failed after 2 attempts: HTTP 401 boom`);
    failing.clear();
    notifier.notify(event());
    await notifier.flush(2_000);
    expect(lines.length).toBe(2);
    expect(lines[1]).toBe(`info alerts: telegram channel "tg" (127.0.0.1:${receiver.port}) delivers again`);
    expect(lines.join("\n")).not.toContain("SECRET");
  });

  test("an unreachable webhook's error never shows its URL path (Slack's secret)", async () => {
    const { lines, log } = logs();
    const dead: Channel = { name: "slack", type: "webhook", preset: "slack", url: "http://127.0.0.1:1/services/T000/B000/XXXXSECRET" };
    const notifier = createNotifier(cfg({ retries: 0 }), [dead], { clock: realClock, log, host: "h" });
    notifier.notify(event());
    await notifier.flush(3_000);
    expect(count(notifier.counts(), "slack", "failed")).toBe(1);
    expect(lines.length).toBe(1);
    expect(lines[0]).not.toContain("XXXXSECRET");
  });

  test("notify never blocks: a receiver that hangs does not delay the caller, and the queue is bounded", async () => {
    slow.set("/slow", 300);
    const notifier = createNotifier(cfg({ retries: 0, rateLimit: 1000 }), [chan("/slow")], { clock: realClock, log: logs().log, host: "h", queueMax: 3 });
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) notifier.notify(event());
    expect(performance.now() - t0).toBeLessThan(50);
    await notifier.flush(5_000);
    // the first went out at once; of the nine queued behind it, three stayed
    expect(count(notifier.counts(), "hook", "dropped")).toBe(6);
    expect(count(notifier.counts(), "hook", "sent")).toBe(4);
  });

  test("a request that never answers is cut at the timeout", async () => {
    slow.set("/hang", 5_000);
    const notifier = createNotifier(cfg({ retries: 0, timeoutMs: 100 }), [chan("/hang")], { clock: realClock, log: logs().log, host: "h" });
    const t0 = Date.now();
    notifier.notify(event());
    await notifier.flush(3_000);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(count(notifier.counts(), "hook", "failed")).toBe(1);
  });
});

describe("loadChannels", () => {
  const tg = (token: { file: string } | { env: string }): AlertsConfig => cfg({ channels: [{ name: "tg", type: "telegram", chatId: "1", apiUrl: base, token }] });
  test("reads the token from a file or the environment", () => {
    const dir = mkdtempSync(join(tmpdir(), "jm-alerts-"));
    writeFileSync(join(dir, "token"), `${TOKEN}\n`);
    expect(loadChannels(tg({ file: join(dir, "token") }))[0]!.secret).toBe(TOKEN);
    expect(loadChannels(tg({ env: "TG" }), { TG: TOKEN })[0]!.secret).toBe(TOKEN);
  });
  test("a missing token names where it was looked for", () => {
    expect(() => loadChannels(tg({ env: "TG" }), {})).toThrow('alerts channel "tg": token_env TG is not set');
    expect(() => loadChannels(tg({ file: "/nonexistent/token" }))).toThrow("cannot read token_file /nonexistent/token: ENOENT");
  });
});

describe("reply cap", () => {
  test("an endless error reply is read only up to ALERT_REPLY_MAX_BYTES: the alert fails with the status, fast", async () => {
    const { lines, log } = logs();
    const notifier = createNotifier(cfg({ retries: 0, timeoutMs: 5_000 }), [{ name: "hook", type: "webhook", preset: "json", url: `${base}/endless-error` }], { clock: realClock, log, host: "pool1" });
    const started = performance.now();
    notifier.notify(event());
    await notifier.flush(5_000);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(count(notifier.counts(), "hook", "failed")).toBe(1);
    expect(lines.join("\n")).toContain("HTTP 500");
    // The reply stream was dropped, not drained until the deadline (socket buffers hold a few MB)
    await Bun.sleep(200);
    const pulled = endlessPulled;
    await Bun.sleep(200);
    expect(endlessPulled).toBe(pulled);
    expect(pulled * 64 * 1024).toBeLessThan(512 * ALERT_REPLY_MAX_BYTES);
  });
});
