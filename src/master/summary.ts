// Short human summaries of a tick, pure: the systemd STATUS= line and the demo's footer.
import type { ResolvedConfig } from "../config/types.ts";
import { clusterBlock } from "./cluster.ts";
import { epochClock } from "./schedule.ts";
import type { Memory, Observation, RunnerView } from "./types.ts";

/** Runners that could take over right now: Running, answering, key-less or holding, not frozen. */
export function warmCount(views: readonly RunnerView[], cnt: number): number {
  return views.filter((v) => v.id < cnt && v.running && (v.cap === "keyless" || v.cap === "holder")).length;
}

/** ms until the next known leader slot of the pool, or null */
export function nextSlotInMs(obs: Observation, memory: Memory, now: number): number | null {
  if (!obs.settings) return null;
  const clock = epochClock(obs.settings);
  for (const abs of memory.events) {
    const t = clock.slotStartMs(abs);
    if (t > now) return t - now;
  }
  return null;
}

const secs = (ms: number) => (ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`);

/** e.g. "signer #1 · 3/3 warm · next slot in 42 s" */
export function statusLine(obs: Observation, views: readonly RunnerView[], memory: Memory, config: ResolvedConfig, now: number): string {
  const signer = memory.signer === null ? "no signer" : `signer #${memory.signer}`;
  const warm = `${warmCount(views, config.cntRunners)}/${config.cntRunners} warm`;
  const next = nextSlotInMs(obs, memory, now);
  const parts = [signer, warm, next === null ? "no known slot ahead" : `next slot in ${secs(next)}`];
  // Cluster mode: whether this host's etcd lease lets it sign, or who holds it.
  const c = obs.cluster;
  if (c) parts.push(clusterBlock(c, now) === null ? "cluster: this host signs" : c.maySign ? "cluster: lease held, not signing yet" : `cluster: ${c.holder ? `${c.holder} signs` : "no signing host known"}`);
  return parts.join(" · ");
}

/** Keys whose values differ between two resolved configs, as "key: old → new" lines. */
export function configChanges(a: ResolvedConfig, b: ResolvedConfig): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, path: string) => {
    // Webhook URLs carry secrets in their path: say that alerts changed, never how (issue 12).
    if (path === "alerts") {
      if (JSON.stringify(x) !== JSON.stringify(y)) out.push("alerts: changed (channels are read when the daemon starts: restart it to apply)");
      return;
    }
    if (typeof x === "object" && x !== null && typeof y === "object" && y !== null && !Array.isArray(x) && !Array.isArray(y)) {
      const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
      for (const k of keys) walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      return;
    }
    const sx = JSON.stringify(x);
    const sy = JSON.stringify(y);
    if (sx !== sy) out.push(`${path}: ${sx ?? "unset"} → ${sy ?? "unset"}`);
  };
  walk(a, b, "");
  return out;
}
