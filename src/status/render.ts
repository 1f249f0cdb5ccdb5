// The status model as text for a terminal (a header and a table) or as JSON for scripts. Pure.

import { formatDuration, renderTable } from "../ui/table.ts";
import type { StatusModel, StatusRow } from "./model.ts";

const dash = "-";
const num = (n: number | null) => (n === null ? dash : String(n));

function unitCell(r: StatusRow): string {
  if (r.unitState === null) return dash;
  const base = r.unitSubState ? `${r.unitState}/${r.unitSubState}` : r.unitState;
  return r.frozen ? `${base} frozen` : base;
}

function nodeCell(r: StatusRow): string {
  if (r.frozen && r.nodeState === null) return "frozen";
  if (r.nodeState === "Booting" && r.restError) return r.restError;
  return r.nodeState ?? r.restError ?? dash;
}

function keyCell(r: StatusRow, signer: number | null): string {
  // A recognised boundary co-holder, whatever its /leaders said (it may be locked by the computation).
  if (r.handout) return "hand-out";
  if (r.keyHeld === null) return "?";
  if (!r.keyHeld) return "no";
  return r.id === signer ? "SIGNER" : "yes";
}

export function renderStatus(m: StatusModel): string {
  const head: string[] = [];
  if (m.epoch !== null) {
    head.push(`epoch ${m.epoch} · slot ${m.slot}/${m.slotsPerEpoch} · next epoch in ${formatDuration(m.toBoundaryMs)}`);
  } else {
    head.push("epoch unknown (no runner is Running)");
  }
  const tip = [`best height ${num(m.bestHeight)}`];
  if (m.pooltool) tip.push(m.pooltool.majorityMax !== null ? `PoolTool majority max ${m.pooltool.majorityMax}` : `PoolTool: ${m.pooltool.error ?? "unknown"}`);
  head.push(tip.join(" · "));
  if (m.systemdError) head.push(`systemd: ${m.systemdError}`);
  if (m.handout) {
    const who = m.handout.coHolders.map((id) => `#${id}`).join(", ");
    head.push(
      `boundary hand-out: ${who} hold${m.handout.coHolders.length === 1 ? "s" : ""} the key to compute epoch ${m.handout.epoch}'s schedule; ` +
        `dead-man switch${m.handout.coHolders.length === 1 ? "" : "es"} freeze ${m.handout.coHolders.length === 1 ? "it" : "them"} in ${formatDuration(Math.max(0, m.handout.switchesFireByMs - m.atMs))} at the latest`,
    );
  }
  head.push(...m.notes);
  const rows = [
    ["RUNNER", "UNIT", "NODE", "HEIGHT", "LAG", "KEY", "WARM", "EVENTS LEFT", "NEXT EVENT", "UPTIME", "RESTARTS"],
    ...m.rows.map((r) => [
      r.leftover ? `#${r.id} (extra)` : `#${r.id}`,
      unitCell(r),
      nodeCell(r),
      num(r.height),
      num(r.lag),
      keyCell(r, m.signer),
      r.warm === null ? "?" : r.warm ? "yes" : "no",
      num(r.eventsLeft),
      r.nextEventInMs === null ? dash : `in ${formatDuration(r.nextEventInMs)}`,
      formatDuration(r.uptimeMs),
      num(r.restarts),
    ]),
  ];
  const verdict = `${m.state}: ${m.verdict}`;
  return [...head, "", renderTable(rows), "", verdict].join("\n");
}

/** The model as JSON (times as ms since epoch and ms durations), one object. */
export function statusJson(m: StatusModel): string {
  return JSON.stringify(m);
}
