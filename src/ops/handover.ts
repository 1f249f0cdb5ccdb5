// switchover --host: while the daemon hands signing to another host, the command shows its progress
// by reading the daemon's status (the phase of the switchover under way) once a second, on stderr.

import { askDaemon } from "../control/client.ts";
import { daemonViewSchema, type DaemonView } from "../control/protocol.ts";

/** How often the command reads the daemon's status while a hand-over is under way. */
export const PROGRESS_POLL_MS = 1_000;

/** One line per phase of a cross-host switchover, as the daemon's status shows it. Pure. */
export function phaseLine(so: NonNullable<DaemonView["switchover"]>): string | null {
  switch (so.phase) {
    case "waiting":
      return `waiting for a safe gap (${so.why ?? "no window of this host's signer may open during the hand-over"})`;
    case "fencing":
      return "fencing this host's runners (each proven key-less before the key is given up)";
    case "committing":
      return "runners proven key-less; giving the signer key up in one etcd transaction";
    case "handed":
      return `signer key handed over; waiting for ${so.host ?? "the target"} to take it up`;
    default:
      return null;
  }
}

/** Polls the daemon's status until `signal` aborts; writes each new phase line once. */
export async function followHandover(socketPath: string, signal: AbortSignal, write: (line: string) => void, sleep = (ms: number) => Bun.sleep(ms)): Promise<void> {
  let last: string | null = null;
  while (!signal.aborted) {
    const a = await askDaemon(socketPath, { cmd: "status" }, daemonViewSchema);
    const so = a.kind === "answer" ? a.result.switchover : null;
    const line = so ? phaseLine(so) : null;
    if (line !== null && line !== last) write(line);
    last = line ?? last;
    if (signal.aborted) break;
    await sleep(PROGRESS_POLL_MS);
  }
}
