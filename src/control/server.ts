// The daemon's end of the control channel: a Unix socket (never TCP), mode 0660, one JSON request
// per connection and one JSON answer. Read-only requests are answered at once; a mutating request is
// put in the inbox, which the daemon's loop drains after a tick, so a change is applied inside the
// loop with the same fences and window rules as every other decision.

import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { restrictSocketGroup, type SocketGroupOps, type SocketGroupOutcome } from "./group.ts";
import { answerSchema, MAX_REQUEST_BYTES, requestSchema, type ControlAnswer, type ControlRequest } from "./protocol.ts";

/** The socket's mode: root and the runners' group (the directory is the unit's RuntimeDirectory). */
export const CONTROL_SOCKET_MODE = 0o660;
/** A client must send its request within this long, or the connection is dropped. */
export const REQUEST_READ_TIMEOUT_MS = 5_000;
/** Probing an existing socket file: a live daemon answers a connect at once. */
const PROBE_TIMEOUT_MS = 1_000;

export type ControlHandler = (req: ControlRequest) => ControlAnswer | Promise<ControlAnswer>;

export interface ControlServerLog {
  warn(msg: string): void;
  debug(msg: string): void;
}

export interface ControlServer {
  path: string;
  close(): Promise<void>;
}

/** Whether something accepts connections on the socket at `path` (a live daemon). */
export function socketAnswers(path: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    const done = (v: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    // A connect that neither succeeds nor fails: something holds the path; do not take it over.
    const timer = setTimeout(() => done(true), timeoutMs);
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

/**
 * Listens on `path`. A socket file left by a dead daemon (kill -9 leaves it) is replaced; one a
 * live process answers on is not (throws). Anything else at the path (a regular file) is an error.
 */
export interface ControlServerOptions {
  /**
   * System scope: the runners' gid (null: unknown). The socket must end up in that group (or root's,
   * narrower) before it answers anything; with any other group it is removed and this throws.
   * undefined (user scope): the user's own group, left as it is.
   */
  group?: { gid: number | null; ops?: SocketGroupOps };
}

export async function startControlServer(path: string, handle: ControlHandler, log: ControlServerLog, opts: ControlServerOptions = {}): Promise<ControlServer> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let existing: ReturnType<typeof lstatSync> | null = null;
  try {
    existing = lstatSync(path);
  } catch {
    existing = null;
  }
  if (existing) {
    if (!existing.isSocket()) throw new Error(`${path} exists and is not a socket; remove it`);
    if (await socketAnswers(path)) throw new Error(`another process answers on ${path} (a second daemon?)`);
    unlinkSync(path); // stale: its daemon is gone
    log.debug(`control: replaced the stale socket ${path}`);
  }
  // allowHalfOpen: a client that half-closes after its request still gets the answer.
  // Connections are refused (closed unanswered) until the socket's group is checked below.
  let open = false;
  const server: Server = createServer({ allowHalfOpen: true }, (conn) => (open ? serveConnection(conn, handle, log) : conn.destroy()));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  chmodSync(path, CONTROL_SOCKET_MODE);
  const ino = lstatSync(path).ino;
  if (opts.group) {
    let outcome: SocketGroupOutcome;
    try {
      outcome = restrictSocketGroup(path, opts.group.gid, opts.group.ops);
    } catch (e) {
      outcome = { kind: "refuse", why: e instanceof Error ? e.message : String(e) };
    }
    if (outcome.kind === "refuse") {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      try {
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {
        // already gone
      }
      throw new Error(`removed: ${outcome.why}`);
    }
    if (outcome.kind === "root-only") log.warn(`control: only root can use ${path}: ${outcome.why}`);
    else if (outcome.changed) log.debug(`control: ${path} handed to gid ${outcome.gid}`);
  }
  open = true;
  server.on("error", (e) => log.warn(`control: ${e.message}`));
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Only our own file: a newer daemon may have replaced it.
        try {
          if (lstatSync(path).ino === ino) unlinkSync(path);
        } catch {
          // already gone
        }
      }),
  };
}

const errorAnswer = (error: string): ControlAnswer => ({ ok: false, error });

function serveConnection(conn: Socket, handle: ControlHandler, log: ControlServerLog): void {
  let buf = "";
  let answered = false;
  conn.setEncoding("utf8");
  conn.setTimeout(REQUEST_READ_TIMEOUT_MS, () => conn.destroy());
  conn.on("error", (e) => log.debug(`control: connection: ${e.message}`));
  const reply = (a: ControlAnswer) => {
    if (conn.destroyed) return;
    // Validated on the way out too: a handler bug is an error answer, not a malformed line.
    const checked = answerSchema.safeParse(a);
    conn.end(`${JSON.stringify(checked.success ? a : errorAnswer("internal error: the daemon built an invalid answer"))}\n`);
  };
  const answer = async (line: string) => {
    if (answered) return;
    answered = true;
    conn.setTimeout(0);
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      return reply(errorAnswer("malformed request: not JSON"));
    }
    const req = requestSchema.safeParse(json);
    if (!req.success) {
      const cmd = typeof json === "object" && json !== null && "cmd" in json ? JSON.stringify((json as { cmd: unknown }).cmd) : "none";
      return reply(errorAnswer(`malformed request (cmd ${cmd}): ${req.error.issues.map((i) => `${i.path.join(".") || "request"}: ${i.message}`).join("; ")}`));
    }
    try {
      reply(await handle(req.data));
    } catch (e) {
      reply(errorAnswer(e instanceof Error ? e.message : String(e)));
    }
  };
  conn.on("data", (chunk: string) => {
    if (answered) return;
    buf += chunk;
    const nl = buf.indexOf("\n");
    if (nl >= 0) return void answer(buf.slice(0, nl));
    if (buf.length > MAX_REQUEST_BYTES) {
      answered = true;
      reply(errorAnswer(`request longer than ${MAX_REQUEST_BYTES} bytes`));
    }
  });
  // A client that half-closes without a newline has sent its request.
  conn.on("end", () => {
    if (!answered) void answer(buf);
  });
}

/** A request waiting for the loop, answered through its promise. */
interface Queued<Req, Res> {
  req: Req;
  resolve(r: Res): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout> | null;
}

/**
 * Mutating requests wait here until the daemon's loop takes them (after a tick), so they are applied
 * between two observations like any decision, never concurrently with a tick's actions. A request the
 * loop does not take within `waitMs` (the loop is stuck) fails instead of hanging the client.
 */
export class ControlInbox<Req, Res> {
  private queue: Queued<Req, Res>[] = [];
  private closed: string | null = null;

  get size(): number {
    return this.queue.length;
  }

  enqueue(req: Req, waitMs: number): Promise<Res> {
    if (this.closed !== null) return Promise.reject(new Error(this.closed));
    return new Promise<Res>((resolve, reject) => {
      const item: Queued<Req, Res> = { req, resolve, reject, timer: null };
      item.timer = setTimeout(() => {
        this.queue = this.queue.filter((q) => q !== item);
        reject(new Error(`the daemon's loop did not take the request within ${waitMs / 1000} s`));
      }, waitMs);
      this.queue.push(item);
    });
  }

  /** Called by the loop between ticks: applies every waiting request in arrival order. */
  async drain(apply: (req: Req) => Res | Promise<Res>): Promise<number> {
    const taken = this.queue;
    this.queue = [];
    for (const q of taken) {
      if (q.timer) clearTimeout(q.timer);
      try {
        q.resolve(await apply(q.req));
      } catch (e) {
        q.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    return taken.length;
  }

  /** The daemon stops: every waiting request fails with `reason`, later ones at once. */
  close(reason: string): void {
    this.closed = reason;
    for (const q of this.queue) {
      if (q.timer) clearTimeout(q.timer);
      q.reject(new Error(reason));
    }
    this.queue = [];
  }
}
