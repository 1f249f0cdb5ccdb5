// Builders for hand-made observations: each decide test states only what matters to it.
import { defaultConfig } from "../../src/config/load.ts";
import type { ResolvedConfig } from "../../src/config/types.ts";
import type { LeaderLog, NodeError, NodeResult, NodeStats, Settings } from "../../src/node/types.ts";
import type { UnitState } from "../../src/ports.ts";
import type { Observation, RunnerObs } from "../../src/master/types.ts";

/** A small chain: 1 s slots, 100 slots per epoch, block0 at 0. */
export const SETTINGS: Settings = {
  block0Hash: "00".repeat(32),
  block0TimeMs: 0,
  slotDurationMs: 1000,
  slotsPerEpoch: 100,
  consensusVersion: "genesis",
  currSlotStartTimeMs: null,
};

export function config(over: Partial<ResolvedConfig> = {}): ResolvedConfig {
  return {
    ...defaultConfig(),
    cntRunners: 3,
    eventActionMs: 5_000,
    loopPeriodMs: 500,
    restTimeoutMs: 500,
    slotGuardMs: 500,
    slotMarginMs: 500,
    maxOffset: 5,
    bootCatchUpMs: 60_000,
    maxBootMs: 600_000,
    ...over,
  };
}

const ok = <T>(value: T): NodeResult<T> => ({ ok: true, value });
const err = <T>(error: NodeError): NodeResult<T> => ({ ok: false, error });
export const TIMEOUT: NodeError = { kind: "unreachable", reason: "timeout", message: "deadline 500 ms" };
export const REFUSED: NodeError = { kind: "unreachable", reason: "refused", message: "connection refused" };
export const NOT_READY: NodeError = { kind: "not_ready", status: 503, message: "Full REST context not available yet" };

export function unit(id: number, over: Partial<UnitState> = {}): UnitState {
  return { id, activeState: "active", subState: "running", mainPid: 1000 + id, sinceMs: 0, restarts: 0, frozen: false, ...over };
}

export function stats(height: number, state: NodeStats["state"] = "Running"): NodeStats {
  return {
    state,
    version: "jormungandr 0.8.14",
    height: state === "Running" ? height : null,
    lastBlockDate: null,
    lastBlockTimeMs: null,
    lastReceivedBlockTimeMs: null,
    uptimeS: 100,
    nodeId: null,
  };
}

export function pending(epoch: number, slot: number): LeaderLog {
  return {
    createdAtMs: 0,
    scheduledAtMs: epoch * 100_000 + slot * 1000,
    scheduledAt: { epoch, slot },
    wakeAtMs: null,
    finishedAtMs: null,
    status: { kind: "pending" },
    enclaveLeaderId: 1,
  };
}

export interface RunnerSpec {
  /** holder: Running with key; standby: Running key-less; booting; dead (REST refused); hang (timeouts); stopped; frozen */
  kind: "holder" | "standby" | "booting" | "dead" | "hang" | "stopped" | "frozen" | "busy";
  height?: number;
  logs?: LeaderLog[];
  unit?: Partial<UnitState>;
}

export function runner(id: number, spec: RunnerSpec): RunnerObs {
  const h = spec.height ?? 1000;
  const logs = spec.logs ? ok(spec.logs) : null;
  switch (spec.kind) {
    case "holder":
      return { id, unit: unit(id, spec.unit), stats: ok(stats(h)), leaders: ok([1]), logs };
    case "standby":
      return { id, unit: unit(id, spec.unit), stats: ok(stats(h)), leaders: ok([]), logs };
    case "busy":
      return { id, unit: unit(id, spec.unit), stats: ok(stats(h)), leaders: err(TIMEOUT), logs };
    case "booting":
      return { id, unit: unit(id, spec.unit), stats: ok(stats(0, "Bootstrapping")), leaders: err(NOT_READY), logs: null };
    case "dead":
      return { id, unit: unit(id, spec.unit), stats: err(REFUSED), leaders: err(REFUSED), logs: null };
    case "hang":
      return { id, unit: unit(id, spec.unit), stats: err(TIMEOUT), leaders: err(TIMEOUT), logs: null };
    case "stopped":
      return { id, unit: unit(id, { activeState: "inactive", subState: "dead", mainPid: 0, ...spec.unit }), stats: err(REFUSED), leaders: err(REFUSED), logs: null };
    case "frozen":
      return { id, unit: unit(id, { frozen: true, ...spec.unit }), stats: err(TIMEOUT), leaders: err(TIMEOUT), logs: null };
  }
}

export function observation(atMs: number, runners: RunnerObs[], over: Partial<Observation> = {}): Observation {
  return { atMs, settings: SETTINGS, runners, majorityMax: null, ...over };
}
