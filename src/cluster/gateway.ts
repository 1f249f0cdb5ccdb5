// The Etcd port over etcd's v3 JSON gateway (plain HTTP POSTs of JSON on the client port), with
// `fetch`: no gRPC dependency, and it survives `bun build --compile`.
//
// Deadlines: a call has a total budget (callTimeoutMs) and each endpoint attempt a smaller one
// (attemptTimeoutMs), so a member that accepts and never answers (a member cut off from the quorum
// holds linearizable requests until its own timeout) costs one attempt, not the whole call, and
// the next member still gets its turn. Endpoints: tried in turn starting from the one that last
// answered; one that fails is skipped for the next call (it becomes the last to try).
//
// Retries are safe for what the election sends: a create-if-absent txn that committed on a member
// whose answer was lost fails its compare on the retry and reads back our own lease (election.ts
// takes that as won); a keep-alive or revoke is idempotent; a grant retried leaks at most one lease
// that expires after its TTL.

import { classifyFetchError, formatBytes, readCapped } from "../node/http.ts";
import type {
  CallOptions,
  Etcd,
  EtcdError,
  EtcdResult,
  KeyValue,
  LeaseId,
  MemberVersion,
  TxnCompare,
  TxnOp,
  TxnOpResult,
  WatchEvent,
  WatchOptions,
} from "./etcd.ts";
import { prefixEnd } from "./etcd.ts";
import {
  DeleteRangeSchema,
  encodeBase64,
  GatewayErrorSchema,
  LeaseGrantSchema,
  LeaseKeepAliveSchema,
  LeaseRevokeSchema,
  LeaseTimeToLiveSchema,
  MemberListSchema,
  PutSchema,
  RangeSchema,
  TxnSchema,
  StatusSchema,
  WatchResponseSchema,
} from "./schemas.ts";
import type { z } from "zod";

/** The cluster's keys are a handful of small values; an answer past this is not etcd's */
export const MAX_ETCD_BODY_BYTES = 1024 * 1024;
/** A whole call, every endpoint included: well under a lease TTL of a few seconds. */
export const DEFAULT_CALL_TIMEOUT_MS = 3_000;
/** One endpoint: a healthy member on a LAN answers in milliseconds; fsync on a slow disk, tens. */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 1_000;

/** Less time than this left in a call's budget is not worth an attempt (timers fire a little late) */
const MIN_ATTEMPT_MS = 10;
/** gRPC codes meaning "this member cannot serve now, another may": Unavailable, DeadlineExceeded, Canceled, Unknown. */
const RETRY_ELSEWHERE_CODES = new Set([14, 4, 1, 2]);
const GRPC_NOT_FOUND = 5;

export interface GatewayOptions {
  /** Client URLs, e.g. http://10.0.0.1:2379 */
  endpoints: readonly string[];
  callTimeoutMs?: number;
  attemptTimeoutMs?: number;
  /** Injected for tests; defaults to the global fetch */
  fetch?: typeof fetch;
  /** Monotonic milliseconds; injected for tests */
  now?: () => number;
}

export interface GatewayClient extends Etcd {
  readonly endpoints: readonly string[];
  /** The endpoint the next call tries first */
  preferredEndpoint(): string;
}

type Attempt = { ok: true; json: unknown } | { ok: false; message: string; retryElsewhere: boolean; code?: number; invalid?: boolean };

const errorMessage = (error: unknown) => (error as Error)?.message ?? String(error);

export function createGatewayClient(options: GatewayOptions): GatewayClient {
  if (options.endpoints.length === 0) throw new Error("etcd: no endpoints");
  // Fail at construction, not on every call, for a URL that can never work
  const endpoints = options.endpoints.map((e) => new URL(e).href.replace(/\/+$/, ""));
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const attemptTimeoutMs = Math.min(options.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS, callTimeoutMs);
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? (() => performance.now());
  let preferred = 0;
  /** The etcd cluster id of the first answer: an endpoint of another cluster (a wrong address in the
   *  list) would hold another signer key, which a campaign could win beside the real holder. */
  let clusterId: string | null = null;

  /** One POST to one endpoint, body read included, within `timeoutMs`. */
  async function attempt(endpoint: string, path: string, body: unknown, timeoutMs: number, signal?: AbortSignal): Promise<Attempt> {
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<Attempt>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve({ ok: false, message: `${endpoint}: no answer within ${timeoutMs} ms`, retryElsewhere: true });
      }, timeoutMs);
    });
    const exchange = (async (): Promise<Attempt> => {
      try {
        const res = await doFetch(endpoint + path, {
          method: "POST",
          body: JSON.stringify(body),
          headers: { "content-type": "application/json" },
          signal: controller.signal,
          redirect: "manual",
        });
        // Capped while it streams: a misbehaving endpoint must not fill the daemon's memory
        const text = await readCapped(res, MAX_ETCD_BODY_BYTES);
        if (text === null) {
          controller.abort();
          return { ok: false, message: `${endpoint}: answer body larger than ${formatBytes(MAX_ETCD_BODY_BYTES)}, refused unread`, retryElsewhere: true };
        }
        return interpret(endpoint, res.status, text);
      } catch (error) {
        const reason = classifyFetchError(error, controller.signal.aborted);
        const detail = signal?.aborted ? "cancelled" : reason === "timeout" ? `no answer within ${timeoutMs} ms` : errorMessage(error);
        return { ok: false, message: `${endpoint}: ${detail}`, retryElsewhere: true };
      }
    })();
    try {
      return await Promise.race([exchange, expired]);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Tries the endpoints in turn within the call's budget; the first answer (or final refusal) wins. */
  async function call<S extends z.ZodType>(op: string, path: string, body: unknown, schema: S, opts?: CallOptions): Promise<EtcdResult<z.output<S>>> {
    const deadline = now() + callTimeoutMs;
    const failures: string[] = [];
    const first = preferred;
    for (let i = 0; i < endpoints.length; i++) {
      const index = (first + i) % endpoints.length;
      const endpoint = endpoints[index]!;
      const remaining = deadline - now();
      if (remaining < MIN_ATTEMPT_MS || opts?.signal?.aborted) break;
      const result = await attempt(endpoint, path, body, Math.min(attemptTimeoutMs, remaining), opts?.signal);
      if (result.ok) {
        const cid = clusterIdOf(result.json);
        if (cid !== null && clusterId !== null && cid !== clusterId) {
          failures.push(`${endpoint}: belongs to another etcd cluster (${cid}, not ${clusterId}); check the endpoints`);
          preferred = (index + 1) % endpoints.length;
          continue;
        }
        const parsed = schema.safeParse(result.json);
        if (parsed.success) {
          clusterId ??= cid;
          preferred = index;
          return { ok: true, value: parsed.data, endpoint };
        }
        failures.push(`${endpoint}: unexpected answer (${parsed.error.issues[0]?.message ?? "invalid"})`);
        preferred = (index + 1) % endpoints.length;
        continue;
      }
      failures.push(result.message);
      if (!result.retryElsewhere) {
        // etcd itself said no (a lease not found, a bad request): every member would say the same
        return { ok: false, error: { kind: "rejected", message: `${op}: ${result.message}`, code: result.code } };
      }
      preferred = (index + 1) % endpoints.length;
    }
    const why = opts?.signal?.aborted ? "cancelled" : `no endpoint answered within ${callTimeoutMs} ms`;
    const error: EtcdError = { kind: "unavailable", message: `${op}: ${why} (${failures.join("; ") || "no attempt made"})` };
    if (failures.length > 0 && failures.every((f) => f.includes("unexpected answer"))) error.kind = "invalid-response";
    return { ok: false, error };
  }

  function interpret(endpoint: string, status: number, text: string): Attempt {
    // Streaming calls (keep-alive) answer newline-delimited `{"result": ...}` / `{"error": ...}`;
    // the unary POST ends the stream after the first line.
    const first = text.split("\n").find((line) => line.trim() !== "") ?? "";
    let json: unknown;
    try {
      json = JSON.parse(first);
    } catch {
      const retryElsewhere = status >= 500 || status === 0;
      return { ok: false, message: `${endpoint}: HTTP ${status}, not JSON: ${JSON.stringify(text.slice(0, 120))}`, retryElsewhere };
    }
    const obj = isObject(json) ? json : {};
    // A stream line carries "result" or "error"; a unary answer is the message itself
    if ("result" in obj && status === 200) return { ok: true, json: obj.result };
    const streamError = "error" in obj && isObject(obj.error) ? normalizeStreamError(obj.error) : undefined;
    const err = GatewayErrorSchema.safeParse(streamError ?? json);
    const failed = status !== 200 || streamError !== undefined || (err.success && (err.data.code ?? 0) !== 0);
    if (!failed) return { ok: true, json };
    const code = err.success ? err.data.code : undefined;
    const message = err.success ? (err.data.message ?? err.data.error ?? `HTTP ${status}`) : `HTTP ${status}`;
    const retryElsewhere = code !== undefined ? RETRY_ELSEWHERE_CODES.has(code) : status >= 500;
    return { ok: false, message: `${endpoint}: ${message}${code !== undefined ? ` (code ${code})` : ""}`, retryElsewhere, code };
  }

  const rangeEnd = (key: string, prefix: boolean | undefined) =>
    prefix ? { range_end: encodeBase64(prefixEnd(new TextEncoder().encode(key))) } : {};

  function compareJson(c: TxnCompare): unknown {
    const key = encodeBase64(c.key);
    switch (c.target) {
      case "create_revision":
        return { key, target: "CREATE", result: "EQUAL", create_revision: String(c.equals) };
      case "value":
        return { key, target: "VALUE", result: "EQUAL", value: encodeBase64(c.equals) };
      case "lease":
        return { key, target: "LEASE", result: "EQUAL", lease: c.equals };
    }
  }

  function opJson(op: TxnOp): unknown {
    if ("put" in op) {
      const p = op.put;
      return { request_put: { key: encodeBase64(p.key), value: encodeBase64(p.value), ...(p.lease ? { lease: p.lease } : {}) } };
    }
    if ("range" in op) return { request_range: { key: encodeBase64(op.range.key), ...rangeEnd(op.range.key, op.range.prefix) } };
    return { request_delete_range: { key: encodeBase64(op.deleteRange.key), ...rangeEnd(op.deleteRange.key, op.deleteRange.prefix) } };
  }

  const client: GatewayClient = {
    endpoints,
    preferredEndpoint: () => endpoints[preferred]!,

    async leaseGrant(ttlS, opts) {
      const r = await call("lease grant", "/v3/lease/grant", { TTL: String(ttlS) }, LeaseGrantSchema, opts);
      if (!r.ok) return r;
      if (r.value.error) return { ok: false, error: { kind: "rejected", message: `lease grant: ${r.value.error}` } };
      return { ok: true, endpoint: r.endpoint, value: { id: r.value.ID, ttlS: r.value.TTL } };
    },

    async leaseKeepAlive(id, opts) {
      const r = await call("lease keep-alive", "/v3/lease/keepalive", { ID: id }, LeaseKeepAliveSchema, opts);
      return r.ok ? { ok: true, endpoint: r.endpoint, value: { ttlS: Math.max(0, r.value.TTL) } } : r;
    },

    async leaseRevoke(id, opts) {
      const r = await call("lease revoke", "/v3/lease/revoke", { ID: id }, LeaseRevokeSchema, opts);
      if (!r.ok && r.error.code === GRPC_NOT_FOUND) return { ok: true, endpoint: "", value: null };
      return r.ok ? { ok: true, endpoint: r.endpoint, value: null } : r;
    },

    async leaseTimeToLive(id, opts) {
      const r = await call("lease time-to-live", "/v3/lease/timetolive", { ID: id, keys: true }, LeaseTimeToLiveSchema, opts);
      if (!r.ok) return r;
      const v = r.value;
      return { ok: true, endpoint: r.endpoint, value: { id: v.ID, ttlS: v.TTL, grantedTtlS: v.grantedTTL, keys: v.keys } };
    },

    async range(key, opts) {
      const body = { key: encodeBase64(key), ...rangeEnd(key, opts?.prefix) };
      const r = await call("range", "/v3/kv/range", body, RangeSchema, opts);
      return r.ok ? { ok: true, endpoint: r.endpoint, value: { kvs: r.value.kvs, revision: r.value.header.revision } } : r;
    },

    async put(key, value, opts) {
      const body = { key: encodeBase64(key), value: encodeBase64(value), ...(opts?.lease ? { lease: opts.lease } : {}) };
      const r = await call("put", "/v3/kv/put", body, PutSchema, opts);
      return r.ok ? { ok: true, endpoint: r.endpoint, value: { revision: r.value.header.revision } } : r;
    },

    async deleteRange(key, opts) {
      const body = { key: encodeBase64(key), ...rangeEnd(key, opts?.prefix) };
      const r = await call("delete range", "/v3/kv/deleterange", body, DeleteRangeSchema, opts);
      return r.ok ? { ok: true, endpoint: r.endpoint, value: { deleted: r.value.deleted } } : r;
    },

    async txn(compare, success, failure, opts) {
      const body = { compare: compare.map(compareJson), success: success.map(opJson), failure: failure.map(opJson) };
      const r = await call("txn", "/v3/kv/txn", body, TxnSchema, opts);
      if (!r.ok) return r;
      const responses = r.value.responses.map((resp): TxnOpResult => {
        if ("response_put" in resp) return { put: { revision: resp.response_put.header?.revision ?? 0 } };
        if ("response_range" in resp) return { range: { kvs: resp.response_range.kvs ?? [] } };
        return { deleteRange: { deleted: resp.response_delete_range.deleted ?? 0 } };
      });
      return { ok: true, endpoint: r.endpoint, value: { succeeded: r.value.succeeded, revision: r.value.header.revision, responses } };
    },

    async memberVersions(opts) {
      // Linearizable (etcd >= 3.5; 3.4 ignores the field): a member cut off from the quorum must not
      // answer with a list that lacks a member added since, which may be an unfixed one.
      const r = await call("member list", "/v3/cluster/member/list", { linearizable: true }, MemberListSchema, opts);
      if (!r.ok) return r;
      const value = await Promise.all(r.value.members.map((m) => memberVersion(m, opts)));
      return { ok: true, endpoint: r.endpoint, value };
    },

    watch: (key, opts) => watch(key, opts),
  };

  /**
   * What one member says its server version is (maintenance/status on its advertised client URLs,
   * in turn, one attempt deadline each). Not through `call`: the question is for that member, not
   * for whichever answers first; and the answer counts only when it names that member's id (a URL
   * behind a proxy or a load balancer, or advertised wrongly, may reach another member, and the one
   * not reached may be the unfixed one). Unknown (null) when none of its URLs answers as that
   * member, e.g. a member that is down or cut off from this host.
   */
  async function memberVersion(m: z.output<typeof MemberListSchema>["members"][number], opts?: CallOptions): Promise<MemberVersion> {
    const name = m.name !== "" ? m.name : m.ID;
    const problems: string[] = [];
    for (const url of m.clientURLs) {
      let base: string;
      try {
        base = new URL(url).href.replace(/\/+$/, "");
      } catch {
        problems.push(`${url}: not a URL`);
        continue;
      }
      const a = await attempt(base, "/v3/maintenance/status", {}, attemptTimeoutMs, opts?.signal);
      if (!a.ok) {
        problems.push(a.message);
        continue;
      }
      const v = StatusSchema.safeParse(a.json);
      if (!v.success) {
        problems.push(`${base}: unexpected answer to maintenance/status`);
        continue;
      }
      if (v.data.header.member_id !== m.ID) {
        problems.push(`${base}: answered as member ${v.data.header.member_id}, not ${m.ID}`);
        continue;
      }
      return { name, version: v.data.version };
    }
    return { name, version: null, problem: problems.join("; ") || "it advertises no client URL" };
  }

  /**
   * The watch stream: endpoints are tried in turn until one confirms the watch (`created`) within
   * the attempt deadline; then events flow until the caller aborts or the stream breaks. A member
   * cut off from the quorum may keep the stream open and silent, so a watch is a hint to look
   * again, never evidence that nothing changed.
   */
  async function watch(key: string, opts: WatchOptions): Promise<EtcdResult<null>> {
    const request = {
      create_request: {
        key: encodeBase64(key),
        ...rangeEnd(key, opts.prefix),
        ...(opts.startRevision ? { start_revision: String(opts.startRevision) } : {}),
      },
    };
    const deadline = now() + callTimeoutMs;
    const failures: string[] = [];
    const first = preferred;
    for (let i = 0; i < endpoints.length && !opts.signal.aborted; i++) {
      const index = (first + i) % endpoints.length;
      const endpoint = endpoints[index]!;
      const remaining = deadline - now();
      if (remaining < MIN_ATTEMPT_MS) break;
      const outcome = await watchOn(endpoint, request, Math.min(attemptTimeoutMs, remaining), opts);
      if (outcome === "created-then-ended") return { ok: true, endpoint, value: null };
      if (typeof outcome !== "string") return outcome;
      failures.push(outcome);
      preferred = (index + 1) % endpoints.length;
    }
    if (opts.signal.aborted) return { ok: true, endpoint: "", value: null };
    return { ok: false, error: { kind: "unavailable", message: `watch: no endpoint confirmed the watch (${failures.join("; ")})` } };
  }

  /** A string: why this endpoint did not confirm the watch (try the next one). */
  async function watchOn(
    endpoint: string,
    request: unknown,
    createTimeoutMs: number,
    opts: WatchOptions,
  ): Promise<string | "created-then-ended" | EtcdResult<null>> {
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    opts.signal.addEventListener("abort", onAbort, { once: true });
    let created = false;
    const timer = setTimeout(() => {
      if (!created) controller.abort();
    }, createTimeoutMs);
    try {
      const res = await doFetch(endpoint + "/v3/watch", {
        method: "POST",
        body: JSON.stringify(request),
        headers: { "content-type": "application/json" },
        signal: controller.signal,
      });
      if (res.status !== 200 || !res.body) return `${endpoint}: HTTP ${res.status}`;
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of res.body) {
        buffered += decoder.decode(chunk, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line === "") continue;
          const parsed = safeJson(line);
          if (!isObject(parsed) || !("result" in parsed)) {
            const why = `${endpoint}: watch stream said ${line.slice(0, 160)}`;
            if (!created) return why;
            return { ok: false, error: { kind: "unavailable", message: why } };
          }
          const resp = WatchResponseSchema.safeParse(parsed.result);
          if (!resp.success) {
            const why = `${endpoint}: unexpected watch answer (${resp.error.issues[0]?.message ?? "invalid"})`;
            return created ? { ok: false, error: { kind: "invalid-response", message: why } } : why;
          }
          const r = resp.data;
          if (r.canceled) {
            const why = `watch cancelled by etcd: ${r.cancel_reason ?? "no reason"}${r.compact_revision ? ` (compacted at ${r.compact_revision})` : ""}`;
            return { ok: false, error: { kind: "rejected", message: why } };
          }
          if (r.created) {
            created = true;
            preferred = endpoints.indexOf(endpoint);
          }
          if (r.events.length > 0) {
            const events = r.events.map((e): WatchEvent => ({ type: e.type === "DELETE" ? "delete" : "put", kv: e.kv as KeyValue }));
            opts.onEvents(events, r.header.revision);
          }
        }
      }
      if (!created) return `${endpoint}: the watch stream ended before it was created`;
      if (opts.signal.aborted) return "created-then-ended";
      return { ok: false, error: { kind: "unavailable", message: `watch: ${endpoint} ended the stream` } };
    } catch (error) {
      if (opts.signal.aborted) return created ? "created-then-ended" : { ok: true, endpoint, value: null };
      const why = `${endpoint}: ${!created && controller.signal.aborted ? `no watch confirmation within ${createTimeoutMs} ms` : errorMessage(error)}`;
      return created ? { ok: false, error: { kind: "unavailable", message: `watch: ${why}` } } : why;
    } finally {
      clearTimeout(timer);
      opts.signal.removeEventListener("abort", onAbort);
    }
  }

  return client;
}

/** header.cluster_id of an answer (a decimal string in the JSON gateway), or null when absent. */
function clusterIdOf(json: unknown): string | null {
  const header = isObject(json) ? json.header : undefined;
  const id = isObject(header) ? header.cluster_id : undefined;
  return typeof id === "string" || typeof id === "number" ? String(id) : null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** grpc-gateway's stream errors: `{"grpc_code": 14, "http_code": 503, "message": "..."}` */
function normalizeStreamError(o: Record<string, unknown>): unknown {
  return { message: typeof o.message === "string" ? o.message : undefined, code: typeof o.grpc_code === "number" ? o.grpc_code : o.code };
}

export type { LeaseId };
