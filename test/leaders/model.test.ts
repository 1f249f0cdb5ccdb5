import { describe, expect, test } from "bun:test";
import { record, type HistoryRecord } from "../../src/history/events.ts";
import { leadersModel, type LeadersInput } from "../../src/leaders/model.ts";
import { renderLeaders } from "../../src/leaders/render.ts";
import type { LeaderLog, NodeResult } from "../../src/node/types.ts";
import { SETTINGS, TIMEOUT } from "../master/fixtures.ts";

// SETTINGS: 1 s slots, 100 slots per epoch, block0 at 0. Epoch 3 starts at 300 s.
const E = 3;
const entry = (slot: number, status: LeaderLog["status"], epoch = E): LeaderLog => ({ createdAtMs: 0, scheduledAtMs: (epoch * 100 + slot) * 1000, scheduledAt: { epoch, slot }, wakeAtMs: null, finishedAtMs: null, status, enclaveLeaderId: 1 });
const block = (hash: string) => ({ kind: "block", block: hash, parent: null, chainLength: 9 }) as const;
const ok = (logs: LeaderLog[]): NodeResult<LeaderLog[]> => ({ ok: true, value: logs });

function input(nowMs: number, logs: (NodeResult<LeaderLog[]> | null)[], over: Partial<LeadersInput> = {}): LeadersInput {
  return { nowMs, settings: SETTINGS, cntRunners: logs.length, runners: logs.map((l, id) => ({ id, logs: l })), daemon: null, history: [], ...over };
}

describe("leadersModel", () => {
  test("status per slot: produced (hash, by whom, beside a standby's Rejected), rejected (reason), missed, pending; in whose schedule", () => {
    const now = 300_000 + 90_000; // slot 90 of epoch 3
    const m = leadersModel(
      input(now, [
        ok([entry(5, block("aa")), entry(10, { kind: "rejected", reason: "not leader" }), entry(20, { kind: "pending" }), entry(95, { kind: "pending" }), entry(7, { kind: "pending" }, 2)]),
        ok([entry(5, { kind: "rejected", reason: "key removed" }), entry(20, { kind: "pending" }), entry(95, { kind: "pending" })]),
        ok([]),
      ]),
      null,
    );
    expect(m.epoch).toBe(E);
    expect(m.rows.map((r) => [r.slot, r.inScheduleOf, r.status, r.producedBy, r.block ?? r.reason])).toEqual([
      [5, [0, 1], "produced", 0, "aa"],
      [10, [0], "rejected", null, "#0: not leader"],
      [20, [0, 1], "missed", null, null],
      [95, [0, 1], "pending", null, null],
    ]);
    expect(m.rows[0]).toMatchObject({ abs: 305, startMs: 305_000, endMs: 306_000 });
    expect(m.counts).toEqual({ produced: 1, rejected: 1, missed: 1, pending: 1, unknown: 0 });
  });

  test("a slot just over stays pending while its log may still change; an unreadable log makes a slot without outcome unknown, not missed", () => {
    const logs = [ok([entry(20, { kind: "pending" })]), { ok: false as const, error: TIMEOUT }];
    expect(leadersModel(input(300_000 + 30_000, logs), null).rows[0]!.status).toBe("pending");
    const later = leadersModel(input(300_000 + 90_000, logs), null);
    expect(later.rows[0]!.status).toBe("unknown");
    expect(later.unreadable).toEqual([{ id: 1, error: "unreachable: deadline 500 ms" }]);
    expect(renderLeaders(later, 0)).toContain("#1: leader log unreadable (unreachable: deadline 500 ms)");
  });

  test("the event log fills in what no runner's log lists any more; the daemon's events add slots", () => {
    const history: HistoryRecord[] = [
      record(1, { kind: "slot_produced", epoch: E, slot: 5, runner: 2, block: "bb", title: "", text: "block bb" }),
      record(1, { kind: "slot_rejected", epoch: E, slot: 6, title: "", text: "no runner produced it; rejected by #1: too late" }),
      record(1, { kind: "slot_missed", epoch: E, slot: 7, title: "", text: "" }),
      record(1, { kind: "slot_produced", epoch: E - 1, slot: 5, runner: 0, block: "cc", title: "", text: "" }),
    ];
    const daemon = { pid: 1, version: "v", startedMs: 0, ticks: 1, tickAtMs: 0, tickDurationMs: 1, signer: 0, boundary: null, views: [], notes: [], events: [E * 100 + 8, E * 100 + 50, (E + 1) * 100 + 3], knownEpochs: [E] };
    const m = leadersModel(input(300_000 + 70_000, [ok([])], { history, daemon }), E);
    expect(m.rows.map((r) => [r.slot, r.status, r.source, r.producedBy, r.block ?? r.reason])).toEqual([
      [5, "produced", "history", 2, "bb"],
      [6, "rejected", "history", null, "#1: too late"],
      [7, "missed", "history", null, null],
      [8, "unknown", "daemon", null, null],
      [50, "pending", "daemon", null, null],
    ]);
    expect(m.daemon).toBe(true);
  });

  test("--epoch picks another epoch; no settings is an error (no runner Running)", () => {
    const m = leadersModel(input(300_000, [ok([entry(4, block("dd"), 4)])]), 4);
    expect(m.rows.map((r) => [r.epoch, r.slot, r.status])).toEqual([[4, 4, "produced"]]);
    expect(() => leadersModel(input(0, [ok([])], { settings: null }), null)).toThrow("no runner answered");
  });

  test("the table: slot, UTC and local time, schedule, status, producer, block or reason", () => {
    const m = leadersModel(input(300_000 + 90_000, [ok([entry(5, block("aa")), entry(95, { kind: "pending" })]), ok([entry(95, { kind: "pending" })])]), null);
    expect(renderLeaders(m, 60)).toBe(
      [
        "epoch 3 · 2 leader slots known · 1 produced, 1 pending, 0 rejected, 0 missed",
        "daemon: not asked or not running (slots from the runners' logs and the event log only)",
        "",
        "SLOT  TIME (UTC)            LOCAL            IN SCHEDULE OF  STATUS            BY  BLOCK / REASON",
        "3.5   1970-01-01 00:05:05Z  01:05:05 +01:00  #0              produced          #0  aa",
        "3.95  1970-01-01 00:06:35Z  01:06:35 +01:00  #0,#1           pending (in 5 s)  -   -",
      ].join("\n"),
    );
  });
});
