#!/usr/bin/env bun
// Faults across hosts in virtual time (issue 13): three hosts of three runners, each the real Master
// with the daemon's SignerLease over one shared fake etcd with TTLs, one simulated world whose audit
// sees every runner (test/cluster/cluster-world.ts). One row per fault; each row runs several seeds
// with the fault at a different point of an epoch, so the failover figures are percentiles.
//
//   bun run bench:cluster            # a table
//   bun run bench:cluster --json     # one JSON object per row
//   bun run bench:cluster --runs 2 --epochs 2   # shorter
//   bun run bench:cluster --no-grants           # no boundary grants: standbys warm on the signing host only
//   bun run bench:cluster --etcd 3.4.23         # every member on Debian's etcd: takeovers wait ~6 s more
//
// Exits 1 when any run produced a slot twice or left a window two processes could sign in.
//
// Failover: from the fault to the first promotion to sign on another host (for etcd faults, on any
// host; for quorum loss, from quorum's return); the target is lease_ttl + one slot window + 2 s. Coverage: produced / scheduled leader
// slots from the second epoch on (the first is spent booting). A host that takes over has no schedule for the epoch unless it held the
// key at the boundary (warm standby), so without boundary grants it loses the rest of the epoch.

import { parseArgs } from "node:util";
import type { ChainParams } from "../src/sim/chain.ts";
import { runClusterScenario, type ClusterEvent, type HostSpec } from "../test/cluster/cluster-world.ts";

/** ITN-like: 2 s slots and ITN's active slot coefficient, but 8-minute epochs so a run stays short
 *  (ITN's were a day: a takeover without a warm standby loses up to a day, not eight minutes). */
export const ITN_LIKE_SLOT_MS = 2_000;
export const ITN_LIKE_SLOTS_PER_EPOCH = 240;
/** ITN pools of note had tens of leader slots per day-long epoch; this is denser on purpose. */
export const ITN_LIKE_LEADER_SLOTS_PER_EPOCH = 20;
export const DEFAULT_TTL_S = 5;
export const DEFAULT_RUNS = 3;
/** Epoch 1: boot (the signer gets the key mid-epoch, cold); epoch 2: signed, and its end is the first
 *  boundary with a hand-out (and a grant); the fault falls in the next-to-last epoch. */
export const DEFAULT_EPOCHS = 4;
/** One-way delay to etcd, each way */
export const ETCD_LATENCY_MS = 20;
/** Slack the issue allows on top of lease_ttl and one window */
export const FAILOVER_SLACK_MS = 2_000;
/** The etcd every member runs by default: a release with both lease fixes, so a takeover need not
 *  wait for an early lease end (src/cluster/deadline.ts leaseFixesIn). `--etcd 3.4.23`: Debian's. */
export const DEFAULT_ETCD_VERSION = "3.5.23";

export type ScenarioName = "calm" | "host-killed" | "etcd-cut-off" | "daemon-sigstop" | "etcd-leader-loss" | "etcd-quorum-loss";
export const SCENARIOS: ScenarioName[] = ["calm", "host-killed", "etcd-cut-off", "daemon-sigstop", "etcd-leader-loss", "etcd-quorum-loss"];

interface ScenarioDef {
  /** The fault at `atMs`, aimed at the host that signs then */
  events: (atMs: number, signer: number) => ClusterEvent[];
  /** A takeover is expected on another host (false: etcd faults hit every host alike) */
  crossHost: boolean;
  /** Failover counted from the fault's end (etcd back) rather than its start: quorum loss */
  fromEndMs?: number;
}

const DEFS: Record<ScenarioName, ScenarioDef> = {
  calm: { events: () => [], crossHost: true },
  // every process of the signing host at once: daemon and runners; back after a minute
  "host-killed": { events: (atMs, h) => [{ atMs, kind: "hostDown", host: h, downMs: 60_000 }], crossHost: true },
  // requests to etcd and answers lost for a minute; its runners keep running
  "etcd-cut-off": { events: (atMs, h) => [{ atMs, kind: "partition", host: h, forMs: 60_000 }], crossHost: true },
  // the daemon stops running (SIGSTOP) while its runners go on; modelled as the daemon gone for 30 s
  // and then back with what it saved on disk (a SIGCONT'd daemon knows no more than that: its
  // allowance ran out meanwhile)
  "daemon-sigstop": { events: (atMs, h) => [{ atMs, kind: "daemonCrash", host: h, downMs: 30_000 }], crossHost: true },
  // a new etcd leader is elected: no answers for ~1.5 s
  "etcd-leader-loss": { events: (atMs) => [{ atMs, kind: "etcdDown", forMs: 1_500 }], crossHost: false },
  // no quorum for a minute: nobody may sign once the allowance ends; slots lost, never doubled
  "etcd-quorum-loss": { events: (atMs) => [{ atMs, kind: "etcdDown", forMs: 60_000 }], crossHost: false, fromEndMs: 60_000 },
};

export interface BenchOptions {
  scenarios?: ScenarioName[];
  runs?: number;
  epochs?: number;
  ttlS?: number;
  slotsPerEpoch?: number;
  leaderSlotsPerEpoch?: number;
  hosts?: HostSpec[];
  /** Boundary grants to the other hosts (warm standbys everywhere); false: the signing host only */
  grants?: boolean;
  /** The version every etcd member reports */
  etcdVersion?: string;
}

export interface ClusterRow {
  scenario: ScenarioName;
  grants: boolean;
  etcd: string;
  runs: number;
  double_produced: number;
  shared_windows: number;
  scheduled: number;
  produced: number;
  coverage_pct: number;
  /** Runs with a takeover measured (the rest had none: e.g. the fault ended before the allowance did) */
  failovers: number;
  failover_p50_ms: number | null;
  failover_p99_ms: number | null;
  failover_max_ms: number | null;
  failover_target_ms: number;
  wall_ms: number;
}

export const DEFAULT_HOSTS: HostSpec[] = [
  { name: "host-a", runners: 2 },
  { name: "host-b", runners: 2 },
  { name: "host-c", runners: 2 },
];

export function itnLikeChain(seed: number, slotsPerEpoch = ITN_LIKE_SLOTS_PER_EPOCH, leaderSlotsPerEpoch = ITN_LIKE_LEADER_SLOTS_PER_EPOCH): ChainParams {
  return {
    block0TimeMs: Date.UTC(2019, 11, 13, 19, 13, 37),
    slotDurationMs: ITN_LIKE_SLOT_MS,
    slotsPerEpoch,
    seed,
    leaderSlotsPerEpoch,
    activeSlotCoeff: 0.1,
  };
}

/** Nearest-rank percentile; null on no samples */
export function percentile(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export async function benchRow(name: ScenarioName, o: BenchOptions = {}): Promise<ClusterRow> {
  const runs = o.runs ?? DEFAULT_RUNS;
  const epochs = o.epochs ?? DEFAULT_EPOCHS;
  const ttlS = o.ttlS ?? DEFAULT_TTL_S;
  const slotsPerEpoch = o.slotsPerEpoch ?? ITN_LIKE_SLOTS_PER_EPOCH;
  const hosts = o.hosts ?? DEFAULT_HOSTS;
  const epochMs = slotsPerEpoch * ITN_LIKE_SLOT_MS;
  const durationMs = epochs * epochMs;
  const def = DEFS[name];
  const started = performance.now();
  let double = 0;
  let shared = 0;
  let scheduled = 0;
  let produced = 0;
  const failovers: number[] = [];
  for (let i = 0; i < runs; i++) {
    // The fault falls in the next-to-last epoch (not before the third when there are 4: the first
    // boundary with a hand-out ends the second), at a point spread over the epoch so the lost
    // rest-of-epoch varies between runs.
    const faultEpoch = Math.max(1, epochs - 2);
    const faultAtMs = faultEpoch * epochMs + Math.round(((i + 0.5) / runs) * epochMs * 0.8);
    // The first host signs in a calm start (create-if-absent: host-a's request is first).
    const r = await runClusterScenario({
      chain: itnLikeChain(1000 + i, slotsPerEpoch, o.leaderSlotsPerEpoch),
      hosts,
      ttlS,
      durationMs,
      events: def.events(faultAtMs, 0),
      etcdLatencyMs: ETCD_LATENCY_MS,
      grants: o.grants ?? true,
      // The fake etcd has three members; every one reports the same version
      etcdVersions: Array<string>(3).fill(o.etcdVersion ?? DEFAULT_ETCD_VERSION),
    });
    double += r.doubleProduced;
    shared += r.sharedWindows;
    // Coverage from the second epoch: in the first, the runners boot and no host has a schedule.
    const a = r.world.audit({ fromMs: r.fromMs + epochMs, toMs: r.toMs, guardMs: 400, marginMs: 400 });
    scheduled += a.scheduled;
    produced += a.produced;
    if (name === "calm") continue;
    const at = r.fromMs + faultAtMs + (def.fromEndMs ?? 0);
    const before = r.promotions.filter((p) => p.atMs < at).at(-1);
    const signerHost = before?.host ?? null;
    const next = r.promotions.find((p) => p.atMs >= at && (!def.crossHost || p.host !== signerHost));
    if (next) failovers.push(Math.round(next.atMs - at));
  }
  return {
    scenario: name,
    grants: o.grants ?? true,
    etcd: o.etcdVersion ?? DEFAULT_ETCD_VERSION,
    runs,
    double_produced: double,
    shared_windows: shared,
    scheduled,
    produced,
    coverage_pct: scheduled === 0 ? 100 : Math.round((produced / scheduled) * 1000) / 10,
    failovers: failovers.length,
    failover_p50_ms: percentile(failovers, 50),
    failover_p99_ms: percentile(failovers, 99),
    failover_max_ms: failovers.length ? Math.max(...failovers) : null,
    failover_target_ms: ttlS * 1000 + ITN_LIKE_SLOT_MS + FAILOVER_SLACK_MS,
    wall_ms: Math.round(performance.now() - started),
  };
}

export function renderRow(r: ClusterRow): string {
  const ms = (x: number | null) => (x === null ? "-" : `${(x / 1000).toFixed(1)} s`);
  return (
    `${r.scenario.padEnd(17)}${r.grants ? "" : " (no grants)"} etcd ${r.etcd}  double ${r.double_produced}  shared ${r.shared_windows}  ` +
    `coverage ${r.coverage_pct.toFixed(1).padStart(5)} % (${r.produced}/${r.scheduled})  ` +
    `failover p50 ${ms(r.failover_p50_ms).padStart(6)} p99 ${ms(r.failover_p99_ms).padStart(6)} (${r.failovers}/${r.runs} runs, target ${ms(r.failover_target_ms)})  ` +
    `[${(r.wall_ms / 1000).toFixed(1)} s wall]`
  );
}

export function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      runs: { type: "string" },
      epochs: { type: "string" },
      scenario: { type: "string", multiple: true },
      "no-grants": { type: "boolean", default: false },
      etcd: { type: "string" },
    },
    strict: true,
  });
  const int = (s: string | undefined, flag: string) => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a whole number ≥ 1, got ${s}`);
    return n;
  };
  const scenarios = (values.scenario ?? SCENARIOS) as string[];
  for (const s of scenarios) if (!SCENARIOS.includes(s as ScenarioName)) throw new Error(`--scenario: unknown ${s} (one of ${SCENARIOS.join(", ")})`);
  if (values.etcd !== undefined && !/^\d+\.\d+\.\d+$/.test(values.etcd)) throw new Error(`--etcd: expected a version like 3.4.23, got ${values.etcd}`);
  return {
    json: values.json ?? false,
    runs: int(values.runs, "--runs"),
    epochs: int(values.epochs, "--epochs"),
    scenarios: scenarios as ScenarioName[],
    grants: !(values["no-grants"] ?? false),
    etcdVersion: values.etcd ?? DEFAULT_ETCD_VERSION,
  };
}

async function main(): Promise<number> {
  let cli: ReturnType<typeof parseCli>;
  try {
    cli = parseCli(process.argv.slice(2));
  } catch (e) {
    console.error(`bench:cluster: ${(e as Error).message}`);
    return 64;
  }
  let bad = false;
  for (const s of cli.scenarios) {
    const row = await benchRow(s, { runs: cli.runs, epochs: cli.epochs, grants: cli.grants, etcdVersion: cli.etcdVersion });
    if (row.double_produced > 0 || row.shared_windows > 0) bad = true;
    console.log(cli.json ? JSON.stringify(row) : renderRow(row));
  }
  if (bad) console.error("bench:cluster: a slot was produced twice or a window shared across hosts");
  return bad ? 1 : 0;
}

if (import.meta.main) process.exit(await main());
