// What is worth telling a human, derived from each tick's report. Pure: (report, memory, config)
// in, (events, memory) out; the notifier (notifier.ts) delivers them. Nothing here does I/O or
// reads the clock: "now" is the end of the tick the report describes.

import type { ResolvedConfig } from "../config/types.ts";
import { clusterBlock } from "../master/cluster.ts";
import type { TickReport } from "../master/loop.ts";
import { epochClock } from "../master/schedule.ts";
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
  | "cluster_lease";

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
