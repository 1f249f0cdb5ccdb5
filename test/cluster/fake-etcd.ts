// An in-memory Etcd for tests of the layers above the port: keys, revisions and leases with TTLs on
// an injected clock, and switches for the faults the real one shows (down: every call unavailable;
// answers lost after the operation applied). Deliberately small: semantics match what
// gateway.test.ts and etcd.test.ts establish for the real server, nothing more.

import type { Etcd, EtcdError, EtcdResult, KeyValue, LeaseId, TxnCompare, TxnOp, TxnOpResult } from "../../src/cluster/etcd.ts";

/** A release with both lease fixes (deadline.ts leaseFixesIn), for tests of the no-wait takeover */
export const FIXED_ETCD_VERSIONS = ["3.5.23", "3.5.23", "3.5.23"];
export const DEBIAN_ETCD_VERSIONS = ["3.4.23", "3.4.23", "3.4.23"];

interface FakeLease {
  ttlS: number;
  expiresAtMs: number;
}

export interface FakeEtcd extends Etcd {
  /** Every call fails as unavailable (etcd down or cut off) */
  down: boolean;
  /** Names of operations (e.g. "txn") whose next call applies, then reports unavailable (the answer was lost) */
  loseAnswer: string[];
  /** Each call takes this long: the clock moves before the operation applies (a slow network) */
  latencyMs: number;
  /** Lets time pass: expired leases are revoked and their keys deleted */
  advance(ms: number): void;
  nowMs(): number;
  calls: string[];
  kv: Map<string, KeyValue>;
  leases: Map<LeaseId, FakeLease>;
  /** etcd revoking a lease on its own (expiry, or an early revoke by a stuck old leader) */
  revoke(id: LeaseId): void;
  /** The members' server versions (null: that member cannot be asked). Default: three members of
   *  Debian's 3.4.23, whose leases can end early (the takeover waits). */
  versions: (string | null)[];
}

const UNAVAILABLE: EtcdError = { kind: "unavailable", message: "fake etcd: down" };

export function createFakeEtcd(startMs = 0): FakeEtcd {
  let clock = startMs;
  let revision = 1;
  let nextLease = 1000;
  const kv = new Map<string, KeyValue>();
  const leases = new Map<LeaseId, FakeLease>();

  function revoke(id: LeaseId) {
    if (!leases.delete(id)) return;
    for (const [k, v] of kv) if (v.lease === id) kv.delete(k);
    revision++;
  }
  function expire() {
    for (const [id, l] of leases) if (l.expiresAtMs <= clock) revoke(id);
  }
  const inRange = (k: string, key: string, prefix?: boolean) => (prefix ? k.startsWith(key) : k === key);

  function op<T>(name: string, apply: () => EtcdResult<T>): Promise<EtcdResult<T>> {
    fake.calls.push(name);
    if (fake.down) return Promise.resolve({ ok: false, error: UNAVAILABLE });
    clock += fake.latencyMs;
    expire();
    const result = apply();
    const lost = fake.loseAnswer.indexOf(name);
    if (lost >= 0) {
      fake.loseAnswer.splice(lost, 1);
      return Promise.resolve({ ok: false, error: { kind: "unavailable", message: "fake etcd: answer lost" } });
    }
    return Promise.resolve(result);
  }
  const ok = <T>(value: T): EtcdResult<T> => ({ ok: true, value, endpoint: "fake" });

  function compare(c: TxnCompare): boolean {
    const cur = kv.get(c.key);
    if (c.target === "create_revision") return (cur?.createRevision ?? 0) === c.equals;
    if (c.target === "value") return cur?.value === c.equals;
    return (cur?.lease ?? "0") === c.equals;
  }
  function apply(o: TxnOp): TxnOpResult {
    if ("put" in o) return { put: { revision: put(o.put.key, o.put.value, o.put.lease) } };
    if ("range" in o) return { range: { kvs: [...kv.values()].filter((v) => inRange(v.key, o.range.key, o.range.prefix)) } };
    let deleted = 0;
    for (const k of [...kv.keys()]) if (inRange(k, o.deleteRange.key, o.deleteRange.prefix)) (kv.delete(k), deleted++);
    return { deleteRange: { deleted } };
  }
  /** Inside a txn: every write of it shares one revision, as in etcd */
  let txnRevision: number | null = null;
  function put(key: string, value: string, lease?: LeaseId): number {
    if (txnRevision === null) revision++;
    else revision = txnRevision;
    const cur = kv.get(key);
    kv.set(key, {
      key,
      value,
      createRevision: cur?.createRevision ?? revision,
      modRevision: revision,
      version: (cur?.version ?? 0) + 1,
      lease: lease ?? "0",
    });
    return revision;
  }

  const fake: FakeEtcd = {
    down: false,
    loseAnswer: [],
    latencyMs: 0,
    calls: [],
    kv,
    leases,
    revoke,
    nowMs: () => clock,
    advance(ms) {
      clock += ms;
      expire();
    },
    leaseGrant: (ttlS) =>
      op("leaseGrant", () => {
        const id = String(nextLease++);
        const granted = Math.max(2, ttlS);
        leases.set(id, { ttlS: granted, expiresAtMs: clock + granted * 1000 });
        return ok({ id, ttlS: granted });
      }),
    leaseKeepAlive: (id) =>
      op("leaseKeepAlive", () => {
        const l = leases.get(id);
        if (!l) return ok({ ttlS: 0 });
        l.expiresAtMs = clock + l.ttlS * 1000;
        return ok({ ttlS: l.ttlS });
      }),
    leaseRevoke: (id) => op("leaseRevoke", () => (revoke(id), ok(null))),
    leaseTimeToLive: (id) =>
      op("leaseTimeToLive", () => {
        const l = leases.get(id);
        const keys = [...kv.values()].filter((v) => v.lease === id).map((v) => v.key);
        // etcd truncates the seconds left: a live lease with less than one left reads 0; gone is -1
        return ok({ id, ttlS: l ? Math.floor((l.expiresAtMs - clock) / 1000) : -1, grantedTtlS: l?.ttlS ?? 0, keys });
      }),
    range: (key, opts) => op("range", () => ok({ kvs: [...kv.values()].filter((v) => inRange(v.key, key, opts?.prefix)), revision })),
    put: (key, value, opts) => op("put", () => ok({ revision: put(key, value, opts?.lease) })),
    deleteRange: (key, opts) => op("deleteRange", () => ok({ deleted: (apply({ deleteRange: { key, prefix: opts?.prefix } }) as { deleteRange: { deleted: number } }).deleteRange.deleted })),
    txn: (cmp, success, failure) =>
      op("txn", () => {
        const succeeded = cmp.every(compare);
        const ops = succeeded ? success : failure;
        // The product's invariant, checked wherever the fake runs: whatever creates the signer key
        // records its lease beside it in the same txn (election.ts holderLeaseKey), or a later winner
        // cannot tell whether that lease still lives (a key deleted by hand) and may skip its wait.
        for (const o of [...success, ...failure]) {
          if (!("put" in o) || !o.put.key.endsWith("/signer")) continue;
          const branch = success.includes(o) ? success : failure;
          const record = `${o.put.key.slice(0, -"/signer".length)}/holder-lease`;
          if (!branch.some((x) => "put" in x && x.put.key === record)) throw new Error(`fake etcd: a txn puts ${o.put.key} without ${record} (election.ts holderLeaseKey)`);
        }
        txnRevision = ops.some((o) => !("range" in o)) ? revision + 1 : null;
        try {
          const responses = ops.map(apply);
          return ok({ succeeded, revision, responses });
        } finally {
          txnRevision = null;
        }
      }),
    watch: () => Promise.resolve({ ok: false, error: { kind: "rejected", message: "fake etcd: no watch" } }),
    versions: [...DEBIAN_ETCD_VERSIONS],
    memberVersions: () =>
      op("memberVersions", () =>
        ok(fake.versions.map((version, i) => (version === null ? { name: `m${i + 1}`, version: null, problem: "fake etcd: member down" } : { name: `m${i + 1}`, version }))),
      ),
  };
  return fake;
}
