// The master's brain: a pure function of (observation, memory, config, now). No I/O, no clock.
//
// The guarantee it keeps: inside every leader-slot window at most one runner can sign. A runner
// can sign unless proven stopped, frozen, or key-less; anything unknown is fenced before anyone
// else is promoted. Under that invariant it maximises produced slots: the key stays on a healthy
// holder, standbys stay warm and get the next epoch's schedule at the boundary, and a failover
// goes to the standby that holds a schedule for the coming slots.
//
// A tick: memory.ts folds the observation in; situation.ts builds the one immutable Situation
// (views, windows, danger, reference height, epoch facts, the shared predicates); the named rules of
// rules.ts each read it (and the plan so far only where named) and return actions tagged with their
// rule; memory.ts keeps what they decided. `step` is the loop's one entry into this core.

import type { ResolvedConfig } from "../config/types.ts";
import type { Settings } from "../node/types.ts";
import { clusterBlock, gateByCluster } from "./cluster.ts";
import { markStripped, mayHoldKey, noteViews, remember, settle, applyOutcomes } from "./memory.ts";
import {
  adoptDisarm,
  bootModes,
  boundaryHandout,
  chooseSigner,
  coverageMove,
  operatorMove,
  dueNow,
  failover,
  frozenRunners,
  housekeeping,
  retireExtras,
  tag,
  tipReport,
  wakeUp,
  warmth,
} from "./rules.ts";
import { epochClock } from "./schedule.ts";
import { epochFacts, referenceHeight, situation, viewsOf } from "./situation.ts";
import type { Action, Memory, Observation, Outcome, Plan, RunnerView } from "./types.ts";

export {
  actionKey,
  applyOutcomes,
  EMPTY_LOGS_REFRESH_MS,
  emptyMemory,
  LOGS_REFRESH_MS,
  PERMIT_READ_GRACE_MS,
  proofBroken,
  remember,
  RETRY_BASE_MS,
  RETRY_MAX_MS,
  retryDue,
  START_JITTER_MS,
  UPTIME_JITTER_MS,
} from "./memory.ts";
export {
  best,
  BOUNDARY_MIN_LEAD_MS,
  CONFIRM_DELAY_MS,
  DEAD_RESTART_MS,
  handoutBlocked,
  LEASE_MIN_MS,
  LEASE_SAFETY_MS,
  plannedMove,
  STALE_BLOCK_SLOTS,
} from "./rules.ts";
export { startingUp, view } from "./situation.ts";

/** Extra runner ids looked at beyond cnt_runners, to stop units left over from a larger setup. */
export const EXTRA_RUNNER_SCAN = 4;

export interface DecideResult {
  plan: Plan;
  memory: Memory;
  views: RunnerView[];
}

/** The plan so far: fences deduplicated by runner (the first fence of a runner wins). */
class PlanSoFar {
  readonly fences: Action[] = [];
  readonly other: Action[] = [];
  readonly notes: string[] = [];
  readonly fenced = new Set<number>();
  fence(as: readonly Action[]): void {
    for (const a of as) {
      if (!("id" in a) || this.fenced.has(a.id)) continue;
      this.fenced.add(a.id);
      this.fences.push(a);
    }
  }
  add(r: { fences?: readonly Action[]; other?: readonly Action[]; notes?: readonly string[] }): void {
    this.fence(r.fences ?? []);
    this.other.push(...(r.other ?? []));
    this.notes.push(...(r.notes ?? []));
  }
}

export function decide(obs: Observation, prev: Memory, config: ResolvedConfig, now: number): DecideResult {
  const clock = obs.settings ? epochClock(obs.settings) : null;
  const remembered = remember(prev, obs, config, clock);
  const views = viewsOf(obs, remembered, config, now);
  const ref = referenceHeight(obs, views);
  const facts = epochFacts(clock, remembered, now);
  const memory = noteViews(remembered, { obs, views, ref, prevTickMs: prev.lastTickMs, epochKnown: facts.epochKnown, epochStartMs: facts.epochStartMs ?? 0, now });
  const s = situation({ obs, memory, config, now, clock, views, ref, facts });

  const plan = new PlanSoFar();
  const choice = chooseSigner(s);
  plan.add({ notes: choice.notes });
  // Operator gate: a switchover asked for (or a hold on the signer) replaces the coverage move.
  const op = operatorMove(s, choice);
  const planned = op ? (op.kind === "move" ? { target: op.target, why: op.why } : null) : coverageMove(s, choice);
  if (op) plan.add({ notes: [op.why] });
  else if (planned) plan.add({ notes: [planned.why] });
  plan.fence(retireExtras(s));
  const fo = failover(s, choice, planned);
  plan.add(fo);
  const { newSigner } = fo;
  plan.add({ other: adoptDisarm(choice, newSigner) });
  plan.add({ other: frozenRunners(s, { fenced: new Set(plan.fenced), newSigner }) });
  const hand = boundaryHandout(s, choice, { newSigner, fencesThisTick: plan.fences.length });
  plan.add(hand);
  const fenced = new Set(plan.fenced);
  const hk = housekeeping(s, { fenced, newSigner });
  plan.add({ other: hk.actions });
  const warm = warmth(s, choice, { fenced, newSigner });
  plan.add(warm);
  const modes = bootModes(s, warm.warming);
  plan.add({ other: tipReport(s, newSigner) });

  const other = dueNow(s, plan.other);
  const wakeAtMs = wakeUp(s, [...plan.fences, ...(fo.promote ? [fo.promote] : []), ...other]);
  const result: Plan = { fences: plan.fences, promote: fo.promote, other, wakeAtMs, notes: plan.notes, ...(hand.result ? { handout: hand.result } : {}), bootModes: modes.bootModes, ...(op ? { switchover: { kind: op.kind, why: op.why } } : {}) };
  if (Object.keys(hk.heldBack).length > 0) result.startBackoff = hk.heldBack;
  const decided = { signer: newSigner, boundary: hand.boundary, handout: hand.handout, warming: warm.warming, warmTried: warm.warmTried, ...modes, startBackoff: hk.startBackoff };
  // Cluster gate: the etcd signer lease bounds the whole plan (master/cluster.ts).
  return gateByCluster({ plan: result, memory: settle(memory, decided), views: [...views.values()] }, obs, now);
}
/**
 * The fences a daemon leaves behind when told to stop. Without a daemon, every runner that holds
 * the key will sign once it has a schedule: a standby booting with --secret, a boundary co-holder.
 * All of them but one (the signer, else the first that may hold the key) are fenced, regardless of
 * how near a window is: a Running holder is demoted; anything else (booting, computing, silent) is
 * killed, not frozen: a SIGCONT from anyone would undo a freeze while no daemon watches, and the next
 * daemon would kill a frozen one anyway. systemd restarts it, and with no daemon active it boots
 * without --secret. Runners that cannot sign, and the one kept, are left exactly as they are.
 */
export function partingFences(views: readonly RunnerView[], signer: number | null, keepNone = false): Action[] {
  // Frozen is proof only while someone watches: with the daemon gone, a thaw from outside (whoever
  // sent the SIGSTOP) lets a runner that may hold the key sign again, so it counts here too.
  const able = views.filter((v) => mayHoldKey(v.cap) || v.cap === "frozen");
  const kept = signer !== null && able.some((v) => v.id === signer) ? signer : (able.find((v) => v.cap !== "frozen")?.id ?? able[0]?.id ?? null);
  const keep = keepNone ? null : kept;
  const why = "the daemon stops; without it this runner would become a second signer";
  return able
    .filter((v) => v.id !== keep)
    .map((v): Action =>
      v.cap === "holder" && !v.busy
        ? tag("parting", { kind: "demote", id: v.id, reason: why, leaderIds: v.leaderIds ?? [] })
        : tag("parting", { kind: "kill", id: v.id, pid: v.pid, reason: why }),
    );
}

/** Due the moment the epoch starts, before any observation: the co-holders' key removals. A tick's
 *  observation waits out a REST deadline on every enclave locked by the new schedule, and the
 *  co-holders' dead-man switches fire well before that; the removals need no observation (the ids
 *  were read back when the key was handed out) and queue behind the computation. */
export function boundaryStrip(memory: Memory, settings: Settings | null, now: number): Action[] {
  const b = memory.boundary;
  if (!b || b.stripped || !settings) return [];
  if (now < epochClock(settings).epochStartMs(b.epoch)) return [];
  return b.coHolders.map((id) =>
    tag("boundary-strip", {
      kind: "demote",
      id,
      leaderIds: memory.runners[id]?.lastLeaderIds ?? [],
      reason: `epoch ${b.epoch} began: #${id} computed its schedule and gives the key back`,
    }),
  );
}


/** What the loop hands the core: the moment an epoch may have begun (before observing), an
 *  observation, the outcomes of acting, or an observation when told to stop. */
export type StepInput =
  | { kind: "epoch-start"; settings: Settings | null; now: number }
  | { kind: "observed"; obs: Observation; config: ResolvedConfig; now: number }
  | { kind: "acted"; outcomes: readonly Outcome[]; now: number }
  | { kind: "parting"; obs: Observation; config: ResolvedConfig; now: number };

export interface StepResult {
  memory: Memory;
  /** What to do now: the fences and promotion first, the rest after (act) */
  plan: Plan;
  views: RunnerView[];
}

const noPlan = (actions: Action[] = []): Plan => ({ fences: actions, promote: null, other: [], wakeAtMs: 0, notes: [] });

/**
 * The loop's one entry into the core: (memory, input) → (memory, plan). Pure. The loop observes,
 * calls step, acts on the plan, and calls step again with the outcomes.
 */
export function step(memory: Memory, input: StepInput): StepResult {
  switch (input.kind) {
    case "epoch-start": {
      const strip = boundaryStrip(memory, input.settings, input.now);
      return { memory: strip.length > 0 ? markStripped(memory) : memory, plan: noPlan(strip), views: [] };
    }
    case "observed":
      return decide(input.obs, memory, input.config, input.now);
    case "acted":
      return { memory: applyOutcomes(memory, input.outcomes, input.now), plan: noPlan(), views: [] };
    case "parting": {
      // The parting fences follow what this last look proves; memory is not kept (the daemon ends).
      const { views, memory: seen } = decide(input.obs, memory, input.config, input.now);
      // Cluster gate: a host whose lease does not allow signing keeps no holder at all.
      return { memory, plan: noPlan(partingFences(views, seen.signer, clusterBlock(input.obs.cluster, input.now) !== null)), views };
    }
  }
}
