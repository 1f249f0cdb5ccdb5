// Log levels of the outcome lines: a warning must mean something needs attention, so the routine
// boundary hand-out (promote for "boundary", the strip, the "is not the signer" demotes of
// co-holders from the boundary on) is info; fences that answer a real problem stay warnings.
import { describe, expect, test } from "bun:test";
import { outcomeLevel, type LogLevel } from "../../src/master/loop.ts";
import { runScenario } from "../../src/lab/scenario.ts";
import { testChainParams } from "../../src/sim/chain.ts";
import type { Action, Memory, Outcome } from "../../src/master/types.ts";

const BOUNDARY_MS = 600_000;
const boundary: Memory["boundary"] = { epoch: 11, coHolders: [1, 2] };
const after = { boundary, boundaryStartMs: BOUNDARY_MS, nowMs: BOUNDARY_MS + 50 };
const before = { ...after, nowMs: BOUNDARY_MS - 5_000 };
const none = { boundary: null, boundaryStartMs: null, nowMs: BOUNDARY_MS + 50 };

const out = (action: Action, ok = true, transient?: boolean): Outcome => ({ action, ok, detail: "d", ...(transient === undefined ? {} : { transient }) });
const demote = (id: number, reason = `#${id} is not the signer`): Action => ({ kind: "demote", id, reason, leaderIds: [1] });
const handOut: Action = { kind: "promote", id: 1, purpose: "boundary", leaseAtMs: BOUNDARY_MS + 500, reason: "epoch 11 starts in 5 s" };
const sign: Action = { kind: "promote", id: 1, purpose: "sign", reason: "signer #0 is down" };

describe("outcomeLevel", () => {
  const cases: [string, Outcome, Parameters<typeof outcomeLevel>[1], LogLevel][] = [
    ["the hand-out's promotion", out(handOut), before, "info"],
    ["the strip at the boundary", out(demote(1, "epoch 11 began: #1 computed its schedule and gives the key back")), after, "info"],
    ["the strip queued behind the computation", out(demote(2, "epoch 11 began: #2 computed its schedule and gives the key back"), false, true), after, "info"],
    ["a co-holder still listing the key after the boundary", out(demote(1)), after, "info"],
    ["a failed hand-out promotion", out(handOut, false), before, "error"],
    ["a co-holder demote that failed for good", out(demote(1), false), after, "error"],
    ["a demote of a co-holder before the boundary (a failover) is not routine", out(demote(1)), before, "warn"],
    ["a demote of a runner that is not a co-holder", out(demote(0)), after, "warn"],
    ["any demote without a hand-out", out(demote(1)), none, "warn"],
    ["a promotion to signer", out(sign), after, "warn"],
    ["a freeze", out({ kind: "freeze", id: 1, cause: "fence", reason: "r" }), after, "warn"],
    ["a kill", out({ kind: "kill", id: 1, pid: 9, reason: "r" }), after, "warn"],
    ["a transient failure", out({ kind: "freeze", id: 0, cause: "fence", reason: "r" }, false, true), none, "warn"],
    ["a start", out({ kind: "start", id: 1, reason: "r" }), none, "info"],
    ["a disarm", out({ kind: "disarm", id: 1, reason: "r" }), after, "debug"],
    ["a tip report", out({ kind: "reportTip", height: 1, reason: "r" }), none, "debug"],
  ];
  for (const [name, o, hand, level] of cases) test(`${level}: ${name}`, () => expect(outcomeLevel(o, hand)).toBe(level));
});

test("a calm run logs every boundary hand-out at info, and no warning about it", async () => {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (msg: string) => lines.push({ level, msg });
  await runScenario({
    chain: testChainParams({ seed: 1, leaderSlotsPerEpoch: 8 }),
    runners: 3,
    keyMode: "rest",
    durationMs: 300_000,
    boot: { Bootstrapping: 5_000 },
    scheduleComputeMs: 2_000,
    faults: [],
    warmStart: true,
    config: { eventActionMs: 5_000, startBeforeEventMs: 20_000, bootCatchUpMs: 30_000, maxBootMs: 120_000, slotGuardMs: 400, slotMarginMs: 400 },
    log: { info: at("info"), warn: at("warn"), error: at("error"), debug: () => {} },
  });
  const routine = /takes the key to compute the new schedule|gives the key back|is not the signer/;
  const handOuts = lines.filter((l) => l.msg.includes("takes the key to compute the new schedule"));
  expect(handOuts.length).toBeGreaterThanOrEqual(4);
  expect(lines.filter((l) => l.level !== "info" && routine.test(l.msg))).toEqual([]);
  expect(lines.filter((l) => l.level === "info" && l.msg.includes("gives the key back")).length).toBeGreaterThanOrEqual(4);
}, 60_000);
