// PoolTool: the network's majority max height (a second opinion on whether our runners are stuck)
// and tip sharing. Both are best effort: every call has a deadline and failures throw a short
// Error that the master catches and counts; PoolTool being down never blocks the loop.

import { z } from "zod";
import { formatBytes, readCapped } from "../node/http.ts";
import type { PoolToolConfig } from "../config/types.ts";
import type { PoolToolApi } from "../master/ports.ts";

/** PoolTool is on the internet, not loopback: more generous than the REST deadline, still bounded */
export const DEFAULT_POOLTOOL_TIMEOUT_MS = 5_000;
export const POOLTOOL_PLATFORM = "jorm-master";
const MAX_BODY_IN_MESSAGE = 80;
/** Both answers are under 1 KiB; a public endpoint must not be able to fill the daemon's memory */
export const MAX_POOLTOOL_BODY_BYTES = 1024 * 1024;

export interface PoolToolOptions {
  timeoutMs?: number;
  /** Injected for tests */
  fetch?: typeof fetch;
}

/** stats.json: the old Python tool read int(json["majoritymax"]); other keys are ignored. */
export const statsSchema = z.object({
  majoritymax: z.union(
    [
      z.number().int().nonnegative(),
      z
        .string()
        .regex(/^\s*\d+\s*$/)
        .transform((s) => Number(s.trim())),
    ],
    { error: "expected a non-negative integer or a decimal string" },
  ),
});

export class PoolToolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PoolToolError";
  }
}

/** The query the old tool sent to sharemytip, in its order. */
export function tipQuery(cfg: PoolToolConfig, height: number): URLSearchParams {
  return new URLSearchParams({
    poolid: cfg.poolId,
    userid: cfg.userId,
    genesispref: cfg.genesis,
    mytip: String(height),
    platform: POOLTOOL_PLATFORM,
  });
}

const snippet = (body: string) => {
  const text = body.trim().replace(/\s+/g, " ");
  return text.length > MAX_BODY_IN_MESSAGE ? `${text.slice(0, MAX_BODY_IN_MESSAGE)}…` : text;
};

export function createPoolTool(cfg: PoolToolConfig, options: PoolToolOptions = {}): PoolToolApi {
  const timeoutMs = options.timeoutMs ?? DEFAULT_POOLTOOL_TIMEOUT_MS;
  const doFetch = options.fetch ?? fetch;

  /** GET with a deadline over headers and body; resolves with the body of a 2xx answer. */
  async function get(what: string, url: string): Promise<string> {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new PoolToolError(`PoolTool ${what}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    const exchange = (async () => {
      let res: Response;
      let body: string | null;
      try {
        res = await doFetch(url, { method: "GET", signal: controller.signal, headers: { accept: "application/json" } });
        body = await readCapped(res, MAX_POOLTOOL_BODY_BYTES);
      } catch (error) {
        if (controller.signal.aborted) throw new PoolToolError(`PoolTool ${what}: no answer within ${timeoutMs} ms`);
        const code = (error as { code?: string }).code;
        throw new PoolToolError(`PoolTool ${what}: ${code ?? (error as Error)?.message ?? String(error)}`);
      }
      if (body === null) {
        controller.abort();
        throw new PoolToolError(`PoolTool ${what}: answer body larger than ${formatBytes(MAX_POOLTOOL_BODY_BYTES)}, refused unread`);
      }
      if (res.status < 200 || res.status >= 300) {
        const text = snippet(body);
        throw new PoolToolError(`PoolTool ${what}: HTTP ${res.status}${text ? ` ${text}` : ""}`);
      }
      return body;
    })();
    // The losing side must not surface as an unhandled rejection
    exchange.catch(() => {});
    deadline.catch(() => {});
    try {
      return await Promise.race([exchange, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async majorityMax() {
      const body = await get("stats", cfg.endpStats);
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        throw new PoolToolError(`PoolTool stats: not JSON: ${JSON.stringify(snippet(body))}`);
      }
      const parsed = statsSchema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const field = issue?.path.join(".") || "$";
        throw new PoolToolError(`PoolTool stats: ${field}: ${issue?.message ?? "invalid"}`);
      }
      return parsed.data.majoritymax;
    },
    async shareTip(height: number) {
      if (!Number.isSafeInteger(height) || height < 0) throw new PoolToolError(`PoolTool sharemytip: invalid height ${height}`);
      const url = new URL(cfg.endpTip);
      for (const [key, value] of tipQuery(cfg, height)) url.searchParams.set(key, value);
      await get("sharemytip", url.href);
    },
  };
}
