// jorm_master_leader_slots_total counts each slot once. A standby that computed an epoch in a boundary
// hand-out keeps that epoch's entries (Rejected) in its log for epochs; once the daemon has forgotten
// the settled slot (older than the previous epoch) such an entry must not be counted again: after a
// signer crash (its log with the blocks gone) it would count as missed, and every JormMasterSlotMissed
// alert would follow (contrib/prometheus/alerts.yml).
import { expect, test } from "bun:test";
import { simConfig } from "../../src/lab/harness.ts";
import type { TickReport } from "../../src/master/loop.ts";
import { MasterMetrics, SLOT_OUTCOME_GRACE_MS } from "../../src/metrics/master.ts";

const settings = { block0Hash: "x", block0TimeMs: 0, slotDurationMs: 1000, slotsPerEpoch: 60, consensusVersion: "genesis", currSlotStartTimeMs: null };
const config = simConfig(2);
const log = (slot: number, block: boolean) => ({
  createdAtMs: 0,
  scheduledAtMs: slot * 1000,
  scheduledAt: { epoch: 0, slot },
  wakeAtMs: null,
  finishedAtMs: null,
  status: block ? ({ kind: "block", block: "b", parent: null, chainLength: 1 } as const) : ({ kind: "rejected", reason: "key removed" } as const),
  enclaveLeaderId: 1,
});
const report = (atMs: number, logs: Record<number, ReturnType<typeof log>[]>): TickReport => ({
  startedMs: atMs,
  durationMs: 2,
  observation: { atMs, settings, majorityMax: null, runners: [0, 1].map((id) => ({ id, unit: null, stats: null, leaders: null, logs: logs[id] ? { ok: true as const, value: logs[id]! } : null })) },
  views: [],
  plan: { fences: [], promote: null, other: [], wakeAtMs: atMs + 500, notes: [] },
  outcomes: [],
  memory: { signer: 0, events: [], knownEpochs: [], runners: {}, boundary: null, tip: { lastSentMs: 0, lastSentHeight: 0 }, lastTickMs: atMs, failures: {} },
});
const sample = (t: string, s: string) => Number(t.split("\n").find((l) => l.startsWith(`${s} `))?.split(" ")[1]);

test("a slot two epochs back, still listed Rejected by a standby after the signer's log is gone, is not counted again", () => {
  const m = new MasterMetrics({ version: "t" });
  m.update(report(1_000, {}), config, { poolToolFailures: 0 });
  m.update(report(12_000, { 0: [log(10, true)], 1: [log(10, false)] }), config, { poolToolFailures: 0 });
  m.update(report(11_000 + SLOT_OUTCOME_GRACE_MS + 1, {}), config, { poolToolFailures: 0 });
  // Epoch 2: the signer #0 crashed and restarted with an empty log; #1 still lists slot 0.10.
  m.update(report(125_000, { 0: [], 1: [log(10, false)] }), config, { poolToolFailures: 0 });
  m.update(report(126_000, { 0: [], 1: [log(10, false)] }), config, { poolToolFailures: 0 });
  m.update(report(125_000 + 2 * SLOT_OUTCOME_GRACE_MS, {}), config, { poolToolFailures: 0 });
  const t = m.render();
  expect(sample(t, 'jorm_master_leader_slots_total{outcome="produced"}')).toBe(1);
  expect(sample(t, 'jorm_master_leader_slots_total{outcome="missed"}')).toBe(0);
});
