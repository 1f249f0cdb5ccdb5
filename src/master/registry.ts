// The host registry of a cluster (issue 13 point 6): every daemon publishes a small summary of itself
// under `<prefix>/hosts/<name>`, bound to a member lease of its own, so a dead host's entry goes by
// itself after the lease's TTL. `status` on any host reads them all and shows what the OTHER hosts'
// runners are doing; the daemon's metrics and alerts follow who signs and who disappears.
//
// Pure: the entry's schema (zod, it crosses hosts), the builder from a tick report, the parse of a
// range read, and the fold of consecutive reads (who signs since when, which peers were seen). The
// shell that talks to etcd is src/daemon/registry.ts.

import { z } from "zod";
import type { ResolvedConfig } from "../config/types.ts";
import { clusterBlock, type ClusterObs } from "./cluster.ts";
import type { TickReport } from "./loop.ts";
import { epochClock } from "./schedule.ts";
import type { Capability } from "./types.ts";

/** How often a daemon publishes its entry (and reads everyone's) */
export const REGISTRY_PUBLISH_INTERVAL_MS = 2_000;
/** The member lease's TTL: a host that stopped publishing (dead, cut off) vanishes after this */
export const MEMBER_LEASE_TTL_S = 10;
/** An entry published longer ago than this is stale: three rounds missed, plus clock skew between hosts */
export const HOST_ENTRY_STALE_MS = 3 * REGISTRY_PUBLISH_INTERVAL_MS + 2_000;
/** Whether an entry is too old to describe its host now: not republished for HOST_ENTRY_STALE_MS, or
 *  its daemon's last observation older than that plus one loop period (a stuck loop), or none yet. */
export function entryStale(e: HostEntry, nowMs: number): boolean {
  return nowMs - e.publishedAtMs > HOST_ENTRY_STALE_MS || e.observedAtMs === null || nowMs - e.observedAtMs > HOST_ENTRY_STALE_MS + e.loopPeriodMs;
}

/** Peers remembered (the registry is a handful of hosts; this caps what a garbled one could cost) */
export const MAX_PEERS = 32;

const CAPABILITIES = ["stopped", "frozen", "keyless", "holder", "booting-holder", "unknown"] as const satisfies readonly Capability[];

/** A runner as its host's daemon last saw it. */
export const hostRunnerSchema = z.object({
  id: z.int().nonnegative(),
  /** The node's state when its REST answered, else "stopped"/"frozen"/null */
  state: z.string().nullable(),
  /** What the daemon could prove about whether it can sign (unknown counts as able) */
  cap: z.enum(CAPABILITIES),
  signer: z.boolean(),
  /** A boundary co-holder of a granted hand-out: its dead-man switch freezes it by this time */
  coHolderUntilMs: z.number().nullable(),
  height: z.int().nullable(),
});
export type HostRunner = z.infer<typeof hostRunnerSchema>;

/** What one daemon says about itself; readers ignore fields they do not know (a newer daemon). */
export const hostEntrySchema = z.object({
  v: z.literal(1),
  host: z.string().min(1),
  pid: z.int(),
  version: z.string(),
  /** Wall time of the publication (the publisher's clock) */
  publishedAtMs: z.number(),
  /** When the runners below were observed (its last tick); null: no tick yet */
  observedAtMs: z.number().nullable(),
  /** Its loop_period: a tick is due at least this often, so an observation older than that (plus
   *  HOST_ENTRY_STALE_MS) means a loop that is stuck */
  loopPeriodMs: z.number().nonnegative(),
  /** The signer lease lets this host sign now (held, allowance left, takeover wait over) */
  maySign: z.boolean(),
  /** The runner its daemon keeps as the signer */
  signer: z.int().nullable(),
  /** Whether this daemon's previous registry round reached etcd */
  etcd: z.object({ ok: z.boolean(), error: z.string().nullable() }),
  /** The signer key as this host last read it, and since when (its wall time) it has read that */
  signerSeen: z.object({ host: z.string().nullable(), createRevision: z.int().nullable(), sinceMs: z.number() }).nullable(),
  /** Every host this daemon has seen in the registry since it started */
  peers: z.array(z.string()).max(MAX_PEERS),
  runners: z.array(hostRunnerSchema).max(64),
});
export type HostEntry = z.infer<typeof hostEntrySchema>;

const base = (prefix: string) => prefix.replace(/\/+$/, "");
export const hostsPrefix = (prefix: string) => `${base(prefix)}/hosts/`;
export const hostKey = (prefix: string, name: string) => `${hostsPrefix(prefix)}${name}`;

export interface HostEntryArgs {
  host: string;
  pid: number;
  version: string;
  nowMs: number;
  /** The daemon's last tick (null: none yet) */
  report: TickReport | null;
  config: ResolvedConfig;
  /** What the signer lease allows now (null: unknown, taken as "may not sign") */
  cluster: ClusterObs | null;
  etcd: { ok: boolean; error: string | null };
  signerSeen: HostEntry["signerSeen"];
  peers: readonly string[];
}

/** This daemon's entry, from its last tick and what the lease allows now. */
export function hostEntry(a: HostEntryArgs): HostEntry {
  const r = a.report;
  const runners: HostRunner[] = [];
  if (r !== null) {
    const settings = r.observation.settings;
    const clock = settings ? epochClock(settings) : null;
    const b = r.memory.boundary;
    // A co-holder is harmless until slot 1's guarded window opens (its switch fires before), as in metrics.
    const handoutUntilMs = b && !b.stripped && clock ? Math.min(b.switchAtMs ?? Infinity, clock.epochStartMs(b.epoch) + clock.slotMs - a.config.slotGuardMs) : null;
    for (const v of r.views) {
      if (v.id >= a.config.cntRunners && v.cap === "stopped") continue;
      const co = handoutUntilMs !== null && b!.coHolders.includes(v.id) && v.id !== r.memory.signer && a.nowMs < handoutUntilMs;
      runners.push({
        id: v.id,
        state: v.nodeState ?? (v.frozen ? "frozen" : v.cap === "stopped" ? "stopped" : null),
        cap: v.cap,
        signer: r.memory.signer === v.id,
        coHolderUntilMs: co ? handoutUntilMs : null,
        height: v.height,
      });
    }
  }
  return {
    v: 1,
    host: a.host,
    pid: a.pid,
    version: a.version,
    publishedAtMs: a.nowMs,
    observedAtMs: r?.observation.atMs ?? null,
    loopPeriodMs: a.config.loopPeriodMs,
    maySign: a.cluster !== null && clusterBlock(a.cluster, a.nowMs) === null,
    signer: r?.memory.signer ?? null,
    etcd: a.etcd,
    signerSeen: a.signerSeen,
    peers: [...a.peers].slice(0, MAX_PEERS),
    runners,
  };
}

/** The signer key as read: who, under which lease, created at which revision. */
export interface SignerKey {
  host: string;
  lease: string;
  createRevision: number;
}

/** One range read of `<prefix>/`: the signer key and every host entry, at one revision. */
export interface RegistryRead {
  signer: SignerKey | null;
  entries: HostEntry[];
  /** Entries that did not parse, as "key: why" */
  invalid: string[];
}

/** Parses the key-values of a range over `<prefix>/` (signer, hosts; anything else ignored). */
export function parseRegistry(prefix: string, kvs: readonly { key: string; value: string; createRevision: number; lease: string }[]): RegistryRead {
  const signerKey = `${base(prefix)}/signer`;
  const hp = hostsPrefix(prefix);
  let signer: SignerKey | null = null;
  const entries: HostEntry[] = [];
  const invalid: string[] = [];
  for (const kv of kvs) {
    if (kv.key === signerKey) signer = { host: kv.value, lease: kv.lease, createRevision: kv.createRevision };
    if (!kv.key.startsWith(hp)) continue;
    const name = kv.key.slice(hp.length);
    let json: unknown;
    try {
      json = JSON.parse(kv.value);
    } catch {
      invalid.push(`${kv.key}: not JSON`);
      continue;
    }
    const p = hostEntrySchema.safeParse(json);
    if (!p.success) invalid.push(`${kv.key}: ${p.error.issues[0]?.path.join(".") ?? ""} ${p.error.issues[0]?.message ?? "invalid"}`.trim());
    else if (p.data.host !== name) invalid.push(`${kv.key}: names host ${JSON.stringify(p.data.host)}`);
    else entries.push(p.data);
  }
  entries.sort((x, y) => x.host.localeCompare(y.host));
  return { signer, entries, invalid };
}

/** One successful read of the registry by a daemon, folded into what it remembers. */
export interface RegistryRound {
  atMs: number;
  self: string;
  read: RegistryRead;
  memory: RegistryMemory;
}

/** What a daemon remembers between registry reads. */
export interface RegistryMemory {
  /** The signer key as last read (null: absent), since when; undefined: never read */
  seen?: { host: string | null; createRevision: number | null; sinceMs: number };
  /** Signer-lease changes seen: a new create revision of the key after the first one read */
  leaseChanges: number;
  /** The create revision of the last signer key read (kept across a spell without one) */
  lastRevision?: number;
  peers: string[];
}

export const emptyRegistryMemory = (): RegistryMemory => ({ leaseChanges: 0, peers: [] });

/**
 * Folds one successful read in. A change of the signer lease is a signer key with a create
 * revision other than the last one read (a re-election of the same host counts: a new lease);
 * a spell without the key in between does not count separately.
 */
export function foldRegistry(prev: RegistryMemory, read: RegistryRead, self: string, nowMs: number): RegistryMemory {
  const s = read.signer;
  const cur = { host: s?.host ?? null, createRevision: s?.createRevision ?? null };
  const same = prev.seen !== undefined && prev.seen.createRevision === cur.createRevision && prev.seen.host === cur.host;
  let leaseChanges = prev.leaseChanges;
  if (s !== null && prev.seen !== undefined && s.createRevision !== prev.lastRevision) leaseChanges++;
  const peers = new Set(prev.peers);
  for (const e of [self, ...read.entries.map((x) => x.host)]) if (peers.size < MAX_PEERS) peers.add(e);
  const lastRevision = s?.createRevision ?? prev.lastRevision;
  return { seen: same ? prev.seen : { ...cur, sinceMs: nowMs }, leaseChanges, ...(lastRevision === undefined ? {} : { lastRevision }), peers: [...peers].sort() };
}
