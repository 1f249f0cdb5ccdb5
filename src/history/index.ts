// The daemon's one handle on the event log: fold each tick in, record start and stop. Like alerts,
// nothing here may cost a tick: a bug in the mapping is logged once and the tick goes on.

import type { ResolvedConfig } from "../config/types.ts";
import type { TickReport } from "../master/loop.ts";
import { emptyHistoryMemory, historyRecords, record, type HistoryMemory } from "./events.ts";
import { HistoryLog } from "./log.ts";

export interface History {
  onTick(r: TickReport, config: ResolvedConfig): void;
  started(summary: string, atMs?: number): void;
  stopping(reason: string, timeoutMs: number, atMs?: number): Promise<void>;
  /** A request of the operator's the daemon applied */
  operator(e: { kind: "hold" | "release" | "switchover" | "upgrade"; runner?: number; title: string; text: string }, atMs?: number): void;
  readonly log: HistoryLog;
}

export function createHistory(dir: string, log: { warn(msg: string): void; info(msg: string): void }, opts: { maxBytes?: number; keep?: number } = {}): History {
  const file = new HistoryLog(dir, { ...opts, log });
  let memory: HistoryMemory = emptyHistoryMemory();
  let mappingFailed = false;
  return {
    log: file,
    onTick(r, config) {
      try {
        const next = historyRecords(r, memory, config);
        memory = next.memory;
        file.append(next.records);
        mappingFailed = false;
      } catch (e) {
        if (!mappingFailed) log.warn(`history: ${e instanceof Error ? e.message : String(e)}`);
        mappingFailed = true;
      }
    },
    started(summary, atMs = Date.now()) {
      file.append([record(atMs, { kind: "daemon_start", title: "daemon started", text: summary })]);
    },
    operator(e, atMs = Date.now()) {
      file.append([record(atMs, { kind: e.kind, title: e.title, text: e.text, ...(e.runner !== undefined ? { runner: e.runner } : {}) })]);
    },
    async stopping(reason, timeoutMs, atMs = Date.now()) {
      file.append([record(atMs, { kind: "daemon_stop", title: "daemon stopping", text: reason })]);
      await file.flush(timeoutMs);
    },
  };
}
