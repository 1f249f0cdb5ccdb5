// What goes into the event log, derived from each tick's report. Pure: (report, memory, config) in,
// (records, memory) out. The alarms (failover, SIGKILL fence, no signer, two holders, a runner that
// cannot start) and the slot settlement are the alert mapping's (src/alerts/events.ts), reused as
// they are; what only the log keeps is added here: every other action the daemon took (fences,
// starts, stops, restarts), boundary hand-outs, and produced slots.

import { alertEvents, emptyAlertMemory, type AlertKind, type AlertMemory } from "../alerts/events.ts";
import type { ResolvedConfig } from "../config/types.ts";
import { outcomeLevel, type TickReport } from "../master/loop.ts";
import { epochClock } from "../master/schedule.ts";
import type { Memory } from "../master/types.ts";

export const HISTORY_KINDS = [
  "daemon_start",
  "daemon_stop",
  "failover",
  "fence",
  "fence_kill",
  "thaw",
  "start",
  "stop",
  "restart",
  "runner_cannot_start",
  "action_failed",
  "handout_start",
  "handout_end",
  "no_signer",
  "no_signer_resolved",
  "two_holders",
  "two_holders_resolved",
  "slot_produced",
  "slot_missed",
  "slot_rejected",
  // The operator's requests, as the daemon applied them (jorm-master hold/release/switchover)
  "hold",
  "release",
  "switchover",
  "upgrade",
] as const;
export type HistoryKind = (typeof HISTORY_KINDS)[number];

export interface HistoryRecord {
  /** ISO 8601, UTC: for people and grep */
  t: string;
  atMs: number;
  kind: HistoryKind;
  runner?: number;
  /** One line, e.g. "failover: #0 → #2 signs" */
  title: string;
  /** Why, as the daemon logged it */
  text: string;
  epoch?: number;
  slot?: number;
  block?: string;
}

export interface HistoryMemory {
  alerts: AlertMemory;
  boundary: Memory["boundary"];
  /** Actions failing now ("freeze#1" → detail): a failure retried every tick is recorded once per
   *  streak (and again when its reason changes), as the daemon's own log does */
  failing: Record<string, string>;
}

export const emptyHistoryMemory = (): HistoryMemory => ({ alerts: emptyAlertMemory(), boundary: null, failing: {} });

/** The alert kinds the log takes from the alert mapping as they are; slots come from `settled`. */
const FROM_ALERTS: ReadonlySet<AlertKind> = new Set<AlertKind>(["failover", "fence_kill", "no_signer", "no_signer_resolved", "two_holders", "two_holders_resolved", "runner_cannot_start"]);

const PAST = { start: "started", stop: "stopped", restart: "restarted" } as const;

export function record(atMs: number, r: Omit<HistoryRecord, "t" | "atMs">): HistoryRecord {
  return { t: new Date(atMs).toISOString(), atMs, ...r };
}

export function historyRecords(r: TickReport, prev: HistoryMemory, config: ResolvedConfig): { records: HistoryRecord[]; memory: HistoryMemory } {
  const now = r.startedMs + r.durationMs;
  const out: HistoryRecord[] = [];
  const failing = { ...prev.failing };
  const { events, memory: alerts, settled } = alertEvents(r, prev.alerts, config);

  // Actions the alerts leave out. A routine hand-out step (a co-holder's promotion, the key taken
  // back at the boundary) is summed up by handout_start/handout_end instead of one line per runner.
  const settings = r.observation.settings;
  const hand = { boundary: r.memory.boundary ?? prev.boundary, boundaryStartMs: null as number | null, nowMs: now };
  if (hand.boundary && settings) hand.boundaryStartMs = epochClock(settings).epochStartMs(hand.boundary.epoch);
  for (const o of r.outcomes) {
    const a = o.action;
    if (a.kind === "reportTip" || a.kind === "disarm") continue;
    if (outcomeLevel(o, hand) === "info" && (a.kind === "promote" || a.kind === "demote")) continue;
    const key = `${a.kind}#${a.id}`;
    if (!o.ok) {
      // Transient failures are retried and expected; a start that fails is the alerts' (cannot start).
      if (o.transient || a.kind === "start" || a.kind === "restart") continue;
      if (failing[key] === o.detail) continue;
      failing[key] = o.detail;
      out.push(record(now, { kind: "action_failed", runner: a.id, title: `${a.kind} #${a.id} failed`, text: `${a.reason}: ${o.detail}` }));
      continue;
    }
    delete failing[key];
    const title = (what: string) => `${what} #${a.id}`;
    switch (a.kind) {
      case "demote":
        out.push(record(now, { kind: "fence", runner: a.id, title: title("key removed from"), text: a.reason }));
        break;
      case "freeze":
        out.push(record(now, { kind: "fence", runner: a.id, title: title(a.cause === "boot" ? "frozen while booting:" : "frozen (SIGSTOP):"), text: a.reason }));
        break;
      case "thaw":
        out.push(record(now, { kind: "thaw", runner: a.id, title: title("thawed"), text: a.reason }));
        break;
      case "start":
      case "stop":
      case "restart":
        out.push(record(now, { kind: a.kind, runner: a.id, title: title(PAST[a.kind]), text: a.reason }));
        break;
      // promote (sign) is the alerts' failover; kill/retire their fence_kill
    }
  }
  for (const e of events) if (FROM_ALERTS.has(e.kind)) out.push(record(now, { kind: e.kind as HistoryKind, ...(e.runner !== undefined ? { runner: e.runner } : {}), title: e.title, text: e.text }));

  const b = r.memory.boundary;
  if (b && (prev.boundary === null || prev.boundary.epoch !== b.epoch)) {
    const who = b.coHolders.map((id) => `#${id}`).join(", ");
    out.push(record(now, { kind: "handout_start", epoch: b.epoch, title: `boundary hand-out for epoch ${b.epoch}: ${who || "no standby"}`, text: `standbys given the key to compute epoch ${b.epoch}'s schedule` }));
  }
  if (prev.boundary && (b === null || b.epoch !== prev.boundary.epoch)) {
    out.push(record(now, { kind: "handout_end", epoch: prev.boundary.epoch, title: `boundary hand-out for epoch ${prev.boundary.epoch} over`, text: "the co-holders' keys are taken back" }));
  }

  for (const s of settled) {
    const at = { epoch: s.epoch, slot: s.slot };
    if (s.block) out.push(record(now, { kind: "slot_produced", ...at, runner: s.block.producer, block: s.block.hash, title: `slot ${s.epoch}.${s.slot} produced by #${s.block.producer}`, text: `block ${s.block.hash}` }));
    else if (s.rejected) out.push(record(now, { kind: "slot_rejected", ...at, title: `slot ${s.epoch}.${s.slot} rejected`, text: `no runner produced it; rejected by ${s.rejected}` }));
    else out.push(record(now, { kind: "slot_missed", ...at, title: `slot ${s.epoch}.${s.slot} missed`, text: "no runner's leader log shows a block for it" }));
  }
  return { records: out, memory: { alerts, boundary: b, failing } };
}
