// The HTTP edge of the NodeApi. Every call has a hard deadline covering connect, headers AND body:
// a node that accepts and never answers, or sends headers and stalls the body (a SIGSTOPped
// process does both), costs the master at most `timeoutMs`, never a stalled loop.

import type { NodeError, RawRequest, RawResponse, Transport } from "./types.ts";

/** Well under one 2 s ITN slot, so a dead runner never costs the master a slot. */
export const DEFAULT_REST_TIMEOUT_MS = 500;

export interface HttpTransportOptions {
  timeoutMs?: number;
  /** Injected for tests; defaults to the global fetch (which keeps connections alive and reuses them) */
  fetch?: typeof fetch;
}

type Reason = Extract<NodeError, { kind: "unreachable" }>["reason"];

const REFUSED_CODES = new Set(["ECONNREFUSED", "ConnectionRefused"]);
const RESET_CODES = new Set(["ECONNRESET", "ConnectionClosed", "EPIPE", "ECONNABORTED"]);

/** Sorts a fetch failure into the reasons the master distinguishes. */
export function classifyFetchError(error: unknown, timedOut: boolean): Reason {
  if (timedOut) return "timeout";
  const code = (error as { code?: unknown } | null)?.code;
  const name = (error as { name?: unknown } | null)?.name;
  if (name === "TimeoutError") return "timeout";
  if (typeof code === "string") {
    if (REFUSED_CODES.has(code)) return "refused";
    if (RESET_CODES.has(code)) return "reset";
  }
  return "other";
}

export function httpTransport(baseUrl: string, options: HttpTransportOptions = {}): Transport {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REST_TIMEOUT_MS;
  const doFetch = options.fetch ?? fetch;
  // Fail at construction, not on every call, for a URL that can never work
  const base = new URL(baseUrl).href.replace(/\/+$/, "");

  return async (req: RawRequest): Promise<RawResponse | NodeError> => {
    const endpoint = `${req.method} ${req.path}`;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<NodeError>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve({ kind: "unreachable", reason: "timeout", message: `${endpoint}: no answer within ${timeoutMs} ms` });
      }, timeoutMs);
    });
    const exchange = (async (): Promise<RawResponse | NodeError> => {
      try {
        const res = await doFetch(base + req.path, {
          method: req.method,
          body: req.body,
          headers: req.body === undefined ? undefined : { "content-type": "application/json" },
          signal: controller.signal,
          redirect: "manual",
        });
        // The body read is under the same signal and the same race: a stalled body is a timeout too
        const body = await res.text();
        return { status: res.status, body, contentType: res.headers.get("content-type") ?? "" };
      } catch (error) {
        const reason = classifyFetchError(error, controller.signal.aborted);
        const detail = reason === "timeout" ? `no answer within ${timeoutMs} ms` : ((error as Error)?.message ?? String(error));
        return { kind: "unreachable", reason, message: `${endpoint}: ${detail}` };
      }
    })();
    try {
      return await Promise.race([exchange, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };
}
