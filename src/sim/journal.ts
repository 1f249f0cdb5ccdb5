// What happened, in order: the ground truth the audit turns into figures. Every produced block,
// every change of a runner's keys, every process start/exit/freeze/thaw and schedule computation.
// In process mode several node processes append to one JSON-lines file.

import { appendFileSync, existsSync, readFileSync } from "node:fs";

export type ExitReason = "crash" | "sigkill" | "sigterm" | "shutdown";

interface Base {
  /** Virtual or wall time, ms since epoch */
  t: number;
}
interface Proc extends Base {
  runner: number;
  /** Process incarnation of this runner: 1, 2, … (a new one per start) */
  inc: number;
}

export type JournalEntry =
  /** beatMs: the process journals "alive" at least this often (process mode), so a SIGKILLed
   *  process, which cannot journal its exit, counts as gone one beat after its last entry */
  | (Proc & { kind: "proc_start"; pid: number; keys: number[]; beatMs?: number })
  | (Proc & { kind: "alive" })
  | (Proc & { kind: "running" })
  | (Proc & { kind: "proc_exit"; reason: ExitReason })
  | (Proc & { kind: "freeze" })
  | (Proc & { kind: "thaw" })
  | (Proc & { kind: "keys"; keys: number[] })
  | (Proc & { kind: "schedule_start"; epoch: number; slots: number[]; keys: number[]; trigger: "boundary" | "boot" })
  | (Proc & { kind: "schedule_done"; epoch: number; slots: number[]; keys: number[] })
  | (Proc & { kind: "block"; epoch: number; slot: number; leaderId: number; chainLength: number; hash: string })
  | (Proc & { kind: "reject"; epoch: number; slot: number; leaderId: number; reason: string })
  | (Proc & { kind: "fault"; fault: string })
  | (Base & { kind: "tip_shared"; height: number });

export type JournalKind = JournalEntry["kind"];

export interface Journal {
  append(entry: JournalEntry): void;
  entries(): readonly JournalEntry[];
}

export class MemoryJournal implements Journal {
  private readonly list: JournalEntry[] = [];
  append(entry: JournalEntry): void {
    this.list.push(entry);
  }
  entries(): readonly JournalEntry[] {
    return this.list;
  }
  ofKind<K extends JournalKind>(kind: K): Extract<JournalEntry, { kind: K }>[] {
    return this.list.filter((e): e is Extract<JournalEntry, { kind: K }> => e.kind === kind);
  }
}

/** JSON lines, one appendFileSync (O_APPEND, one write) per entry, so several processes can share
 *  the file without interleaving inside a line. Also kept in memory for this process's reads. */
export class FileJournal extends MemoryJournal {
  constructor(readonly path: string) {
    super();
  }
  override append(entry: JournalEntry): void {
    super.append(entry);
    appendFileSync(this.path, `${JSON.stringify(entry)}\n`, { flag: "a" });
  }
}

/** Every entry of a journal file, sorted by time (processes append concurrently). Torn or foreign
 *  lines are skipped: the audit reads what is provable. */
export function readJournalFile(path: string): JournalEntry[] {
  if (!existsSync(path)) return [];
  const out: JournalEntry[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as JournalEntry;
      if (typeof e?.t === "number" && typeof e.kind === "string") out.push(e);
    } catch {
      // a torn last line of a killed process
    }
  }
  return sortByTime(out);
}

/** Stable sort by time. */
export function sortByTime(entries: readonly JournalEntry[]): JournalEntry[] {
  return entries
    .map((e, i) => [e, i] as const)
    .sort((a, b) => a[0].t - b[0].t || a[1] - b[1])
    .map(([e]) => e);
}
