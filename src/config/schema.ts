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
  },
} as const;

/** Keys of the strict 2020-01 seed variant: accepted so such a file loads, but no longer used. */
export const LEGACY_KEYS = ["event_boot_stop", "epoch_kill", "event_hibernate"] as const;

const seconds = z.number().nonnegative();
const positiveSeconds = z.number().positive();
const text = z.string().min(1);

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
  send_wait: seconds.default(DEFAULTS.pooltool.send_wait),
  recv_wait: seconds.default(DEFAULTS.pooltool.recv_wait),
  endp_tip: text.default(DEFAULTS.pooltool.endp_tip),
  endp_stats: text.default(DEFAULTS.pooltool.endp_stats),
});

export const InputSchema = z.strictObject({
  cnt_runners: z.int().min(1).default(DEFAULTS.cnt_runners),
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
  max_boot: positiveSeconds.default(DEFAULTS.max_boot),
  event_action: seconds.default(DEFAULTS.event_action),
  start_before_event: seconds.default(DEFAULTS.start_before_event),
  boot_catch_up: seconds.default(DEFAULTS.boot_catch_up),
  slot_guard: seconds.default(DEFAULTS.slot_guard),
  slot_margin: seconds.default(DEFAULTS.slot_margin),
  loop_period: positiveSeconds.default(DEFAULTS.loop_period),
  rest_timeout: positiveSeconds.default(DEFAULTS.rest_timeout),
  metrics_listen: z.string().default(DEFAULTS.metrics_listen),
  log_level: z.enum(["error", "warn", "info", "debug"]).default(DEFAULTS.log_level),
  // prefault: an absent or partial section still gets every inner default
  systemd: SystemdInputSchema.prefault({}),
  pooltool: PoolToolInputSchema.nullable().optional(),
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
};
