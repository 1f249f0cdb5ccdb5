// The CLI's end of the control channel. Every outcome is a value, never a throw: "no daemon" (no
// socket, or a stale one nobody listens on) lets a read-only command fall back to reading the
// runners itself; a daemon that does not answer within the deadline is reported as such.

import { createConnection } from "node:net";
import type { z } from "zod";
import { answerSchema, MAX_ANSWER_BYTES, type ControlRequest } from "./protocol.ts";

/** How long the CLI waits for the daemon's answer by default: a read-only answer comes from memory. */
export const DEFAULT_ASK_TIMEOUT_MS = 2_000;

export type AskResult<T> =
  | { kind: "answer"; result: T }
  /** No daemon listens: the socket file is missing or stale */
  | { kind: "no-daemon"; reason: string }
  /** The daemon answered with an error (e.g. a malformed request) */
  | { kind: "refused"; error: string }
  /** The daemon could not be asked: timeout, permission, a garbled answer */
  | { kind: "failed"; error: string };

export async function askDaemon<T>(path: string, req: ControlRequest, resultSchema: z.ZodType<T>, opts: { timeoutMs?: number } = {}): Promise<AskResult<T>> {
  try {
    return await ask(path, req, resultSchema, opts.timeoutMs ?? DEFAULT_ASK_TIMEOUT_MS);
  } catch (e) {
    // e.g. a path too long for a socket address: never a reason for status to fail
    return { kind: "failed", error: `${path}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

async function ask<T>(path: string, req: ControlRequest, resultSchema: z.ZodType<T>, timeoutMs: number): Promise<AskResult<T>> {
  const raw = await new Promise<{ line: string } | { error: NodeJS.ErrnoException } | { timeout: true }>((resolve) => {
    let buf = "";
    let settled = false;
    const s = createConnection({ path });
    const done = (v: { line: string } | { error: NodeJS.ErrnoException } | { timeout: true }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done({ timeout: true }), timeoutMs);
    s.setEncoding("utf8");
    s.once("connect", () => s.write(`${JSON.stringify(req)}\n`));
    s.on("data", (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl >= 0) done({ line: buf.slice(0, nl) });
      else if (buf.length > MAX_ANSWER_BYTES) done({ line: "" });
    });
    s.once("end", () => done({ line: buf }));
    s.once("error", (e: NodeJS.ErrnoException) => done({ error: e }));
  });
  if ("timeout" in raw) return { kind: "failed", error: `the daemon did not answer on ${path} within ${timeoutMs / 1000} s` };
  if ("error" in raw) {
    const code = raw.error.code;
    if (code === "ENOENT" || code === "ECONNREFUSED") return { kind: "no-daemon", reason: `no daemon answers on ${path}` };
    if (code === "EACCES" || code === "EPERM") return { kind: "failed", error: `${path}: permission denied (only root and the runners' group may use it: join that group, or use sudo)` };
    return { kind: "failed", error: `${path}: ${raw.error.message}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.line);
  } catch {
    return { kind: "failed", error: `the daemon's answer is not JSON (${raw.line.length} bytes)` };
  }
  const a = answerSchema.safeParse(json);
  if (!a.success) return { kind: "failed", error: "the daemon's answer has an unknown shape (another version?)" };
  if (!a.data.ok) return { kind: "refused", error: a.data.error };
  const r = resultSchema.safeParse(a.data.result);
  if (!r.success) return { kind: "failed", error: `the daemon's ${req.cmd} answer has an unknown shape (another version?)` };
  return { kind: "answer", result: r.data };
}
