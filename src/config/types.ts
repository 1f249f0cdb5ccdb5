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
  /** Upload the epoch's assigned slot count at each epoch start (issue 12) */
  sendSlots?: boolean;
  endpSlots?: string;
}

/** issue 12: where alerts go. Secrets (a Telegram token) are named here, read only by src/alerts. */
export type AlertChannelConfig =
  | { name: string; type: "webhook"; preset: "json" | "slack" | "discord" | "ntfy"; url: string }
  | { name: string; type: "telegram"; chatId: string; apiUrl: string; token: { file: string } | { env: string } };

export interface AlertsConfig {
  channels: AlertChannelConfig[];
  dedupWindowMs: number;
  /** At most rateLimit alerts per channel in any rateWindowMs */
  rateLimit: number;
  rateWindowMs: number;
  retries: number;
  timeoutMs: number;
}

/** Multi-host mode (issue 13): this host's part in a cluster coordinated by etcd. */
export interface ClusterConfig {
  /** This host's name, the value of the signer key while it signs */
  name: string;
  /** etcd client URLs, tried in turn */
  etcdEndpoints: string[];
  /** Key prefix without a trailing slash; the signer key is `${prefix}/signer` */
  prefix: string;
  /** Requested lease TTL (whole seconds, as etcd grants them) */
  leaseTtlS: number;
  /** Deadline of one etcd call, every endpoint included */
  etcdTimeoutMs: number;
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
  /** null: one server, no etcd (no cluster section) */
  cluster: ClusterConfig | null;
  /** null: no alerts section, or no channels */
  alerts: AlertsConfig | null;
  logLevel: "error" | "warn" | "info" | "debug";
  /** Keys of the strict 2020-01 seed variant, accepted and kept for reference (seconds→ms) */
  legacy: Record<string, number>;
}
