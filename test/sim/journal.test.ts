import { describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileJournal, MemoryJournal, readJournalFile, sortByTime } from "../../src/sim/journal.ts";

describe("journal", () => {
  test("memory journal keeps entries in order and filters by kind", () => {
    const j = new MemoryJournal();
    j.append({ t: 1, kind: "freeze", runner: 0, inc: 1 });
    j.append({ t: 2, kind: "tip_shared", height: 5 });
    expect(j.entries()).toHaveLength(2);
    expect(j.ofKind("tip_shared")).toEqual([{ t: 2, kind: "tip_shared", height: 5 }]);
  });

  test("file journal: JSON lines appended by several writers, read back sorted by time; torn lines skipped", () => {
    const dir = mkdtempSync(join(tmpdir(), "jm-journal-"));
    try {
      const path = join(dir, "journal.jsonl");
      const a = new FileJournal(path);
      const b = new FileJournal(path);
      a.append({ t: 30, kind: "thaw", runner: 0, inc: 1 });
      b.append({ t: 10, kind: "freeze", runner: 1, inc: 1 });
      a.append({ t: 20, kind: "tip_shared", height: 9 });
      appendFileSync(path, '{"t": 40, "kind": "fre');
      expect(readJournalFile(path).map((e) => e.t)).toEqual([10, 20, 30]);
      expect(readJournalFile(join(dir, "missing.jsonl"))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("sortByTime is stable for equal times", () => {
    const e = sortByTime([
      { t: 5, kind: "proc_exit", runner: 0, inc: 1, reason: "crash" },
      { t: 5, kind: "proc_start", runner: 0, inc: 2, pid: 2, keys: [] },
      { t: 1, kind: "freeze", runner: 0, inc: 1 },
    ]);
    expect(e.map((x) => x.kind)).toEqual(["freeze", "proc_exit", "proc_start"]);
  });
});
