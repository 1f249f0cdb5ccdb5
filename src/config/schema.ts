// The input shape: what the YAML file says. Keys are snake_case like the seed's, durations are
// seconds (fractions allowed) and per-runner values are templates with {id}. Nothing outside
// src/config/ sees this shape; the program works with ResolvedConfig (types.ts).

import { z } from "zod";

/** The seed's ITN genesis block hash; PoolTool needs it to tell chains apart. */
export const ITN_GENESIS_HASH = "8e4d2a343f3dcf9330ad9035b3e8d168e6728904262f2c434a4f8f934ec7b676";

// Defaults equal the layout the seed master used on existing servers, so a seed config keeps working
// and a fresh install lands where operators expect files.
export const DEFAULTS = {
  cnt_runners: 3,
  node_secret: "/etc/cardano/node_secret.yaml",
  genesis_hash_file: "/etc/cardano/genesis.txt",
  runner_binary: "/usr/local/bin/jormungandr_runner_{id}",
  runner_config: "/etc/cardano/jorm_runner_{id}.yaml",
  runner_storage: "/home/cardano/storage_jorm_runner_{id}",
  key_mode: "boot",
  rest_host: "127.0.0.1",
  rest_prefix: 310,
  max_offset: 5,
  signer_max_lag: 2,
  max_boot: 900,
  event_action: 15,
  start_before_event: 600,
  boot_catch_up: 1500,
  slot_guard: 1.0,
  slot_margin: 1.0,
  loop_period: 0.5,
  rest_timeout: 0.5,
  metrics_listen: "127.0.0.1:9310",
  log_level: "info",
  systemd: {
    scope: "system",
    master_unit: "jorm_master.service",
    runner_unit: "jorm_runner@{id}.service",
    user: "cardano",
  },
  pooltool: {
    pool_id: "<pool_id>",
    user_id: "<user_id>",
    genesis: ITN_GENESIS_HASH,
    send_wait: 60,
    recv_wait: 30,
    endp_tip: "https://api.pooltool.io/v0/sharemytip",
    endp_stats: "https://pooltool.s3-us-west-2.amazonaws.com/stats/stats.json",
    send_slots: false,
    endp_slots: "https://api.pooltool.io/v0/sendlogs",
  },
  // Multi-host mode (issue 13): only with a cluster section; these fill its optional keys
  cluster: {
    prefix: "/jorm-master",
    lease_ttl: 5,
    etcd_timeout: 2,
  },
} as const;

/** Keys of the strict 2020-01 seed variant: accepted so such a file loads, but no longer used. */
export const LEGACY_KEYS = ["event_boot_stop", "epoch_kill", "event_hibernate"] as const;

/** A duration's bounds in seconds, and why: `config check` names them in its message. */
export interface DurationLimit {
  min: number;
  max: number;
  /** Why the floor (omitted for a floor of 0, which needs no reason) */
  minWhy?: string;
  maxWhy: string;
}

const DAY_S = 86_400;
const LONG_MAX_WHY = "longer than a day (an ITN epoch) is surely a mistake";

// Floors: a value that rounds to 0 ms or is far below what the node can do turns a healthy runner
// into a "dead" one (rest_timeout 0.0004 made the daemon freeze the healthy signer). Ceilings: a
// huge value is a typo, and timers above 2^31 ms (24.8 days) fire at once.
// A floor of 0 is deliberate where 0 means something coherent: slot_guard/slot_margin 0 make the
// guarded window the slot itself (master and nodes read one host clock, and handovers still wait
// for the window to close); boot_catch_up 0 is "no grace after boot"; event_action and
// start_before_event are held above slot_guard, loop_period and each other by crossCheck.
export const DURATION_LIMITS = {
  max_boot: { min: 10, max: DAY_S, minWhy: "a node needs more than that to load its storage and open its REST port, so every runner would be killed while booting", maxWhy: LONG_MAX_WHY },
  event_action: { min: 0, max: 3_600, maxWhy: "acting more than an hour before a slot or the epoch end only lengthens the time keys are moved around" },
  start_before_event: { min: 0, max: DAY_S, maxWhy: LONG_MAX_WHY },
  boot_catch_up: { min: 0, max: DAY_S, maxWhy: LONG_MAX_WHY },
  slot_guard: { min: 0, max: 60, maxWhy: "a guarded window of minutes around every leader slot leaves no time to hand the key over" },
  slot_margin: { min: 0, max: 60, maxWhy: "a guarded window of minutes around every leader slot leaves no time to hand the key over" },
  loop_period: { min: 0.05, max: 60, minWhy: "each tick asks every runner over REST and systemd; ticking faster only burns CPU", maxWhy: "a crashed signer would go unnoticed for more than 30 slots" },
  rest_timeout: { min: 0.05, max: 10, minWhy: "a shorter deadline makes a healthy but busy node look dead, and a dead signer gets fenced", maxWhy: "a hung node would hold up every tick for more than 5 slots" },
  "pooltool.send_wait": { min: 10, max: DAY_S, minWhy: "ITN makes a block about every 20 s; sharing the tip more often only loads a public service", maxWhy: LONG_MAX_WHY },
  "pooltool.recv_wait": { min: 10, max: DAY_S, minWhy: "ITN makes a block about every 20 s; asking for the majority height more often only loads a public service", maxWhy: LONG_MAX_WHY },
  "alerts.dedup_window": { min: 0, max: DAY_S, maxWhy: LONG_MAX_WHY },
  "alerts.rate_window": { min: 1, max: DAY_S, minWhy: "the rate limit counts alerts within this window; a shorter one limits nothing", maxWhy: LONG_MAX_WHY },
  "alerts.timeout": { min: 1, max: 60, minWhy: "a request to a webhook or to Telegram crosses the internet; a shorter deadline fails every alert", maxWhy: "a hung endpoint would hold each alert for minutes, retries on top" },
  "cluster.etcd_timeout": { min: 0.05, max: 60, minWhy: "an etcd call crosses the network; a shorter deadline fails every call, so no host could sign", maxWhy: "a hung etcd would hold the signer's lease renewal for minutes" },
} as const satisfies Record<string, DurationLimit>;

export type DurationKey = keyof typeof DURATION_LIMITS;

/** A duration key (its dotted path) with its bounds from DURATION_LIMITS (problems.ts words the message) */
const boundedSeconds = (key: DurationKey) => z.number().min(DURATION_LIMITS[key].min).max(DURATION_LIMITS[key].max);
// Unbounded durations, for the legacy keys (read and ignored) and for sections that have not got
// their bounds yet. A new duration key belongs in DURATION_LIMITS, so that a value rounding to 0 ms
// or a typo of hours cannot pass.
const seconds = z.number().nonnegative();
const positiveSeconds = z.number().positive();

/** Each runner is a full node (GBs of RAM); more than this is a typo, and the loader iterates over them. */
export const MAX_RUNNERS = 100;

// Paths, unit names and the user end up in unit files and command lines: a newline would start a
// new unit directive, a NUL cuts the argument short.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const text = z
  .string()
  .min(1)
  .refine((s) => !CONTROL_CHARS.test(s), { message: "must not contain control characters (newline, tab, NUL)" });

export const SystemdInputSchema = z.strictObject({
  scope: z.enum(["system", "user"]).default(DEFAULTS.systemd.scope),
  master_unit: text.default(DEFAULTS.systemd.master_unit),
  runner_unit: text.default(DEFAULTS.systemd.runner_unit),
  user: text.default(DEFAULTS.systemd.user),
});

export const PoolToolInputSchema = z.strictObject({
  pool_id: z.string().default(DEFAULTS.pooltool.pool_id),
  user_id: z.string().default(DEFAULTS.pooltool.user_id),
  genesis: z.string().default(DEFAULTS.pooltool.genesis),
  send_wait: boundedSeconds("pooltool.send_wait").default(DEFAULTS.pooltool.send_wait),
  recv_wait: boundedSeconds("pooltool.recv_wait").default(DEFAULTS.pooltool.recv_wait),
  endp_tip: text.default(DEFAULTS.pooltool.endp_tip),
  endp_stats: text.default(DEFAULTS.pooltool.endp_stats),
  // issue 12: the epoch's assigned slot count (+ the previous epoch's validation) to PoolTool
  send_slots: z.boolean().default(DEFAULTS.pooltool.send_slots),
  endp_slots: text.default(DEFAULTS.pooltool.endp_slots),
});

// --- alerts (issue 12): notifications without a monitoring stack ---------------------------------
export const ALERT_PRESETS = ["json", "slack", "discord", "ntfy"] as const;
export const ALERTS_DEFAULTS = {
  dedup_window: 600,
  rate_limit: 10,
  rate_window: 600,
  retries: 3,
  timeout: 5,
  telegram_api_url: "https://api.telegram.org",
} as const;
const channelName = z.string().regex(/^[A-Za-z0-9_.-]{1,40}$/, { error: "a short name: letters, digits, _ . -" });
const httpUrl = z.string().regex(/^https?:\/\/[^\s/]+/, { error: "expected an http(s) URL" });
export const WebhookChannelInputSchema = z.strictObject({
  name: channelName,
  type: z.literal("webhook"),
  preset: z.enum(ALERT_PRESETS).default("json"),
  url: httpUrl,
});
// The bot token is a secret: read from a file or the environment, never written in this file.
export const TelegramChannelInputSchema = z.strictObject({
  name: channelName,
  type: z.literal("telegram"),
  chat_id: z.union([z.int(), z.string().regex(/^(-?\d+|@[A-Za-z0-9_]{5,})$/, { error: "a numeric chat id or @channelname" })]).transform(String),
  token_file: text.optional(),
  token_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "an environment variable name" }).optional(),
  api_url: httpUrl.default(ALERTS_DEFAULTS.telegram_api_url),
});
export const AlertsInputSchema = z.strictObject({
  channels: z.array(z.discriminatedUnion("type", [WebhookChannelInputSchema, TelegramChannelInputSchema])).default([]),
  dedup_window: boundedSeconds("alerts.dedup_window").default(ALERTS_DEFAULTS.dedup_window),
  rate_limit: z.int().min(1).default(ALERTS_DEFAULTS.rate_limit),
  rate_window: boundedSeconds("alerts.rate_window").default(ALERTS_DEFAULTS.rate_window),
  retries: z.int().min(0).max(10).default(ALERTS_DEFAULTS.retries),
  timeout: boundedSeconds("alerts.timeout").default(ALERTS_DEFAULTS.timeout),
});

// Multi-host mode (issue 13): absent means one server, no etcd. name and etcd have no default: a
// host without its own name or without etcd cannot take part, so they must be written down.
export const ClusterInputSchema = z.strictObject({
  name: text,
  etcd: z.array(text).min(1),
  prefix: text.default(DEFAULTS.cluster.prefix),
  lease_ttl: z.int().min(2).default(DEFAULTS.cluster.lease_ttl),
  etcd_timeout: boundedSeconds("cluster.etcd_timeout").default(DEFAULTS.cluster.etcd_timeout),
});

export const InputSchema = z.strictObject({
  cnt_runners: z.int().min(1).max(MAX_RUNNERS).default(DEFAULTS.cnt_runners),
  node_secret: text.default(DEFAULTS.node_secret),
  genesis_hash_file: text.default(DEFAULTS.genesis_hash_file),
  runner_binary: text.default(DEFAULTS.runner_binary),
  runner_config: text.default(DEFAULTS.runner_config),
  runner_storage: text.default(DEFAULTS.runner_storage),
  key_mode: z.enum(["boot", "rest"]).default(DEFAULTS.key_mode),
  rest_host: text.default(DEFAULTS.rest_host),
  rest_prefix: z.int().min(1).default(DEFAULTS.rest_prefix),
  rest_base_port: z.int().min(1).max(65535).nullable().optional(),
  max_offset: z.int().min(0).default(DEFAULTS.max_offset),
  signer_max_lag: z.int().min(1).default(DEFAULTS.signer_max_lag),
  max_boot: boundedSeconds("max_boot").default(DEFAULTS.max_boot),
  event_action: boundedSeconds("event_action").default(DEFAULTS.event_action),
  start_before_event: boundedSeconds("start_before_event").default(DEFAULTS.start_before_event),
  boot_catch_up: boundedSeconds("boot_catch_up").default(DEFAULTS.boot_catch_up),
  slot_guard: boundedSeconds("slot_guard").default(DEFAULTS.slot_guard),
  slot_margin: boundedSeconds("slot_margin").default(DEFAULTS.slot_margin),
  loop_period: boundedSeconds("loop_period").default(DEFAULTS.loop_period),
  rest_timeout: boundedSeconds("rest_timeout").default(DEFAULTS.rest_timeout),
  metrics_listen: z.string().default(DEFAULTS.metrics_listen),
  log_level: z.enum(["error", "warn", "info", "debug"]).default(DEFAULTS.log_level),
  // prefault: an absent or partial section still gets every inner default
  systemd: SystemdInputSchema.prefault({}),
  pooltool: PoolToolInputSchema.nullable().optional(),
  cluster: ClusterInputSchema.nullable().optional(),
  alerts: AlertsInputSchema.nullable().optional(),
  event_boot_stop: seconds.optional(),
  epoch_kill: seconds.optional(),
  event_hibernate: seconds.optional(),
});

/** What the file says (every key optional). */
export type InputConfig = z.input<typeof InputSchema>;
/** The file with defaults filled in, still in file units (seconds, templates). */
export type ParsedConfig = z.output<typeof InputSchema>;

/** Valid keys per section, for "did you mean" suggestions on unknown keys. */
export const KEYS_BY_SECTION: Record<string, readonly string[]> = {
  "": Object.keys(InputSchema.shape),
  systemd: Object.keys(SystemdInputSchema.shape),
  pooltool: Object.keys(PoolToolInputSchema.shape),
  cluster: Object.keys(ClusterInputSchema.shape),
  alerts: Object.keys(AlertsInputSchema.shape),
};
