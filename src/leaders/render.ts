// The leaders model as a table for a terminal or as JSON. Pure.

import { localTime } from "../history/render.ts";
import { formatDuration, renderTable } from "../ui/table.ts";
import type { LeaderSlotRow, LeadersModel } from "./model.ts";

/** Hex digits of a block hash the table shows */
const BLOCK_HASH_SHOWN = 16;

const utc = (ms: number) => `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")}Z`;

function statusCell(r: LeaderSlotRow, nowMs: number): string {
  switch (r.status) {
    case "pending":
      return r.startMs > nowMs ? `pending (in ${formatDuration(r.startMs - nowMs)})` : "pending (settling)";
    case "produced":
      return "produced";
    case "rejected":
      return "rejected";
    case "missed":
      return "missed";
    case "unknown":
      return "unknown (no readable log shows it)";
  }
}

export function renderLeaders(m: LeadersModel, offsetMin?: number): string {
  const c = m.counts;
  const head = [
    `epoch ${m.epoch} · ${m.rows.length} leader slot${m.rows.length === 1 ? "" : "s"} known · ${c.produced} produced, ${c.pending} pending, ${c.rejected} rejected, ${c.missed} missed${c.unknown > 0 ? `, ${c.unknown} unknown` : ""}`,
  ];
  for (const u of m.unreadable) head.push(`#${u.id}: leader log unreadable (${u.error}); slots only it lists are not shown`);
  if (!m.daemon) head.push("daemon: not asked or not running (slots from the runners' logs and the event log only)");
  if (m.rows.length === 0) return [...head, "", "no leader slot known for this epoch (no runner lists one: none computed its schedule, or none holds the key)"].join("\n");
  const rows = [
    ["SLOT", "TIME (UTC)", "LOCAL", "IN SCHEDULE OF", "STATUS", "BY", "BLOCK / REASON"],
    ...m.rows.map((r) => [
      `${r.epoch}.${r.slot}`,
      utc(r.startMs),
      localTime(r.startMs, offsetMin).slice(11),
      r.inScheduleOf.length > 0 ? r.inScheduleOf.map((id) => `#${id}`).join(",") : r.source === "history" ? "(event log)" : "(daemon)",
      statusCell(r, m.nowMs),
      r.producedBy === null ? "-" : `#${r.producedBy}`,
      // The full hash is in --json; 16 hex digits find it in an explorer.
      r.block ? (r.block.length > BLOCK_HASH_SHOWN ? `${r.block.slice(0, BLOCK_HASH_SHOWN)}…` : r.block) : (r.reason ?? "-"),
    ]),
  ];
  return [...head, "", renderTable(rows)].join("\n");
}

export function leadersJson(m: LeadersModel): string {
  return JSON.stringify(m);
}
