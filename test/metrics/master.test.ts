// The registry fed by the real master over an in-process World (virtual time), then scraped over
// HTTP and, where promtool is installed (always under CI), checked by `promtool check metrics`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { masterOnWorld, simConfig } from "../../src/lab/harness.ts";
import type { TickReport } from "../../src/master/loop.ts";
import { emptyRegistryMemory, type HostEntry, type RegistryRound } from "../../src/master/registry.ts";
import { MasterMetrics, SLOT_OUTCOME_GRACE_MS } from "../../src/metrics/master.ts";
import { serveMetrics, parseListen } from "../../src/metrics/server.ts";
import { testChainParams } from "../../src/sim/chain.ts";
import { World } from "../../src/sim/world.ts";
import { FAST_BOOT } from "../sim/helpers.ts";

/** Where .ci/run collects scrapes for `promtool check metrics` */
const SCRAPE_DIR_ENV = "JORM_METRICS_SCRAPE_DIR";

/** The value of one sample line `name{labels} value`, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const chain = testChainParams({ leaderSlotsPerEpoch: 8 });
const epochMs = chain.slotDurationMs * chain.slotsPerEpoch;

let text = "";
let textBeforeCrash = "";
let textAfterCrash = "";
let audit: ReturnType<World["audit"]>;
let auditBefore: ReturnType<World["audit"]>;
let ticks = 0;
let lastReport: TickReport | null = null;
const metrics = new MasterMetrics({ version: "1.2.3-test" });

beforeAll(async () => {
  const world = new World({ chain, runners: 3, boot: FAST_BOOT, restTimeoutMs: 300, scheduleComputeMs: 500 });
  const config = simConfig(3, { restTimeoutMs: 300 });
  for (const id of world.ids) await world.services.start(id);
  const master = masterOnWorld(world, config, {
    onTick: (r) => {
      ticks++;
      lastReport = r;
      metrics.update(r, config, { poolToolFailures: master.poolToolFailures });
    },
  });
  const ac = new AbortController();
  const done = master.run(ac.signal);
  const t0 = world.clock.now();
  // Two epochs warm, then the signer crashes, then well past the grace for the last slots. Both
  // looks are mid-epoch: at a boundary the enclaves are computing and /leaders does not answer.
  await world.runUntil(t0 + 2.5 * epochMs);
  textBeforeCrash = metrics.render();
  auditBefore = world.audit({ fromMs: t0, toMs: world.clock.now() - SLOT_OUTCOME_GRACE_MS - chain.slotDurationMs, guardMs: 0, marginMs: 0 });
  const signer = master.memory.signer;
  if (signer !== null) world.inject(signer, { kind: "crash" });
  await world.runUntil(t0 + 3 * epochMs);
  textAfterCrash = metrics.render();
  // The next signer's REST hangs: it must be fenced (frozen) before anyone else is promoted.
  const second = master.memory.signer;
  if (second !== null) world.inject(second, { kind: "restHang" });
  await world.runUntil(t0 + 3.5 * epochMs + SLOT_OUTCOME_GRACE_MS);
  const settledTo = world.clock.now() - SLOT_OUTCOME_GRACE_MS - chain.slotDurationMs;
  audit = world.audit({ fromMs: t0, toMs: settledTo, guardMs: 0, marginMs: 0 });
  ac.abort();
  let finished = false;
  void done.then(() => (finished = true));
  for (let t = world.clock.now() + 100; !finished; t += 100) await world.runUntil(t);
  text = metrics.render();
});

describe("MasterMetrics over a simulated world", () => {
  test("one tick-duration observation per tick, and the tick counter agrees", () => {
    expect(ticks).toBeGreaterThan(100);
    expect(sample(text, "jorm_master_ticks_total")).toBe(ticks);
    expect(sample(text, "jorm_master_tick_duration_seconds_count")).toBe(ticks);
    expect(sample(text, 'jorm_master_tick_duration_seconds_bucket{le="+Inf"}')).toBe(ticks);
  });

  test("a series per runner for up, state, height, lag, key held, events left, restarts", () => {
    for (const id of [0, 1, 2]) {
      const r = `{runner="${id}"}`;
      expect(sample(text, `jorm_master_runner_up${r}`)).toBe(1);
      expect(sample(text, `jorm_master_runner_node_state{runner="${id}",state="Running"}`)).toBe(1);
      expect(sample(text, `jorm_master_runner_height${r}`)).toBeGreaterThan(0);
      expect(sample(text, `jorm_master_runner_lag_blocks${r}`)).toBeGreaterThanOrEqual(0);
      expect(sample(text, `jorm_master_runner_key_held${r}`)).toBeOneOf([0, 1]);
      expect(sample(text, `jorm_master_runner_restarts_total${r}`)).toBeGreaterThanOrEqual(0);
      expect(sample(text, `jorm_master_runner_start_backoff_seconds${r}`)).toBe(0);
    }
    // The signer's logs were read: it knows how many events of the epoch are left.
    const signer = lastReport!.memory.signer!;
    expect(sample(text, `jorm_master_runner_leader_events_left{runner="${signer}"}`)).toBeGreaterThanOrEqual(0);
    expect(sample(text, `jorm_master_runner_signer{runner="${signer}"}`)).toBe(1);
  });

  test("exactly one key holder in steady state", () => {
    expect(sample(text, "jorm_master_key_holders")).toBe(1);
    expect(sample(textBeforeCrash, "jorm_master_key_holders")).toBe(1);
  });

  test("boundary hand-outs are counted by result and reason", () => {
    // Four boundaries crossed (4.5 epochs), each handed out or skipped (with a reason), once.
    const lines = text.split("\n").filter((l) => l.startsWith("jorm_master_boundary_handouts_total{"));
    const total = lines.reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
    expect(total).toBe(4);
    // 1 s slots with the default 1 s slot_guard leave slot 1 no room for the dead-man switch.
    expect(sample(text, 'jorm_master_boundary_handouts_total{result="skipped",reason="no_lease_room"}')).toBe(4);
  });

  test("warm runners: those holding the epoch's remaining slots, counted and named", () => {
    for (const t of [textBeforeCrash, text]) {
      const per = [0, 1, 2].map((id) => sample(t, `jorm_master_runner_warm{runner="${id}"}`)!);
      expect(per.every((x) => x === 0 || x === 1)).toBe(true);
      expect(sample(t, "jorm_master_warm_runners")).toBe(per.reduce((a, x) => a + x, 0));
    }
    const signer = [0, 1, 2].find((id) => sample(textBeforeCrash, `jorm_master_runner_signer{runner="${id}"}`) === 1)!;
    expect(sample(textBeforeCrash, `jorm_master_runner_warm{runner="${signer}"}`)).toBe(1);
  });

  test("the crash of the signer shows as a leader change and a restart", () => {
    const before = sample(textBeforeCrash, "jorm_master_leader_changes_total")!;
    expect(before).toBeGreaterThanOrEqual(1);
    expect(sample(text, "jorm_master_leader_changes_total")).toBeGreaterThan(before);
    const restarts = [0, 1, 2].map((id) => sample(text, `jorm_master_runner_restarts_total{runner="${id}"}`)!);
    expect(restarts.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
  });

  test("fences are counted by kind, every kind present from the start; a hanging signer is frozen", () => {
    for (const kind of ["freeze", "kill", "demote", "retire"]) expect(sample(textBeforeCrash, `jorm_master_fences_total{kind="${kind}"}`)).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'jorm_master_fences_total{kind="freeze"}')).toBeGreaterThan(sample(textAfterCrash, 'jorm_master_fences_total{kind="freeze"}')!);
    expect(sample(text, 'jorm_master_actions_total{kind="freeze",result="ok"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, "jorm_master_leader_changes_total")).toBeGreaterThan(sample(textAfterCrash, "jorm_master_leader_changes_total")!);
  });

  test("slots seen in leader logs settle as produced, matching the simulator's own audit while nothing fails", () => {
    const at = (t: string, outcome: string) => sample(t, `jorm_master_leader_slots_total{outcome="${outcome}"}`)!;
    // Steady state: every produced slot shows in a log and is counted once.
    expect(at(textBeforeCrash, "produced")).toBeGreaterThan(0);
    expect(at(textBeforeCrash, "produced")).toBe(auditBefore.produced);
    expect(at(textBeforeCrash, "missed")).toBe(auditBefore.missed);
    // A crashed runner takes its unread logs with it: never more than the audit, and only growing.
    expect(at(text, "produced")).toBeGreaterThan(at(textBeforeCrash, "produced"));
    expect(at(text, "produced")).toBeLessThanOrEqual(audit.produced);
    expect(at(text, "missed")).toBeLessThanOrEqual(audit.missed + audit.unproducible);
  });

  test("daemon gauges: epoch, last observation, build info", () => {
    expect(sample(text, "jorm_master_epoch")).toBeGreaterThanOrEqual(3);
    expect(sample(text, "jorm_master_last_observation_timestamp_seconds")).toBe(lastReport!.observation.atMs / 1000);
    expect(sample(text, 'jorm_master_build_info{version="1.2.3-test"}')).toBe(1);
    expect(sample(text, "jorm_master_pooltool_failures_total")).toBe(0);
  });

  test("counters end in _total and every family has HELP and TYPE", () => {
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!] as const);
    const helps = new Set([...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]!));
    for (const [name, type] of types) {
      expect(name.startsWith("jorm_master_")).toBe(true);
      expect(helps.has(name)).toBe(true);
      if (type === "counter") expect(name.endsWith("_total")).toBe(true);
    }
  });
});

describe("the key_holders alert and the boundary hand-out", () => {
  // slot_guard leaves room for the hand-out (the default 1 s guard on 1 s slots does not), so every
  // boundary puts the key on all three runners for a few seconds.
  test("key_holders - boundary_coholders > 1 never fires in a calm run, though each boundary puts 3 keys out", async () => {
    const world = new World({ chain, runners: 3, boot: FAST_BOOT, restTimeoutMs: 300, scheduleComputeMs: 500 });
    const config = simConfig(3, { restTimeoutMs: 300, eventActionMs: 5_000, slotGuardMs: 400, slotMarginMs: 400 });
    for (const id of world.ids) await world.services.start(id);
    const m = new MasterMetrics({ version: "t" });
    const gauge = (name: string) => m.families().find((f) => f.name === name)?.samples[0]?.value;
    const series: { holders: number; coHolders: number }[] = [];
    const master = masterOnWorld(world, config, {
      onTick: (r) => {
        m.update(r, config, { poolToolFailures: 0 });
        series.push({ holders: gauge("jorm_master_key_holders")!, coHolders: gauge("jorm_master_boundary_coholders")! });
      },
    });
    const ac = new AbortController();
    const done = master.run(ac.signal);
    await world.runUntil(world.clock.now() + 3.5 * epochMs);
    ac.abort();
    let finished = false;
    void done.then(() => (finished = true));
    for (let t = world.clock.now() + 100; !finished; t += 100) await world.runUntil(t);
    expect(Math.max(...series.map((x) => x.holders))).toBe(3);
    expect(series.filter((x) => x.coHolders === 2).length).toBeGreaterThan(0);
    expect(series.filter((x) => x.holders - x.coHolders > 1)).toEqual([]);
    // Outside a hand-out the gauge is 0 and the signer is the one holder.
    expect(series.at(-1)).toEqual({ holders: 1, coHolders: 0 });
    expect(m.render()).toContain("# TYPE jorm_master_boundary_coholders gauge");
  });
});

describe("slot outcomes", () => {
  test("a pool slot no log shows as a block is missed once the grace has passed, not before", () => {
    const m = new MasterMetrics({ version: "t" });
    const settings = { block0Hash: "x", block0TimeMs: 0, slotDurationMs: 1000, slotsPerEpoch: 60, consensusVersion: "genesis", currSlotStartTimeMs: null };
    const config = simConfig(1);
    const report = (atMs: number, events: number[], logs: TickReport["observation"]["runners"][number]["logs"]): TickReport => ({
      startedMs: atMs,
      durationMs: 2,
      observation: { atMs, settings, majorityMax: null, runners: [{ id: 0, unit: null, stats: null, leaders: null, logs }] },
      views: [],
      plan: { fences: [], promote: null, other: [], wakeAtMs: atMs + 500, notes: [] },
      outcomes: [],
      memory: { signer: null, events, knownEpochs: [], runners: {}, boundary: null, tip: { lastSentMs: 0, lastSentHeight: 0 }, lastTickMs: atMs, failures: {} },
    });
    const log = (slot: number, block: boolean) => ({
      createdAtMs: 0,
      scheduledAtMs: slot * 1000,
      scheduledAt: { epoch: 0, slot },
      wakeAtMs: null,
      finishedAtMs: null,
      status: block ? ({ kind: "block", block: "b", parent: null, chainLength: 1 } as const) : ({ kind: "rejected", reason: "r" } as const),
      enclaveLeaderId: 1,
    });
    m.update(report(5_000, [10, 20], { ok: true, value: [log(10, true), log(20, false)] }), config, { poolToolFailures: 0 });
    m.update(report(21_000 + SLOT_OUTCOME_GRACE_MS - 3, [10, 20], null), config, { poolToolFailures: 0 });
    let t = m.render();
    expect(sample(t, 'jorm_master_leader_slots_total{outcome="produced"}')).toBe(1);
    expect(sample(t, 'jorm_master_leader_slots_total{outcome="missed"}')).toBe(0);
    m.update(report(21_000 + SLOT_OUTCOME_GRACE_MS - 2, [10, 20], null), config, { poolToolFailures: 2 });
    t = m.render();
    expect(sample(t, 'jorm_master_leader_slots_total{outcome="missed"}')).toBe(1);
    // Settled once: later ticks do not count it again.
    m.update(report(90_000, [10, 20], { ok: true, value: [log(10, true), log(20, false)] }), config, { poolToolFailures: 2 });
    t = m.render();
    expect(sample(t, 'jorm_master_leader_slots_total{outcome="produced"}')).toBe(1);
    expect(sample(t, 'jorm_master_leader_slots_total{outcome="missed"}')).toBe(1);
    expect(sample(t, "jorm_master_pooltool_failures_total")).toBe(2);
  });
});

describe("metrics server", () => {
  let server: ReturnType<typeof serveMetrics>;
  beforeAll(() => {
    server = serveMetrics("127.0.0.1:0", () => text);
  });
  afterAll(() => server.stop());

  test("GET /metrics serves the text format; other paths 404", async () => {
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const body = await res.text();
    expect(body).toBe(text);
    expect((await fetch(server.url.replace("/metrics", "/nope"))).status).toBe(404);
    expect((await fetch(server.url, { method: "POST" })).status).toBe(405);
  });

  test("promtool check metrics accepts the scrape (CI checks the saved scrape again in its promtool step)", async () => {
    const body = await (await fetch(server.url)).text();
    await expectPromtoolAccepts(body, "world.prom");
  });

  test("parseListen reads host:port and [v6]:port; a bad address is a user error", () => {
    expect(parseListen("127.0.0.1:9310")).toEqual({ hostname: "127.0.0.1", port: 9310 });
    expect(parseListen("[::1]:9310")).toEqual({ hostname: "::1", port: 9310 });
    expect(() => parseListen("9310")).toThrow('expected "host:port"');
  });

  test("a port already in use fails with a message naming metrics_listen", () => {
    expect(() => serveMetrics(`127.0.0.1:${server.port}`, () => "")).toThrow(/metrics_listen 127\.0\.0\.1:\d+: cannot listen/);
  });
});

/** Saves the scrape for CI's promtool step (SCRAPE_DIR_ENV) and has promtool check it, if installed. */
async function expectPromtoolAccepts(body: string, saveAs: string): Promise<void> {
  const saveDir = process.env[SCRAPE_DIR_ENV];
  if (saveDir) writeFileSync(join(saveDir, saveAs), body);
  const promtool = Bun.which("promtool");
  if (!promtool) {
    console.warn("skipped: promtool not installed");
    return;
  }
  const p = Bun.spawn([promtool, "check", "metrics"], { stdin: new Blob([body]), stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  expect(`${out}${err}`.trim()).toBe("");
  expect(code).toBe(0);
}

describe("cluster mode: the host registry's metrics (issue 13 point 6)", () => {
  const round = (atMs: number, signer: string | null, hosts: number, leaseChanges: number): RegistryRound => ({
    atMs,
    self: "host-a",
    read: { signer: signer === null ? null : { host: signer, lease: "1", createRevision: 5 }, entries: Array.from({ length: hosts }, (_, i) => ({ host: `h${i}` }) as HostEntry), invalid: [] },
    memory: { ...emptyRegistryMemory(), leaseChanges },
  });

  test("lease changes counted, the signing host as a labelled 1, hosts in the registry, when read", () => {
    const m = new MasterMetrics({ version: "t" });
    const before = m.render();
    expect(sample(before, "jorm_master_cluster_lease_changes_total")).toBeUndefined();
    expect(before).not.toContain("jorm_master_cluster_signer{");
    m.updateRegistry(round(1_700_000_000_000, "host-b", 3, 0));
    let t = m.render();
    expect(sample(t, "jorm_master_cluster_lease_changes_total")).toBe(0);
    expect(sample(t, 'jorm_master_cluster_signer{host="host-b"}')).toBe(1);
    expect(sample(t, "jorm_master_cluster_hosts")).toBe(3);
    expect(sample(t, "jorm_master_cluster_registry_read_timestamp_seconds")).toBe(1_700_000_000);
    m.updateRegistry(round(1_700_000_002_000, null, 2, 1));
    t = m.render();
    expect(sample(t, "jorm_master_cluster_lease_changes_total")).toBe(1);
    expect(t).not.toContain("jorm_master_cluster_signer{");
    expect(sample(t, "jorm_master_cluster_hosts")).toBe(2);
  });

  test("promtool check metrics accepts a cluster-mode scrape", async () => {
    const m = new MasterMetrics({ version: "t" });
    m.updateRegistry(round(1_700_000_000_000, "host-b", 3, 2));
    const body = m.render();
    await expectPromtoolAccepts(body, "cluster.prom");
  });
});
