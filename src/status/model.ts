// What `jorm-master status` shows, as a pure function of what it read (REST, systemd, PoolTool) and
// the time: one row per runner, a header, and the exit code that makes it a monitoring check.
//
// Monitoring-plugin codes (what Nagios, Icinga, Sensu and Zabbix's check runners read), fail closed:
// a runner counts as able to sign until fresh evidence proves otherwise (stopped, frozen, /leaders
// empty). The boundary hand-out is recognised from evidence status reads itself, without the
// daemon: the time (within event_action before a boundary, up to slot 1's guarded window after it),
// the co-holder's dead-man switch (the transient timer act arms) armed to fire before that window,
// and its leader logs showing no event before the switch fires.

import type { ActiveState } from "../ports.ts";
import type { RunnerObs } from "../master/types.ts";
import { epochClock, type EpochClock } from "../master/schedule.ts";
import type { NodeError, Settings } from "../node/types.ts";
import { clusterSection, type ClusterSection, type StatusRegistry } from "./cluster.ts";

/** One signer; every other runner proven unable to sign, or a recognised boundary co-holder */
export const EXIT_OK = 0;
/** One signer, but something needs attention: a key state unknown, no warm standby, a unit failed, PoolTool unreachable */
export const EXIT_WARNING = 1;
/** No signer, or more than one runner that may sign outside a hand-out */
export const EXIT_CRITICAL = 2;
/** status could not evaluate (a broken config, an unexpected error): set by the command, never by the model */
export const EXIT_UNKNOWN = 3;
export type StatusExitCode = typeof EXIT_OK | typeof EXIT_WARNING | typeof EXIT_CRITICAL | typeof EXIT_UNKNOWN;
export const STATE_NAMES = ["OK", "WARNING", "CRITICAL", "UNKNOWN"] as const;

/** The co-holders' hand-out begins event_action before the boundary (decide promotes them then at the
 *  earliest); this much earlier still counts, for a status clock a little ahead of the daemon's tick.
 *  Likewise a switch still waiting this long after its fire time (systemd about to fire it) counts. */
export const HANDOUT_CLOCK_TOLERANCE_MS = 1_000;

/** A runner's boundary dead-man switch as systemd reports it (see showFreezeSwitches). */
export interface DeadManSwitch {
  armed: boolean;
  /** When it freezes the runner (ms since epoch); null when not armed or unreadable */
  fireAtMs: number | null;
}

/** What status read of one runner: the same shape the daemon observes (systemd null with
 *  --rest-only or when it did not answer; REST null for a unit beyond cnt_runners), plus its
 *  dead-man switch (null: not read). */
export type StatusRunnerInput = RunnerObs & { deadManSwitch?: DeadManSwitch | null };

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
  /** false with --rest-only: missing unit states are then asked for, not a fault */
  systemdAsked?: boolean;
  /** Why the dead-man switches could not be read (null: read, or systemd not asked) */
  switchesError?: string | null;
  /** From the config: when the daemon hands the key out before a boundary and how long before a
   *  slot its guarded window opens. null: no hand-out is ever recognised. */
  handout?: { eventActionMs: number; slotGuardMs: number } | null;
  /** From the config: with "rest" a booting runner cannot hold the key (its unit has no secret) */
  keyMode?: "boot" | "rest";
  /** Cluster mode: this host's name and who holds the etcd signer key (null: nobody, or unreadable:
   *  error), and the host registry read with it (absent or null: not read) */
  cluster?: { self: string; holder: string | null; error: string | null; registry?: StatusRegistry | null } | null;
}

/**
 * Whether a runner can sign, as far as status can prove it:
 * - signer: the one key holder that is Running
 * - may-sign: holds the key (or boots holding it) and is not the signer: a second signer
 * - hand-out: a boundary co-holder whose dead-man switch freezes it before it could sign
 * - unable: proven unable (stopped, frozen, /leaders empty, or booting without the key)
 * - unknown: alive and its keys unknown (REST silent, /leaders hanging or garbled): it may sign
 */
export type Signing = "signer" | "may-sign" | "hand-out" | "unable" | "unknown";

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
  /** Why GET /leaders gave no list (null when it did, or was not asked) */
  leadersError: string | null;
  /** Pending leader events of the current epoch in its logs; null when its logs could not be read */
  eventsLeft: number | null;
  nextEventInMs: number | null;
  uptimeMs: number | null;
  restarts: number | null;
  /** Its boundary dead-man switch; null when not read */
  deadManSwitch: DeadManSwitch | null;
  signing: Signing;
  /** The evidence behind `signing`, in words */
  signingWhy: string;
  /** A recognised boundary co-holder (signing "hand-out") */
  handout: boolean;
  /**
   * Whether it could take over now and sign the rest of the epoch (the metric
   * jorm_master_runner_warm, read from the runners themselves): true when it is Running, not frozen,
   * its keys are known, its leader logs were read, and they hold this epoch's remaining slots (an
   * event still pending), or no runner's logs show a slot left in this epoch; a recognised boundary
   * co-holder counts as warm (it is computing the new epoch with the key). false when it is down,
   * frozen, not Running, or its logs show none of the slots another runner's logs still have (cold:
   * it lacks this epoch's schedule). null when that cannot be told (keys or logs unknown): never
   * counted as warm.
   */
  warm: boolean | null;
  /** The evidence behind `warm`, in words */
  warmWhy: string;
}

export interface Handout {
  /** The epoch whose schedule the co-holders compute */
  epoch: number;
  boundaryMs: number;
  coHolders: number[];
  /** The latest time a co-holder's dead-man switch fires */
  switchesFireByMs: number;
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
  /** The one runner that holds the key and is Running, when no other runner may sign */
  signer: number | null;
  /** The boundary hand-out under way, when status recognised one */
  handout: Handout | null;
  /** Runners proven cold: Running and answering, but without this epoch's remaining slots */
  cold: number[];
  /** Header lines that are not warnings (e.g. key mode rest has no mid-epoch remedy for a cold standby) */
  notes: string[];
  /** Everything that makes it a WARNING (also listed when the state is worse) */
  warnings: string[];
  exitCode: StatusExitCode;
  state: (typeof STATE_NAMES)[number];
  verdict: string;
  /** Cluster mode: the signing host, its lease, and every host's entry from the registry */
  cluster: ClusterSection | null;
}

/** Severity for combining this host's verdict with the cluster's: CRITICAL outranks UNKNOWN. */
const RANK: Record<StatusExitCode, number> = { [EXIT_OK]: 0, [EXIT_WARNING]: 1, [EXIT_UNKNOWN]: 2, [EXIT_CRITICAL]: 3 };

/**
 * This host's verdict combined with the cluster's: etcd unreadable is UNKNOWN (this host cannot tell
 * whether another one signs too) unless this host alone is already CRITICAL; the cluster's CRITICAL
 * and WARNING findings come first and last respectively.
 */
function withCluster(
  local: { exitCode: StatusExitCode; verdict: string; noSignerHere: string | null; warnings: number },
  cl: NonNullable<StatusInput["cluster"]>,
  section: ClusterSection | null,
): { exitCode: StatusExitCode; verdict: string } {
  let { exitCode, verdict } = local;
  if (cl.error !== null) {
    // No signer here may be fine (another host signs) or an outage: unknown. Two signers here is CRITICAL anyway.
    if (RANK[exitCode] < RANK[EXIT_UNKNOWN] || local.noSignerHere !== null) return { exitCode: EXIT_UNKNOWN, verdict: `etcd cannot be read (${cl.error}): whether another host signs is unknown; this host: ${verdict}` };
    return { exitCode, verdict };
  }
  if (section === null) return { exitCode, verdict };
  if (local.noSignerHere !== null && section.deferNoSigner) {
    // No host holds the lease, or this one waits out its takeover: the registry says for how long
    // nobody signed (a takeover, or an outage).
    exitCode = local.warnings > 0 ? EXIT_WARNING : EXIT_OK;
    verdict = local.noSignerHere;
  }
  if (section.critical.length > 0) {
    verdict = `${section.critical.join("; ")}${exitCode === EXIT_OK ? "" : `; this host: ${verdict}`}`;
    exitCode = EXIT_CRITICAL;
  } else if (section.warnings.length > 0) {
    verdict += `${exitCode === EXIT_OK ? ", but" : ";"} cluster: ${section.warnings.join("; ")}`;
    if (exitCode === EXIT_OK) exitCode = EXIT_WARNING;
  }
  return { exitCode, verdict };
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

type BaseRow = Omit<StatusRow, "signing" | "signingWhy" | "handout" | "warm" | "warmWhy">;

function row(r: StatusRunnerInput, input: StatusInput, clock: EpochClock | null): BaseRow {
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
    leadersError: r.leaders && !r.leaders.ok ? describeNodeError(r.leaders.error) : null,
    eventsLeft,
    nextEventInMs,
    // The process's age when systemd knows it, else how long the node's workers have run.
    uptimeMs: unitUp ? now - r.unit!.sinceMs! : stats?.uptimeS != null ? stats.uptimeS * 1000 : null,
    restarts: r.unit?.restarts ?? null,
    deadManSwitch: r.deadManSwitch ?? null,
  };
}

/** A unit beyond cnt_runners is worth a row only while something runs there. */
const shown = (r: StatusRunnerInput, cnt: number) =>
  r.id < cnt || (r.unit !== null && (r.unit.activeState !== "inactive" || r.unit.mainPid > 0));

/** What the evidence proves about one runner, before any hand-out is considered. */
function classify(r: StatusRunnerInput, b: BaseRow, keyMode: "boot" | "rest"): { signing: "may-sign" | "unable" | "unknown"; why: string } {
  const u = r.unit;
  if (u && u.mainPid === 0 && u.activeState !== "active") return { signing: "unable", why: `no process (unit ${u.activeState})` };
  if (u?.frozen === true) return { signing: "unable", why: "frozen (SIGSTOP verified)" };
  if (b.keyHeld === false) return { signing: "unable", why: "GET /leaders lists no key" };
  if (b.keyHeld === true) return { signing: "may-sign", why: `GET /leaders lists ${JSON.stringify(b.leaderIds)}` };
  // Keys unknown. A runner still booting holds the key only if its unit boots with the secret.
  const booting = b.nodeState !== null && b.nodeState !== "Running";
  if (booting && keyMode === "rest" && !b.leftover) return { signing: "unable", why: `${b.nodeState}, and with key_mode rest it boots without the key` };
  if (b.leftover) return { signing: "unknown", why: "a unit beyond cnt_runners runs; its keys are not asked" };
  if (b.nodeState === "Running") return { signing: "unknown", why: `Running, but GET /leaders: ${b.leadersError ?? "not asked"}` };
  if (booting) return { signing: "unknown", why: `${b.nodeState}, and with key_mode boot it may boot holding the key` };
  if (u === null) return { signing: "unknown", why: `REST: ${b.restError ?? "no answer"}, and systemd did not say whether a process runs` };
  return { signing: "unknown", why: `unit ${u.activeState} with a process, REST: ${b.restError ?? "no answer"}` };
}

/**
 * The boundary around `now` whose hand-out period contains it, or null: from event_action before
 * the boundary (when decide hands the key out) to the opening of slot 1's guarded window after it
 * (the latest a co-holder's dead-man switch may fire).
 */
function handoutBoundary(clock: EpochClock, now: number, t: { eventActionMs: number; slotGuardMs: number }): { epoch: number; startMs: number; latestFireMs: number } | null {
  const epoch = clock.epochAt(now);
  for (const e of [epoch + 1, epoch]) {
    const startMs = clock.epochStartMs(e);
    const latestFireMs = startMs + clock.slotMs - t.slotGuardMs;
    if (now >= startMs - t.eventActionMs - HANDOUT_CLOCK_TOLERANCE_MS && now < latestFireMs) return { epoch: e, startMs, latestFireMs };
  }
  return null;
}

/** See StatusRow.warm. `slotsLeft`: the pool's slots still ahead in this epoch, in any runner's logs. */
function warmth(r: StatusRow, input: StatusRunnerInput, slotsLeft: number, epoch: number | null, now: number): { warm: boolean | null; warmWhy: string } {
  if (r.handout) return { warm: true, warmWhy: "boundary co-holder: computing the new epoch's schedule with the key" };
  if (r.unitState !== null && r.unitState !== "active" && (r.mainPid ?? 0) === 0) return { warm: false, warmWhy: "no process" };
  if (r.frozen === true) return { warm: false, warmWhy: "frozen" };
  if (r.nodeState !== "Running") return r.nodeState !== null ? { warm: false, warmWhy: `not Running (${r.nodeState})` } : { warm: null, warmWhy: `REST: ${r.restError ?? "no answer"}` };
  if (r.keyHeld === null) return { warm: null, warmWhy: "its keys are unknown" };
  if (!input.logs?.ok) return { warm: null, warmWhy: `its leader logs could not be read${input.logs ? ` (${describeNodeError(input.logs.error)})` : ""}` };
  if (slotsLeft === 0) return { warm: true, warmWhy: `no runner's logs show a slot left in epoch ${epoch ?? "?"}` };
  const mine = new Set(input.logs.value.filter((l) => l.status.kind === "pending" && l.scheduledAt.epoch === epoch && l.scheduledAtMs > now).map((l) => l.scheduledAt.slot));
  if (mine.size > 0) return { warm: true, warmWhy: `holds ${mine.size} of epoch ${epoch}'s ${slotsLeft} remaining slots` };
  return { warm: false, warmWhy: `its logs show none of epoch ${epoch}'s ${slotsLeft} remaining slots (cold)` };
}

const ids = (xs: readonly { id: number }[]) => xs.map((x) => `#${x.id}`).join(", ");

export function statusModel(input: StatusInput): StatusModel {
  const now = input.nowMs;
  const keyMode = input.keyMode ?? "boot";
  const clock = input.settings ? epochClock(input.settings) : null;
  const inputs = input.runners.filter((r) => shown(r, input.cntRunners));
  const base = inputs.map((r) => row(r, input, clock));
  const heights = base.map((r) => r.height).filter((h): h is number => h !== null);
  const mm = input.pooltool?.majorityMax ?? null;
  const all = mm === null ? heights : [...heights, mm];
  const bestHeight = all.length === 0 ? null : Math.max(...all);
  for (const r of base) r.lag = r.height === null || bestHeight === null ? null : bestHeight - r.height;

  const rows: StatusRow[] = base.map((b, i) => {
    const c = classify(inputs[i]!, b, keyMode);
    return { ...b, signing: c.signing, signingWhy: c.why, handout: false, warm: null, warmWhy: "" };
  });

  // --- The boundary hand-out: a co-holder is harmless while it cannot sign before its switch fires.
  const period = clock && input.handout ? handoutBoundary(clock, now, input.handout) : null;
  const notHandout: string[] = [];
  if (period) {
    for (const [i, r] of rows.entries()) {
      if (r.signing !== "may-sign" && r.signing !== "unknown") continue;
      if (r.leftover) continue;
      const sw = r.deadManSwitch;
      if (!sw?.armed) continue;
      // The switch must fire before slot 1's window opens; one still waiting well after its time
      // is not doing its job.
      if (sw.fireAtMs === null || sw.fireAtMs > period.latestFireMs || sw.fireAtMs < now - HANDOUT_CLOCK_TOLERANCE_MS) {
        notHandout.push(`#${r.id}'s dead-man switch fires ${sw.fireAtMs === null ? "at an unreadable time" : `at ${new Date(sw.fireAtMs).toISOString()}`}, not before slot 1 of epoch ${period.epoch}`);
        continue;
      }
      // A key re-given revives the events computed earlier in the epoch: none may come before the switch.
      const logs = inputs[i]!.logs;
      if (!logs?.ok) {
        if (r.signing === "may-sign") {
          r.signing = "unknown";
          r.signingWhy = `holds the key with its dead-man switch armed, but its leader logs could not be read (${logs ? describeNodeError(logs.error) : "not asked"})`;
        }
        continue;
      }
      const slotMs = clock!.slotMs;
      const early = logs.value.find((l) => l.status.kind === "pending" && l.scheduledAtMs + slotMs > now && l.scheduledAtMs < sw.fireAtMs! + input.handout!.slotGuardMs);
      if (early) {
        notHandout.push(`#${r.id} has a leader event at ${early.scheduledAt.epoch}.${early.scheduledAt.slot} before its dead-man switch fires`);
        continue;
      }
      r.signing = "hand-out";
      r.handout = true;
      r.signingWhy = `boundary co-holder for epoch ${period.epoch}: its dead-man switch freezes it in ${Math.max(0, Math.round((sw.fireAtMs - now) / 100) / 10)} s, before slot 1's window`;
    }
  }
  const coHolders = rows.filter((r) => r.handout);
  const handout: Handout | null =
    period && coHolders.length > 0
      ? { epoch: period.epoch, boundaryMs: period.startMs, coHolders: coHolders.map((r) => r.id), switchesFireByMs: Math.max(...coHolders.map((r) => r.deadManSwitch!.fireAtMs!)) }
      : null;

  // --- Who signs.
  const holders = rows.filter((r) => r.keyHeld === true).map((r) => r.id);
  const mayHold = rows.filter((r) => r.signing === "may-sign");
  const unknown = rows.filter((r) => r.signing === "unknown");
  const signerRow = mayHold.length === 1 && mayHold[0]!.nodeState === "Running" && mayHold[0]!.keyHeld === true ? mayHold[0]! : null;
  if (signerRow) {
    signerRow.signing = "signer";
    signerRow.signingWhy = "holds the key and is Running";
  }

  // --- Warmth: who could take over now and sign the rest of the epoch.
  const curEpoch = clock ? clock.epochAt(now) : null;
  const slotsLeft = new Set<number>();
  for (const r of inputs) {
    if (!r.logs?.ok || r.id >= input.cntRunners || curEpoch === null) continue;
    for (const l of r.logs.value) if (l.status.kind === "pending" && l.scheduledAt.epoch === curEpoch && l.scheduledAtMs > now) slotsLeft.add(l.scheduledAt.slot);
  }
  for (const [i, r] of rows.entries()) Object.assign(r, warmth(r, inputs[i]!, slotsLeft.size, curEpoch, now));
  const cold = rows.filter((r) => !r.leftover && r.warm === false && r.nodeState === "Running" && r.frozen !== true).map((r) => r.id);
  const notes: string[] = [];
  const coldStandbys = cold.filter((id) => id !== signerRow?.id);
  if (coldStandbys.length > 0) {
    const who = coldStandbys.map((id) => `#${id}`).join(", ");
    notes.push(
      keyMode === "rest"
        ? `key mode rest: ${who} lack${coldStandbys.length === 1 ? "s" : ""} epoch ${curEpoch}'s schedule; no mid-epoch remedy exists until the next boundary`
        : `${who} lack${coldStandbys.length === 1 ? "s" : ""} epoch ${curEpoch}'s schedule; with key mode boot the daemon restarts cold standbys one at a time to compute it`,
    );
  }

  const warnings: string[] = [];
  for (const r of unknown) warnings.push(`#${r.id}'s key state is unknown (${r.signingWhy}): it may sign`);
  if (input.cntRunners > 1 && signerRow) {
    // Warm as above: Running, key-less (or a co-holder) and holding the epoch's remaining slots.
    const warm = rows.filter((r) => !r.leftover && r.id !== signerRow.id && r.warm === true && (r.signing === "unable" || r.signing === "hand-out"));
    if (warm.length === 0) {
      warnings.push(
        coldStandbys.length > 0
          ? `no warm standby (${coldStandbys.map((id) => `#${id}`).join(", ")} lack${coldStandbys.length === 1 ? "s" : ""} epoch ${curEpoch}'s schedule: a failover would lose the epoch's remaining slots)`
          : "no warm standby (no other runner is Running and key-less)",
      );
    }
  }
  for (const r of rows) if (r.unitState === "failed") warnings.push(`#${r.id}'s unit failed`);
  if (input.pooltool?.error) warnings.push(`PoolTool: ${input.pooltool.error}`);
  if (input.systemdError && input.systemdAsked !== false) warnings.push(`systemd: ${input.systemdError}`);

  let exitCode: StatusExitCode;
  let verdict: string;
  /** Set when no runner here signs and none may: this host's part of the verdict, for withCluster */
  let noSignerHere: string | null = null;
  // Cluster mode: another host holds the signer lease, so this host's runners are key-less by design.
  const cl = input.cluster ?? null;
  const otherHost = cl !== null && cl.error === null && cl.holder !== null && cl.holder !== cl.self ? cl.holder : null;
  if (otherHost !== null && (mayHold.length > 0 || unknown.length > 0 || holders.length > 0)) {
    exitCode = EXIT_CRITICAL;
    const able = [...mayHold, ...unknown];
    verdict = `${otherHost} holds the etcd signer lease, yet ${able.length > 0 ? ids(able) : ids(rows.filter((r) => r.keyHeld === true))} on this host may sign: two hosts may sign the same slot`;
  } else if (otherHost !== null) {
    exitCode = warnings.length > 0 ? EXIT_WARNING : EXIT_OK;
    verdict = `${otherHost} signs (it holds the etcd signer lease); this host's runners are key-less${warnings.length > 0 ? `, but ${warnings.join("; ")}` : ""}`;
  } else if (mayHold.length > 1) {
    exitCode = EXIT_CRITICAL;
    verdict = `${mayHold.length} runners may sign outside a hand-out (${ids(mayHold)}): they may sign the same slot`;
    if (input.switchesError) notHandout.push(`dead-man switches unreadable: ${input.switchesError}`);
    if (notHandout.length > 0) verdict += ` (not a hand-out: ${notHandout.join("; ")})`;
  } else if (!signerRow) {
    exitCode = EXIT_CRITICAL;
    const h = mayHold[0] ?? rows.find((r) => r.keyHeld === true && !r.handout) ?? null;
    verdict =
      h === null
        ? coHolders.length > 0
          ? `only boundary co-holders hold the key (${ids(coHolders)}): nobody signs once their dead-man switches fire`
          : "no runner holds the key: nobody signs"
        : `#${h.id} holds the key but is ${h.frozen ? "frozen" : h.signing === "unable" ? h.signingWhy : (h.nodeState ?? h.restError ?? "not answering")}: nobody signs`;
    if (unknown.length > 0) verdict += ` (keys unknown for ${ids(unknown)})`;
    if (cl?.error) verdict += ` (etcd: ${cl.error})`;
    else if (cl !== null && cl.holder === null) verdict += " (no host holds the etcd signer lease)";
    // Cluster mode: with no runner here able to sign, whether nobody signing is an outage depends on
    // the other hosts (withCluster).
    if (mayHold.length === 0 && unknown.length === 0) noSignerHere = h === null && coHolders.length === 0 ? "this host's runners are key-less" : verdict;
  } else if (warnings.length > 0) {
    exitCode = EXIT_WARNING;
    verdict = `#${signerRow.id} holds the key and is Running, but ${warnings.join("; ")}`;
  } else {
    exitCode = EXIT_OK;
    verdict = `#${signerRow.id} holds the key and is Running`;
  }
  if (signerRow && handout) verdict += `; boundary hand-out to ${ids(coHolders)} (dead-man switches armed)`;
  const section = cl?.registry && cl.error === null ? clusterSection(cl.self, cl.registry, { able: [...mayHold, ...unknown].map((r) => r.id), signer: signerRow?.id ?? null }, now) : null;
  if (cl !== null) {
    ({ exitCode, verdict } = withCluster({ exitCode, verdict, noSignerHere, warnings: warnings.length }, cl, section));
    if (section) warnings.push(...section.warnings);
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
    signer: signerRow?.id ?? null,
    handout,
    cold,
    notes,
    warnings,
    exitCode,
    state: STATE_NAMES[exitCode],
    verdict,
    cluster: section,
  };
}
