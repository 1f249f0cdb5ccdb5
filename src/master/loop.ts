// observe → decide → act, forever. The loop wakes at the latest after loop_period, earlier at
// every window edge and boundary the plan names, and right after acting to confirm.

import type { ResolvedConfig } from "../config/types.ts";
import { act, type MasterDeps } from "./act.ts";
import { emptyMemory, step } from "./decide.ts";
import { START_BACKOFF_MAX_MS } from "./rules.ts";
import { observe, type ObserveState } from "./observe.ts";
import { NO_INTENT, type OperatorIntent } from "./intent.ts";
import { epochClock } from "./schedule.ts";
import type { Memory, Observation, Outcome, Plan, RunnerView } from "./types.ts";

export interface MasterLog {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  debug(msg: string): void;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * How loud one outcome is. A warning must mean something needs attention, so the routine boundary
 * hand-out is info: the co-holders' promotion (purpose "boundary") and, from the boundary on, the
 * demotions that take their key back (the strip, and "is not the signer" while one still lists
 * it), including a removal queued behind the schedule computation. Every other fence and promotion
 * answers a real problem and stays a warning; failures are errors (transient ones warnings).
 */
export function outcomeLevel(o: Outcome, hand: { boundary: Memory["boundary"]; boundaryStartMs: number | null; nowMs: number }): LogLevel {
  const a = o.action;
  if (a.kind === "reportTip" || a.kind === "disarm") return "debug";
  const routine =
    (a.kind === "promote" && a.purpose === "boundary" && o.ok) ||
    (a.kind === "demote" &&
      (o.ok || o.transient === true) &&
      hand.boundary !== null &&
      hand.boundary.coHolders.includes(a.id) &&
      hand.boundaryStartMs !== null &&
      hand.nowMs >= hand.boundaryStartMs);
  if (routine) return "info";
  if (!o.ok) return o.transient ? "warn" : "error";
  if (a.kind === "promote" || a.kind === "demote" || a.kind === "freeze" || a.kind === "kill") return "warn";
  return "info";
}

export interface TickReport {
  startedMs: number;
  durationMs: number;
  observation: Observation;
  views: RunnerView[];
  plan: Plan;
  outcomes: Outcome[];
  memory: Memory;
}

export interface MasterOptions {
  deps: MasterDeps;
  config: ResolvedConfig;
  log: MasterLog;
  onTick?: (r: TickReport) => void;
  /** When a streak of failed ticks ends the loop (default TICK_FAILURE_LIMIT) */
  tickFailureLimit?: TickFailureLimit;
}

/** A streak of ticks that threw ends `run` once it has both this many ticks and lasted this long. */
export interface TickFailureLimit {
  ticks: number;
  ms: number;
}

/**
 * A tick that throws supervises nothing (an invalid REST URL, a bug): a few in a row are bad luck,
 * but a streak that lasts means the daemon is blind while its unit still looks active. Then `run`
 * fails, the daemon exits non-zero, and systemd restarts it (and shows it, in NRestarts and the
 * journal). Both bounds: a long loop_period still gets several tries, a short one half a minute.
 */
export const TICK_FAILURE_LIMIT: TickFailureLimit = { ticks: 10, ms: 30_000 };

/** Thrown by Master.run when ticks kept failing beyond the limit. */
export class TicksFailingError extends Error {
  constructor(
    readonly ticks: number,
    readonly ms: number,
    readonly last: string,
  ) {
    super(`${ticks} ticks in a row failed over ${Math.round(ms / 1000)} s; last: ${last}`);
    this.name = "TicksFailingError";
  }
}

/** Repeated failures are logged once per streak, not every tick. */
class Streaks {
  private last = new Map<string, string>();
  report(key: string, msg: string | null, log: (m: string) => void, recovered: (m: string) => void) {
    const prev = this.last.get(key);
    if (msg === null) {
      if (prev !== undefined) {
        this.last.delete(key);
        recovered(`${key}: recovered`);
      }
      return;
    }
    if (prev !== msg) {
      this.last.set(key, msg);
      log(`${key}: ${msg}`);
    }
  }
}

export class Master {
  config: ResolvedConfig;
  memory: Memory = emptyMemory();
  readonly state: ObserveState = { settings: null, majorityMax: null };
  private readonly streaks = new Streaks();
  private poolToolNextMs = 0;
  private poolToolInFlight = false;
  poolToolFailures = 0;
  private lastNotes = new Set<string>();
  ticks = 0;
  /** What the operator asked for (holds, a switchover): passed with every observation */
  intent: OperatorIntent = NO_INTENT;

  private opts: MasterOptions;

  constructor(opts: MasterOptions) {
    this.opts = opts;
    this.config = opts.config;
    this.reconfigure(opts.config, opts.deps);
  }

  /** Takes a new configuration and the ports built from it (a reload); a tick under way finishes
   *  with the old ones, the next tick uses these. Memory is kept: it describes the runners. */
  reconfigure(config: ResolvedConfig, deps: MasterDeps): void {
    const { log } = this.opts;
    this.config = config;
    // Tip sharing is fire-and-forget in act; its failures are counted and told once per streak here.
    const pt = deps.pooltool;
    this.opts = {
      ...this.opts,
      config,
      deps: !pt
        ? deps
        : {
            ...deps,
            pooltool: {
              majorityMax: () => pt.majorityMax(),
              shareTip: (h) =>
                pt.shareTip(h).then(
                  () => this.streaks.report("pooltool tip", null, log.warn, log.info),
                  (e) => {
                    this.poolToolFailures++;
                    this.streaks.report("pooltool tip", `sharing the tip failed: ${e instanceof Error ? e.message : String(e)}`, log.warn, log.info);
                  },
                ),
            },
          },
    };
    // A PoolTool turned on is asked at the next tick; one turned off is no reference any more.
    this.poolToolNextMs = 0;
    if (!pt) this.state.majorityMax = null;
  }

  /** The ports in use (the last ones given). */
  get deps(): MasterDeps {
    return this.opts.deps;
  }

  /** One tick. Returns when the next one is due. */
  async tick(signal?: AbortSignal): Promise<TickReport> {
    const { deps, log } = this.opts;
    const startedMs = deps.clock.now();
    this.refreshPoolTool(startedMs);
    // Due the moment the epoch starts, before observing: the co-holders' key removals (fences, in parallel).
    const early = step(this.memory, { kind: "epoch-start", settings: this.state.settings, now: startedMs });
    this.memory = early.memory;
    const earlyOutcomes = early.plan.fences.length > 0 ? await act(deps, early.plan) : [];
    const observation = { ...(await observe(deps, this.config, this.memory, this.state)), intent: this.intent };
    const { plan, memory, views } = step(this.memory, { kind: "observed", obs: observation, config: this.config, now: deps.clock.now() });
    this.memory = memory;
    // A situation that lasts (a signer kept while unwell, say) is told once, not every tick.
    for (const n of plan.notes) if (!this.lastNotes.has(n)) log.info(n);
    this.lastNotes = new Set(plan.notes);
    this.logFailures(observation);
    this.logStartBackoff(plan);
    const outcomes = [...earlyOutcomes, ...(await act(deps, plan, signal))];
    this.logOutcomes(outcomes, this.memory.boundary);
    this.memory = step(this.memory, { kind: "acted", outcomes, now: deps.clock.now() }).memory;
    this.ticks++;
    const report: TickReport = {
      startedMs,
      durationMs: deps.clock.now() - startedMs,
      observation,
      views,
      plan,
      outcomes,
      memory: this.memory,
    };
    this.opts.onTick?.(report);
    return report;
  }

  /**
   * The last act of a daemon told to stop (SIGTERM): one more look, then every runner that would
   * become a second signer without a daemon is fenced (see partingFences). Not called on a crash.
   */
  async part(): Promise<Outcome[]> {
    const { deps } = this.opts;
    const observation = { ...(await observe(deps, this.config, this.memory, this.state)), intent: this.intent };
    const { plan } = step(this.memory, { kind: "parting", obs: observation, config: this.config, now: deps.clock.now() });
    const outcomes = await act(deps, plan);
    // Parting fences are never routine: no hand-out context.
    this.logOutcomes(outcomes, null);
    return outcomes;
  }

  /** One line per action, at the level outcomeLevel gives it. */
  private logOutcomes(outcomes: readonly Outcome[], boundary: Memory["boundary"]) {
    const { log, deps } = this.opts;
    const settings = this.state.settings;
    const hand = { boundary, boundaryStartMs: boundary && settings ? epochClock(settings).epochStartMs(boundary.epoch) : null, nowMs: deps.clock.now() };
    for (const o of outcomes) {
      const a = o.action;
      const who = "id" in a ? `#${a.id}` : "pooltool";
      const line = `${a.kind} ${who}: ${a.reason} → ${o.ok ? "" : o.transient ? "not yet: " : "FAILED: "}${o.detail}`;
      log[outcomeLevel(o, hand)](line);
    }
  }

  /** Runs until `signal` aborts. Leaves the runners exactly as they are (see part()). Rejects with
   *  TicksFailingError when ticks keep failing (see TICK_FAILURE_LIMIT). */
  async run(signal: AbortSignal): Promise<void> {
    const limit = this.opts.tickFailureLimit ?? TICK_FAILURE_LIMIT;
    let failed: { count: number; sinceMs: number } | null = null;
    while (!signal.aborted) {
      // Read each round: a reload may have replaced the ports.
      const { deps, log } = this.opts;
      let wakeAt: number;
      try {
        const r = await this.tick(signal);
        wakeAt = r.plan.wakeAtMs;
        if (failed) log.info(`ticks work again after ${failed.count} failed`);
        failed = null;
      } catch (e) {
        // One bad tick must not end supervision: log it and look again. A streak does (see above).
        const now = deps.clock.now();
        failed = failed ? { count: failed.count + 1, sinceMs: failed.sinceMs } : { count: 1, sinceMs: now };
        const text = e instanceof Error ? e.message : String(e);
        log.error(`tick failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        if (failed.count >= limit.ticks && now - failed.sinceMs >= limit.ms) throw new TicksFailingError(failed.count, now - failed.sinceMs, text);
        wakeAt = now + this.config.loopPeriodMs;
      }
      const delay = wakeAt - deps.clock.now();
      if (delay > 0) await deps.clock.sleep(delay, signal);
    }
  }

  private refreshPoolTool(now: number) {
    const pt = this.opts.deps.pooltool;
    const cfg = this.config.pooltool;
    if (!pt || !cfg || this.poolToolInFlight || now < this.poolToolNextMs) return;
    this.poolToolInFlight = true;
    this.poolToolNextMs = now + cfg.recvWaitMs;
    pt.majorityMax()
      .then((h) => {
        this.state.majorityMax = h;
        this.streaks.report("pooltool", null, this.opts.log.warn, this.opts.log.info);
      })
      .catch((e) => {
        this.poolToolFailures++;
        this.streaks.report("pooltool", `majority max unavailable: ${e instanceof Error ? e.message : String(e)}`, this.opts.log.warn, this.opts.log.info);
      })
      .finally(() => {
        this.poolToolInFlight = false;
      });
  }

  /** A unit whose runs fail at start (exit 78): one line when its starts begin to back off, one when
   *  a run lasts again; not one per start. */
  private logStartBackoff(plan: Plan) {
    for (let id = 0; id < this.config.cntRunners; id++) {
      const b = plan.startBackoff?.[id];
      this.streaks.report(`runner #${id} unit`, b ? `${b.why}; starts back off up to ${START_BACKOFF_MAX_MS / 60_000} min` : null, this.opts.log.warn, this.opts.log.info);
    }
  }

  private logFailures(obs: Observation) {
    for (const r of obs.runners) {
      if (r.id >= this.config.cntRunners) continue;
      const s = r.stats;
      const msg = s && !s.ok && s.error.kind !== "not_ready" ? `REST ${s.error.kind}: ${s.error.message ?? ""}`.trim() : null;
      this.streaks.report(`runner #${r.id}`, msg, this.opts.log.warn, this.opts.log.info);
    }
  }
}
