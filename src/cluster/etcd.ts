// The port to etcd: the few v3 operations the cluster mode needs, in the program's terms (strings for
// keys and values, seconds for TTLs, lease ids as decimal strings because they are int64). The
// gateway client (gateway.ts) implements it over HTTP; tests of the layers above inject a fake.
//
// Every operation resolves to a result value; none throws. "etcd is down" is an ordinary answer the
// caller reports, never a crash, and a call never outlives its deadline.

/** int64 as etcd's JSON gateway writes it: a decimal string (beyond 2^53, so never a number). */
export type LeaseId = string;

export interface KeyValue {
  key: string;
  value: string;
  /** The revision that created the key (0 would mean absent; present keys are > 0) */
  createRevision: number;
  modRevision: number;
  version: number;
  /** "0" when the key is not bound to a lease */
  lease: LeaseId;
}

export type EtcdErrorKind =
  /** No endpoint answered: refused, reset, or no answer within the deadline */
  | "unavailable"
  /** An endpoint answered with an etcd error that retrying elsewhere would not change */
  | "rejected"
  /** An endpoint answered something that is not what etcd sends */
  | "invalid-response";

export interface EtcdError {
  kind: EtcdErrorKind;
  /** One line naming the operation, each endpoint tried and what it said */
  message: string;
  /** gRPC status code when etcd sent one (5 NotFound, 14 Unavailable, ...) */
  code?: number;
}

export type EtcdResult<T> = { ok: true; value: T; endpoint: string } | { ok: false; error: EtcdError };

export interface Lease {
  id: LeaseId;
  /** What etcd granted, which can be more than asked (etcd's minimum TTL, 2 s at default timings) */
  ttlS: number;
}

export interface LeaseTimeToLive {
  id: LeaseId;
  /** Whole seconds left, truncated (0: alive, under a second left); -1 when the lease does not exist (expired or revoked) */
  ttlS: number;
  grantedTtlS: number;
  keys: string[];
}

export type TxnCompare =
  | { key: string; target: "create_revision"; equals: number }
  | { key: string; target: "value"; equals: string }
  | { key: string; target: "lease"; equals: LeaseId };

export type TxnOp =
  | { put: { key: string; value: string; lease?: LeaseId } }
  | { range: { key: string; prefix?: boolean } }
  | { deleteRange: { key: string; prefix?: boolean } };

export type TxnOpResult = { put: { revision: number } } | { range: { kvs: KeyValue[] } } | { deleteRange: { deleted: number } };

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  responses: TxnOpResult[];
}

export type WatchEvent = { type: "put" | "delete"; kv: KeyValue };

export interface WatchOptions {
  prefix?: boolean;
  /** Start from this revision (inclusive); default: changes after now */
  startRevision?: number;
  /** Ends the watch; the returned promise then resolves */
  signal: AbortSignal;
  /** Called for each batch of events, in order */
  onEvents: (events: WatchEvent[], revision: number) => void;
}

/** One member of the etcd cluster and the server version it reports. */
export interface MemberVersion {
  /** Its name (its id when it has none, e.g. a learner not started yet) */
  name: string;
  /** `etcdserver` as the member reported it; null: it could not be asked */
  version: string | null;
  /** Why the version is unknown */
  problem?: string;
}

export interface CallOptions {
  /** The caller's own cancellation, on top of the client's deadline */
  signal?: AbortSignal;
}

export interface Etcd {
  leaseGrant(ttlS: number, opts?: CallOptions): Promise<EtcdResult<Lease>>;
  /** One keep-alive. `ttlS` 0 means the lease is gone (etcd answers, but the lease expired or was revoked). */
  leaseKeepAlive(id: LeaseId, opts?: CallOptions): Promise<EtcdResult<{ ttlS: number }>>;
  /** Revoking a lease that is already gone succeeds: the outcome the caller wanted holds. */
  leaseRevoke(id: LeaseId, opts?: CallOptions): Promise<EtcdResult<null>>;
  leaseTimeToLive(id: LeaseId, opts?: CallOptions): Promise<EtcdResult<LeaseTimeToLive>>;
  range(key: string, opts?: CallOptions & { prefix?: boolean }): Promise<EtcdResult<{ kvs: KeyValue[]; revision: number }>>;
  put(key: string, value: string, opts?: CallOptions & { lease?: LeaseId }): Promise<EtcdResult<{ revision: number }>>;
  deleteRange(key: string, opts?: CallOptions & { prefix?: boolean }): Promise<EtcdResult<{ deleted: number }>>;
  /**
   * Beware: a txn whose branches hold no write op counts as read-only, and etcd 3.4 serves one with
   * no ops at all from the answering member's local state (seen answering in 2 ms on a member
   * without quorum). Decide nothing on such a txn; read with range (linearizable) instead.
   */
  txn(compare: TxnCompare[], success: TxnOp[], failure: TxnOp[], opts?: CallOptions): Promise<EtcdResult<TxnResult>>;
  /**
   * Streams changes until `signal` aborts or the stream breaks; resolves then with why it ended
   * (ok: the caller aborted). The deadline applies to getting the watch created, not to its life.
   */
  watch(key: string, opts: WatchOptions): Promise<EtcdResult<null>>;
  /**
   * Every member in the member list and the server version each one reports (asked one by one on
   * its own client URLs). The list itself comes from whichever endpoint answers; a member that
   * cannot be asked is in the answer with version null.
   */
  memberVersions(opts?: CallOptions): Promise<EtcdResult<MemberVersion[]>>;
}

/** The end of a key range holding every key with `key` as prefix: the prefix with its last byte + 1. */
export function prefixEnd(key: Uint8Array): Uint8Array {
  const end = key.slice();
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.slice(0, i + 1);
    }
  }
  // Every byte 0xff (or empty): etcd's "\0" means "to the end of the keyspace"
  return new Uint8Array([0]);
}
