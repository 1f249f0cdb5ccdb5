import { expect, test } from "bun:test";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createProcReader, isFrozenState, parseStatState, parseUptimeUs } from "../../src/systemd/proc.ts";

test("the state is read after the last ')', whatever the command name holds", () => {
  expect(parseStatState("7574 (sleep) T 6120 7574 7574 0 -1")).toBe("T");
  expect(parseStatState("42 (a) R (b) S 1 2 3")).toBe("S");
  expect(parseStatState("42 (jormungandr 546) T 1")).toBe("T");
  expect(parseStatState("garbage")).toBeNull();
  expect(parseStatState("42 (x) ")).toBeNull();
});

test("only a job-control stop counts as frozen; unreadable is unknown", () => {
  expect(isFrozenState("T")).toBe(true);
  expect(isFrozenState("S")).toBe(false);
  expect(isFrozenState("t")).toBe(false);
  expect(isFrozenState(null)).toBeNull();
});

test("uptime parses to microseconds", () => {
  expect(parseUptimeUs("397.71 750.09\n")).toBe(397_710_000);
  expect(parseUptimeUs("")).toBeNull();
  expect(parseUptimeUs("x y")).toBeNull();
});

test("the reader reads a fake /proc root and returns null for what is missing", async () => {
  const root = mkdtempSync(join(tmpdir(), "jorm-proc-"));
  try {
    mkdirSync(join(root, "12"));
    writeFileSync(join(root, "12", "stat"), "12 (sleep) T 1 12 12 0");
    writeFileSync(join(root, "uptime"), "5.50 1.00\n");
    const proc = createProcReader(root);
    expect(await proc.processState(12)).toBe("T");
    expect(await proc.processState(13)).toBeNull();
    expect(await proc.processState(0)).toBeNull();
    expect(await proc.uptimeUs()).toBe(5_500_000);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("the real /proc: this process is running, not frozen", async () => {
  const proc = createProcReader();
  expect(isFrozenState(await proc.processState(process.pid))).toBe(false);
  expect(await proc.uptimeUs()).toBeGreaterThan(0);
});
