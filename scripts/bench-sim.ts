#!/usr/bin/env bun
// How fast the virtual-time simulator runs: slots of ITN chain time per second of wall time, with
// 3 and with 32 runners. The driver is what the master does at minimum: poll every runner's node
// stats once per slot through the real NodeApi parser and deadline. Runner 0 holds the key from
// boot (--secret), the others are passive; ITN parameters, 30 s schedule computation.
//
//   bun run bench:sim                 # a week of chain time with 3 runners, a day with 32
//   bun run bench:sim --json          # one JSON object per line
//   bun run bench:sim --days 1 --runners 3,8

import { parseArgs } from "node:util";
import { ITN_CHAIN } from "../src/sim/chain.ts";
import { World } from "../src/sim/world.ts";

const DAY_MS = 86_400_000;
/** ITN needs ~30 s to compute a schedule; keep it in so the enclave lock is exercised */
const ITN_SCHEDULE_COMPUTE_MS = 30_000;

interface Scenario {
  runners: number;
  days: number;
}

export interface BenchResult {
  runners: number;
  chainDays: number;
  slots: number;
  wallMs: number;
  slotsPerSecond: number;
  apiCalls: number;
  blocks: number;
  auditMs: number;
}

export async function benchScenario({ runners, days }: Scenario): Promise<BenchResult> {
  const world = new World({
    chain: ITN_CHAIN,
    runners,
    keyMode: (id) => (id === 0 ? "boot" : "rest"),
    scheduleComputeMs: ITN_SCHEDULE_COMPUTE_MS,
  });
  const { clock, chain } = world;
  const t0 = clock.now();
  const end = t0 + days * DAY_MS;
  let apiCalls = 0;
  let stop = false;
  for (const id of world.ids) await world.services.start(id);
  const driver = (async () => {
    while (!stop) {
      await Promise.all(
        world.ids.map(async (id) => {
          apiCalls++;
          await world.api(id).stats();
        }),
      );
      await clock.sleep(chain.slotMs);
    }
  })();
  const started = performance.now();
  await world.runUntil(end);
  const wallMs = performance.now() - started;
  stop = true;
  await clock.advance(chain.slotMs);
  await driver;
  const auditStart = performance.now();
  const report = world.audit({ fromMs: t0, toMs: end });
  const auditMs = performance.now() - auditStart;
  const slots = Math.round((end - t0) / chain.slotMs);
  return {
    runners,
    chainDays: days,
    slots,
    wallMs: Math.round(wallMs),
    slotsPerSecond: Math.round((slots * 1000) / wallMs),
    apiCalls,
    blocks: report.produced,
    auditMs: Math.round(auditMs),
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      json: { type: "boolean", default: false },
      days: { type: "string" },
      runners: { type: "string", default: "3,32" },
    },
  });
  const counts = values.runners.split(",").map((s) => Number(s.trim()));
  if (counts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--runners: expected a list like 3,32, got ${values.runners}`);
  for (const runners of counts) {
    // A week with few runners (the acceptance figure); a day with many keeps the bench short.
    const days = values.days !== undefined ? Number(values.days) : runners <= 3 ? 7 : 1;
    const r = await benchScenario({ runners, days });
    if (values.json) console.log(JSON.stringify({ bench: "sim", ...r }));
    else
      console.log(
        `${String(r.runners).padStart(2)} runners: ${r.chainDays} d of ITN chain (${r.slots} slots) in ${(r.wallMs / 1000).toFixed(1)} s ` +
          `= ${r.slotsPerSecond} slots/s; ${r.apiCalls} stats calls, ${r.blocks} blocks, audit ${r.auditMs} ms`,
      );
  }
}

if (import.meta.main) await main();
