// The event log on a real disk: appends in the background, rotates at a bounded size keeping two old
// files, survives a restart (a new writer appends), and a failing disk is logged once per streak
// and never thrown.
import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { record } from "../../src/history/events.ts";
import { createHistory } from "../../src/history/index.ts";
import { HISTORY_BUFFER_MAX_RECORDS, HistoryLog, historyDir, readHistory } from "../../src/history/log.ts";

const root = mkdtempSync(join(tmpdir(), "jm-history-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${n++}`);
const quiet = { warn() {}, info() {} };
const rec = (i: number, kind: "start" | "fence" = "start") => record(1_000 * i, { kind, runner: i % 3, title: `event ${i}`, text: "x".repeat(50) });

describe("HistoryLog", () => {
  test("append returns at once; flush writes; a new writer (a restarted daemon) appends to the same file", async () => {
    const dir = fresh();
    const a = new HistoryLog(dir, { log: quiet });
    a.append([rec(1), rec(2)]);
    expect(existsSync(a.path)).toBe(false); // not written synchronously: a tick never waits for the disk
    await a.flush(2_000);
    const b = new HistoryLog(dir, { log: quiet });
    b.append([rec(3)]);
    await b.flush(2_000);
    expect(readHistory(dir).records.map((r) => r.title)).toEqual(["event 1", "event 2", "event 3"]);
  });

  test("rotates at the size bound, keeps two old files, reads them back oldest first", async () => {
    const dir = fresh();
    const h = new HistoryLog(dir, { log: quiet, maxBytes: 1_000 });
    for (let i = 0; i < 40; i++) {
      h.append([rec(i)]);
      await h.flush(2_000);
    }
    expect(readdirSync(dir).sort()).toEqual(["history.jsonl", "history.jsonl.1", "history.jsonl.2"]);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(1_000);
    const titles = readHistory(dir).records.map((r) => r.title);
    // The newest survive, in order, without gaps; the oldest were dropped with the third file.
    expect(titles.at(-1)).toBe("event 39");
    expect(titles.length).toBeLessThan(40);
    const first = Number(titles[0]!.split(" ")[1]);
    expect(titles).toEqual(Array.from({ length: 40 - first }, (_, i) => `event ${first + i}`));
  });

  test("a disk that fails: counted, warned once per streak, kept in memory and written when it works again", async () => {
    const dir = fresh();
    writeFileSync(dir, "a file where the directory should be");
    const warned: string[] = [];
    const told: string[] = [];
    const h = new HistoryLog(dir, { log: { warn: (m) => warned.push(m), info: (m) => told.push(m) } });
    h.append([rec(1)]);
    await h.flush(1_000);
    h.append([rec(2)]);
    await h.flush(1_000);
    expect(h.failures).toBe(2);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain("history: cannot write");
    rmSync(dir);
    h.append([rec(3)]);
    await h.flush(1_000);
    expect(told).toHaveLength(1);
    expect(readHistory(dir).records.map((r) => r.title)).toEqual(["event 1", "event 2", "event 3"]);
  });

  test("while the disk fails, memory stays bounded: the oldest records are dropped and counted", async () => {
    const dir = fresh();
    writeFileSync(dir, "not a directory");
    const h = new HistoryLog(dir, { log: quiet });
    h.append(Array.from({ length: HISTORY_BUFFER_MAX_RECORDS + 5 }, (_, i) => rec(i)));
    await h.flush(1_000);
    h.append([rec(1)]);
    // The write this append starts must fail too (the disk is still broken): without this flush it
    // raced the rmSync below, and the file held one record more or less depending on who won.
    await h.flush(1_000);
    expect(h.dropped).toBe(6);
    rmSync(dir);
    await h.flush(5_000);
    h.append([rec(2)]);
    await h.flush(5_000);
    // Memory held the newest HISTORY_BUFFER_MAX_RECORDS (events 6..10004, then 1); event 2 came after.
    const titles = readHistory(dir).records.map((r) => r.title);
    expect(titles).toHaveLength(HISTORY_BUFFER_MAX_RECORDS + 1);
    expect(titles[0]).toBe("event 6");
    expect(titles.slice(-2)).toEqual(["event 1", "event 2"]);
  });

  test("readHistory: --since and --kind filters; a garbled line is counted, not fatal; no files is empty", async () => {
    const dir = fresh();
    const h = new HistoryLog(dir, { log: quiet });
    h.append([rec(1), rec(2, "fence"), rec(3)]);
    await h.flush(1_000);
    appendFileSync(h.path, '{"half a line\n');
    expect(readHistory(dir, { sinceMs: 2_000 }).records.map((r) => r.title)).toEqual(["event 2", "event 3"]);
    expect(readHistory(dir, { kinds: ["fence"] }).records.map((r) => r.title)).toEqual(["event 2"]);
    expect(readHistory(dir).skipped).toBe(1);
    expect(readHistory(fresh())).toEqual({ records: [], skipped: 0, files: [] });
  });
});

test("historyDir: the first directory that holds a log, else the first", async () => {
  const [a, b] = [fresh(), fresh()];
  expect(historyDir([a, b])).toBe(a);
  const h = new HistoryLog(b, { log: quiet });
  h.append([rec(1)]);
  await h.flush(1_000);
  expect(historyDir([a, b])).toBe(b);
});

describe("createHistory", () => {
  test("daemon start and stop are recorded; stopping waits for the write", async () => {
    const dir = fresh();
    const h = createHistory(dir, quiet);
    h.started("signer #0 · 3/3 warm", 5_000);
    await h.stopping("stopped by SIGTERM", 2_000, 6_000);
    expect(readHistory(dir).records.map((r) => [r.kind, r.atMs, r.text])).toEqual([
      ["daemon_start", 5_000, "signer #0 · 3/3 warm"],
      ["daemon_stop", 6_000, "stopped by SIGTERM"],
    ]);
  });
});
