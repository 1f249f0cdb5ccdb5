#!/usr/bin/env bun
// `bun run bench`: the fault matrix in virtual time on ITN parameters (2 s slots, 43200 slots per
// epoch, the pool leading 50 slots per epoch), 3 runners in key mode boot, ~3 days per scenario.
// Every row runs the real master (decide, act, observe, loop) against the simulator.
//   bun run bench [--json] [--days 3] [--only calm,crash-1h] [--runners 3] [--key-mode boot|rest] [--why]
// --why: after each row, every stale_tip loss: the block the signer lacked, when another runner first
// showed it, and whether a gap between windows followed in which the key could have moved.

import { parseArgs } from "node:util";
import { percentile, runScenario, type FaultEvent, type ScenarioSpec } from "../src/lab/scenario.ts";
import { Chain, ITN_CHAIN, type ChainParams } from "../src/sim/chain.ts";
import { explainStaleTips } from "../src/sim/audit.ts";
import { defaultViewLagMs } from "../src/sim/node.ts";
import { simConfig } from "../src/lab/harness.ts";
import type { Fault } from "../src/sim/world.ts";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    days: { type: "string", default: "3" },
    only: { type: "string" },
    runners: { type: "string", default: "3" },
    "key-mode": { type: "string", default: "boot" },
    why: { type: "boolean", default: false },
  },
});
const DAY_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;
const durationMs = Number(values.days) * DAY_MS;
const runners = Number(values.runners);
const keyMode = values["key-mode"] === "rest" ? "rest" : "boot";

/** Deterministic jitter so faults do not line up with slots or boundaries. */
function every(periodMs: number, make: (i: number) => Omit<FaultEvent, "atMs">, phaseMs = periodMs / 2): FaultEvent[] {
  const out: FaultEvent[] = [];
  let x = 12345;
  for (let i = 0, t = phaseMs; t < durationMs; i++, t += periodMs) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const jitter = (x / 2 ** 31 - 0.5) * 0.2 * periodMs;
    out.push({ ...make(i), atMs: Math.max(0, Math.round(t + jitter)) } as FaultEvent);
  }
  return out;
}
const signer = (fault: Fault, forMs?: number) => () => ({ target: "signer" as const, fault, ...(forMs ? { forMs } : {}) });

/** Faults placed `intoSlotMs` after the start of the first pool slot after every period: the signer
 *  is lost inside a window, after it may have signed (the world starts at epoch 1). */
function inSlot(periodMs: number, intoSlotMs: number, make: () => Omit<FaultEvent, "atMs">): FaultEvent[] {
  const chain = new Chain(ITN_CHAIN);
  const fromMs = chain.epochStartMs(1);
  const out: FaultEvent[] = [];
  for (let t = periodMs / 2; t < durationMs; t += periodMs) {
    const next = chain.leaderSlotsBetween(fromMs + t, fromMs + t + DAY_MS)[0];
    if (next) out.push({ ...make(), atMs: chain.slotStartMs(next.epoch, next.slot) - fromMs + intoSlotMs } as FaultEvent);
  }
  return out;
}

/** A busy pool (a small testnet, a BFT-led network, a large pool): ITN's 2 s slots, 22.5 % of them
 *  the pool's, and every other epoch begins and ends with one of its slots. Epochs of 1800 slots
 *  (1 h) instead of 43200: the master walks the known events every tick, and 10,000 per epoch would
 *  make a day of virtual time take many minutes; shorter epochs also cross 24 boundaries a day. */
const BUSY_CHAIN: ChainParams = { ...ITN_CHAIN, slotsPerEpoch: 1800, leaderSlotsPerEpoch: 405, edgeLeaderSlotsEvery: 2 };
const BUSY_EPOCH_MS = BUSY_CHAIN.slotsPerEpoch * BUSY_CHAIN.slotDurationMs;
/** A small testnet node bootstraps in seconds ("an 8 s bootstrap" in the issue that added these rows). */
const BUSY_BOOT = { Bootstrapping: 8_000 };
/** Busy rows run a quarter of --days (6 epochs a day): each tick reads more events and longer logs. */
const BUSY_SHARE = 0.25;
/** leadership.logs_capacity sized to a busy epoch and a bit: the loop re-reads every runner's logs. */
const BUSY_LOGS = 512;
const busy = (spec: Partial<ScenarioSpec>): Partial<ScenarioSpec> => ({
  chain: BUSY_CHAIN,
  boot: BUSY_BOOT,
  logsCapacity: BUSY_LOGS,
  durationMs: Math.round(durationMs * BUSY_SHARE),
  ...spec,
});

/** One fault `beforeMs` before every busy epoch boundary (the world starts at an epoch start). */
function atBoundaries(beforeMs: number, make: () => Omit<FaultEvent, "atMs">, afterMs = 0): FaultEvent[] {
  const out: FaultEvent[] = [];
  for (let t = BUSY_EPOCH_MS; t < durationMs; t += BUSY_EPOCH_MS) out.push({ ...make(), atMs: t - beforeMs + afterMs } as FaultEvent);
  return out;
}

interface Row {
  scenario: string;
  spec: Partial<ScenarioSpec>;
}
const rows: Row[] = [
  { scenario: "calm", spec: {} },
  { scenario: "signer-crash-1h", spec: { faults: every(HOUR_MS, signer({ kind: "crash" })) } },
  { scenario: "signer-hang-60s-3h", spec: { faults: every(3 * HOUR_MS, signer({ kind: "restHang", on: true }, 60_000)) } },
  { scenario: "signer-stuck-6h", spec: { faults: every(6 * HOUR_MS, signer({ kind: "stuck", on: true })) } },
  // Lost 0.5 s into a slot it has signed: the standby must wait for the window to close.
  { scenario: "signer-crash-in-slot-3h", spec: { faults: inSlot(3 * HOUR_MS, 500, signer({ kind: "crash" })) } },
  { scenario: "daemon-kill-30min", spec: { faults: every(30 * 60_000, () => ({ target: "daemon" as const, downMs: 1_500 })) } },
  {
    scenario: "slow-boot-15min",
    // Every (re)boot bootstraps for 15 min; the signer crashes every 2 h so slow boots matter.
    spec: { boot: { Bootstrapping: 15 * 60_000 }, faults: every(2 * HOUR_MS, signer({ kind: "crash" })) },
  },
  { scenario: "schedule-30s", spec: { scheduleComputeMs: 30_000 } },
  // Busy pools (BUSY_CHAIN): coverage targets ≥ 99 % without crashes, ≥ 97 % with them.
  { scenario: "busy-calm", spec: busy({}) },
  // (a) the signer crashes every 4 min at a random phase
  { scenario: "busy-signer-crash-4min", spec: busy({ faults: every(4 * 60_000, signer({ kind: "crash" }), 97_000) }) },
  // (b) the signer's REST hangs for 3–10 s every 4 min
  {
    scenario: "busy-signer-hang-3-10s",
    spec: busy({ faults: every(4 * 60_000, (i) => ({ target: "signer" as const, fault: { kind: "restHang", on: true }, forMs: 3_000 + ((i * 7919) % 7_001) }), 61_000) }),
  },
  // (c) the daemon is killed 4 s before every boundary (inside the hand-out) and is back 1.5 s later
  { scenario: "busy-daemon-kill-handout", spec: busy({ faults: atBoundaries(4_000, () => ({ target: "daemon" as const, downMs: 1_500 })) }) },
  // (d) every standby restarts just after each boundary, so the epoch begins with all of them cold;
  // the signer crashes 20 min later, when only a standby warmed since can take over
  {
    scenario: "busy-standbys-cold",
    spec: busy({
      faults: [
        ...atBoundaries(0, () => ({ target: "standbys" as const, fault: { kind: "crash" } }), 3_000),
        ...atBoundaries(0, () => ({ target: "signer" as const, fault: { kind: "crash" } }), 20 * 60_000),
      ].sort((a, b) => a.atMs - b.atMs),
    }),
  },
  // (e) the signer's height is stuck for a minute every 10 min (it would sign on a stale tip)
  { scenario: "busy-signer-stuck-60s", spec: busy({ faults: every(10 * 60_000, signer({ kind: "stuck", on: true }, 60_000)) }) },
];

const selected = values.only ? rows.filter((r) => values.only!.split(",").includes(r.scenario)) : rows;
const header = ["scenario", "scheduled", "produced", "double", "missed", "unproducible", "lost: reasons", "coverage %", "sign overlap ms", "shared windows", "key overlap ms", "failover p50 ms", "failover p99 ms", "wall s"];
if (!values.json) {
  console.log(`jorm-master bench: ITN chain (2 s slots, 43200 slots/epoch, density ${ITN_CHAIN.leaderSlotsPerEpoch} leader slots/epoch; busy-*: 1800 slots/epoch, ${BUSY_CHAIN.leaderSlotsPerEpoch} of them the pool's, every other epoch's first and last, for ${BUSY_SHARE} of the days), ${runners} runners, key mode ${keyMode}, ${values.days} days per scenario, virtual time`);
  console.log(header.join(" | "));
}
/** The seed's values for the seed's keys; the resolved defaults for the rest. */
const BENCH_CONFIG = { eventActionMs: 15_000, startBeforeEventMs: 600_000, bootCatchUpMs: 1_500_000, maxBootMs: 1_800_000, maxOffset: 5 };
let failed = false;
for (const row of selected) {
  const r = await runScenario({
    chain: ITN_CHAIN,
    runners,
    keyMode,
    durationMs,
    warmStart: true,
    scheduleComputeMs: 5_000,
    faults: [],
    // The seed's values for the seed's keys; the resolved defaults for the rest.
    config: BENCH_CONFIG,
    ...row.spec,
  });
  const out = {
    scenario: row.scenario,
    scheduled: r.audit.scheduled,
    produced: r.audit.produced,
    double_produced: r.audit.doubleProduced,
    missed: r.audit.scheduled - r.audit.produced - r.audit.neverScheduled,
    // "Unproducible" in the strict sense: no runner was Running with the slot in its schedule at any
    // point of the epoch. Coverage is against every scheduled slot; each lost slot has a reason.
    unproducible: r.audit.neverScheduled,
    lost_reasons: r.audit.lossReasons,
    stale_blocks: r.audit.staleBlocks,
    coverage_pct: Math.round(r.audit.coverageAllPct * 100) / 100,
    sign_overlap_ms: r.signOverlapMs,
    // Windows in which two processes could sign the slot, one after the other included.
    shared_windows: r.sharedWindows,
    // Looser: two processes holding the key in a window even without the slot in a computed schedule
    // (a --secret runner restarted by systemd holds it from boot, before it has computed anything).
    key_overlap_ms: r.audit.overlapMs,
    failover_p50_ms: percentile(r.failoverMs, 50),
    failover_p99_ms: percentile(r.failoverMs, 99),
    failovers: r.failoverMs.length,
    ticks: r.ticks,
    wall_s: Math.round(r.wallMs / 100) / 10,
  };
  const why = (() => {
    if (!values.why) return null;
    const w = r.world;
    const c = simConfig(runners, { ...BENCH_CONFIG, ...row.spec.config });
    const opts = { fromMs: r.fromMs, toMs: r.toMs, guardMs: c.slotGuardMs, marginMs: c.slotMarginMs, loopPeriodMs: c.loopPeriodMs };
    const { slots } = w.audit(opts);
    return explainStaleTips(w.journal.entries(), w.chain, slots, { ...opts, viewLagMs: (id, inc) => defaultViewLagMs(w.chain, id, inc) });
  })();
  if (out.double_produced !== 0 || out.sign_overlap_ms !== 0 || out.shared_windows !== 0) failed = true;
  if (why) {
    Object.assign(out, { stale_tip_gaps: why.filter((x) => x.gapAfterLook).length, stale_tip_why: why });
  }
  if (values.json) console.log(JSON.stringify(out));
  else {
    console.log(
      [
        out.scenario,
        out.scheduled,
        out.produced,
        out.double_produced,
        out.missed,
        out.unproducible,
        Object.entries(out.lost_reasons).map(([k, v]) => `${k} ${v}`).join(", ") || "-",
        out.coverage_pct,
        out.sign_overlap_ms,
        out.shared_windows,
        out.key_overlap_ms,
        out.failover_p50_ms ?? "-",
        out.failover_p99_ms ?? "-",
        out.wall_s,
      ].join(" | "),
    );
    const spe = r.world.chain.slotsPerEpoch;
    for (const x of why ?? []) {
      const rel = (t: number | null) => (t === null ? "never" : `${t - x.windowOpensMs >= 0 ? "+" : ""}${t - x.windowOpensMs} ms`);
      console.log(
        `  stale ${x.epoch}.${x.slot}: lacked the network's block of ${x.epoch * spe + x.slot - x.lackedAbs} slot(s) before; another runner showed it ${rel(x.shownMs)}, the first look after ${rel(x.firstLookMs)} from the window's opening: ${x.gapAfterLook ? "a gap between windows followed (avoidable)" : "no gap between windows before it (unavoidable)"}`,
      );
    }
    if (why) console.log(`  stale_tip: ${why.length} lost, ${why.filter((x) => x.gapAfterLook).length} with a gap between windows after the first look`);
  }
}
if (failed) {
  console.error("bench: a scenario produced a slot twice or let two runners sign one: the guarantee failed");
  process.exit(1);
}
