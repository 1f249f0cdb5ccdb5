import { describe, expect, test } from "bun:test";
import { ALERT_SLOT_GRACE_MS, alertEvents, emptyAlertMemory, noSignerLimitMs, type AlertMemory } from "../../src/alerts/events.ts";
import { emptyMemory } from "../../src/master/decide.ts";
import type { TickReport } from "../../src/master/loop.ts";
import type { Action, Outcome, RunnerView } from "../../src/master/types.ts";
import type { LeaderLog } from "../../src/node/types.ts";
import { config, observation, runner } from "../master/fixtures.ts";

const cfg = config();

function view(id: number, leaderIds: number[] | null): RunnerView {
  return { id, cap: leaderIds === null ? "unknown" : leaderIds.length > 0 ? "holder" : "keyless", pid: 1000 + id, running: true, responsive: true, nodeState: "Running", height: 1, leaderIds, busy: false, unitActive: true, frozen: false };
}

function report(atMs: number, o: { signer?: number | null; holders?: number[]; silent?: number[]; outcomes?: Outcome[]; coHolders?: number[]; logs?: Record<number, LeaderLog[]> } = {}): TickReport {
  const holders = o.holders ?? (o.signer != null ? [o.signer] : []);
  const views = [0, 1, 2].map((id) => view(id, o.silent?.includes(id) ? null : holders.includes(id) ? [1] : []));
  const runners = [0, 1, 2].map((id) => runner(id, { kind: holders.includes(id) ? "holder" : "standby", logs: o.logs?.[id] }));
  const memory = { ...emptyMemory(), signer: o.signer ?? null, boundary: o.coHolders ? { epoch: 1, coHolders: o.coHolders } : null };
  return { startedMs: atMs, durationMs: 10, observation: observation(atMs, runners), views, plan: { fences: [], promote: null, other: [], wakeAtMs: atMs + 500, notes: [] }, outcomes: o.outcomes ?? [], memory };
}

const outcome = (action: Action, ok = true, extra: Partial<Outcome> = {}): Outcome => ({ action, ok, detail: ok ? "done" : "systemctl start: unit failed", ...extra });

/** Folds reports in order, collecting every event. */
function run(reports: TickReport[], start: AlertMemory = emptyAlertMemory()) {
  let m = start;
  const all = [];
  for (const r of reports) {
    const out = alertEvents(r, m, cfg);
    m = out.memory;
    all.push(...out.events);
  }
  return { events: all, memory: m };
}

describe("alertEvents", () => {
  test("a promotion to signer is a failover naming the old and the new signer", () => {
    const { events } = run([
      report(1_000, { signer: 0 }),
      report(2_000, { signer: 1, outcomes: [outcome({ kind: "promote", id: 1, purpose: "sign", reason: "#0 died; #1 is the best standby" })] }),
    ]);
    expect(events.map((e) => [e.kind, e.title, e.text])).toEqual([["failover", "failover: #0 → #1 signs", "#0 died; #1 is the best standby"]]);
  });

  test("a boundary hand-out promotion and a failed promotion are not failovers", () => {
    const { events } = run([
      report(1_000, {
        signer: 0,
        outcomes: [outcome({ kind: "promote", id: 1, purpose: "boundary", reason: "compute the next epoch" }), outcome({ kind: "promote", id: 2, purpose: "sign", reason: "x" }, false)],
      }),
    ]);
    expect(events).toEqual([]);
  });

  test("SIGKILL fences (kill, retire) alert; freeze and demote do not", () => {
    const { events } = run([
      report(1_000, {
        signer: 0,
        outcomes: [
          outcome({ kind: "kill", id: 1, pid: 55, reason: "frozen former signer" }),
          outcome({ kind: "retire", id: 4, reason: "beyond cnt_runners" }),
          outcome({ kind: "freeze", id: 2, reason: "REST silent", cause: "fence" }),
          outcome({ kind: "demote", id: 2, reason: "second holder", leaderIds: [1] }),
        ],
      }),
    ]);
    expect(events.map((e) => [e.kind, e.runner])).toEqual([["fence_kill", 1], ["fence_kill", 4]]);
  });

  test("a runner that cannot start alerts; a transient failure does not", () => {
    const { events } = run([
      report(1_000, {
        signer: 0,
        outcomes: [outcome({ kind: "start", id: 1, reason: "stopped" }, false), outcome({ kind: "restart", id: 2, reason: "stuck" }, false, { transient: true })],
      }),
    ]);
    expect(events.map((e) => [e.kind, e.severity, e.key])).toEqual([["runner_cannot_start", "critical", "start:1"]]);
  });

  test("no signer alerts once after more than a window, and once more when one signs again", () => {
    const limit = noSignerLimitMs(report(0), cfg);
    expect(limit).toBe(1000 + 500 + 500 + 2000);
    const { events } = run([
      report(1_000, { signer: 0 }),
      report(2_000, { signer: 0, silent: [0] }),
      report(2_000 + limit, { signer: null }),
      report(2_001 + limit, { signer: null }),
      report(3_000 + limit, { signer: null }),
      report(4_000 + limit, { signer: 2 }),
      report(5_000 + limit, { signer: 2 }),
    ]);
    expect(events.map((e) => e.kind)).toEqual(["no_signer", "no_signer_resolved"]);
    expect(events[0]!.severity).toBe("critical");
  });

  test("a signer lost for less than a window is no alarm (a failover)", () => {
    const limit = noSignerLimitMs(report(0), cfg);
    const { events } = run([report(1_000, { signer: 0 }), report(2_000, { signer: null }), report(1_980 + limit, { signer: null }), report(2_500 + limit, { signer: 1 })]);
    expect(events).toEqual([]);
  });

  test("two key holders alert at once, once per streak; the boundary hand-out's co-holders do not", () => {
    const { events } = run([
      report(1_000, { signer: 0, holders: [0, 1, 2], coHolders: [1, 2] }),
      report(2_000, { signer: 0, holders: [0, 2] }),
      report(2_500, { signer: 0, holders: [0, 2] }),
      report(3_000, { signer: 0, holders: [0] }),
    ]);
    expect(events.map((e) => [e.kind, e.title])).toEqual([
      ["two_holders", "2 key holders: #0, #2"],
      ["two_holders_resolved", "one key holder again"],
    ]);
  });

  const log = (slot: number, status: LeaderLog["status"]): LeaderLog => ({ createdAtMs: 0, scheduledAtMs: slot * 1000, scheduledAt: { epoch: 0, slot }, wakeAtMs: null, finishedAtMs: null, status, enclaveLeaderId: 1 });
  const block = { kind: "block", block: "ab", parent: null, chainLength: 9 } as const;

  test("a slot no log shows a block for is missed, settled a grace after it ends; a standby's Rejected beside the signer's block is not", () => {
    const { events } = run([
      report(1_000, { signer: 0 }),
      report(13_000, { signer: 0, logs: { 0: [log(10, block), log(12, { kind: "rejected", reason: "not leader" })], 1: [log(10, { kind: "rejected", reason: "key removed" })] } }),
      report(13_000 + ALERT_SLOT_GRACE_MS - 10, { signer: 0 }),
      report(13_000 + ALERT_SLOT_GRACE_MS + 10, { signer: 0 }),
      report(14_000 + ALERT_SLOT_GRACE_MS + 10, { signer: 0, logs: { 0: [log(12, { kind: "rejected", reason: "not leader" })] } }),
    ]);
    expect(events.map((e) => [e.kind, e.title, e.text])).toEqual([["slot_missed", "slot 0.12 rejected", "no runner produced it; rejected by #0: not leader"]]);
  });

  test("a slot of an epoch before the previous one is not taken in again (its producer's log is gone, a standby's still shows Rejected)", () => {
    // epoch 0 slot 12 was produced and settled long ago; in epoch 2 only #1's Rejected entry remains
    const { events } = run([report(1_000, { signer: 0 }), report(200_500, { signer: 0, logs: { 1: [log(12, { kind: "rejected", reason: "key removed" })] } }), report(200_500 + 2 * ALERT_SLOT_GRACE_MS, { signer: 0 })]);
    expect(events).toEqual([]);
  });

  test("slots that ended before the daemon's first tick are history", () => {
    const { events } = run([report(20_000, { signer: 0, logs: { 0: [log(3, { kind: "rejected", reason: "x" })] } }), report(20_000 + 2 * ALERT_SLOT_GRACE_MS, { signer: 0 })]);
    expect(events).toEqual([]);
  });
});

describe("SIGHUP's list of changed keys", () => {
  test("says that alerts changed without printing a webhook URL", async () => {
    const { configChanges } = await import("../../src/master/summary.ts");
    const base = config();
    const next = config({ alerts: { channels: [{ name: "ops", type: "webhook", preset: "slack", url: "https://hooks.slack.com/services/T0/B0/SECRETPATH" }], dedupWindowMs: 1, rateLimit: 1, rateWindowMs: 1, retries: 0, timeoutMs: 1 } });
    const changes = configChanges(base, next);
    expect(changes).toEqual(["alerts: changed (channels are read when the daemon starts: restart it to apply)"]);
    expect(configChanges(next, next)).toEqual([]);
  });
});

describe("alertEvents in cluster mode", () => {
  const withCluster = (r: TickReport, cluster: NonNullable<TickReport["observation"]["cluster"]>): TickReport => ({ ...r, observation: { ...r.observation, cluster } });
  const far = 1e15;

  test("a host that knows another host signs raises no 'no signer' alarm; one that knows of none does", () => {
    const other = { maySign: false, mustStopByMs: null, takeoverSafeAtMs: null, holder: "host-b" };
    const quiet = run([0, 5_000, 10_000, 20_000].map((t) => withCluster(report(t, { signer: null }), other)));
    expect(quiet.events.filter((e) => e.kind === "no_signer")).toEqual([]);
    const unknown = { ...other, holder: null };
    const loud = run([0, 5_000, 10_000, 20_000].map((t) => withCluster(report(t, { signer: null }), unknown)));
    expect(loud.events.map((e) => e.kind)).toContain("no_signer");
  });

  test("this host starting and ceasing to sign is told", () => {
    const holding = { maySign: true, mustStopByMs: far, takeoverSafeAtMs: null, holder: "host-a" };
    const lost = { maySign: false, mustStopByMs: null, takeoverSafeAtMs: null, holder: "host-b" };
    const { events } = run([withCluster(report(1_000, { signer: null }), lost), withCluster(report(2_000, { signer: 0 }), holding), withCluster(report(3_000, { signer: 0 }), holding), withCluster(report(4_000, { signer: null }), lost)]);
    expect(events.filter((e) => e.kind === "cluster_lease").map((e) => [e.severity, e.title])).toEqual([
      ["info", "this host signs (it holds the etcd signer lease)"],
      ["warning", "this host stopped signing"],
    ]);
  });
});
