// What `jorm-master status` shows, as a pure function of what it read (REST, systemd, PoolTool) and
// the time: one row per runner, a header, and the exit code that makes it a monitoring check.

import type { ActiveState } from "../ports.ts";
import type { RunnerObs } from "../master/types.ts";
import { epochClock } from "../master/schedule.ts";
import type { NodeError, Settings } from "../node/types.ts";

/** Exactly one runner holds the key and is Running */
export const EXIT_ONE_SIGNER = 0;
/** No runner holds the key while Running (none holds it, or the one holding it is not Running) */
export const EXIT_NO_SIGNER = 2;
/** More than one runner holds the key */
export const EXIT_SEVERAL_HOLDERS = 3;

/** What status read of one runner: the same shape the daemon observes (systemd null with
 *  --rest-only or when it did not answer; REST null for a unit beyond cnt_runners). */
export type StatusRunnerInput = RunnerObs;

export interface StatusInput {
  nowMs: number;
  cntRunners: number;
  runners: readonly StatusRunnerInput[];
  /** From the first Running runner; null when none answered */
  settings: Settings | null;
  /** null: PoolTool is not configured */
  pooltool: { majorityMax: number | null; error: string | null } | null;
  /** null: systemd was asked and answered; a string: why unit states are missing */
  systemdError: string | null;
}

export interface StatusRow {
  id: number;
  /** A unit beyond cnt_runners that is still active (the daemon retires these) */
  leftover: boolean;
  unitState: ActiveState | null;
  unitSubState: string | null;
  mainPid: number | null;
  frozen: boolean | null;
  /** The node's state, or null when its REST did not say */
  nodeState: string | null;
  /** Why REST did not answer with stats */
  restError: string | null;
  height: number | null;
  /** Blocks behind the best known height */
  lag: number | null;
  /** true: GET /leaders lists a key; false: none; null: unknown */
  keyHeld: boolean | null;
  leaderIds: number[] | null;
  /** Pending leader events of the current epoch in its logs; null when its logs could not be read */
  eventsLeft: number | null;
  nextEventInMs: number | null;
  uptimeMs: number | null;
  restarts: number | null;
}

export interface StatusModel {
  atMs: number;
  epoch: number | null;
  slot: number | null;
  slotsPerEpoch: number | null;
  toBoundaryMs: number | null;
  /** The max of the runners' heights and PoolTool's majority max */
  bestHeight: number | null;
  pooltool: { majorityMax: number | null; error: string | null } | null;
  systemdError: string | null;
  rows: StatusRow[];
  /** Runners whose GET /leaders lists a key */
  holders: number[];
  /** The one runner that holds the key and is Running, when there is exactly one holder */
  signer: number | null;
  exitCode: typeof EXIT_ONE_SIGNER | typeof EXIT_NO_SIGNER | typeof EXIT_SEVERAL_HOLDERS;
  verdict: string;
}

export function describeNodeError(e: NodeError): string {
  switch (e.kind) {
    case "not_ready":
      return `booting (HTTP ${e.status})`;
    case "unreachable":
      return e.reason === "timeout" ? "no answer (timeout)" : e.reason === "refused" ? "refused" : e.reason === "reset" ? "connection reset" : "unreachable";
    case "http":
      return `HTTP ${e.status}`;
    case "malformed":
      return `bad answer (${e.field})`;
  }
}

function row(r: StatusRunnerInput, input: StatusInput, clock: ReturnType<typeof epochClock> | null): StatusRow {
  const now = input.nowMs;
  const stats = r.stats?.ok ? r.stats.value : null;
  const leaders = r.leaders?.ok ? r.leaders.value : null;
  let eventsLeft: number | null = null;
  let nextEventInMs: number | null = null;
  if (r.logs?.ok) {
    const slotMs = clock?.slotMs ?? 0;
    const pending = r.logs.value.filter((l) => l.status.kind === "pending" && l.scheduledAtMs + slotMs > now);
    const epoch = clock?.epochAt(now) ?? null;
    eventsLeft = pending.filter((l) => epoch === null || l.scheduledAt.epoch === epoch).length;
    const next = pending.filter((l) => l.scheduledAtMs > now).map((l) => l.scheduledAtMs);
    nextEventInMs = next.length === 0 ? null : Math.min(...next) - now;
  }
  const unitUp = r.unit !== null && r.unit.activeState === "active" && r.unit.sinceMs !== null;
  return {
    id: r.id,
    leftover: r.id >= input.cntRunners,
    unitState: r.unit?.activeState ?? null,
    unitSubState: r.unit?.subState ?? null,
    mainPid: r.unit?.mainPid ?? null,
    frozen: r.unit?.frozen ?? null,
    nodeState: stats?.state ?? (r.stats && !r.stats.ok && r.stats.error.kind === "not_ready" ? "Booting" : null),
    restError: r.stats && !r.stats.ok ? describeNodeError(r.stats.error) : null,
    height: stats?.height ?? null,
    lag: null,
    keyHeld: leaders === null ? null : leaders.length > 0,
    leaderIds: leaders,
    eventsLeft,
    nextEventInMs,
    // The process's age when systemd knows it, else how long the node's workers have run.
    uptimeMs: unitUp ? now - r.unit!.sinceMs! : stats?.uptimeS != null ? stats.uptimeS * 1000 : null,
    restarts: r.unit?.restarts ?? null,
  };
}

/** A unit beyond cnt_runners is worth a row only while something runs there. */
const shown = (r: StatusRunnerInput, cnt: number) =>
  r.id < cnt || (r.unit !== null && (r.unit.activeState !== "inactive" || r.unit.mainPid > 0));

export function statusModel(input: StatusInput): StatusModel {
  const now = input.nowMs;
  const clock = input.settings ? epochClock(input.settings) : null;
  const rows = input.runners.filter((r) => shown(r, input.cntRunners)).map((r) => row(r, input, clock));
  const heights = rows.map((r) => r.height).filter((h): h is number => h !== null);
  const mm = input.pooltool?.majorityMax ?? null;
  const all = mm === null ? heights : [...heights, mm];
  const bestHeight = all.length === 0 ? null : Math.max(...all);
  for (const r of rows) r.lag = r.height === null || bestHeight === null ? null : bestHeight - r.height;

  const holders = rows.filter((r) => r.keyHeld === true).map((r) => r.id);
  const holderRow = holders.length === 1 ? rows.find((r) => r.id === holders[0])! : null;
  const signing = holderRow !== null && holderRow.nodeState === "Running" && holderRow.frozen !== true;
  let exitCode: StatusModel["exitCode"];
  let verdict: string;
  if (holders.length > 1) {
    exitCode = EXIT_SEVERAL_HOLDERS;
    verdict = `${holders.length} runners hold the key (${holders.map((id) => `#${id}`).join(", ")}): they may sign the same slot`;
  } else if (signing) {
    exitCode = EXIT_ONE_SIGNER;
    verdict = `#${holderRow!.id} holds the key and is Running`;
  } else {
    exitCode = EXIT_NO_SIGNER;
    verdict =
      holderRow === null
        ? "no runner holds the key: nobody signs"
        : `#${holderRow.id} holds the key but is ${holderRow.frozen ? "frozen" : (holderRow.nodeState ?? holderRow.restError ?? "not answering")}: nobody signs`;
    const unknown = rows.filter((r) => r.keyHeld === null && !r.leftover && r.unitState !== "inactive" && r.unitState !== "failed");
    if (unknown.length > 0) verdict += ` (keys unknown for ${unknown.map((r) => `#${r.id}`).join(", ")})`;
  }

  let epoch: number | null = null;
  let slot: number | null = null;
  let toBoundaryMs: number | null = null;
  if (clock) {
    epoch = clock.epochAt(now);
    slot = clock.absSlotAt(now) - clock.abs(epoch, 0);
    toBoundaryMs = clock.epochStartMs(epoch + 1) - now;
  }
  return {
    atMs: now,
    epoch,
    slot,
    slotsPerEpoch: clock?.slotsPerEpoch ?? null,
    toBoundaryMs,
    bestHeight,
    pooltool: input.pooltool,
    systemdError: input.systemdError,
    rows,
    holders,
    signer: signing ? holderRow!.id : null,
    exitCode,
    verdict,
  };
}
