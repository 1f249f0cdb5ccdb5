// The event log on disk: JSON lines in <state dir>/history.jsonl, rotated at a bounded size
// (history.jsonl.1, .2 are older; the oldest is dropped). Writing never blocks a tick: records are
// buffered and appended by one write in flight at a time; a failing disk is logged once per streak,
// counted, and costs records (the buffer is bounded), never supervision.

import { appendFile, mkdir, rename, stat } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { HISTORY_KINDS, type HistoryKind, type HistoryRecord } from "./events.ts";

export const HISTORY_FILE = "history.jsonl";
export const HISTORY_MAX_BYTES = 5 * 1024 * 1024;
/** Rotated files kept beside the current one */
export const HISTORY_KEEP_FILES = 2;
/** Records held while the disk fails; older ones are dropped beyond this */
export const HISTORY_BUFFER_MAX_RECORDS = 10_000;

export interface HistoryLogOptions {
  maxBytes?: number;
  keep?: number;
  log: { warn(msg: string): void; info(msg: string): void };
}

export class HistoryLog {
  readonly path: string;
  /** Appends that failed (for a metric, and for tests) */
  failures = 0;
  /** Records dropped because the buffer was full */
  dropped = 0;
  private buffer: string[] = [];
  private writing: Promise<void> | null = null;
  private size: number | null = null;
  private failing = false;
  private readonly maxBytes: number;
  private readonly keep: number;

  constructor(
    readonly dir: string,
    private readonly opts: HistoryLogOptions,
  ) {
    this.path = join(dir, HISTORY_FILE);
    this.maxBytes = opts.maxBytes ?? HISTORY_MAX_BYTES;
    this.keep = opts.keep ?? HISTORY_KEEP_FILES;
  }

  /** Queues records and returns at once; they are written in the background. */
  append(records: readonly HistoryRecord[]): void {
    if (records.length === 0) return;
    for (const r of records) this.buffer.push(`${JSON.stringify(r)}\n`);
    const over = this.buffer.length - HISTORY_BUFFER_MAX_RECORDS;
    if (over > 0) {
      this.buffer.splice(0, over);
      this.dropped += over;
    }
    this.kick();
  }

  /** Resolves once everything queued so far is written (or failed), or after timeoutMs. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.writing || this.buffer.length > 0) && Date.now() < deadline) {
      this.kick();
      await Promise.race([this.writing, Bun.sleep(Math.max(0, deadline - Date.now()))]);
      if (this.failing) return; // the disk fails: do not spin until the deadline
    }
  }

  private kick(): void {
    if (this.writing || this.buffer.length === 0) return;
    this.writing = this.writeBatch().finally(() => {
      this.writing = null;
      if (this.buffer.length > 0 && !this.failing) this.kick();
    });
  }

  private async writeBatch(): Promise<void> {
    const batch = this.buffer;
    this.buffer = [];
    const text = batch.join("");
    const bytes = Buffer.byteLength(text);
    try {
      if (this.size === null) {
        await mkdir(this.dir, { recursive: true, mode: 0o750 });
        this.size = await stat(this.path).then(
          (s) => s.size,
          () => 0,
        );
      }
      if (this.size > 0 && this.size + bytes > this.maxBytes) await this.rotate();
      await appendFile(this.path, text, { mode: 0o640 });
      this.size += bytes;
      if (this.failing) this.opts.log.info(`history: writing ${this.path} works again`);
      this.failing = false;
    } catch (e) {
      this.failures++;
      // Kept for the next try (the buffer bound still applies); told once per streak.
      this.buffer = [...batch, ...this.buffer].slice(-HISTORY_BUFFER_MAX_RECORDS);
      this.size = null;
      if (!this.failing) this.opts.log.warn(`history: cannot write ${this.path}: ${e instanceof Error ? e.message : String(e)}; events are kept in memory and retried with the next ones`);
      this.failing = true;
    }
  }

  private async rotate(): Promise<void> {
    for (let i = this.keep; i >= 1; i--) {
      const from = i === 1 ? this.path : `${this.path}.${i - 1}`;
      if (existsSync(from)) await rename(from, `${this.path}.${i}`);
    }
    this.size = 0;
  }
}

const recordSchema = z.object({
  t: z.string(),
  atMs: z.number(),
  kind: z.enum(HISTORY_KINDS),
  runner: z.number().int().optional(),
  title: z.string(),
  text: z.string(),
  epoch: z.number().int().optional(),
  slot: z.number().int().optional(),
  block: z.string().optional(),
});

/** The first of `dirs` that holds an event log (the first when none does). */
export function historyDir(dirs: readonly string[]): string {
  return dirs.find((d) => existsSync(join(d, HISTORY_FILE))) ?? dirs[0]!;
}

export interface ReadHistoryOptions {
  sinceMs?: number | null;
  kinds?: readonly HistoryKind[] | null;
  keep?: number;
}

/** Every record in the log files, oldest first; lines that do not parse are counted, not fatal. */
export function readHistory(dir: string, o: ReadHistoryOptions = {}): { records: HistoryRecord[]; skipped: number; files: string[] } {
  const base = join(dir, HISTORY_FILE);
  const files: string[] = [];
  for (let i = o.keep ?? HISTORY_KEEP_FILES; i >= 1; i--) if (existsSync(`${base}.${i}`)) files.push(`${base}.${i}`);
  if (existsSync(base)) files.push(base);
  const records: HistoryRecord[] = [];
  let skipped = 0;
  const kinds = o.kinds && o.kinds.length > 0 ? new Set(o.kinds) : null;
  for (const f of files) {
    for (const line of readFileSync(f, "utf8").split("\n")) {
      if (line.trim() === "") continue;
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        skipped++;
        continue;
      }
      const r = recordSchema.safeParse(json);
      if (!r.success) {
        skipped++;
        continue;
      }
      if (o.sinceMs != null && r.data.atMs < o.sinceMs) continue;
      if (kinds && !kinds.has(r.data.kind)) continue;
      records.push(r.data as HistoryRecord);
    }
  }
  return { records, skipped, files };
}
