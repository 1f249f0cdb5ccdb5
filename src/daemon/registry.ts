// The host registry's shell (issue 13 point 6): every few seconds this daemon publishes its summary
// (master/registry.ts) under `<prefix>/hosts/<name>`, bound to a member lease of its own, and reads
// the signer key and every host's entry back in one range read, for the metrics and the alerts.
//
// Independent of the signer lease (lease.ts): its own timer, its own lease, its own etcd client, so
// nothing here can delay a tick or a keep-alive of the signer lease. Every call is bounded by the
// gateway's deadline; a failure is a logged state, never an exception out of run(). The member lease
// is revoked when the daemon stops, so its entry goes at once; a dead daemon's goes with the TTL.

import type { Etcd, LeaseId } from "../cluster/etcd.ts";
import type { ResolvedConfig } from "../config/types.ts";
import type { ClusterObs } from "../master/cluster.ts";
import type { MasterLog, TickReport } from "../master/loop.ts";
import {
  emptyRegistryMemory,
  foldRegistry,
  hostEntry,
  hostKey,
  MEMBER_LEASE_TTL_S,
  parseRegistry,
  REGISTRY_PUBLISH_INTERVAL_MS,
  type RegistryMemory,
  type RegistryRound,
} from "../master/registry.ts";

export type { RegistryRound };

export interface HostRegistryOptions {
  etcd: Etcd;
  prefix: string;
  name: string;
  pid: number;
  version: string;
  /** The daemon's last tick (null: none yet) */
  report: () => TickReport | null;
  config: () => ResolvedConfig;
  /** What the signer lease allows now */
  cluster: () => ClusterObs | null;
  /** Wall clock (ms since epoch) and its sleep: decide's clock */
  clock: { now(): number; sleep(ms: number, signal?: AbortSignal): Promise<void> };
  log: MasterLog;
  /** After each successful read (metrics, alerts); must not throw, but is guarded anyway */
  onRound?: (r: RegistryRound) => void;
  intervalMs?: number;
  ttlS?: number;
}

export class HostRegistry {
  private readonly opts: HostRegistryOptions;
  private lease: LeaseId | null = null;
  private memory: RegistryMemory = emptyRegistryMemory();
  private etcdState: { ok: boolean; error: string | null } = { ok: true, error: null };
  private lastError: string | null = null;
  /** The last successful round (null: none yet) */
  last: RegistryRound | null = null;
  /** run()'s signal: a stopping daemon cancels the call in flight rather than wait for its deadline */
  private signal: AbortSignal | undefined;

  constructor(opts: HostRegistryOptions) {
    this.opts = opts;
  }

  get key(): string {
    return hostKey(this.opts.prefix, this.opts.name);
  }

  /** One round: keep the member lease, read everyone, publish our entry. Never throws. */
  async step(): Promise<void> {
    try {
      await this.round();
    } catch (e) {
      this.failed(`registry round failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async round(): Promise<void> {
    const { etcd, prefix } = this.opts;
    if (!(await this.keepLease())) return;
    const read = await etcd.range(`${prefix.replace(/\/+$/, "")}/`, { prefix: true, signal: this.signal });
    let readError: string | null = null;
    if (read.ok) {
      const parsed = parseRegistry(prefix, read.value.kvs);
      const now = this.opts.clock.now();
      this.memory = foldRegistry(this.memory, parsed, this.opts.name, now);
      this.last = { atMs: now, self: this.opts.name, read: parsed, memory: this.memory };
      try {
        this.opts.onRound?.(this.last);
      } catch (e) {
        this.opts.log.warn(`cluster registry: ${e instanceof Error ? e.message : String(e)}`);
      }
    } else readError = `cannot read ${prefix}/: ${read.error.message}`;
    const entry = hostEntry({
      host: this.opts.name,
      pid: this.opts.pid,
      version: this.opts.version,
      nowMs: this.opts.clock.now(),
      report: this.opts.report(),
      config: this.opts.config(),
      cluster: this.opts.cluster(),
      etcd: readError === null ? { ok: true, error: null } : { ok: false, error: readError },
      signerSeen: this.memory.seen ?? null,
      peers: this.memory.peers,
    });
    if (this.signal?.aborted) return;
    const put = await etcd.put(this.key, JSON.stringify(entry), { lease: this.lease!, signal: this.signal });
    if (!put.ok) {
      // A lease etcd no longer knows: grant a new one next round.
      if (put.error.kind === "rejected") this.lease = null;
      return this.failed(`cannot publish ${this.key}: ${put.error.message}`);
    }
    if (readError !== null) return this.failed(readError);
    this.recovered();
  }

  /** A live member lease: granted when there is none, else kept alive (gone: granted anew). */
  private async keepLease(): Promise<boolean> {
    const { etcd } = this.opts;
    if (this.lease !== null) {
      const k = await etcd.leaseKeepAlive(this.lease, { signal: this.signal });
      if (!k.ok) {
        if (k.error.kind === "rejected") this.lease = null;
        else {
          this.failed(`member lease keep-alive failed: ${k.error.message}`);
          return false;
        }
      } else if (k.value.ttlS <= 0) this.lease = null;
      else return true;
    }
    const g = await etcd.leaseGrant(this.opts.ttlS ?? MEMBER_LEASE_TTL_S, { signal: this.signal });
    if (!g.ok) {
      this.failed(`cannot grant a member lease: ${g.error.message}`);
      return false;
    }
    this.lease = g.value.id;
    return true;
  }

  private failed(message: string): void {
    // A stopping daemon cancelled the call: not an etcd failure.
    if (this.signal?.aborted) return;
    this.etcdState = { ok: false, error: message };
    if (this.lastError !== message) this.opts.log.warn(`cluster registry: ${message}`);
    this.lastError = message;
  }

  private recovered(): void {
    if (this.lastError !== null) this.opts.log.info(`cluster registry: publishing ${this.key} again`);
    this.lastError = null;
    this.etcdState = { ok: true, error: null };
  }

  /** Whether the last round reached etcd (and why not) */
  get etcd(): { ok: boolean; error: string | null } {
    return this.etcdState;
  }

  /** Rounds every interval until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const every = this.opts.intervalMs ?? REGISTRY_PUBLISH_INTERVAL_MS;
    this.signal = signal;
    while (!signal.aborted) {
      const started = this.opts.clock.now();
      await this.step();
      if (signal.aborted) break;
      await this.opts.clock.sleep(Math.max(0, every - (this.opts.clock.now() - started)), signal).catch(() => {});
    }
  }

  /** Revokes the member lease: the entry goes now, not a TTL later (bounded by the client's deadline). */
  async close(): Promise<void> {
    const id = this.lease;
    this.lease = null;
    if (id === null) return;
    const r = await this.opts.etcd.leaseRevoke(id);
    if (!r.ok) this.opts.log.warn(`cluster registry: cannot revoke the member lease (its entry goes after ${this.opts.ttlS ?? MEMBER_LEASE_TTL_S} s): ${r.error.message}`);
  }
}
