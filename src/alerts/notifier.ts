// Delivers alerts to the configured channels without ever holding up a tick: notify() only queues
// (bounded) and returns; one worker per channel sends, with a deadline per request and retries with
// exponential backoff. Duplicates (same key within dedup_window) are sent once; each channel sends
// at most rate_limit alerts per rate_window, and the next one that goes out says how many were
// held back. A failing channel is logged once per streak (and once when it recovers); every
// outcome is counted for jorm_master_alerts_total{channel,result}.

import { readFileSync } from "node:fs";
import type { AlertsConfig } from "../config/types.ts";
import type { Clock } from "../master/ports.ts";
import type { AlertEvent } from "./events.ts";
import { alertRequest, describeChannel, redact, type Channel } from "./presets.ts";
import { readCapped } from "../node/http.ts";

/** Alerts waiting per channel; beyond this the oldest is dropped (a dead channel must not grow memory). */
export const ALERT_QUEUE_MAX = 100;
/** A reply is only quoted (a few dozen characters): reading more is memory for nothing */
export const ALERT_REPLY_MAX_BYTES = 64 * 1024;
/** First retry after this long, then doubling */
export const ALERT_BACKOFF_BASE_MS = 2_000;
export const ALERT_RESULTS = ["sent", "failed", "deduplicated", "rate_limited", "dropped"] as const;
export type AlertResult = (typeof ALERT_RESULTS)[number];

export interface AlertLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface AlertCount {
  channel: string;
  result: AlertResult;
  value: number;
}

export interface Notifier {
  /** Never blocks and never throws. */
  notify(e: AlertEvent): void;
  /** Resolves when every queue is empty, or after timeoutMs (for the daemon's last words). */
  flush(timeoutMs: number): Promise<void>;
  counts(): AlertCount[];
}

export interface NotifierOptions {
  clock: Clock;
  log: AlertLog;
  host: string;
  fetch?: typeof fetch;
  backoffBaseMs?: number;
  queueMax?: number;
}

/** Reads the secret a channel needs (a Telegram token from its file or env). Throws a message that
 *  names the file or variable, never the token. */
export function loadChannels(cfg: AlertsConfig, env: Record<string, string | undefined> = process.env): Channel[] {
  return cfg.channels.map((c) => {
    if (c.type !== "telegram") return c;
    let token: string | undefined;
    if ("file" in c.token) {
      try {
        token = readFileSync(c.token.file, "utf8").trim();
      } catch (e) {
        throw new Error(`alerts channel "${c.name}": cannot read token_file ${c.token.file}: ${(e as { code?: string }).code ?? "error"}`);
      }
      if (!token) throw new Error(`alerts channel "${c.name}": token_file ${c.token.file} is empty`);
    } else {
      token = env[c.token.env]?.trim();
      if (!token) throw new Error(`alerts channel "${c.name}": token_env ${c.token.env} is not set`);
    }
    return { ...c, secret: token };
  });
}

interface Lane {
  ch: Channel;
  queue: AlertEvent[];
  busy: boolean;
  sentAt: number[];
  heldBack: number;
  failing: boolean;
  counts: Map<AlertResult, number>;
}

export function createNotifier(cfg: AlertsConfig, channels: Channel[], opts: NotifierOptions): Notifier {
  const doFetch = opts.fetch ?? fetch;
  const backoff = opts.backoffBaseMs ?? ALERT_BACKOFF_BASE_MS;
  const queueMax = opts.queueMax ?? ALERT_QUEUE_MAX;
  const lanes: Lane[] = channels.map((ch) => ({ ch, queue: [], busy: false, sentAt: [], heldBack: 0, failing: false, counts: new Map() }));
  const lastSent = new Map<string, number>();
  const idle: (() => void)[] = [];
  const count = (l: Lane, r: AlertResult) => l.counts.set(r, (l.counts.get(r) ?? 0) + 1);

  async function sendOnce(l: Lane, e: AlertEvent): Promise<string | null> {
    const req = alertRequest(e, l.ch, opts.host);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), cfg.timeoutMs);
    try {
      const res = await doFetch(req.url, { method: "POST", headers: req.headers, body: req.body, signal: controller.signal });
      // Only a snippet of the reply is used: read at most ALERT_REPLY_MAX_BYTES, never the whole of an endless one
      const text = (await readCapped(res, ALERT_REPLY_MAX_BYTES).catch(() => "")) ?? "";
      if (res.ok) return null;
      return `HTTP ${res.status}${text ? ` ${text.trim().slice(0, 80)}` : ""}`;
    } catch (err) {
      if (controller.signal.aborted) return `no answer within ${cfg.timeoutMs} ms`;
      return (err as { code?: string }).code ?? (err as Error)?.message ?? String(err);
    } finally {
      clearTimeout(timer);
    }
  }

  async function drain(l: Lane) {
    l.busy = true;
    while (l.queue.length > 0) {
      const e = l.queue.shift()!;
      let error: string | null = null;
      for (let attempt = 0; attempt <= cfg.retries; attempt++) {
        if (attempt > 0) await opts.clock.sleep(backoff * 2 ** (attempt - 1));
        error = await sendOnce(l, e);
        if (error === null) break;
      }
      if (error === null) {
        count(l, "sent");
        if (l.failing) opts.log.info(`alerts: ${describeChannel(l.ch)} delivers again`);
        l.failing = false;
      } else {
        count(l, "failed");
        if (!l.failing) opts.log.warn(`alerts: ${describeChannel(l.ch)} failed after ${cfg.retries + 1} attempts: ${redact(error, l.ch)} (told once until it recovers)`);
        l.failing = true;
      }
    }
    l.busy = false;
    if (lanes.every((x) => !x.busy)) for (const f of idle.splice(0)) f();
  }

  return {
    notify(e) {
      try {
        const now = opts.clock.now();
        const dup = lastSent.get(e.key);
        const isDup = dup !== undefined && now - dup < cfg.dedupWindowMs;
        if (!isDup) lastSent.set(e.key, now);
        if (lastSent.size > 1000) for (const [k, t] of lastSent) if (now - t >= cfg.dedupWindowMs) lastSent.delete(k);
        for (const l of lanes) {
          if (isDup) {
            count(l, "deduplicated");
            continue;
          }
          l.sentAt = l.sentAt.filter((t) => now - t < cfg.rateWindowMs);
          if (l.sentAt.length >= cfg.rateLimit) {
            l.heldBack++;
            count(l, "rate_limited");
            continue;
          }
          l.sentAt.push(now);
          const out = l.heldBack > 0 ? { ...e, text: `${e.text}\n(${l.heldBack} more alerts held back by the rate limit)` } : e;
          l.heldBack = 0;
          l.queue.push(out);
          if (l.queue.length > queueMax) {
            l.queue.shift();
            count(l, "dropped");
          }
          if (!l.busy) void drain(l).catch(() => (l.busy = false));
        }
      } catch {
        // An alert must never break the tick that raised it.
      }
    },
    flush(timeoutMs) {
      if (lanes.every((l) => !l.busy)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        idle.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    counts() {
      return lanes.flatMap((l) => ALERT_RESULTS.map((result) => ({ channel: l.ch.name, result, value: l.counts.get(result) ?? 0 })));
    },
  };
}
