// Repeated failures, summarised. The loop retries a failing action on every tick (up to 20 a
// second while it confirms), and each attempt logs the same line: the journal would drown the one
// line that matters. The first occurrence is logged at once; identical repeats are counted and
// summarised at most once per window; a line that stops repeating gets a final count. Actions that
// succeed are never held back: every action the daemon takes stays one line in the journal.

import type { Clock } from "./ports.ts";
import type { MasterLog } from "./master/loop.ts";

/** At most one summary line per repeating message in this window. */
export const REPEAT_SUMMARY_MS = 60_000;

type Level = "info" | "warn" | "error";

interface Entry {
  level: Level;
  line: string;
  lastSeenMs: number;
  lastEmitMs: number;
  suppressed: number;
}

export interface Emitted {
  level: Level;
  line: string;
}

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

export class RepeatSummarizer {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly clock: Pick<Clock, "now">,
    private readonly windowMs = REPEAT_SUMMARY_MS,
  ) {}

  /** What to write for one log call (nothing, the line, or a summary), after any final counts due. */
  log(level: Level, line: string): Emitted[] {
    const now = this.clock.now();
    const out = this.sweep();
    const key = `${level}\u0000${line}`;
    const e = this.entries.get(key);
    if (!e) {
      this.entries.set(key, { level, line, lastSeenMs: now, lastEmitMs: now, suppressed: 0 });
      out.push({ level, line });
      return out;
    }
    e.lastSeenMs = now;
    e.suppressed++;
    if (now - e.lastEmitMs >= this.windowMs) {
      out.push({ level, line: `${line} (repeated ${e.suppressed} times in the last ${seconds(now - e.lastEmitMs)})` });
      e.suppressed = 0;
      e.lastEmitMs = now;
    }
    return out;
  }

  /** Final counts for lines not seen for a whole window; call it now and then (every tick). */
  sweep(): Emitted[] {
    const now = this.clock.now();
    const out: Emitted[] = [];
    for (const [key, e] of this.entries) {
      if (now - e.lastSeenMs < this.windowMs) continue;
      this.entries.delete(key);
      if (e.suppressed > 0) {
        out.push({ level: e.level, line: `${e.line} (repeated ${e.suppressed} times until ${seconds(now - e.lastSeenMs)} ago; no longer)` });
      }
    }
    return out;
  }
}

/** Errors, and warnings of a failed action (the loop writes "kind #id: reason → FAILED: detail"). */
export const isFailure = (level: Level, line: string): boolean => level === "error" || (level === "warn" && line.includes("→ FAILED:"));

/** A MasterLog that summarises repeated failures and passes everything else through. */
export function summarizingLog(
  inner: MasterLog,
  clock: Pick<Clock, "now">,
  opts: { windowMs?: number; summarise?: (level: Level, line: string) => boolean } = {},
): MasterLog & { sweep(): void } {
  const s = new RepeatSummarizer(clock, opts.windowMs ?? REPEAT_SUMMARY_MS);
  const summarise = opts.summarise ?? isFailure;
  const write = (lines: Emitted[]) => {
    for (const l of lines) inner[l.level](l.line);
  };
  const at = (level: Level) => (m: string) => (summarise(level, m) ? write(s.log(level, m)) : write([...s.sweep(), { level, line: m }]));
  return {
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    debug: (m) => inner.debug(m),
    sweep: () => write(s.sweep()),
  };
}
