import { describe, expect, test } from "bun:test";
import { ALERT_SLOT_GRACE_MS } from "../../src/alerts/events.ts";
import { emptyHistoryMemory, historyRecords, type HistoryMemory, type HistoryRecord } from "../../src/history/events.ts";
import { emptyMemory } from "../../src/master/decide.ts";
import type { TickReport } from "../../src/master/loop.ts";
import type { Action, Outcome, RunnerView } from "../../src/master/types.ts";
import type { LeaderLog } from "../../src/node/types.ts";
import { config, observation, runner, SETTINGS } from "../master/fixtures.ts";

const cfg = config();

function view(id: number, leaderIds: number[]): RunnerView {
  return { id, cap: leaderIds.length > 0 ? "holder" : "keyless", pid: 1000 + id, running: true, responsive: true, nodeState: "Running", height: 1, leaderIds, busy: false, unitActive: true, frozen: false };
}

function report(atMs: number, o: { signer?: number | null; outcomes?: Outcome[]; boundary?: { epoch: number; coHolders: number[] }; logs?: Record<number, LeaderLog[]> } = {}): TickReport {
  const signer = o.signer ?? null;
  const views = [0, 1, 2].map((id) => view(id, id === signer || o.boundary?.coHolders.includes(id) ? [1] : []));
  const runners = [0, 1, 2].map((id) => runner(id, { kind: id === signer ? "holder" : "standby", logs: o.logs?.[id] }));
  const memory = { ...emptyMemory(), signer, boundary: o.boundary ?? null };
  return { startedMs: atMs, durationMs: 10, observation: observation(atMs, runners), views, plan: { fences: [], promote: null, other: [], wakeAtMs: atMs + 500, notes: [] }, outcomes: o.outcomes ?? [], memory };
}

const ok = (action: Action): Outcome => ({ action, ok: true, detail: "done" });

function run(reports: TickReport[], start: HistoryMemory = emptyHistoryMemory()): HistoryRecord[] {
  let m = start;
  const all: HistoryRecord[] = [];
  for (const r of reports) {
    const out = historyRecords(r, m, cfg);
    m = out.memory;
    all.push(...out.records);
  }
  return all;
}

const log = (slot: number, status: LeaderLog["status"]): LeaderLog => ({ createdAtMs: 0, scheduledAtMs: slot * 1000, scheduledAt: { epoch: 0, slot }, wakeAtMs: null, finishedAtMs: null, status, enclaveLeaderId: 1 });
const block = (hash: string) => ({ kind: "block", block: hash, parent: null, chainLength: 9 }) as const;

describe("historyRecords", () => {
  test("every action the daemon took, with its reason; the failover and SIGKILL come from the alert mapping", () => {
    const records = run([
      report(1_000, { signer: 0 }),
      report(2_000, {
        signer: 1,
        outcomes: [
          ok({ kind: "kill", id: 0, pid: 1000, reason: "#0 does not answer" }),
          ok({ kind: "demote", id: 2, leaderIds: [1], reason: "#2 is not the signer" }),
          ok({ kind: "freeze", id: 2, cause: "fence", reason: "its /leaders hangs" }),
          ok({ kind: "promote", id: 1, purpose: "sign", reason: "#1 is the best standby" }),
          ok({ kind: "restart", id: 0, reason: "stuck" }),
          ok({ kind: "start", id: 2, reason: "stopped" }),
          ok({ kind: "stop", id: 4, reason: "leftover" }),
          ok({ kind: "thaw", id: 2, reason: "fenced by us, now key-less" }),
          ok({ kind: "reportTip", height: 5, reason: "tip" }),
          { action: { kind: "demote", id: 0, leaderIds: [1], reason: "x" }, ok: false, detail: "HTTP 500" },
          { action: { kind: "demote", id: 0, leaderIds: [1], reason: "x" }, ok: false, transient: true, detail: "busy" },
        ],
      }),
    ]);
    expect(records.map((r) => [r.kind, r.runner, r.title])).toEqual([
      ["fence", 2, "key removed from #2"],
      ["fence", 2, "frozen (SIGSTOP): #2"],
      ["restart", 0, "restarted #0"],
      ["start", 2, "started #2"],
      ["stop", 4, "stopped #4"],
      ["thaw", 2, "thawed #2"],
      ["action_failed", 0, "demote #0 failed"],
      ["fence_kill", 0, "runner #0 killed (SIGKILL)"],
      ["failover", 1, "failover: #0 → #1 signs"],
    ]);
    expect(records[0]).toMatchObject({ t: new Date(2_010).toISOString(), atMs: 2_010, text: "#2 is not the signer" });
  });

  test("a boundary hand-out is one start and one end, not a line per co-holder step", () => {
    const epochStart = SETTINGS.slotsPerEpoch * SETTINGS.slotDurationMs; // epoch 1
    const records = run([
      report(epochStart - 6_000, { signer: 0 }),
      report(epochStart - 5_000, { signer: 0, boundary: { epoch: 1, coHolders: [1, 2] }, outcomes: [ok({ kind: "promote", id: 1, purpose: "boundary", reason: "compute" }), ok({ kind: "promote", id: 2, purpose: "boundary", reason: "compute" })] }),
      report(epochStart + 100, { signer: 0, boundary: { epoch: 1, coHolders: [1, 2] }, outcomes: [ok({ kind: "demote", id: 1, leaderIds: [1], reason: "strip" })] }),
      report(epochStart + 2_000, { signer: 0 }),
    ]);
    expect(records.map((r) => [r.kind, r.title])).toEqual([
      ["handout_start", "boundary hand-out for epoch 1: #1, #2"],
      ["handout_end", "boundary hand-out for epoch 1 over"],
    ]);
  });

  test("settled slots: produced (block hash, producer), rejected, missed", () => {
    const records = run([
      report(1_000, { signer: 0 }),
      report(14_000, { signer: 0, logs: { 0: [log(10, block("ab12")), log(12, { kind: "rejected", reason: "not leader" }), log(13, { kind: "pending" })], 1: [log(10, { kind: "rejected", reason: "key removed" })] } }),
      report(15_000 + ALERT_SLOT_GRACE_MS, { signer: 0, logs: { 0: [log(14, block("cd34"))] } }),
      report(15_000 + 2 * ALERT_SLOT_GRACE_MS, { signer: 0 }),
    ]);
    expect(records.map((r) => [r.kind, r.epoch, r.slot, r.runner ?? null, r.block ?? null, r.text])).toEqual([
      ["slot_produced", 0, 10, 0, "ab12", "block ab12"],
      ["slot_rejected", 0, 12, null, null, "no runner produced it; rejected by #0: not leader"],
      ["slot_produced", 0, 14, 0, "cd34", "block cd34"],
    ]);
  });

  test("an action failing every tick is recorded once per streak, again when its reason changes or after it worked", () => {
    const fail = (detail: string): Outcome => ({ action: { kind: "freeze", id: 1, cause: "fence", reason: "keys unknown" }, ok: false, detail });
    const records = run([
      report(1_000, { signer: 0, outcomes: [fail("systemctl: no bus")] }),
      report(1_500, { signer: 0, outcomes: [fail("systemctl: no bus")] }),
      report(2_000, { signer: 0, outcomes: [fail("systemctl: timeout")] }),
      report(2_500, { signer: 0, outcomes: [ok({ kind: "freeze", id: 1, cause: "fence", reason: "keys unknown" })] }),
      report(3_000, { signer: 0, outcomes: [fail("systemctl: timeout")] }),
    ]);
    expect(records.map((r) => [r.atMs, r.kind, r.text])).toEqual([
      [1_010, "action_failed", "keys unknown: systemctl: no bus"],
      [2_010, "action_failed", "keys unknown: systemctl: timeout"],
      [2_510, "fence", "keys unknown"],
      [3_010, "action_failed", "keys unknown: systemctl: timeout"],
    ]);
  });
});
