// The rolling upgrade as a pure state machine: `step(state, result, now)` takes what the last command
// returned and names the next command. The command (commands/upgrade.ts) runs them against the daemon
// (hold, release, switchover, status), systemd (stop) and the filesystem (relink); tests run them
// against fakes. One runner at a time, standbys first; the signer only after the key moved to an
// upgraded runner. A runner that is not back healthy in time is rolled back to its old link and the
// upgrade stops there.

import type { DaemonView } from "../control/protocol.ts";

export type Cmd =
  | { kind: "hold"; id: number; reason: string }
  | { kind: "stop"; id: number }
  | { kind: "relink"; id: number; target: string }
  | { kind: "release"; id: number }
  /** Ask the daemon's view (waiting for a runner to come back) after `afterMs` */
  | { kind: "status"; afterMs: number }
  | { kind: "switchover"; target: number | null }
  | { kind: "done"; message: string }
  | { kind: "failed"; message: string };

export type CmdResult = { ok: true; view?: DaemonView; signer?: number | null } | { ok: false; error: string };

export interface UpgradeSpec {
  /** Runners to upgrade, in id order */
  runners: number[];
  newTarget: string;
  /** Each runner's current link target (for rolling back) */
  oldTargets: Record<number, string>;
  /** Who signed when the upgrade was planned */
  signer: number | null;
  /** How long a restarted runner has to come back Running, in sync and warm */
  healthyWithinMs: number;
  /** Blocks behind the best height that still count as in sync */
  maxOffset: number;
}

type Phase = "switchover" | "hold" | "stop" | "relink" | "release" | "wait" | "rb-hold" | "rb-stop" | "rb-relink" | "rb-release" | "rb-wait";

export interface UpgradeState {
  spec: UpgradeSpec;
  /** Runners still to do after the current one */
  queue: number[];
  /** sinceMs: when the wait began; only a daemon view from a tick after it counts (the runner was
   *  stopped before it, so an older view may still show the old process) */
  cur: { id: number; phase: Phase; deadlineMs: number | null; sinceMs?: number; why?: string } | null;
  upgraded: number[];
  signer: number | null;
  finished: boolean;
}

/** How often a restarted runner's health is asked while waiting. */
export const HEALTH_POLL_MS = 2_000;

/** The order: standbys first, the signer last (it is done after the key moved to an upgraded runner). */
export function upgradeOrder(runners: readonly number[], signer: number | null): number[] {
  const sorted = [...new Set(runners)].sort((a, b) => a - b);
  return [...sorted.filter((id) => id !== signer), ...sorted.filter((id) => id === signer)];
}

export function initialState(spec: UpgradeSpec): UpgradeState {
  return { spec, queue: upgradeOrder(spec.runners, spec.signer), cur: null, upgraded: [], signer: spec.signer, finished: false };
}

/** The plan in words (--dry-run, and before asking). */
export function planLines(spec: UpgradeSpec): string[] {
  const lines: string[] = [];
  let upgraded: number[] = [];
  for (const id of upgradeOrder(spec.runners, spec.signer)) {
    if (id === spec.signer) {
      lines.push(`switchover: move the key from #${id} to ${upgraded.length > 0 ? `upgraded #${upgraded[0]}` : "the best standby"} at the next safe gap`);
    }
    lines.push(`#${id}: hold, stop, relink ${spec.oldTargets[id] ?? "?"} → ${spec.newTarget}, release (the daemon starts it), wait until Running, in sync and warm (at most ${Math.round(spec.healthyWithinMs / 1000)} s, else roll back to the old link and stop)`);
    upgraded = [...upgraded, id];
  }
  return lines;
}

/** Running, able, not frozen, warm and within max_offset of the best height. */
export function healthyIn(view: DaemonView, id: number, maxOffset: number): { ok: boolean; why: string } {
  const v = view.views.find((x) => x.id === id);
  if (!v) return { ok: false, why: "not seen by the daemon" };
  if (v.frozen) return { ok: false, why: "frozen" };
  if (!v.running) return { ok: false, why: v.nodeState ?? "not answering" };
  if (v.cap !== "keyless" && v.cap !== "holder") return { ok: false, why: v.cap };
  const best = Math.max(...view.views.map((x) => x.height ?? 0));
  if (v.height === null || v.height < best - maxOffset) return { ok: false, why: `at height ${v.height ?? "?"}, best ${best}` };
  if (v.warm === false) return { ok: false, why: "lacks the epoch's schedule (not warm yet)" };
  return { ok: true, why: "Running, in sync and warm" };
}

/**
 * The next command, given the result of the last one (null at the start). Pure.
 * Returns the new state and the command to run; `done`/`failed` end it.
 */
export function step(s: UpgradeState, last: CmdResult | null, now: number): { state: UpgradeState; cmd: Cmd } {
  if (s.finished) return { state: s, cmd: { kind: "failed", message: "the upgrade already ended" } };
  const end = (cmd: Cmd & { kind: "done" | "failed" }) => ({ state: { ...s, cur: null, finished: true }, cmd });
  const at = (cur: UpgradeState["cur"], extra: Partial<UpgradeState> = {}) => ({ ...s, ...extra, cur });
  const c = s.cur;
  if (c === null) return begin(s);
  const id = c.id;
  const failedHere = last !== null && !last.ok ? last.error : null;
  switch (c.phase) {
    case "switchover":
      if (failedHere !== null) return end({ kind: "failed", message: `switchover away from #${id} failed: ${failedHere}; #${id} keeps signing on the old binary` });
      return { state: at({ ...c, phase: "hold" }, { signer: last?.ok ? (last.signer ?? null) : null }), cmd: { kind: "hold", id, reason: `upgrade to ${s.spec.newTarget}` } };
    case "hold":
      if (failedHere !== null) return end({ kind: "failed", message: `hold #${id} failed: ${failedHere}` });
      return { state: at({ ...c, phase: "stop" }), cmd: { kind: "stop", id } };
    case "stop":
      if (failedHere !== null) return { state: at({ ...c, phase: "rb-release", why: `stop failed: ${failedHere}` }), cmd: { kind: "release", id } };
      return { state: at({ ...c, phase: "relink" }), cmd: { kind: "relink", id, target: s.spec.newTarget } };
    case "relink":
      if (failedHere !== null) return { state: at({ ...c, phase: "rb-relink", why: `relink failed: ${failedHere}` }), cmd: { kind: "relink", id, target: s.spec.oldTargets[id]! } };
      return { state: at({ ...c, phase: "release" }), cmd: { kind: "release", id } };
    case "release":
      if (failedHere !== null) return end({ kind: "failed", message: `release #${id} failed: ${failedHere}; it stays held and stopped on the new link` });
      return { state: at({ ...c, phase: "wait", deadlineMs: now + s.spec.healthyWithinMs, sinceMs: now }), cmd: { kind: "status", afterMs: HEALTH_POLL_MS } };
    case "wait": {
      const h = freshHealth(last, id, c.sinceMs ?? 0, s.spec.maxOffset);
      if (h.ok) {
        const next = { ...s, upgraded: [...s.upgraded, id], cur: null, signer: last?.ok && last.view ? last.view.signer : s.signer };
        return begin(next);
      }
      if (c.deadlineMs !== null && now >= c.deadlineMs) {
        const why = `#${id} did not come back healthy within ${Math.round(s.spec.healthyWithinMs / 1000)} s (${h.why})`;
        return { state: at({ ...c, phase: "rb-hold", why }), cmd: { kind: "hold", id, reason: "upgrade rollback" } };
      }
      return { state: at({ ...c, why: h.why }), cmd: { kind: "status", afterMs: HEALTH_POLL_MS } };
    }
    case "rb-hold":
      return { state: at({ ...c, phase: "rb-stop" }), cmd: { kind: "stop", id } };
    case "rb-stop":
      return { state: at({ ...c, phase: "rb-relink" }), cmd: { kind: "relink", id, target: s.spec.oldTargets[id]! } };
    case "rb-relink":
      return { state: at({ ...c, phase: "rb-release" }), cmd: { kind: "release", id } };
    case "rb-release":
      return { state: at({ ...c, phase: "rb-wait", deadlineMs: now + s.spec.healthyWithinMs, sinceMs: now }), cmd: { kind: "status", afterMs: HEALTH_POLL_MS } };
    case "rb-wait": {
      const h = freshHealth(last, id, c.sinceMs ?? 0, s.spec.maxOffset);
      const stopped = `upgrade stopped: ${c.why ?? "?"}; #${id} rolled back to ${s.spec.oldTargets[id]}`;
      if (h.ok) return end({ kind: "failed", message: `${stopped} and healthy again${doneText(s)}` });
      if (c.deadlineMs !== null && now >= c.deadlineMs) return end({ kind: "failed", message: `${stopped}, but it is not healthy either (${h.why})${doneText(s)}` });
      return { state: at(c), cmd: { kind: "status", afterMs: HEALTH_POLL_MS } };
    }
  }
}

function freshHealth(last: CmdResult | null, id: number, sinceMs: number, maxOffset: number): { ok: boolean; why: string } {
  if (last === null) return { ok: false, why: "no answer" };
  if (!last.ok) return { ok: false, why: last.error };
  if (!last.view) return { ok: false, why: "no answer" };
  if (last.view.tickAtMs === null || last.view.tickAtMs < sinceMs) return { ok: false, why: "waiting for the daemon's next tick" };
  return healthyIn(last.view, id, maxOffset);
}

const doneText = (s: UpgradeState) => (s.upgraded.length > 0 ? `; upgraded before it: ${s.upgraded.map((i) => `#${i}`).join(", ")}` : "");

function begin(s: UpgradeState): { state: UpgradeState; cmd: Cmd } {
  const [id, ...rest] = s.queue;
  if (id === undefined) {
    return { state: { ...s, cur: null, finished: true }, cmd: { kind: "done", message: `upgraded ${s.upgraded.map((i) => `#${i}`).join(", ") || "nothing"} to ${s.spec.newTarget}` } };
  }
  if (id === s.signer) {
    return { state: { ...s, queue: rest, cur: { id, phase: "switchover", deadlineMs: null } }, cmd: { kind: "switchover", target: s.upgraded[0] ?? null } };
  }
  return { state: { ...s, queue: rest, cur: { id, phase: "hold", deadlineMs: null } }, cmd: { kind: "hold", id, reason: `upgrade to ${s.spec.newTarget}` } };
}

/** What the driver needs: the daemon, systemd and the links. */
export interface UpgradePorts {
  run(cmd: Exclude<Cmd, { kind: "done" | "failed" }>): Promise<CmdResult>;
  now(): number;
  progress(line: string): void;
}

/** Runs the machine to its end; resolves with the final command (done or failed). */
export async function runUpgrade(spec: UpgradeSpec, ports: UpgradePorts): Promise<Cmd & { kind: "done" | "failed" }> {
  let state = initialState(spec);
  let last: CmdResult | null = null;
  let lastWhy: string | undefined;
  for (;;) {
    const r = step(state, last, ports.now());
    state = r.state;
    const cmd = r.cmd;
    if (cmd.kind === "done" || cmd.kind === "failed") return cmd;
    if (cmd.kind !== "status") ports.progress(describe(cmd));
    else if (state.cur?.why && state.cur.why !== lastWhy) ports.progress(`#${state.cur.id}: waiting (${state.cur.why})`);
    lastWhy = state.cur?.why;
    last = await ports.run(cmd);
    if (!last.ok) ports.progress(`  → failed: ${last.error}`);
  }
}

export function describe(cmd: Cmd): string {
  switch (cmd.kind) {
    case "hold":
      return `#${cmd.id}: hold (${cmd.reason})`;
    case "stop":
      return `#${cmd.id}: stop`;
    case "relink":
      return `#${cmd.id}: link → ${cmd.target}`;
    case "release":
      return `#${cmd.id}: release (the daemon starts it)`;
    case "status":
      return "waiting";
    case "switchover":
      return `switchover to ${cmd.target === null ? "the best standby" : `#${cmd.target}`} at the next safe gap`;
    case "done":
    case "failed":
      return cmd.message;
  }
}
