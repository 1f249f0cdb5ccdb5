// Coverage policy: pure rules that make the key and the schedules sit where the slots can be
// produced, on sparse and busy pools alike. decide() calls them; none of them fences or decides
// safety (the window rule and the fences in decide stay in charge of that).

import type { ResolvedConfig } from "../config/types.ts";
import type { Window } from "./schedule.ts";

/** A booting --secret runner is frozen at most this many times its bootstrap in total while it boots
 *  (frozen through every window near it, it still finishes: 20–25 % of slots leave gaps of ~60 %). */
export const BOOT_FREEZE_BUDGET = 3;
/** A cold standby restarted to compute the current epoch (key mode boot) gets max_boot plus this for
 *  its schedule before the attempt counts as failed (ITN computes an epoch in ~30 s). */
export const WARM_COMPUTE_ALLOWANCE_MS = 60_000;

/**
 * How long before a window a booting key holder is frozen: the loop must see it Running (one tick:
 * loop_period plus a REST deadline) and queue its demotion, which the enclave applies before any
 * event of the schedule it is computing. Not event_action: with that lead a busy pool's windows
 * leave no gap at all, and a runner frozen through all of them never finishes booting.
 */
export function bootLeadMs(config: ResolvedConfig): number {
  return 2 * config.loopPeriodMs + config.restTimeoutMs;
}

/**
 * Time the boundary hand-out needs before the boundary, from the instant the tick decides it (the
 * tick that wakes when the epoch's last window closes; its observation is already done): each
 * standby's POST and its read-back, one REST deadline each, the standbys in parallel. Sized from
 * config, not from a simulator's latencies. A POST that still lands late costs nothing but the
 * hand-out: the node computes for the keys it holds at the boundary, and the co-holder's dead-man
 * switch fences it before slot 1's window.
 */
export function handoutNeedMs(config: ResolvedConfig): number {
  return 2 * config.restTimeoutMs;
}

/**
 * Whether a runner started now with --secret would finish booting within the freeze budget: walking
 * the known windows ahead, it progresses only outside [start − bootLead, end). `bootMs` is the
 * expected time to Running (as last observed).
 */
export function bootFits(windows: readonly Window[], now: number, bootMs: number, leadMs: number): { fits: boolean; frozenMs: number } {
  let t = now;
  let progressed = 0;
  let frozen = 0;
  const budget = BOOT_FREEZE_BUDGET * bootMs;
  for (const w of windows) {
    const from = w.startMs - leadMs;
    if (w.endMs <= t) continue;
    if (from > t) {
      const free = from - t;
      if (progressed + free >= bootMs) return { fits: true, frozenMs: frozen };
      progressed += free;
    }
    frozen += w.endMs - Math.max(t, from);
    t = w.endMs;
    if (frozen > budget) return { fits: false, frozenMs: frozen };
  }
  return { fits: true, frozenMs: frozen };
}

export type BootMode = "key" | "passive";

/**
 * How each runner boots if (re)started now. Key mode rest: passive. Key mode boot: with the key when
 * it can finish booting in the gaps (bootFits), else passive, to be warmed at the next boundary.
 * With no boot observed yet, with the key (a warm standby is worth more than a frozen boot costs).
 */
export function bootMode(config: ResolvedConfig, windows: readonly Window[], now: number, bootMs: number | null, leadMs: number): { mode: BootMode; why: string } {
  if (config.keyMode !== "boot") return { mode: "passive", why: "key mode rest" };
  if (bootMs === null) return { mode: "key", why: "no boot duration observed yet" };
  const f = bootFits(windows, now, bootMs, leadMs);
  return f.fits
    ? { mode: "key", why: `a ${Math.round(bootMs / 1000)} s boot fits between the windows` }
    : { mode: "passive", why: `a ${Math.round(bootMs / 1000)} s boot would be frozen over ${BOOT_FREEZE_BUDGET}× as long by the windows ahead` };
}
