// The control channel's wire format: one JSON request per connection, one JSON answer, each a single
// line. Both sides validate with zod: a daemon of another version, a stray client or a truncated
// write is an error answer, never a crash or a guess.

import { z } from "zod";
import type { TickReport } from "../master/loop.ts";
import { epochClock } from "../master/schedule.ts";
import type { RunnerView } from "../master/types.ts";

/** Requests the daemon answers. Read-only ones are answered at once from the last tick; mutating
 *  ones (none yet) go through the inbox and are answered after the loop applied them. */
export const requestSchema = z.discriminatedUnion("cmd", [
  z.object({ cmd: z.literal("ping") }).strict(),
  z.object({ cmd: z.literal("status") }).strict(),
  // Mutating: applied by the loop between ticks (the inbox).
  z.object({ cmd: z.literal("hold"), id: z.number().int().min(0), reason: z.string().max(500) }).strict(),
  z.object({ cmd: z.literal("release"), id: z.number().int().min(0) }).strict(),
  /** check: only say what the switchover would do (target, slots lost), change nothing */
  /** host (cluster mode): hand the signing right to that host instead; target must then be null */
  z.object({ cmd: z.literal("switchover"), target: z.number().int().min(0).nullable(), force: z.boolean(), check: z.boolean(), host: z.string().min(1).max(253).optional() }).strict(),
  /** Work done by a command outside the loop (a rolling upgrade), told to the daemon so its event log
   *  and alerts carry it: recorded at once, nothing applied */
  z.object({ cmd: z.literal("report"), kind: z.literal("upgrade"), ok: z.boolean(), title: z.string().min(1).max(200), text: z.string().max(2000) }).strict(),
]);
export type MutatingRequest = Extract<ControlRequest, { cmd: "hold" | "release" | "switchover" }>;
export type ControlRequest = z.infer<typeof requestSchema>;
export type ReportRequest = Extract<ControlRequest, { cmd: "report" }>;

const runnerViewSchema = z.object({
  id: z.number().int(),
  cap: z.string(),
  running: z.boolean(),
  nodeState: z.string().nullable(),
  height: z.number().nullable(),
  leaderIds: z.array(z.number()).nullable(),
  busy: z.boolean(),
  frozen: z.boolean(),
  /** Held by the operator (absent from daemons before holds existed) */
  held: z.object({ reason: z.string(), sinceMs: z.number() }).nullable().optional(),
  /** Running, able, and holding the epoch's remaining slots (or none are left) */
  warm: z.boolean().optional(),
});

/** The daemon's own view, from its last tick: what only it knows (its memory), not what REST shows. */
export const daemonViewSchema = z.object({
  pid: z.number().int(),
  version: z.string(),
  startedMs: z.number(),
  ticks: z.number().int(),
  /** null: no tick has completed yet */
  tickAtMs: z.number().nullable(),
  tickDurationMs: z.number().nullable(),
  signer: z.number().int().nullable(),
  /** A boundary hand-out in progress: co-holders computing `epoch`'s schedule */
  boundary: z.object({ epoch: z.number().int(), coHolders: z.array(z.number().int()), stripped: z.boolean() }).nullable(),
  views: z.array(runnerViewSchema),
  notes: z.array(z.string()),
  /** Absolute slot numbers of the pool's leader events the daemon knows of */
  events: z.array(z.number().int()),
  knownEpochs: z.array(z.number().int()),
  /** A switchover the operator asked for, still under way */
  switchover: z
    .object({ target: z.number().int().nullable(), force: z.boolean(), requestedMs: z.number(), from: z.number().int().nullable(), why: z.string().nullable(), host: z.string().nullable().optional(), phase: z.string().nullable().optional() })
    .nullable()
    .optional(),
});
export type DaemonView = z.infer<typeof daemonViewSchema>;

/** What hold/release/switchover answer: what the daemon did, in words, and for a switchover the gap. */
export const operatorResultSchema = z.object({
  message: z.string(),
  target: z.number().int().nullable().optional(),
  lostSlots: z.number().int().optional(),
  /** The switchover's gap: the pool's slots before and after it (absolute), and when the key moved */
  gap: z.object({ afterSlot: z.string().nullable(), beforeSlot: z.string().nullable(), atMs: z.number() }).optional(),
  /** Cross-host switchover: the host that signs now, and how long it took (request → key taken up) */
  host: z.string().optional(),
  handoverMs: z.number().optional(),
});
export type OperatorResult = z.infer<typeof operatorResultSchema>;

export const pingResultSchema = z.object({ pid: z.number().int(), version: z.string(), startedMs: z.number() });

export const answerSchema = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), result: z.unknown() }),
  z.object({ ok: z.literal(false), error: z.string() }),
]);
export type ControlAnswer = z.infer<typeof answerSchema>;

/** Longest request line a server reads; anything longer is refused (a request is a few bytes). */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Longest answer a client reads (a status view of a few runners is a few kB). */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** The view the daemon hands out, from its last tick report. Pure. */
export function daemonView(r: TickReport | null, meta: { pid: number; version: string; startedMs: number; ticks: number }): DaemonView {
  const intent = r?.observation.intent;
  const clock = r?.observation.settings ? epochClock(r.observation.settings) : null;
  const now = r?.observation.atMs ?? 0;
  const curEpoch = clock ? clock.epochAt(now) : null;
  const epochSlotsAhead = clock !== null && curEpoch !== null && (r?.memory.events ?? []).some((abs) => clock.epochOf(abs) === curEpoch && clock.slotStartMs(abs) > now);
  const warm = (v: RunnerView): boolean => {
    const m = r?.memory.runners[v.id];
    const able = v.running && (v.cap === "keyless" || v.cap === "holder");
    if (!able || !m || m.logsReadMs === null) return able && !epochSlotsAhead;
    const left = clock && curEpoch !== null ? m.pendingSlots.filter((abs) => clock.epochOf(abs) === curEpoch && clock.slotStartMs(abs) > now).length : 0;
    return !epochSlotsAhead || left > 0;
  };
  const so = intent?.switchover ?? null;
  return {
    ...meta,
    tickAtMs: r ? r.startedMs : null,
    tickDurationMs: r ? r.durationMs : null,
    signer: r?.memory.signer ?? null,
    boundary: r?.memory.boundary ? { epoch: r.memory.boundary.epoch, coHolders: [...r.memory.boundary.coHolders], stripped: r.memory.boundary.stripped === true } : null,
    views: (r?.views ?? []).map((v) => ({ id: v.id, cap: v.cap, running: v.running, nodeState: v.nodeState, height: v.height, leaderIds: v.leaderIds, busy: v.busy, frozen: v.frozen, held: intent?.holds[v.id] ?? null, warm: warm(v) })),
    notes: [...(r?.plan.notes ?? [])],
    events: [...(r?.memory.events ?? [])],
    knownEpochs: [...(r?.memory.knownEpochs ?? [])],
    switchover: so ? { ...so, why: r?.plan.switchover?.why ?? null } : null,
  };
}

/** One line for a human: "daemon: signer #1, hand-out in progress (#0, #2 computing epoch 5)". */
export function daemonHeadline(v: DaemonView, nowMs: number): string {
  const parts: string[] = [];
  if (v.tickAtMs === null) parts.push("starting, no tick yet");
  else parts.push(v.signer === null ? "no signer" : `signer #${v.signer}`);
  if (v.boundary) {
    const who = v.boundary.coHolders.map((id) => `#${id}`).join(", ");
    parts.push(`hand-out in progress (${who || "no co-holder"} computing epoch ${v.boundary.epoch}'s schedule${v.boundary.stripped ? ", keys being taken back" : ""})`);
  }
  if (v.tickAtMs !== null) {
    const ageS = Math.max(0, Math.round((nowMs - v.tickAtMs) / 1000));
    if (ageS >= 10) parts.push(`last tick ${ageS} s ago`);
  }
  for (const r of v.views) if (r.held) parts.push(`#${r.id} held (${r.held.reason || "no reason given"})`);
  if (v.switchover) parts.push(`switchover to ${v.switchover.host ? `host ${v.switchover.host}${v.switchover.phase ? ` (${v.switchover.phase})` : ""}` : v.switchover.target === null ? "the best standby" : `#${v.switchover.target}`} under way`);
  for (const n of v.notes) parts.push(n);
  return `daemon (pid ${v.pid}): ${parts.join("; ")}`;
}
