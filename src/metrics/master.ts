// The daemon's metrics, derived from each TickReport (what the tick saw, decided and did). Pure
// apart from its own counters: update() folds one tick in, render() writes the exposition text.
// Values are as of the last tick (the loop ticks at least every loop_period); times are exported
// as Unix timestamps in seconds, so "time until" is `x - time()` in PromQL.

import { clusterBlock } from "../master/cluster.ts";
import type { ResolvedConfig } from "../config/types.ts";
import { NODE_STATES } from "../node/types.ts";
import type { TickReport } from "../master/loop.ts";
import { epochClock, type EpochClock } from "../master/schedule.ts";
import { nextSlotInMs } from "../master/summary.ts";
import type { Capability } from "../master/types.ts";
import { emptySlotLedger, foldSlotOutcomes, SLOT_OUTCOME_GRACE_MS, type SlotLedger } from "../master/slot-outcomes.ts";
import type { RegistryRound } from "../master/registry.ts";
import { Histogram, renderFamilies, type Family, type Sample } from "./exposition.ts";

/** Tick durations: a healthy tick is a few ms to one REST deadline; a systemctl job can take seconds. */
export const TICK_DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;
export { SLOT_OUTCOME_GRACE_MS };
export const FENCE_KINDS = ["freeze", "kill", "demote", "retire"] as const;
const CAPABILITIES: readonly Capability[] = ["stopped", "frozen", "keyless", "holder", "booting-holder", "unknown"];

interface RunnerSnapshot {
  id: number;
  up: boolean;
  unitActive: boolean | null;
  frozen: boolean;
  nodeState: string | null;
  capability: Capability;
  height: number | null;
  lag: number | null;
  keyHeld: boolean | null;
  signer: boolean;
  /** Held by the operator (jorm-master hold) */
  held: boolean;
  /** Could take over now and sign the rest of the epoch: Running, key-less or holding, and holding
   *  this epoch's remaining slots (or none are left) */
  warm: boolean;
  eventsLeft: number | null;
  nextEventS: number | null;
  restarts: number | null;
  activeSinceS: number | null;
  /** How long the next start of a unit whose runs fail at start waits (0: no back-off) */
  startBackoffS: number;
}

interface Snapshot {
  runners: RunnerSnapshot[];
  epoch: number | null;
  nextSlotS: number | null;
  majorityMax: number | null;
  keyHolders: number;
  /** Key holders that are co-holders of the boundary hand-out under way */
  boundaryCoHolders: number;
  warm: number;
  leftovers: number;
  lastObservationS: number;
  /** Cluster mode: 1 when the etcd signer lease lets this host sign now; null without a cluster */
  clusterMaySign: number | null;
}

const s = (ms: number) => ms / 1000;
const b = (v: boolean) => (v ? 1 : 0);

export interface MasterMetricsOptions {
  version: string;
  buckets?: readonly number[];
  /** Alert deliveries per channel and result (src/alerts/notifier.ts), read at each scrape */
  alerts?: () => readonly { channel: string; result: string; value: number }[];
}

export class MasterMetrics {
  private readonly tickDuration: Histogram;
  private ticks = 0;
  private leaderChanges = 0;
  private readonly fences = new Map<string, number>(FENCE_KINDS.map((k) => [k, 0]));
  private readonly actions = new Map<string, number>();
  private produced = 0;
  private missed = 0;
  private poolToolFailures = 0;
  /** Boundary hand-outs by "result\u0000reason" (reason: the code before the colon of decide's why) */
  private readonly handouts = new Map<string, number>();
  /** The leader slots seen done, settled a grace after they end (the alerts' ledger too) */
  private slots: SlotLedger = emptySlotLedger();
  private snapshot: Snapshot | null = null;
  /** Cluster mode: the last read of the host registry (null: none yet) */
  private registry: { leaseChanges: number; signer: string | null; hosts: number; readAtS: number } | null = null;

  constructor(private readonly opts: MasterMetricsOptions) {
    this.tickDuration = new Histogram(opts.buckets ?? TICK_DURATION_BUCKETS_S);
  }

  /** Folds one tick in. `poolToolFailures` is the Master's running count. */
  update(r: TickReport, config: ResolvedConfig, extra: { poolToolFailures: number }): void {
    const now = r.startedMs + r.durationMs;
    this.ticks++;
    this.tickDuration.observe(s(r.durationMs));
    this.poolToolFailures = extra.poolToolFailures;
    for (const o of r.outcomes) {
      const a = o.action;
      const key = `${a.kind}\u0000${o.ok ? "ok" : "failed"}`;
      this.actions.set(key, (this.actions.get(key) ?? 0) + 1);
      if (!o.ok) continue;
      if ((FENCE_KINDS as readonly string[]).includes(a.kind)) this.fences.set(a.kind, (this.fences.get(a.kind) ?? 0) + 1);
      if (a.kind === "promote" && a.purpose === "sign") this.leaderChanges++;
    }
    if (r.plan.handout) {
      const h = r.plan.handout;
      const key = `${h.result}\u0000${h.result === "done" ? "gap" : h.reason.split(":")[0]}`;
      this.handouts.set(key, (this.handouts.get(key) ?? 0) + 1);
    }
    const clock = r.observation.settings ? epochClock(r.observation.settings) : null;
    if (clock) this.trackSlots(r, clock, now);
    this.snapshot = this.snap(r, config, clock, now);
  }

  /** Folds one read of the cluster's host registry in (src/daemon/registry.ts, on its own timer). */
  updateRegistry(r: RegistryRound): void {
    this.registry = { leaseChanges: r.memory.leaseChanges, signer: r.read.signer?.host ?? null, hosts: r.read.entries.length, readAtS: s(r.atMs) };
  }

  private trackSlots(r: TickReport, clock: EpochClock, now: number) {
    const { ledger, settled } = foldSlotOutcomes(this.slots, r.observation.runners, clock, r.startedMs, now);
    this.slots = ledger;
    for (const slot of settled) {
      if (slot.block) this.produced++;
      else this.missed++;
    }
  }

  private snap(r: TickReport, config: ResolvedConfig, clock: EpochClock | null, now: number): Snapshot {
    const views = new Map(r.views.map((v) => [v.id, v]));
    const heights = r.views.filter((v) => v.id < config.cntRunners && v.height !== null).map((v) => v.height!);
    const majorityMax = r.observation.majorityMax;
    const best = Math.max(-Infinity, ...heights, ...(majorityMax === null ? [] : [majorityMax]));
    const curEpoch = clock ? clock.epochAt(now) : null;
    const runners: RunnerSnapshot[] = [];
    // Any of the pool's slots still ahead in this epoch, as far as known
    const epochSlotsAhead = clock !== null && curEpoch !== null && r.memory.events.some((abs) => clock.epochOf(abs) === curEpoch && clock.slotStartMs(abs) > now);
    let leftovers = 0;
    for (const o of r.observation.runners) {
      const v = views.get(o.id);
      if (o.id >= config.cntRunners) {
        if (o.unit && (o.unit.activeState === "active" || o.unit.mainPid > 0)) leftovers++;
        continue;
      }
      const m = r.memory.runners[o.id];
      const stats = o.stats;
      const up = stats !== null && (stats.ok || stats.error.kind === "not_ready");
      let eventsLeft: number | null = null;
      let nextEventS: number | null = null;
      if (m && m.logsReadMs !== null && clock && curEpoch !== null) {
        const ahead = m.pendingSlots.filter((abs) => clock.slotStartMs(abs) + clock.slotMs > now);
        eventsLeft = ahead.filter((abs) => clock.epochOf(abs) === curEpoch).length;
        const next = ahead.find((abs) => clock.slotStartMs(abs) > now);
        nextEventS = next === undefined ? null : s(clock.slotStartMs(next));
      }
      const height = v?.height ?? null;
      const able = v !== undefined && v.running && (v.cap === "keyless" || v.cap === "holder");
      runners.push({
        warm: able && (!epochSlotsAhead || (eventsLeft ?? 0) > 0),
        id: o.id,
        up,
        unitActive: o.unit === null ? null : o.unit.activeState === "active",
        frozen: v?.frozen ?? false,
        nodeState: stats?.ok ? stats.value.state : null,
        capability: v?.cap ?? "unknown",
        height,
        lag: height === null || !Number.isFinite(best) ? null : Math.max(0, best - height),
        keyHeld: v?.leaderIds == null ? null : v.leaderIds.length > 0,
        signer: r.memory.signer === o.id,
        held: r.observation.intent?.holds[o.id] !== undefined,
        eventsLeft,
        nextEventS,
        restarts: o.unit?.restarts ?? null,
        activeSinceS: o.unit && o.unit.activeState === "active" && o.unit.sinceMs !== null ? s(o.unit.sinceMs) : null,
        startBackoffS: s(r.plan.startBackoff?.[o.id]?.waitMs ?? 0),
      });
    }
    const next = nextSlotInMs(r.observation, r.memory, now);
    // A co-holder of the hand-out counts until slot 1's guarded window opens: its dead-man switch
    // freezes it before then (decide hands out only with the switch armed; a failed hand-out is
    // dropped from the list). After that it is an ordinary extra holder again.
    const b = r.memory.boundary;
    const handoutUntilMs = b && clock ? clock.epochStartMs(b.epoch) + clock.slotMs - config.slotGuardMs : null;
    const boundaryCoHolders =
      b && handoutUntilMs !== null && now < handoutUntilMs
        ? runners.filter((x) => x.keyHeld === true && !x.signer && b.coHolders.includes(x.id)).length
        : 0;
    return {
      runners,
      epoch: curEpoch,
      nextSlotS: next === null ? null : s(now + next),
      majorityMax,
      keyHolders: runners.filter((x) => x.keyHeld === true).length,
      boundaryCoHolders,
      warm: runners.filter((x) => x.warm).length,
      leftovers,
      lastObservationS: s(r.observation.atMs),
      clusterMaySign: r.observation.cluster ? (clusterBlock(r.observation.cluster, now) === null ? 1 : 0) : null,
    };
  }

  families(): Family[] {
    const snap = this.snapshot;
    const rs = snap?.runners ?? [];
    const per = (pick: (x: RunnerSnapshot) => number | null): Sample[] =>
      rs.flatMap((x) => {
        const v = pick(x);
        return v === null ? [] : [{ labels: { runner: String(x.id) }, value: v }];
      });
    const one = (v: number | null | undefined): Sample[] => (v === null || v === undefined ? [] : [{ value: v }]);
    const actionSamples = [...this.actions]
      .sort(([a], [b2]) => a.localeCompare(b2))
      .map(([key, value]) => {
        const [kind, result] = key.split("\u0000") as [string, string];
        return { labels: { kind, result }, value };
      });
    return [
      { name: "jorm_master_build_info", type: "gauge", help: "Always 1; the version label names the running build.", samples: [{ labels: { version: this.opts.version }, value: 1 }] },
      { name: "jorm_master_runner_up", type: "gauge", help: "1 when the runner's REST answered /node/stats (503 while booting counts), else 0.", samples: per((x) => b(x.up)) },
      { name: "jorm_master_runner_unit_active", type: "gauge", help: "1 when the runner's systemd unit is active, 0 when not (absent when systemd could not be asked).", samples: per((x) => (x.unitActive === null ? null : b(x.unitActive))) },
      { name: "jorm_master_runner_frozen", type: "gauge", help: "1 when the runner's process is stopped by SIGSTOP.", samples: per((x) => b(x.frozen)) },
      {
        name: "jorm_master_runner_node_state",
        type: "gauge",
        help: "1 for the node state the runner reports (all 0 while its REST does not answer).",
        samples: rs.flatMap((x) => NODE_STATES.map((st) => ({ labels: { runner: String(x.id), state: st }, value: b(x.nodeState === st) }))),
      },
      {
        name: "jorm_master_runner_capability",
        type: "gauge",
        help: "1 for what the daemon can prove about whether the runner can sign (unknown is treated as able to sign).",
        samples: rs.flatMap((x) => CAPABILITIES.map((c) => ({ labels: { runner: String(x.id), capability: c }, value: b(x.capability === c) }))),
      },
      { name: "jorm_master_runner_height", type: "gauge", help: "Block height of the runner's tip (absent until Running).", samples: per((x) => x.height) },
      { name: "jorm_master_runner_lag_blocks", type: "gauge", help: "Blocks behind the best known height (the runners' max and PoolTool's majority max).", samples: per((x) => x.lag) },
      { name: "jorm_master_runner_held", type: "gauge", help: "1 while the operator holds the runner (jorm-master hold): never promoted, started or restarted by the daemon.", samples: per((x) => b(x.held)) },
      { name: "jorm_master_runner_key_held", type: "gauge", help: "1 when GET /leaders lists a key, 0 when it lists none (absent when unknown).", samples: per((x) => (x.keyHeld === null ? null : b(x.keyHeld))) },
      { name: "jorm_master_runner_signer", type: "gauge", help: "1 for the runner the daemon keeps as the signer.", samples: per((x) => b(x.signer)) },
      { name: "jorm_master_runner_leader_events_left", type: "gauge", help: "Pending leader events of the current epoch in the runner's leader logs (absent until its logs were read).", samples: per((x) => x.eventsLeft) },
      { name: "jorm_master_runner_next_leader_event_timestamp_seconds", type: "gauge", help: "Start of the runner's next pending leader event, Unix time.", samples: per((x) => x.nextEventS) },
      { name: "jorm_master_runner_restarts_total", type: "counter", help: "Restarts of the runner's unit as systemd counts them (NRestarts).", samples: per((x) => x.restarts) },
      {
        name: "jorm_master_runner_start_backoff_seconds",
        type: "gauge",
        help: "How long the daemon waits before starting the runner's unit again, because its runs fail at start (exit 78: a config error); 0 when it does not wait.",
        samples: per((x) => x.startBackoffS),
      },
      { name: "jorm_master_runner_active_since_timestamp_seconds", type: "gauge", help: "When the runner's unit became active, Unix time.", samples: per((x) => x.activeSinceS) },
      {
        name: "jorm_master_key_holders",
        type: "gauge",
        help: "Runners whose GET /leaders lists a key, boundary co-holders included: alert on key_holders - boundary_coholders > 1 (a second signer) and on key_holders == 0.",
        samples: one(snap?.keyHolders),
      },
      {
        name: "jorm_master_boundary_coholders",
        type: "gauge",
        help: "Key holders that are co-holders of the epoch boundary hand-out under way (given the key to compute the next epoch, dead-man switch armed to freeze them before slot 1's window); 0 outside a hand-out.",
        samples: one(snap?.boundaryCoHolders),
      },
      { name: "jorm_master_runner_warm", type: "gauge", help: "1 when the runner could take over now and sign the rest of the epoch: Running, answering, and holding the epoch's remaining slots (or none are left).", samples: per((x) => b(x.warm)) },
      { name: "jorm_master_warm_runners", type: "gauge", help: "Runners that could take over now and sign the rest of the epoch (see jorm_master_runner_warm).", samples: one(snap?.warm) },
      { name: "jorm_master_leftover_units", type: "gauge", help: "Active runner units beyond cnt_runners (the daemon retires them).", samples: one(snap?.leftovers) },
      {
        name: "jorm_master_cluster_may_sign",
        type: "gauge",
        help: "Cluster mode: 1 while this host holds the etcd signer lease within its allowance (takeover wait over), else 0; absent without a cluster section. Alert on the sum over hosts > 1 (never expected) and on it being 0 everywhere.",
        samples: one(snap?.clusterMaySign),
      },
      {
        name: "jorm_master_cluster_lease_changes_total",
        type: "counter",
        help: "Cluster mode: changes of the etcd signer lease this daemon has read (a signer key with a new create revision: another host, or the same host re-elected under a new lease); 0 in cluster mode until one is seen, absent without a cluster section.",
        samples: this.registry !== null || snap?.clusterMaySign != null ? [{ value: this.registry?.leaseChanges ?? 0 }] : [],
      },
      {
        name: "jorm_master_cluster_signer",
        type: "gauge",
        help: "Cluster mode: 1, labelled with the host named by the etcd signer key at the last registry read; absent while no host holds it (or before the first read).",
        samples: this.registry?.signer != null ? [{ labels: { host: this.registry.signer }, value: 1 }] : [],
      },
      {
        name: "jorm_master_cluster_hosts",
        type: "gauge",
        help: "Cluster mode: host entries in the etcd registry (<prefix>/hosts/) at the last read; an entry goes when its daemon stops or its member lease ends.",
        samples: one(this.registry?.hosts),
      },
      {
        name: "jorm_master_cluster_registry_read_timestamp_seconds",
        type: "gauge",
        help: "Cluster mode: when this daemon last read the etcd host registry, Unix time (the cluster_* gauges are as of then).",
        samples: one(this.registry?.readAtS),
      },
      { name: "jorm_master_epoch", type: "gauge", help: "Current epoch (absent until the settings were read).", samples: one(snap?.epoch) },
      { name: "jorm_master_next_leader_slot_timestamp_seconds", type: "gauge", help: "Start of the pool's next known leader slot, Unix time.", samples: one(snap?.nextSlotS) },
      { name: "jorm_master_pooltool_majority_max", type: "gauge", help: "PoolTool's majority max height (absent when off or unknown).", samples: one(snap?.majorityMax) },
      { name: "jorm_master_pooltool_failures_total", type: "counter", help: "PoolTool majority-max requests that failed.", samples: [{ value: this.poolToolFailures }] },
      {
        name: "jorm_master_boundary_handouts_total",
        type: "counter",
        help: "Epoch-boundary hand-outs of the key to the standbys: done, or skipped with the reason (window, no_time, fencing, signer_unsettled, schedule_unknown, no_standby, no_lease_room).",
        samples: [...this.handouts].map(([k, value]) => {
          const [result, reason] = k.split("\u0000");
          return { labels: { result: result!, reason: reason! }, value };
        }),
      },
      { name: "jorm_master_leader_changes_total", type: "counter", help: "Promotions of a runner to signer.", samples: [{ value: this.leaderChanges }] },
      { name: "jorm_master_fences_total", type: "counter", help: "Fences applied and verified, by kind.", samples: [...this.fences].map(([kind, value]) => ({ labels: { kind }, value })) },
      { name: "jorm_master_actions_total", type: "counter", help: "Actions carried out, by kind and result.", samples: actionSamples },
      {
        name: "jorm_master_leader_slots_total",
        type: "counter",
        help: `The pool's leader slots as the runners' leader logs show them, settled ${SLOT_OUTCOME_GRACE_MS / 1000} s after the slot: produced when any log shows a block, missed when logs show it rejected and none a block (a slot only a crashed runner knew is not counted).`,
        samples: [
          { labels: { outcome: "produced" }, value: this.produced },
          { labels: { outcome: "missed" }, value: this.missed },
        ],
      },
      {
        name: "jorm_master_alerts_total",
        type: "counter",
        help: "Alerts by channel and result: sent, failed (after every retry), deduplicated, rate_limited, dropped (queue full).",
        samples: (this.opts.alerts?.() ?? []).map((c) => ({ labels: { channel: c.channel, result: c.result }, value: c.value })),
      },
      { name: "jorm_master_ticks_total", type: "counter", help: "Completed observe-decide-act ticks.", samples: [{ value: this.ticks }] },
      { name: "jorm_master_tick_duration_seconds", type: "histogram", help: "Duration of one observe-decide-act tick.", samples: this.tickDuration.samples() },
      { name: "jorm_master_last_observation_timestamp_seconds", type: "gauge", help: "When the last complete observation was made, Unix time.", samples: one(snap?.lastObservationS) },
    ];
  }

  render(): string {
    return renderFamilies(this.families());
  }
}
