// The resolved configuration: what the program uses. Durations are milliseconds, per-runner paths
// are expanded, optional features are either fully present or null. The input shape (what the YAML
// file says, seconds and templates) lives in schema.ts and never leaks past the loader.

export type KeyMode = "boot" | "rest";
export type Scope = "system" | "user";

export interface RunnerConfig {
  id: number;
  /** Per-runner symlink to a jormungandr binary, e.g. /usr/local/bin/jormungandr_runner_0 */
  binary: string;
  /** Node config YAML passed with --config */
  nodeConfig: string;
  /** Storage dir passed with --storage */
  storage: string;
  /** host:port passed with --rest-listen */
  restListen: string;
  /** http://host:port/api/v0 */
  restUrl: string;
  /** Unit name, e.g. jorm_runner@0.service */
  unit: string;
}

export interface PoolToolConfig {
  poolId: string;
  userId: string;
  genesis: string;
  sendWaitMs: number;
  recvWaitMs: number;
  endpTip: string;
  endpStats: string;
}

export interface ResolvedConfig {
  /** Where it was loaded from (null: built-in defaults) */
  source: string | null;
  cntRunners: number;
  runners: RunnerConfig[];
  nodeSecretPath: string;
  genesisHashPath: string;
  keyMode: KeyMode;

  /** Blocks a runner may lag behind the best known height before it counts as stuck */
  maxOffset: number;
  /** Blocks the signer may lag behind the best known height before the key moves, in the gap before
   *  the next window, to an in-sync standby holding the schedule (its blocks would be orphaned) */
  signerMaxLag: number;
  maxBootMs: number;
  eventActionMs: number;
  startBeforeEventMs: number;
  bootCatchUpMs: number;
  /** A leader slot's guarded window is [slot start - slotGuardMs, slot end + slotMarginMs] */
  slotGuardMs: number;
  slotMarginMs: number;

  loopPeriodMs: number;
  restTimeoutMs: number;

  systemd: {
    scope: Scope;
    masterUnit: string;
    /** Template with {id}, e.g. jorm_runner@{id}.service */
    runnerUnitTemplate: string;
    user: string;
  };
  /** host:port for /metrics, null when off */
  metricsListen: string | null;
  pooltool: PoolToolConfig | null;
  logLevel: "error" | "warn" | "info" | "debug";
  /** Keys of the strict 2020-01 seed variant, accepted and kept for reference (seconds→ms) */
  legacy: Record<string, number>;
}
