// The HTTP edge of the NodeApi. Every call has a hard deadline covering connect, headers AND body:
// a node that accepts and never answers, or sends headers and stalls the body (a SIGSTOPped
// process does both), costs the master at most `timeoutMs`, never a stalled loop.

import type { NodeError, RawRequest, RawResponse, Transport } from "./types.ts";

/** Well under one 2 s ITN slot, so a dead runner never costs the master a slot. */
export const DEFAULT_REST_TIMEOUT_MS = 500;
/** Body cap of a request that names none: every answer but the leader logs is under 1 KiB */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

export interface HttpTransportOptions {
  timeoutMs?: number;
  /** Injected for tests; defaults to the global fetch (called with keepalive off, see below) */
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
    const maxBodyBytes = req.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
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
          // Every call on a new connection: a kept-alive one outlives whoever listened when it was
          // opened, so a process that bound the runner's port while the runner restarted would keep
          // answering (`/leaders` = [] for a key holder) and receive the key after the port check
          // had proven the runner (reproduced with Bun 1.4.5). On loopback a connect costs ~0.1 ms.
          keepalive: false,
        });
        // The body read is under the same signal and the same race: a stalled body is a timeout too.
        // It is read chunk by chunk against a cap, so an endless or huge body costs at most the cap
        // in memory (and in parse time afterwards), never the whole deadline's worth of bytes.
        const body = await readCapped(res, maxBodyBytes);
        if (body === null) {
          controller.abort();
          const message = `${endpoint}: answer body larger than ${formatBytes(maxBodyBytes)}, refused unread`;
          return { kind: "malformed", endpoint, field: "$", message };
        }
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

/** The body as text, or null once it exceeds `maxBytes` (then the rest is never read). */
export async function readCapped(res: Response, maxBytes: number): Promise<string | null> {
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > maxBytes) {
    void res.body?.cancel().catch(() => {});
    return null;
  }
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      void reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(all);
}

export function formatBytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}
