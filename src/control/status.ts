// What `status` adds from the daemon: one header line and a `daemon` object in --json. Pure. The
// verdict and exit code stay status's own (read from the runners); this only shows what the daemon
// alone knows, e.g. that a boundary hand-out is in progress.

import type { AskResult } from "./client.ts";
import { daemonHeadline, type DaemonView } from "./protocol.ts";

export type DaemonStatusJson = ({ running: true } & DaemonView) | { running: false; reason: string } | { running: null; error: string };

export function daemonStatus(d: AskResult<DaemonView>, nowMs: number): { line: string; json: DaemonStatusJson } {
  switch (d.kind) {
    case "answer":
      return { line: daemonHeadline(d.result, nowMs), json: { running: true, ...d.result } };
    case "no-daemon":
      return { line: "daemon: not running (this is what the runners say on their own)", json: { running: false, reason: d.reason } };
    case "refused":
    case "failed":
      return { line: `daemon: cannot ask it: ${d.error}`, json: { running: null, error: d.error } };
  }
}
