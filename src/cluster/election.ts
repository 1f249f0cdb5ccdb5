// Leader election on etcd: one key, `<prefix>/signer`, created only if absent and bound to a lease
// of this host; whoever created it holds the signing right until the lease ends. The object keeps
// the holder's state (lease, local deadline); the time arithmetic is pure (deadline.ts) and every
// etcd call goes through the Etcd port, so the whole thing runs against a fake in tests.
//
// Fail closed throughout: the local deadline only moves forward after a round trip that proved the
// lease alive AND the key still ours; any doubt (an error, an unexpected answer) leaves the deadline
// where it was, so the holder stops signing when it passes, and any proof that the lease is gone
// drops the right at once.

import { z } from "zod";
import { extendSignUntil, maySign, signUntilMs, type TimeBounds, DEFAULT_TIME_BOUNDS } from "./deadline.ts";
import type { Etcd, EtcdError, EtcdResult, KeyValue, LeaseId, MemberVersion, TxnOpResult } from "./etcd.ts";

export interface Holder {
  /** The holder's candidate name (its host identity) */
  value: string;
  lease: LeaseId;
  createRevision: number;
}

/** The lease the signer key was created under before, and the TTL etcd granted it (holderLeaseKey) */
export type PreviousHolder = { lease: LeaseId; ttlS: number };

export type Holding = { lease: LeaseId; ttlS: number; signUntilMs: number | null; createRevision: number };

// --- Planned hand-over between hosts (switchover --host) ------------------------------------------
// The signing host, its runners proven key-less, deletes the signer key and writes
// `<prefix>/handover` in ONE txn that checks the key is still bound to its lease. The record lives
// under a lease of its own (HANDOVER_GRACE_S, never kept alive), so it ends by itself: a record
// exists only for the grace after the hand-over that wrote it, and the winner's txn deletes it.
// While it exists, the campaign txn of every host but the one it names fails (it compares the
// record's absence), so the named host wins; that host, and only while the record it read is
// unchanged (compared by value), skips the takeover wait: the old holder proved itself fenced.

/** How long the hand-over record lives (its own lease): other hosts hold off campaigning meanwhile. */
export const HANDOVER_GRACE_S = 4;

export const handoverRecordSchema = z.strictObject({
  from: z.string().min(1),
  to: z.string().min(1),
  /** The lease the signer key was bound to until the hand-over (revoked right after it) */
  lease: z.string().regex(/^\d+$/),
  /** The signer key's create revision under that lease: the term handed over */
  createRevision: z.number().int().positive(),
  /** When the old holder's runners were proven key-less (its wall clock; for reports only) */
  fencedAtMs: z.number(),
});
export type HandoverRecord = z.infer<typeof handoverRecordSchema>;

export function handoverKey(prefix: string): string {
  return `${prefix.replace(/\/+$/, "")}/handover`;
}

/** A record as read from etcd: honoured only when it parses and is bound to a lease (so it expires). */
export function parseHandover(kv: KeyValue | undefined): HandoverRecord | null {
  if (kv === undefined || kv.lease === "0") return null;
  try {
    const r = handoverRecordSchema.safeParse(JSON.parse(kv.value));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export type HandOverOutcome =
  /** The key is deleted and the record written (one txn): this host no longer holds anything */
  | { kind: "handed-over"; record: HandoverRecord; revision: number }
  /** Nothing was changed (the record's lease could not be granted): still holding, as before */
  | { kind: "not-started"; error: EtcdError }
  /** The key was not ours any more: holding nothing (as a renewal that found it gone) */
  | { kind: "lost"; reason: string }
  /** The txn's answer was lost: holding nothing; the old lease was revoked (so the key is gone either way) */
  | { kind: "unknown"; error: EtcdError; revoked: boolean }
  | { kind: "not-holding" };

export type CampaignOutcome =
  /** previous: the lease (and its TTL) of whoever created the key before us, read in the winning
   *  txn (null: not known: no record, or the win was read back after a lost answer); handover: won
   *  on the record naming this host (the old holder proved itself fenced) */
  | { kind: "won"; lease: LeaseId; ttlS: number; signUntilMs: number | null; confirmedAtMs: number; previous: PreviousHolder | null; handover?: HandoverRecord }
  | { kind: "lost"; holder: Holder }
  /** No holder, but a hand-over record names another host: hold off until it ends */
  | { kind: "held-off"; record: HandoverRecord }
  | { kind: "error"; error: EtcdError };

export type RenewOutcome =
  | { kind: "renewed"; ttlS: number; signUntilMs: number | null }
  /** Proven gone: the lease expired or was revoked, or the key is not ours. Stop signing now. */
  | { kind: "lost"; reason: string }
  /** Not proven either way: the deadline stays where it was (sign only while maySign says so). */
  | { kind: "error"; error: EtcdError; signUntilMs: number | null }
  | { kind: "not-holding" };

export interface ElectionOptions {
  etcd: Etcd;
  /** Key prefix of this pool's cluster, e.g. /jorm-master/pool-a (no trailing slash) */
  prefix: string;
  /** This host's name, written as the key's value so every host can say who signs */
  candidate: string;
  /** Requested lease TTL; etcd may grant more (its minimum is 2 s at default timings) */
  ttlS: number;
  /** Monotonic ms; injected for tests */
  now?: () => number;
  bounds?: TimeBounds;
}

export interface Election {
  readonly key: string;
  readonly candidate: string;
  campaign(): Promise<CampaignOutcome>;
  /**
   * Takes up a lease this host's previous daemon held (a restart): holding again only if a
   * keep-alive proves the lease alive and the key still bound to it, created at `createRevision`.
   * The deadline counts from this keep-alive's send time, like any renewal.
   */
  resume(lease: LeaseId, createRevision: number): Promise<RenewOutcome>;
  renew(): Promise<RenewOutcome>;
  /** Gives the right up: local state first (no signing from here on), then the lease is revoked. */
  resign(): Promise<EtcdResult<null>>;
  /** Who holds the key now, as etcd says (null: nobody) */
  holder(): Promise<EtcdResult<Holder | null>>;
  holding(): Holding | null;
  maySign(nowMs?: number): boolean;
  /**
   * Boundary grants (issue 13 point 4): the holder writes `<prefix>/handout/<epoch>` under its own
   * lease, so the grant ends with the lease. Only while holding.
   */
  grantHandout(epoch: number): Promise<EtcdResult<null>>;
  /** The epochs granted under the lease that holds the signer key now (one range read; none: []) */
  handoutGrants(): Promise<EtcdResult<number[]>>;
  /**
   * The planned hand-over to host `to` (its runners proven key-less by the caller at `fencedAtMs`):
   * one txn, only while the signer key is still bound to our lease, deletes it and writes the record.
   * Local state is dropped before the txn is sent (no signing from here on, whatever it answers).
   */
  handOver(to: string, fencedAtMs: number, graceS?: number): Promise<HandOverOutcome>;
  /** The hand-over record now, if one is honoured (parses, bound to a lease); null: none */
  handoverRecord(): Promise<EtcdResult<HandoverRecord | null>>;
  /** The etcd members and their versions: whether a lease can end early (deadline.ts leaseSafety) */
  memberVersions(): Promise<EtcdResult<MemberVersion[]>>;
  /** Is this lease still alive in etcd (it exists: time to live ≥ 0, which etcd truncates to whole seconds)? */
  leaseAlive(lease: LeaseId): Promise<EtcdResult<boolean>>;
}

export function handoutPrefix(prefix: string): string {
  return `${prefix.replace(/\/+$/, "")}/handout/`;
}

export function signerKey(prefix: string): string {
  return `${prefix.replace(/\/+$/, "")}/signer`;
}

/**
 * `<prefix>/holder-lease`: the lease under which the signer key was created last and its TTL
 * ("<lease>/<ttl s>"), written (with no lease, so it outlives its holder) by the very txn that
 * creates the key, after reading the one before. So a winner learns exactly whose lease held the
 * key before it, whoever that was and however the key went (expired, or deleted by hand while that
 * lease lives on), and how long an allowance that lease bought (hosts may differ in lease_ttl).
 */
export function holderLeaseKey(prefix: string): string {
  return `${prefix.replace(/\/+$/, "")}/holder-lease`;
}

/** The record's value: "<lease>/<ttl s>"; anything else is no record. */
export function parseHolderLease(value: string | undefined): PreviousHolder | null {
  const m = /^(\d+)\/(\d+)$/.exec(value ?? "");
  return m ? { lease: m[1]!, ttlS: Number(m[2]) } : null;
}

const toHolder = (kv: KeyValue): Holder => ({ value: kv.value, lease: kv.lease, createRevision: kv.createRevision });

export function createElection(options: ElectionOptions): Election {
  const { etcd, candidate, ttlS } = options;
  const key = signerKey(options.prefix);
  const holderLease = holderLeaseKey(options.prefix);
  const now = options.now ?? (() => performance.now());
  const bounds = options.bounds ?? DEFAULT_TIME_BOUNDS;
  let state: Holding | null = null;
  let renewing: Promise<RenewOutcome> | null = null;

  const hkey = handoverKey(options.prefix);
  const kvOf = (r: TxnOpResult | undefined): KeyValue | undefined => (r && "range" in r ? r.range.kvs[0] : undefined);

  async function campaign(): Promise<CampaignOutcome> {
    if (state !== null) {
      return { kind: "won", lease: state.lease, ttlS: state.ttlS, signUntilMs: state.signUntilMs, confirmedAtMs: now(), previous: null };
    }
    const sentAt = now();
    const grant = await etcd.leaseGrant(ttlS);
    if (!grant.ok) return { kind: "error", error: grant.error };
    const lease = grant.value;
    // Create-if-absent, and only while no hand-over record stands (it names who goes first).
    const txn = await etcd.txn(
      [
        { key, target: "create_revision", equals: 0 },
        { key: hkey, target: "create_revision", equals: 0 },
      ],
      [{ range: { key: holderLease } }, { put: { key, value: candidate, lease: lease.id } }, { put: { key: holderLease, value: `${lease.id}/${lease.ttlS}` } }],
      [{ range: { key } }, { range: { key: hkey } }],
    );
    let confirmedAtMs = now();
    if (!txn.ok) {
      // The txn may have committed with its answer lost: revoking our lease deletes the key if so
      // (and if the revoke fails too, the lease ends after its TTL and nobody signs meanwhile).
      await etcd.leaseRevoke(lease.id);
      return { kind: "error", error: txn.error };
    }
    let createRevision = 0;
    let previous: PreviousHolder | null = null;
    let handover: HandoverRecord | undefined;
    if (txn.value.succeeded) {
      createRevision = txn.value.revision;
      const first = txn.value.responses[0];
      previous = parseHolderLease(first && "range" in first ? first.range.kvs[0]?.value : undefined);
    } else {
      const kv = kvOf(txn.value.responses[0]);
      const hkv = kvOf(txn.value.responses[1]);
      if (kv === undefined && hkv !== undefined) {
        // No holder, a hand-over record stands: ours to take (skipping the wait) if it names us; a
        // record that is no record (unbound, unreadable) is taken over as stale, with the full wait.
        const record = parseHandover(hkv);
        if (record !== null && record.to !== candidate) {
          await etcd.leaseRevoke(lease.id);
          return { kind: "held-off", record };
        }
        const took = await takeOnRecord(lease.id, lease.ttlS, hkv.value);
        confirmedAtMs = now();
        if (took.kind !== "taken") return took;
        createRevision = took.createRevision;
        handover = record ?? undefined;
      } else {
        if (kv === undefined) {
          await etcd.leaseRevoke(lease.id);
          return { kind: "error", error: { kind: "invalid-response", message: `txn on ${key}: compare failed but the key is absent` } };
        }
        // Our own lease on the key: an earlier attempt of this same txn committed (a retried call)
        if (kv.lease !== lease.id) {
          await etcd.leaseRevoke(lease.id);
          return { kind: "lost", holder: toHolder(kv) };
        }
        createRevision = kv.createRevision;
      }
    }
    state = { lease: lease.id, ttlS: lease.ttlS, signUntilMs: signUntilMs(sentAt, lease.ttlS, bounds), createRevision };
    return { kind: "won", lease: lease.id, ttlS: lease.ttlS, signUntilMs: state.signUntilMs, confirmedAtMs, previous, ...(handover ? { handover } : {}) };
  }

  /** The key on the strength of the record read (compared by value, so only that very record counts); the record is consumed. */
  async function takeOnRecord(leaseId: LeaseId, leaseTtlS: number, recordText: string): Promise<{ kind: "taken"; createRevision: number } | CampaignOutcome> {
    const txn = await etcd.txn(
      [
        { key, target: "create_revision", equals: 0 },
        { key: hkey, target: "value", equals: recordText },
      ],
      // The holder record too (holderLeaseKey): whatever creates the signer key says under which lease.
      [{ put: { key, value: candidate, lease: leaseId } }, { put: { key: holderLease, value: `${leaseId}/${leaseTtlS}` } }, { deleteRange: { key: hkey } }],
      [{ range: { key } }],
    );
    if (!txn.ok) {
      await etcd.leaseRevoke(leaseId);
      return { kind: "error", error: txn.error };
    }
    if (txn.value.succeeded) return { kind: "taken", createRevision: txn.value.revision };
    const kv = kvOf(txn.value.responses[0]);
    await etcd.leaseRevoke(leaseId);
    if (kv !== undefined) return { kind: "lost", holder: toHolder(kv) };
    // The record changed or ended between the two txns: the next round looks again.
    return { kind: "error", error: { kind: "rejected", message: `${hkey} changed while taking it up; campaigning again next round` } };
  }

  async function handOver(to: string, fencedAtMs: number, graceS = HANDOVER_GRACE_S): Promise<HandOverOutcome> {
    const held = state;
    if (held === null) return { kind: "not-holding" };
    // The record's own lease first: failing here changes nothing, and the host signs on.
    const grant = await etcd.leaseGrant(graceS);
    if (!grant.ok) return { kind: "not-started", error: grant.error };
    // A renewal meanwhile replaces the state object (same lease, later deadline): only another
    // lease or none counts as a change.
    const now0 = state as Holding | null;
    if (now0 === null || now0.lease !== held.lease || now0.createRevision !== held.createRevision) {
      await etcd.leaseRevoke(grant.value.id);
      return now0 === null ? { kind: "not-holding" } : { kind: "not-started", error: { kind: "rejected", message: "the lease changed meanwhile" } };
    }
    const record: HandoverRecord = { from: candidate, to, lease: held.lease, createRevision: held.createRevision, fencedAtMs };
    // From here on this host holds nothing, whatever the txn answers.
    state = null;
    const txn = await etcd.txn(
      [
        { key, target: "lease", equals: held.lease },
        { key, target: "create_revision", equals: held.createRevision },
      ],
      [{ deleteRange: { key } }, { put: { key: hkey, value: JSON.stringify(record), lease: grant.value.id } }],
      [{ range: { key } }],
    );
    if (!txn.ok) {
      // Committed or not, nobody knows: ending our lease ends the key if it still stands (a takeover
      // with the full wait then), and a record that was written still names the target.
      const revoked = await etcd.leaseRevoke(held.lease);
      return { kind: "unknown", error: txn.error, revoked: revoked.ok };
    }
    if (!txn.value.succeeded) {
      await etcd.leaseRevoke(grant.value.id);
      const kv = kvOf(txn.value.responses[0]);
      return { kind: "lost", reason: kv === undefined ? `${key} is gone` : `${key} is held by ${JSON.stringify(kv.value)} under lease ${kv.lease}, not ours (${held.lease})` };
    }
    // The old lease binds nothing we need now (its boundary grants end with it).
    await etcd.leaseRevoke(held.lease);
    return { kind: "handed-over", record, revision: txn.value.revision };
  }

  async function renewOnce(): Promise<RenewOutcome> {
    const held = state;
    if (held === null) return { kind: "not-holding" };
    const sentAt = now();
    const alive = await etcd.leaseKeepAlive(held.lease);
    if (state !== held) return state === null ? { kind: "not-holding" } : { kind: "renewed", ttlS: state.ttlS, signUntilMs: state.signUntilMs };
    if (!alive.ok) return { kind: "error", error: alive.error, signUntilMs: held.signUntilMs };
    if (alive.value.ttlS <= 0) return drop(`lease ${held.lease} is gone (expired or revoked)`);
    // The lease alone is not the right: the key must still be ours (an operator may have deleted
    // it, and another host created it under its own lease, while our lease lived on).
    const read = await etcd.range(key);
    if (state !== held) return state === null ? { kind: "not-holding" } : { kind: "renewed", ttlS: state.ttlS, signUntilMs: state.signUntilMs };
    if (!read.ok) return { kind: "error", error: read.error, signUntilMs: held.signUntilMs };
    const kv = read.value.kvs[0];
    if (kv === undefined) return drop(`${key} is gone`);
    if (kv.lease !== held.lease || kv.createRevision !== held.createRevision) {
      return drop(`${key} is held by ${JSON.stringify(kv.value)} under lease ${kv.lease}, not ours (${held.lease})`);
    }
    const next = extendSignUntil(held.signUntilMs, sentAt, alive.value.ttlS, bounds);
    state = { ...held, ttlS: alive.value.ttlS, signUntilMs: next };
    return { kind: "renewed", ttlS: alive.value.ttlS, signUntilMs: next };
  }

  async function resume(lease: LeaseId, createRevision: number): Promise<RenewOutcome> {
    if (state !== null) return { kind: "renewed", ttlS: state.ttlS, signUntilMs: state.signUntilMs };
    const sentAt = now();
    const alive = await etcd.leaseKeepAlive(lease);
    if (!alive.ok) return { kind: "error", error: alive.error, signUntilMs: null };
    if (alive.value.ttlS <= 0) return { kind: "lost", reason: `lease ${lease} is gone (expired or revoked)` };
    const read = await etcd.range(key);
    if (!read.ok) return { kind: "error", error: read.error, signUntilMs: null };
    const kv = read.value.kvs[0];
    if (kv === undefined || kv.lease !== lease || kv.createRevision !== createRevision) {
      return { kind: "lost", reason: `${key} is no longer bound to lease ${lease}` };
    }
    // A campaign that won meanwhile keeps its own state
    const meanwhile = state as Holding | null;
    if (meanwhile !== null) return { kind: "renewed", ttlS: meanwhile.ttlS, signUntilMs: meanwhile.signUntilMs };
    state = { lease, ttlS: alive.value.ttlS, signUntilMs: signUntilMs(sentAt, alive.value.ttlS, bounds), createRevision };
    return { kind: "renewed", ttlS: state.ttlS, signUntilMs: state.signUntilMs };
  }

  function drop(reason: string): RenewOutcome {
    state = null;
    return { kind: "lost", reason };
  }

  return {
    key,
    candidate,
    campaign,
    resume,
    // One keep-alive round at a time: a caller that renews again while one is in flight shares it
    renew() {
      renewing ??= renewOnce().finally(() => {
        renewing = null;
      });
      return renewing;
    },
    async resign() {
      const held = state;
      state = null;
      if (held === null) return { ok: true, endpoint: "", value: null };
      return etcd.leaseRevoke(held.lease);
    },
    async holder() {
      const read = await etcd.range(key);
      if (!read.ok) return read;
      const kv = read.value.kvs[0];
      return { ok: true, endpoint: read.endpoint, value: kv === undefined ? null : toHolder(kv) };
    },
    holding: () => state,
    async grantHandout(epoch) {
      const held = state;
      if (held === null) return { ok: false, error: { kind: "rejected", message: "not holding the signer key" } };
      // Only while the signer key is still ours under this lease: a grant must never outlive the right.
      const txn = await etcd.txn(
        [{ key, target: "lease", equals: held.lease }],
        [{ put: { key: `${handoutPrefix(options.prefix)}${epoch}`, value: candidate, lease: held.lease } }],
        [],
      );
      if (!txn.ok) return txn;
      if (!txn.value.succeeded) return { ok: false, error: { kind: "rejected", message: `${key} is not bound to lease ${held.lease}` } };
      return { ok: true, endpoint: txn.endpoint, value: null };
    },
    async handoutGrants() {
      // One read of the whole prefix: the signer key and the grants at one revision.
      const base = options.prefix.replace(/\/+$/, "");
      const read = await etcd.range(`${base}/`, { prefix: true });
      if (!read.ok) return read;
      const signer = read.value.kvs.find((kv) => kv.key === key);
      if (signer === undefined) return { ok: true, endpoint: read.endpoint, value: [] };
      const hp = handoutPrefix(options.prefix);
      const epochs = read.value.kvs
        .filter((kv) => kv.key.startsWith(hp) && kv.lease === signer.lease && kv.lease !== "0")
        .map((kv) => Number(kv.key.slice(hp.length)))
        .filter((e) => Number.isInteger(e) && e >= 0);
      return { ok: true, endpoint: read.endpoint, value: epochs };
    },
    maySign: (nowMs = now()) => state !== null && maySign(state.signUntilMs, nowMs),
    handOver,
    async handoverRecord() {
      const read = await etcd.range(hkey);
      if (!read.ok) return read;
      return { ok: true, endpoint: read.endpoint, value: parseHandover(read.value.kvs[0]) };
    },
    memberVersions: () => etcd.memberVersions(),
    async leaseAlive(lease) {
      const r = await etcd.leaseTimeToLive(lease);
      // etcd answers -1 for a lease that is gone; a live one with under a second left reads 0 (the
      // seconds are truncated, and the JSON gateway omits the zero), so 0 is alive.
      return r.ok ? { ok: true, endpoint: r.endpoint, value: r.value.ttlS >= 0 } : r;
    },
  };
}
