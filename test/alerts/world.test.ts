// The alert mapping over real tick reports: the master on a simulated world (virtual time), alerts
// delivered over HTTP to a local receiver. Calm epochs (boundary hand-outs included) raise nothing
// alarming; a crashed signer raises a failover.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createAlerts } from "../../src/alerts/index.ts";
import { masterOnWorld, simConfig } from "../../src/lab/harness.ts";
import { MasterMetrics } from "../../src/metrics/master.ts";
import { testChainParams } from "../../src/sim/chain.ts";
import { World } from "../../src/sim/world.ts";
import { FAST_BOOT } from "../sim/helpers.ts";

const received: { kind: string; title: string; at: string }[] = [];
const receiver = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    received.push((await req.json()) as (typeof received)[number]);
    return new Response("ok");
  },
});
afterAll(() => receiver.stop(true));

const chain = testChainParams({ leaderSlotsPerEpoch: 8 });
const epochMs = chain.slotDurationMs * chain.slotsPerEpoch;
let calm: string[] = [];
let afterCrash: string[] = [];
let scrape = "";

beforeAll(async () => {
  const world = new World({ chain, runners: 3, keyMode: "boot", boot: FAST_BOOT, restTimeoutMs: 300, scheduleComputeMs: 500 });
  const config = simConfig(3, {
    keyMode: "boot",
    restTimeoutMs: 300,
    // room for the boundary hand-out (slot 1's window opens late enough to strip the co-holders)
    slotGuardMs: 400,
    slotMarginMs: 400,
    eventActionMs: 5_000,
    alerts: { channels: [{ name: "hook", type: "webhook", preset: "json", url: `http://127.0.0.1:${receiver.port}/hook` }], dedupWindowMs: 600_000, rateLimit: 100, rateWindowMs: 600_000, retries: 0, timeoutMs: 2_000 },
  });
  const alerts = createAlerts(config, { info() {}, warn() {} }, { host: "sim" });
  const metrics = new MasterMetrics({ version: "t", alerts: alerts.counts });
  for (const id of world.ids) await world.services.start(id);
  let started = false;
  const master = masterOnWorld(world, config, {
    onTick: (r) => {
      metrics.update(r, config, { poolToolFailures: 0 });
      alerts.onTick(r, config);
      if (!started) alerts.started("first observation");
      started = true;
    },
  });
  const ac = new AbortController();
  const done = master.run(ac.signal);
  const t0 = world.clock.now();
  // Warm-up epoch, then two calm epochs (two boundary hand-outs).
  await world.runUntil(t0 + epochMs);
  const warm = received.length;
  await world.runUntil(t0 + 3 * epochMs - 5_000);
  await alerts.stopping("flush", 2_000).catch(() => {});
  calm = received.slice(warm).map((e) => e.kind);
  const mark = received.length;
  world.inject(master.memory.signer!, { kind: "crash" });
  await world.runUntil(t0 + 3.5 * epochMs);
  ac.abort();
  let finished = false;
  void done.then(() => (finished = true));
  for (let t = world.clock.now() + 100; !finished; t += 100) await world.runUntil(t);
  await Bun.sleep(200);
  afterCrash = received.slice(mark).map((e) => e.kind);
  scrape = metrics.render();
});

test("calm epochs with boundary hand-outs raise no alarm", () => {
  expect(received[0]!.kind).toBe("daemon_start");
  expect(calm.filter((k) => k !== "daemon_stop")).toEqual([]);
});

test("a crashed signer raises a failover alert at the local receiver, and nothing critical", () => {
  expect(afterCrash).toContain("failover");
  expect(afterCrash).not.toContain("two_holders");
  expect(afterCrash).not.toContain("slot_missed");
});

test("deliveries are counted in jorm_master_alerts_total", () => {
  const sent = scrape.split("\n").find((l) => l.startsWith('jorm_master_alerts_total{channel="hook",result="sent"} '));
  expect(Number(sent?.split(" ")[1])).toBe(received.length);
});

test("the metrics agree: no slot counted missed after the crash (JormMasterSlotMissed would fire on it)", () => {
  const missed = scrape.split("\n").find((l) => l.startsWith('jorm_master_leader_slots_total{outcome="missed"} '));
  expect(missed).toBe('jorm_master_leader_slots_total{outcome="missed"} 0');
});
