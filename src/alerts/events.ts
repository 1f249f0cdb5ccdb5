// What is worth telling a human, derived from each tick's report. Pure: (report, memory, config)
// in, (events, memory) out; the notifier (notifier.ts) delivers them. Nothing here does I/O or
// reads the clock: "now" is the end of the tick the report describes.

import type { ResolvedConfig } from "../config/types.ts";
import { clusterBlock } from "../master/cluster.ts";
import type { TickReport } from "../master/loop.ts";
import { epochClock } from "../master/schedule.ts";
import type { RegistryRound } from "../master/registry.ts";
import { emptySlotLedger, foldSlotOutcomes, SLOT_OUTCOME_GRACE_MS, type SettledSlot, type SlotLedger } from "../master/slot-outcomes.ts";

export type { SettledSlot };

export type Severity = "critical" | "warning" | "info";

export type AlertKind =
  | "failover"
  | "fence_kill"
  | "no_signer"
  | "no_signer_resolved"
  | "two_holders"
  | "two_holders_resolved"
  | "slot_missed"
  | "runner_cannot_start"
  | "daemon_start"
  | "daemon_stop"
  /** A rolling upgrade started, finished, or stopped and rolled back (told by `jorm-master upgrade`) */
  | "upgrade"
  /** Cluster mode: this host started or stopped signing (the etcd signer lease) */
  | "cluster_lease"
  /** Cluster mode: the signer key names another host than at the last read (host A → host B) */
  | "cluster_signer"
  /** Cluster mode: another host's registry entry disappeared (its daemon stopped, died or lost etcd) */
  | "cluster_host_gone"
  /** Cluster mode: a host whose entry had disappeared publishes again */
  | "cluster_host_back";

export interface AlertEvent {
  kind: AlertKind;
  severity: Severity;
  /** Events with the same key within the notifier's dedup window are sent once */
  key: string;
  /** One line, e.g. "failover: #0 → #2" */
  title: string;
  /** The reason, as the daemon logged it */
  text: string;
  atMs: number;
  runner?: number;
}

/** A slot's outcome is settled this long after it ends (the same ledger as the metrics'). */
export const ALERT_SLOT_GRACE_MS = SLOT_OUTCOME_GRACE_MS;
/** Without settings (no runner answered yet) "a window" is taken as this long. */
export const NO_SIGNER_FALLBACK_MS = 10_000;
/** A fresh daemon may wait one window before its first promotion (the schedule is unknown), and the
 *  promotion lands on the next tick: the no-signer alarm allows for that beyond one window. */
export const NO_SIGNER_SLACK_MS = 2_000;

export interface AlertMemory {
  /** The signer as of the previous tick (for "failover: #a → #b") */
  signer: number | null;
  /** Since when no runner is a verified signer; null while one is */
  noSignerSinceMs: number | null;
  noSignerAlerted: boolean;
  twoHoldersAlerted: boolean;
  /** The leader slots seen done, settled a grace after they end */
  slots: SlotLedger;
  /** Cluster mode: whether the lease let this host sign at the previous tick (undefined: not yet known) */
  clusterSigning?: boolean;
}

export const emptyAlertMemory = (): AlertMemory => ({
  signer: null,
  noSignerSinceMs: null,
  noSignerAlerted: false,
  twoHoldersAlerted: false,
  slots: emptySlotLedger(),
});

/** How long "no signer" may last before it is an alarm: one guarded slot window plus slack. */
export function noSignerLimitMs(r: TickReport, config: ResolvedConfig): number {
  const s = r.observation.settings;
  const slotMs = s ? epochClock(s).slotMs : NO_SIGNER_FALLBACK_MS;
  return slotMs + config.slotGuardMs + config.slotMarginMs + NO_SIGNER_SLACK_MS;
}

export function alertEvents(r: TickReport, prev: AlertMemory, config: ResolvedConfig): { events: AlertEvent[]; memory: AlertMemory; settled: SettledSlot[] } {
  const now = r.startedMs + r.durationMs;
  const events: AlertEvent[] = [];
  const settledNow: SettledSlot[] = [];
  const memory: AlertMemory = { ...prev };
  const push = (e: Omit<AlertEvent, "atMs">) => events.push({ ...e, atMs: now });

  // Actions: promotions to signer, SIGKILL fences, runners that will not start.
  let from = prev.signer;
  for (const o of r.outcomes) {
    const a = o.action;
    if (a.kind === "promote" && a.purpose === "sign" && o.ok) {
      const was = from === null || from === a.id ? "" : `#${from} → `;
      push({ kind: "failover", severity: "warning", key: `failover:${from ?? "-"}:${a.id}`, title: `failover: ${was}#${a.id} signs`, text: a.reason, runner: a.id });
      from = a.id;
    } else if ((a.kind === "kill" || a.kind === "retire") && o.ok) {
      push({ kind: "fence_kill", severity: "warning", key: `kill:${a.id}`, title: `runner #${a.id} killed (SIGKILL)`, text: a.reason, runner: a.id });
    } else if ((a.kind === "start" || a.kind === "restart") && !o.ok && !o.transient) {
      push({ kind: "runner_cannot_start", severity: "critical", key: `start:${a.id}`, title: `runner #${a.id} cannot start`, text: `${a.reason}: ${o.detail}`, runner: a.id });
    }
  }
  memory.signer = r.memory.signer;

  // Cluster mode: this host starting or ceasing to sign is told; a host that knows another one
  // signs has no signer of its own by design (no "no signer" alarm there). A host that knows of
  // no signing host (etcd unreachable) raises it as usual.
  const c = r.observation.cluster;
  const block = c ? clusterBlock(c, now) : null;
  if (c) {
    const here = block === null;
    if (prev.clusterSigning !== undefined && here !== prev.clusterSigning) {
      push(
        here
          ? { kind: "cluster_lease", severity: "info", key: `cluster_lease:on:${now}`, title: "this host signs (it holds the etcd signer lease)", text: "the signer lease allows signing" }
          : { kind: "cluster_lease", severity: "warning", key: `cluster_lease:off:${now}`, title: "this host stopped signing", text: block! },
      );
    }
    memory.clusterSigning = here;
  }
  const otherHostSigns = c !== undefined && !c.maySign && c.holder != null;

  // No verified signer: the signer is named and its GET /leaders lists a key.
  const views = new Map(r.views.map((v) => [v.id, v]));
  const signer = r.memory.signer;
  const signerView = signer === null ? undefined : views.get(signer);
  const signing = signerView !== undefined && (signerView.leaderIds?.length ?? 0) > 0;
  if (otherHostSigns) {
    memory.noSignerSinceMs = null;
    memory.noSignerAlerted = false;
  } else if (signing) {
    if (prev.noSignerAlerted) {
      push({ kind: "no_signer_resolved", severity: "info", key: `no_signer_resolved:${now}`, title: `#${signer} signs again`, text: `no signer for ${Math.round((now - (prev.noSignerSinceMs ?? now)) / 1000)} s`, runner: signer! });
    }
    memory.noSignerSinceMs = null;
    memory.noSignerAlerted = false;
  } else {
    memory.noSignerSinceMs = prev.noSignerSinceMs ?? r.observation.atMs;
    const lasted = now - memory.noSignerSinceMs;
    if (!prev.noSignerAlerted && lasted > noSignerLimitMs(r, config)) {
      const why = signer === null ? "no runner holds the key" : `signer #${signer} is not verified holding the key (${signerView?.cap ?? "unknown"})`;
      push({ kind: "no_signer", severity: "critical", key: `no_signer:${memory.noSignerSinceMs}`, title: "no signer", text: `${why} for ${Math.round(lasted / 1000)} s` });
      memory.noSignerAlerted = true;
    }
  }

  // Two key holders outside a boundary hand-out: the hand-out's co-holders are expected, and so is a
  // standby rebooted with --secret to regain the epoch's schedule (it holds the key from boot and is
  // demoted on its first Running tick, before any event: the rule that warms cold standbys).
  const coHolders = new Set(r.memory.boundary?.coHolders ?? []);
  if (r.memory.warming?.restarted) coHolders.add(r.memory.warming.id);
  const holders = r.views.filter((v) => v.id < config.cntRunners && (v.leaderIds?.length ?? 0) > 0 && !coHolders.has(v.id)).map((v) => v.id);
  if (holders.length > 1) {
    if (!prev.twoHoldersAlerted) {
      push({ kind: "two_holders", severity: "critical", key: `two_holders:${holders.join(",")}`, title: `${holders.length} key holders: ${holders.map((i) => `#${i}`).join(", ")}`, text: "more than one runner holds the key outside an epoch hand-out; the daemon fences all but one" });
    }
    memory.twoHoldersAlerted = true;
  } else {
    if (prev.twoHoldersAlerted) push({ kind: "two_holders_resolved", severity: "info", key: `two_holders_resolved:${now}`, title: "one key holder again", text: holders.length === 1 ? `#${holders[0]} holds the key` : "no runner holds the key" });
    memory.twoHoldersAlerted = false;
  }

  // Slots: settled a grace after they end; missed when no log shows a block.
  const settings = r.observation.settings;
  if (settings) {
    const folded = foldSlotOutcomes(prev.slots, r.observation.runners, epochClock(settings), r.startedMs, now);
    memory.slots = folded.ledger;
    for (const p of folded.settled) {
      settledNow.push(p);
      if (p.block) continue;
      push({
        kind: "slot_missed",
        severity: "warning",
        key: `slot:${p.abs}`,
        title: `slot ${p.epoch}.${p.slot} ${p.rejected ? "rejected" : "missed"}`,
        text: p.rejected ? `no runner produced it; rejected by ${p.rejected}` : "no runner's leader log shows a block for it",
      });
    }
  }
  return { events, memory, settled: settledNow };
}

/** Stateful shell over alertEvents: folds each tick in and hands what it finds to `notify`. */
export class AlertWatcher {
  private memory = emptyAlertMemory();
  constructor(private readonly notify: (e: AlertEvent) => void) {}
  onTick(r: TickReport, config: ResolvedConfig): void {
    const { events, memory } = alertEvents(r, this.memory, config);
    this.memory = memory;
    for (const e of events) this.notify(e);
  }
}

/** The alert for a command's report to the daemon (a rolling upgrade's start, end or rollback):
 *  a failed one needs someone, a successful one is news. */
export function reportAlert(r: { kind: "upgrade"; ok: boolean; title: string; text: string }, atMs: number): AlertEvent {
  return { kind: r.kind, severity: r.ok ? "info" : "critical", key: `${r.kind}:${atMs}`, title: r.title, text: r.text, atMs };
}

/** What the registry alerts remember between reads of the host registry. */
export interface RegistryAlertMemory {
  /** The last host named by the signer key (kept across a spell without one); undefined: never read */
  signer?: string | null;
  /** Hosts with an entry at the last read; null: not read yet */
  hosts: string[] | null;
  /** Hosts whose entry went and has not come back */
  gone?: string[];
}

export const emptyRegistryAlertMemory = (): RegistryAlertMemory => ({ hosts: null });

/**
 * Cluster mode: what a read of the host registry (master/registry.ts) is worth telling. Pure. The
 * signing host changing is told with both names, even across a spell without a signer (A, nobody,
 * B is "A → B"); another host's entry disappearing is told (its daemon stopped, or it lost etcd for
 * a member-lease TTL), and its return. The first read only sets the baseline.
 */
export function registryAlertEvents(r: RegistryRound, prev: RegistryAlertMemory): { events: AlertEvent[]; memory: RegistryAlertMemory } {
  const events: AlertEvent[] = [];
  const push = (e: Omit<AlertEvent, "atMs">) => events.push({ ...e, atMs: r.atMs });
  const now = r.read.signer?.host ?? null;
  const last = prev.signer;
  if (now !== null && last !== undefined && last !== null && now !== last) {
    const text = now === r.self ? "this host holds the etcd signer lease now" : `${now} holds the etcd signer lease now`;
    push({ kind: "cluster_signer", severity: "warning", key: `cluster_signer:${last}:${now}:${r.read.signer!.createRevision}`, title: `signing host changed: ${last} → ${now}`, text });
  } else if (now !== null && last === null) {
    // This daemon has seen nobody sign since it started: the first signing host is news too.
    push({ kind: "cluster_signer", severity: "info", key: `cluster_signer:-:${now}:${r.read.signer!.createRevision}`, title: `signing host: ${now}`, text: `${now} holds the etcd signer lease (no host did since this daemon started)` });
  }
  const hosts = r.read.entries.map((e) => e.host);
  if (prev.hosts !== null) {
    const before = new Set(prev.hosts);
    const nowSet = new Set(hosts);
    for (const h of prev.hosts) {
      if (h === r.self || nowSet.has(h)) continue;
      push({
        kind: "cluster_host_gone",
        severity: "warning",
        key: `cluster_host_gone:${h}:${r.atMs}`,
        title: `host ${h} left the cluster registry`,
        text: `${h}'s entry is gone: its daemon stopped, died, or has not reached etcd for a member-lease TTL${h === now ? `; it still holds the signer key` : ""}`,
      });
    }
    for (const h of hosts) {
      if (h === r.self || before.has(h) || !prev.gone?.includes(h)) continue;
      push({ kind: "cluster_host_back", severity: "info", key: `cluster_host_back:${h}:${r.atMs}`, title: `host ${h} is back in the cluster registry`, text: `${h} publishes its entry again` });
    }
  }
  const gone = new Set(prev.gone ?? []);
  if (prev.hosts !== null) for (const h of prev.hosts) if (!hosts.includes(h) && h !== r.self) gone.add(h);
  for (const h of hosts) gone.delete(h);
  return { events, memory: { signer: now ?? (last === undefined ? null : last), hosts, gone: [...gone] } };
}

/** Stateful shell over registryAlertEvents: folds each registry read in and hands what it finds to `notify`. */
export class RegistryAlertWatcher {
  private memory = emptyRegistryAlertMemory();
  constructor(private readonly notify: (e: AlertEvent) => void) {}
  onRound(r: RegistryRound): void {
    const { events, memory } = registryAlertEvents(r, this.memory);
    this.memory = memory;
    for (const e of events) this.notify(e);
  }
}
