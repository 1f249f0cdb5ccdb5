// The one parser between the wire and the master: every RawResponse, whether it came over HTTP
// or from the in-process simulator, becomes a typed NodeResult here. Nothing in this file throws.

import type { z } from "zod";
import { fail, ok } from "./types.ts";
import type { NodeApi, NodeError, NodeResult, NodeSecret, RawRequest, RawResponse, Transport } from "./types.ts";
import { leaderIdSchema, leaderIdsSchema, leaderLogsSchema, nodeStatsSchema, settingsSchema, tipSchema } from "./schemas.ts";
import { DEFAULT_REST_TIMEOUT_MS, httpTransport } from "./http.ts";

export { DEFAULT_MAX_BODY_BYTES, DEFAULT_REST_TIMEOUT_MS, httpTransport } from "./http.ts";
export { withDeadline } from "./deadline.ts";

const HTTP_OK = 200;
const HTTP_NOT_FOUND = 404;
const HTTP_SERVICE_UNAVAILABLE = 503;
const HTTP_INTERNAL_ERROR = 500;
/** Enough of an error body to recognise it in a log line, not a whole HTML page */
const MAX_BODY_IN_MESSAGE = 120;
/**
 * Body cap of GET /leaders/logs. The node keeps an LRU of leadership.logs_capacity entries (default
 * 1024) of about 460 bytes each, so a full default log is about 470 KiB; a few hundred entries per
 * epoch over two epochs is well under that. 2 MiB leaves four times the default capacity, and its
 * parse and validation stay around 50 ms (an endless log took the daemon to 172 MB, a 200k-entry one
 * blocked the loop 2.5 s). Every other answer is under 1 KiB and gets the transport's default cap.
 */
export const MAX_LEADER_LOGS_BYTES = 2 * 1024 * 1024;

/** v0.8.19 (warp, no recover handler) answers 500 "Unhandled rejection: …" where actix answered 503. */
const WARP_UNHANDLED_REJECTION = /unhandled rejection/i;

export const endpointName = (req: RawRequest): string => `${req.method} ${req.path}`;

const snippet = (body: string): string => {
  const text = body.trim().replace(/\s+/g, " ");
  return text.length > MAX_BODY_IN_MESSAGE ? `${text.slice(0, MAX_BODY_IN_MESSAGE)}…` : text;
};

/** 503 (any endpoint) or v0.8.19's 500 "Unhandled rejection" → the node lives but is still booting. */
export function statusError(req: RawRequest, res: RawResponse): NodeError {
  const body = snippet(res.body);
  const message = `${endpointName(req)}: HTTP ${res.status}${body ? ` ${body}` : ""}`;
  if (res.status === HTTP_SERVICE_UNAVAILABLE || (res.status === HTTP_INTERNAL_ERROR && WARP_UNHANDLED_REJECTION.test(res.body))) {
    return { kind: "not_ready", status: res.status, message };
  }
  return { kind: "http", status: res.status, message };
}

const isSuccess = (status: number) => status >= HTTP_OK && status < 300;

/** zod path → "lastBlockHeight", "[0].status.Block.chain_length"; "$" is the whole body. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || "$";
}

function malformed(req: RawRequest, field: string, detail: string): NodeError {
  const endpoint = endpointName(req);
  return { kind: "malformed", endpoint, field, message: `${endpoint}: ${field}: ${detail}` };
}

interface IssueLike {
  path: PropertyKey[];
  message: string;
  code?: string;
  errors?: IssueLike[][];
}

const valueAt = (value: unknown, path: readonly PropertyKey[]): unknown =>
  path.reduce<unknown>((v, key) => (typeof v === "object" && v !== null ? (v as Record<PropertyKey, unknown>)[key] : undefined), value);

/** The most specific problem: inside a union (leader status, height) the branch that got furthest
 *  names the field, e.g. [0].status.Block.chain_length rather than just [0].status. A branch
 *  counts only if the body has its first key ({"Block":…} is judged as a Block, not a Rejected). */
export function deepestIssue(issue: IssueLike, input: unknown): { path: PropertyKey[]; message: string } {
  if (issue.code === "invalid_union" && issue.errors) {
    const here = valueAt(input, issue.path);
    let best: IssueLike | undefined;
    for (const branch of issue.errors) {
      const first = branch[0];
      const key = first?.path[0];
      if (!first || key === undefined || valueAt(here, [key]) === undefined) continue;
      if (!best || first.path.length > best.path.length) best = first;
    }
    if (best) {
      const inner = deepestIssue(best, here);
      return { path: [...issue.path, ...inner.path], message: inner.message };
    }
  }
  return { path: issue.path, message: issue.message };
}

export function parseWith<S extends z.ZodType>(schema: S, req: RawRequest, value: unknown): NodeResult<z.output<S>> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return ok(parsed.data);
  const first = parsed.error.issues[0] as IssueLike | undefined;
  const issue = first ? deepestIssue(first, value) : { path: [], message: "invalid" };
  return fail(malformed(req, fieldPath(issue.path), issue.message));
}

function parseJsonBody<S extends z.ZodType>(schema: S, req: RawRequest, res: RawResponse): NodeResult<z.output<S>> {
  let value: unknown;
  try {
    value = JSON.parse(res.body);
  } catch {
    return fail(malformed(req, "$", `not JSON: ${JSON.stringify(snippet(res.body))}`));
  }
  return parseWith(schema, req, value);
}

async function exchange(transport: Transport, req: RawRequest): Promise<RawResponse | NodeError> {
  try {
    return await transport(req);
  } catch (error) {
    // A Transport should resolve with a NodeError; one that throws is still only "unreachable".
    return { kind: "unreachable", reason: "other", message: `${endpointName(req)}: ${(error as Error)?.message ?? String(error)}` };
  }
}

const isNodeError = (x: RawResponse | NodeError): x is NodeError => "kind" in x;

export interface NodeApiOptions {
  /** When set, an answer that is not read AND parsed within this many ms counts as a timeout */
  deadlineMs?: number;
  now?: () => number;
}

/** The NodeApi over any transport: HTTP to a real node, or the simulator in-process. */
export function createNodeApi(transport: Transport, options: NodeApiOptions = {}): NodeApi {
  const { deadlineMs, now = () => performance.now() } = options;
  async function call<T>(req: RawRequest, onResponse: (res: RawResponse) => NodeResult<T>): Promise<NodeResult<T>> {
    const startedMs = now();
    const res = await exchange(transport, req);
    if (isNodeError(res)) return fail(res);
    const result = onResponse(res);
    // The transport's deadline ends with the body read; the parse counts too, so a late answer is
    // never taken as fresh evidence (the body cap keeps the parse itself short).
    if (deadlineMs !== undefined && now() - startedMs > deadlineMs) {
      return fail({ kind: "unreachable", reason: "timeout", message: `${endpointName(req)}: answer not read and parsed within ${deadlineMs} ms` });
    }
    return result;
  }
  const json =
    <S extends z.ZodType>(req: RawRequest, schema: S) =>
    (res: RawResponse): NodeResult<z.output<S>> =>
      isSuccess(res.status) ? parseJsonBody(schema, req, res) : fail(statusError(req, res));

  return {
    stats() {
      const req: RawRequest = { method: "GET", path: "/node/stats" };
      return call(req, json(req, nodeStatsSchema));
    },
    settings() {
      const req: RawRequest = { method: "GET", path: "/settings" };
      return call(req, json(req, settingsSchema));
    },
    leaders() {
      const req: RawRequest = { method: "GET", path: "/leaders" };
      return call(req, json(req, leaderIdsSchema));
    },
    addLeader(secret: NodeSecret) {
      const req: RawRequest = { method: "POST", path: "/leaders", body: JSON.stringify(secret) };
      // The request body holds key material: endpoint names and messages never include it.
      return call(req, json({ method: "POST", path: "/leaders" }, leaderIdSchema));
    },
    removeLeader(id: number) {
      const req: RawRequest = { method: "DELETE", path: `/leaders/${id}` };
      return call(req, (res) => {
        if (isSuccess(res.status)) return ok(true);
        if (res.status === HTTP_NOT_FOUND) return ok(false);
        return fail(statusError(req, res));
      });
    },
    leaderLogs() {
      const req: RawRequest = { method: "GET", path: "/leaders/logs", maxBodyBytes: MAX_LEADER_LOGS_BYTES };
      return call(req, json(req, leaderLogsSchema));
    },
    shutdown() {
      // GET only in v0.8.x (POST came with v0.9.0)
      const req: RawRequest = { method: "GET", path: "/shutdown" };
      return call(req, (res) => (isSuccess(res.status) ? ok(undefined) : fail(statusError(req, res))));
    },
    tip() {
      const req: RawRequest = { method: "GET", path: "/tip" };
      return call(req, (res) => (isSuccess(res.status) ? parseWith(tipSchema, req, res.body) : fail(statusError(req, res))));
    },
  };
}

export interface HttpNodeApiOptions {
  /** Deadline of every call; default DEFAULT_REST_TIMEOUT_MS */
  timeoutMs?: number;
}

/** NodeApi of the node whose REST API is at `baseUrl`, e.g. http://127.0.0.1:3100/api/v0 */
export function httpNodeApi(baseUrl: string, options: HttpNodeApiOptions = {}): NodeApi {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REST_TIMEOUT_MS;
  return createNodeApi(httpTransport(baseUrl, { timeoutMs }), { deadlineMs: timeoutMs });
}
