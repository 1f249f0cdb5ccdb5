// `leaders` and the event log against the real master on a simulated world (virtual time): the
// master supervises three runners for a few epochs while the event log records each tick; then the
// leader slots are read the way the command reads them (each runner's GET /leaders/logs) and
// checked against the chain's own schedule.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runLeaders } from "../../src/commands/leaders.ts";
import { daemonView } from "../../src/control/protocol.ts";
import type { HistoryRecord } from "../../src/history/events.ts";
import { createHistory } from "../../src/history/index.ts";
import { readHistory } from "../../src/history/log.ts";
import { masterOnWorld, simConfig } from "../../src/lab/harness.ts";
import type { Master, TickReport } from "../../src/master/loop.ts";
import { Chain, testChainParams } from "../../src/sim/chain.ts";
import { World } from "../../src/sim/world.ts";
import type { LeadersModel } from "../../src/leaders/model.ts";
import { FAST_BOOT } from "../sim/helpers.ts";

const params = testChainParams({ leaderSlotsPerEpoch: 8 });
const chain = new Chain(params);
const epochMs = params.slotDurationMs * params.slotsPerEpoch;
const dir = mkdtempSync(join(tmpdir(), "jm-leaders-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = simConfig(3, { keyMode: "rest", restTimeoutMs: 300, slotGuardMs: 400, slotMarginMs: 400, eventActionMs: 5_000 });
let world: World;
let master: Master;
let last: TickReport | null = null;
let records: HistoryRecord[] = [];
let epoch = 0;

async function leaders(e: number | null, opts: { daemon?: boolean; history?: boolean; logsDown?: boolean } = {}): Promise<LeadersModel> {
  const down = async () => ({ ok: false as const, error: { kind: "unreachable" as const, reason: "timeout" as const, message: "deadline 300 ms" } });
  const node = (id: number) => (opts.logsDown ? { ...world.api(id), leaderLogs: down } : world.api(id));
  return runLeaders(config, { node, now: () => world.clock.now() }, {
    epoch: e,
    json: true,
    write: () => {},
    daemon: opts.daemon ? async () => ({ kind: "answer", result: daemonView(last, { pid: 1, version: "t", startedMs: 0, ticks: 1 }) }) : undefined,
    history: opts.history ? () => readHistory(dir).records : undefined,
  });
}

beforeAll(async () => {
  world = new World({ chain: params, runners: 3, keyMode: "rest", boot: FAST_BOOT, restTimeoutMs: 300, scheduleComputeMs: 500 });
  const history = createHistory(dir, { warn() {}, info() {} });
  for (const id of world.ids) await world.services.start(id);
  master = masterOnWorld(world, config, { onTick: (r) => ((last = r), history.onTick(r, config)) });
  history.started("first observation", world.clock.now());
  const ac = new AbortController();
  const done = master.run(ac.signal);
  const t0 = world.clock.now();
  // Into the fourth epoch, 25 s after its start: some of its slots are behind, some ahead. The
  // epoch before last is fully settled by then (a slot settles a minute after it ends).
  epoch = chain.epochAt(t0) + 3;
  await world.runUntil(chain.epochStartMs(epoch) + 25_000);
  ac.abort();
  let finished = false;
  void done.then(() => (finished = true));
  for (let t = world.clock.now() + 100; !finished; t += 100) await world.runUntil(t);
  await history.stopping("test over", 2_000, world.clock.now());
  records = readHistory(dir).records;
}, 60_000);

describe("leaders against the simulated runners", () => {
  test("the current epoch: exactly the chain's leader slots; the past ones produced by the signer with their block, the rest pending", async () => {
    const m = await leaders(null);
    expect(m.epoch).toBe(epoch);
    expect(m.rows.map((r) => r.slot)).toEqual([...chain.leaderSlots(epoch)]);
    const now = world.clock.now();
    const signer = master.memory.signer!;
    for (const r of m.rows) {
      expect(r.inScheduleOf).toContain(signer);
      if (r.endMs + 60_000 <= now) {
        expect(r).toMatchObject({ status: "produced", producedBy: signer });
        expect(r.block).toMatch(/^[0-9a-f]{64}$/);
      } else if (r.startMs > now) {
        expect(r.status).toBe("pending");
        expect(r.block).toBeNull();
      }
    }
    expect(m.rows.some((r) => r.status === "pending")).toBe(true);
    expect(m.counts.missed + m.counts.rejected).toBe(0);
    expect(m.unreadable).toEqual([]);
  });

  test("no log readable: the slots come from the daemon's memory of the pool's events, and the table says whose logs are missing", async () => {
    const without = await leaders(null, { logsDown: true });
    expect(without.rows).toEqual([]);
    expect(without.unreadable.map((u) => u.id)).toEqual([0, 1, 2]);
    const m = await leaders(null, { daemon: true, logsDown: true });
    expect(m.daemon).toBe(true);
    expect(m.rows.map((r) => [r.slot, r.source, r.inScheduleOf])).toEqual(chain.leaderSlots(epoch).map((s) => [s, "daemon", []]));
    // Without a log nothing shows a past slot's outcome: never "missed" without evidence (pending
    // while it may settle, unknown after; see the model's tests).
    expect(m.counts.produced + m.counts.missed).toBe(0);
  });

  test("an earlier epoch: every slot from the event log, with the blocks the runners' logs showed, after the signer restarted with an empty log", async () => {
    const prev = epoch - 2;
    const fromLogs = await leaders(prev);
    expect(fromLogs.rows.filter((r) => r.status === "produced").length).toBeGreaterThan(0);
    const signer = master.memory.signer!;
    // The restart waits for the process to stop in virtual time: drive the clock meanwhile.
    const restarted = world.services.restart(signer);
    await world.runUntil(world.clock.now() + 5_000);
    await restarted;
    const afterRestart = await leaders(prev);
    expect(afterRestart.rows.filter((r) => r.producedBy === signer)).toEqual([]);
    const fromHistory = await leaders(prev, { history: true });
    // The event log settled every slot of the previous epoch as produced, with the same blocks the
    // runners' logs show where they still list them.
    expect(fromHistory.rows.map((r) => r.slot)).toEqual([...chain.leaderSlots(prev)]);
    expect(fromHistory.rows.every((r) => r.status === "produced" && r.block !== null && r.producedBy !== null)).toBe(true);
    for (const r of fromLogs.rows) {
      if (r.status === "produced") expect(fromHistory.rows.find((h) => h.slot === r.slot)?.block).toBe(r.block);
    }
  });

});

describe("the event log over real ticks", () => {
  test("daemon start, the first promotion, one hand-out per boundary, every settled slot produced, daemon stop", () => {
    const kinds = records.map((r) => r.kind);
    expect(kinds[0]).toBe("daemon_start");
    expect(kinds.at(-1)).toBe("daemon_stop");
    expect(kinds).toContain("failover");
    // The daemon may skip the first boundary (its standbys still warming up); the later ones each
    // show once, and one ends before the next starts.
    const handouts = records.filter((r) => r.kind.startsWith("handout_")).map((r) => `${r.kind} ${r.epoch}`);
    expect(handouts.slice(-3)).toEqual([`handout_start ${epoch - 1}`, `handout_end ${epoch - 1}`, `handout_start ${epoch}`]);
    const produced = records.filter((r) => r.kind === "slot_produced");
    expect(produced.filter((r) => r.epoch === epoch - 2).map((r) => r.slot)).toEqual([...chain.leaderSlots(epoch - 2)]);
    expect(kinds).not.toContain("slot_missed");
    expect(kinds).not.toContain("action_failed");
    expect(produced.every((r) => /^[0-9a-f]{64}$/.test(r.block ?? ""))).toBe(true);
  });
});
