// The daemon's one handle on alerts: fold each tick in, say when it starts and stops, expose the
// counts for /metrics. With no `alerts:` section every method is a no-op.

import { hostname } from "node:os";
import type { ResolvedConfig } from "../config/types.ts";
import { ConfigError } from "../errors.ts";
import type { TickReport } from "../master/loop.ts";
import { realClock, type Clock } from "../ports.ts";
import type { RegistryRound } from "../master/registry.ts";
import { AlertWatcher, RegistryAlertWatcher, type AlertEvent } from "./events.ts";
import { createNotifier, loadChannels, type AlertCount, type AlertLog, type Notifier } from "./notifier.ts";

export interface Alerts {
  onTick(r: TickReport, config: ResolvedConfig): void;
  /** Cluster mode: a read of the host registry (signing host changes, hosts gone and back) */
  onRegistry(r: RegistryRound): void;
  notify(e: AlertEvent): void;
  /** The daemon is supervising (after its first observation) */
  started(summary: string): void;
  /** The daemon stops: the alert goes out, waiting at most timeoutMs */
  stopping(reason: string, timeoutMs: number): Promise<void>;
  counts(): AlertCount[];
}

export function createAlerts(config: ResolvedConfig, log: AlertLog, opts: { clock?: Clock; fetch?: typeof fetch; env?: Record<string, string | undefined>; host?: string } = {}): Alerts {
  const cfg = config.alerts;
  const clock = opts.clock ?? realClock;
  let notifier: Notifier | null = null;
  if (cfg) {
    let channels;
    try {
      channels = loadChannels(cfg, opts.env);
    } catch (e) {
      throw new ConfigError(`${config.source ?? "config"}: ${e instanceof Error ? e.message : String(e)}`);
    }
    notifier = createNotifier(cfg, channels, { clock, log, host: opts.host ?? hostname(), fetch: opts.fetch });
    log.info(`alerts to ${channels.map((c) => `${c.name} (${c.type === "telegram" ? "telegram" : c.preset})`).join(", ")}`);
  }
  const notify = (e: AlertEvent) => notifier?.notify(e);
  const watcher = new AlertWatcher(notify);
  const registry = new RegistryAlertWatcher(notify);
  return {
    onTick(r, c) {
      if (!notifier) return;
      try {
        watcher.onTick(r, c);
      } catch (e) {
        // A bug here must cost an alert, never a tick of supervision.
        log.warn(`alerts: ${e instanceof Error ? e.message : String(e)}`);
      }
    },
    onRegistry(r) {
      if (!notifier) return;
      try {
        registry.onRound(r);
      } catch (e) {
        log.warn(`alerts: ${e instanceof Error ? e.message : String(e)}`);
      }
    },
    notify,
    started: (summary) => notify({ kind: "daemon_start", severity: "info", key: `daemon_start:${clock.now()}`, title: "daemon started", text: summary, atMs: clock.now() }),
    async stopping(reason, timeoutMs) {
      if (!notifier) return;
      notify({ kind: "daemon_stop", severity: "warning", key: `daemon_stop:${clock.now()}`, title: "daemon stopping", text: reason, atMs: clock.now() });
      await notifier.flush(timeoutMs);
    },
    counts: () => notifier?.counts() ?? [],
  };
}
