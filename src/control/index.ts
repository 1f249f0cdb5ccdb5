// The daemon's one handle on the control channel: start it, feed it each tick, close it. A socket
// that cannot be created costs the control channel (logged), never supervision.

import type { TickReport } from "../master/loop.ts";
import type { SocketGroupOps } from "./group.ts";
import { daemonView, type ControlAnswer, type ControlRequest, type MutatingRequest, type ReportRequest } from "./protocol.ts";
import { ControlInbox, startControlServer, type ControlServer } from "./server.ts";

/** A mutating request waits at most this long for the loop (a loop_period plus a slow tick). */
export const INBOX_WAIT_MS = 30_000;

export interface DaemonControl {
  /** null: the socket could not be created */
  readonly path: string | null;
  /** After every tick: remember the report, apply the requests waiting in the inbox. */
  onTick(r: TickReport): Promise<void>;
  close(): Promise<void>;
}

export interface ControlOptions {
  path: string;
  version: string;
  log: { info(msg: string): void; warn(msg: string): void; error(msg: string): void; debug(msg: string): void };
  pid?: number;
  now?: () => number;
  /** Applies hold/release/switchover inside the loop; absent: they are refused */
  operator?: {
    apply(req: MutatingRequest): ControlAnswer;
    waitSwitchover(): Promise<ControlAnswer>;
  };
  /** Records a command's report (event log, alerts); absent: reports are refused */
  onReport?: (r: ReportRequest) => void;
  /** System scope: the runners' gid (resolver, null when unknown) the socket must carry; absent: user scope */
  runnersGid?: () => number | null;
  groupOps?: SocketGroupOps;
}

/** A switchover waits for a gap between windows and a verifying tick: the CLI waits this long. */
export const SWITCHOVER_WAIT_MS = 11 * 60_000;

export async function startControl(o: ControlOptions): Promise<DaemonControl> {
  const now = o.now ?? Date.now;
  const meta = { pid: o.pid ?? process.pid, version: o.version, startedMs: now() };
  let last: TickReport | null = null;
  let ticks = 0;
  // hold/release/switchover are enqueued here and applied by the loop between ticks (ControlInbox).
  const inbox = new ControlInbox<MutatingRequest, ControlAnswer>();
  const handle = async (req: ControlRequest): Promise<ControlAnswer> => {
    switch (req.cmd) {
      case "ping":
        return { ok: true, result: meta };
      case "status":
        return { ok: true, result: daemonView(last, { ...meta, ticks }) };
      case "hold":
      case "release":
        return inbox.enqueue(req, INBOX_WAIT_MS);
      case "report":
        if (!o.onReport) return { ok: false, error: "report: not recorded by this daemon" };
        o.onReport(req);
        return { ok: true, result: null };
      case "switchover": {
        const accepted = await inbox.enqueue(req, INBOX_WAIT_MS);
        if (!accepted.ok || req.check) return accepted;
        // Accepted inside the loop: the answer comes once a tick verified the new signer.
        return o.operator ? o.operator.waitSwitchover() : accepted;
      }
    }
  };
  let server: ControlServer | null = null;
  try {
    const group = o.runnersGid ? { gid: o.runnersGid(), ops: o.groupOps } : undefined;
    server = await startControlServer(o.path, handle, o.log, { group });
    o.log.info(`control socket ${o.path}`);
  } catch (e) {
    o.log.error(`control socket ${o.path}: ${e instanceof Error ? e.message : String(e)}; commands cannot reach this daemon (they read the runners directly)`);
  }
  return {
    path: server ? o.path : null,
    async onTick(r) {
      last = r;
      ticks++;
      await inbox.drain((req) => (o.operator ? o.operator.apply(req) : { ok: false, error: `${req.cmd}: not applied by this daemon` }));
    },
    async close() {
      inbox.close("the daemon is stopping");
      await server?.close();
    },
  };
}
