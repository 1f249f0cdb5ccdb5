// `history`'s arguments and output. Pure: parsing --since and --kind, the table and the JSON lines.

import { EXIT_USAGE, UserError } from "../errors.ts";
import { renderTable } from "../ui/table.ts";
import { HISTORY_KINDS, type HistoryKind, type HistoryRecord } from "./events.ts";

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "15m", "1h", "2d" before now, or an ISO 8601 date/time; null when absent. */
export function parseSince(text: string | undefined, nowMs: number): number | null {
  if (text === undefined) return null;
  const rel = /^(\d+(?:\.\d+)?)\s*([smhd])$/.exec(text.trim());
  if (rel) return nowMs - Number(rel[1]) * UNIT_MS[rel[2]!]!;
  // Only ISO-looking text: Date.parse would take "yesterday"-like strings on some engines.
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim())) {
    const ms = Date.parse(text.trim());
    if (Number.isFinite(ms)) return ms;
  }
  throw new UserError(`--since: expected a duration before now (90s, 15m, 1h, 2d) or an ISO date/time (2026-11-29T20:00Z), found ${JSON.stringify(text)}`, EXIT_USAGE);
}

/** "--kind failover,slot_missed" (repeatable); "slot" and "fence" also name their family. */
export function parseKinds(values: readonly string[]): HistoryKind[] | null {
  const words = values.flatMap((v) => v.split(",")).map((w) => w.trim()).filter((w) => w !== "");
  if (words.length === 0) return null;
  const out = new Set<HistoryKind>();
  for (const w of words) {
    const family = HISTORY_KINDS.filter((k) => k === w || k.startsWith(`${w}_`));
    if (family.length === 0) throw new UserError(`--kind: unknown kind ${JSON.stringify(w)}; kinds: ${HISTORY_KINDS.join(", ")}`, EXIT_USAGE);
    for (const k of family) out.add(k);
  }
  return [...out];
}

/** Local time with its offset, to the second, e.g. "2026-11-29 21:15:03 +01:00" */
export function localTime(ms: number, offsetMin = -new Date(ms).getTimezoneOffset()): string {
  const d = new Date(ms + offsetMin * 60_000);
  const sign = offsetMin < 0 ? "-" : "+";
  const abs = Math.abs(offsetMin);
  return `${d.toISOString().slice(0, 19).replace("T", " ")} ${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

export function renderHistory(records: readonly HistoryRecord[], offsetMin?: number): string {
  const rows = [["TIME", "KIND", "RUNNER", "WHAT"], ...records.map((r) => [localTime(r.atMs, offsetMin), r.kind, r.runner === undefined ? "-" : `#${r.runner}`, r.text && r.text !== r.title ? `${r.title} — ${r.text}` : r.title])];
  return renderTable(rows);
}

/** One JSON object per line (the file's own format), for jq. */
export function historyJsonLines(records: readonly HistoryRecord[]): string {
  return records.map((r) => `${JSON.stringify(r)}\n`).join("");
}
