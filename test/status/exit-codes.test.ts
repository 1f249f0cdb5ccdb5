// The status check's exit codes, as a table: monitoring-plugin convention, fail closed. Every row
// names the evidence; the boundary hand-out is recognised from the time, the co-holders' armed
// dead-man switches (read from systemd) and their leader logs, never from the daemon's word.
// Codes are numbers on purpose: the table is the contract a check runner reads.
import { describe, expect, test } from "bun:test";
import type { UnitState } from "../../src/ports.ts";
import type { LeaderLog, NodeResult, NodeStats, Settings } from "../../src/node/types.ts";
import { statusModel, type StatusInput, type StatusRunnerInput } from "../../src/status/model.ts";
import { renderStatus } from "../../src/status/render.ts";
import type { StatusRegistry } from "../../src/status/cluster.ts";
import type { HostEntry } from "../../src/master/registry.ts";

// Slots of 1 s, 60 per epoch: epoch 10 starts at 600 000 ms, epoch 11 at 660 000 ms.
const settings: Settings = { block0Hash: "h", block0TimeMs: 0, slotDurationMs: 1000, slotsPerEpoch: 60, consensusVersion: "genesis_praos", currSlotStartTimeMs: null };
const MID_EPOCH = 620_500;
const BOUNDARY = 660_000;
const EVENT_ACTION_MS = 15_000;
const SLOT_GUARD_MS = 300;
/** Where decide arms a co-holder's switch: before slot 1's guarded window, less LEASE_SAFETY_MS */
const LEASE_AT = BOUNDARY + 1000 - SLOT_GUARD_MS - 100;

const unit = (id: number, over: Partial<UnitState> = {}): UnitState => ({
  id,
  activeState: "active",
  subState: "running",
  mainPid: 1000 + id,
  sinceMs: 0,
  restarts: 0,
  frozen: false,
  ...over,
});
const stats = (state: NodeStats["state"] = "Running"): NodeResult<NodeStats> => ({
  ok: true,
  value: { state, version: "jormungandr 0.8.19", height: 500, lastBlockDate: null, lastBlockTimeMs: null, lastReceivedBlockTimeMs: null, uptimeS: 100, nodeId: null },
});
const timeout: NodeResult<never> = { ok: false, error: { kind: "unreachable", reason: "timeout", message: "deadline" } };
const refused: NodeResult<never> = { ok: false, error: { kind: "unreachable", reason: "refused", message: "ECONNREFUSED" } };
const garbage: NodeResult<never> = { ok: false, error: { kind: "malformed", endpoint: "/api/v0/leaders", field: "leaders", message: "expected an array" } };
const booting: NodeResult<never> = { ok: false, error: { kind: "not_ready", status: 503, message: "" } };
const pending = (epoch: number, slot: number): LeaderLog => ({
  createdAtMs: 0,
  scheduledAtMs: (epoch * 60 + slot) * 1000,
  scheduledAt: { epoch, slot },
  wakeAtMs: null,
  finishedAtMs: null,
  status: { kind: "pending" },
  enclaveLeaderId: 1,
});

/** The runner's leader logs hold slots 30 and 50 of `epoch` (10: still ahead at MID_EPOCH) */
const withSlots = (r: StatusRunnerInput, epoch = 10): StatusRunnerInput => ({ ...r, logs: { ok: true, value: [pending(epoch, 30), pending(epoch, 50)] } });
type R = Partial<StatusRunnerInput> & { keys?: number[] };
const runner = (id: number, o: R = {}): StatusRunnerInput => ({
  id,
  unit: o.unit === undefined ? unit(id) : o.unit,
  stats: o.stats === undefined ? stats() : o.stats,
  leaders: o.leaders === undefined ? { ok: true, value: o.keys ?? [] } : o.leaders,
  logs: o.logs === undefined ? { ok: true, value: [] } : o.logs,
  deadManSwitch: o.deadManSwitch === undefined ? { armed: false, fireAtMs: null } : o.deadManSwitch,
});
const signer = (id = 0) => runner(id, { keys: [1] });
const armed = (fireAtMs = LEASE_AT) => ({ armed: true, fireAtMs });
const coHolder = (id: number, o: R = {}) => runner(id, { keys: [1], deadManSwitch: armed(), ...o });
const stopped = (id: number) => runner(id, { unit: unit(id, { activeState: "inactive", subState: "dead", mainPid: 0 }), stats: refused, leaders: refused, logs: refused });

const input = (runners: StatusRunnerInput[], over: Partial<StatusInput> = {}): StatusInput => ({
  nowMs: MID_EPOCH,
  cntRunners: runners.filter((r) => r.id < 3).length,
  runners,
  settings,
  pooltool: null,
  systemdError: null,
  systemdAsked: true,
  switchesError: null,
  handout: { eventActionMs: EVENT_ACTION_MS, slotGuardMs: SLOT_GUARD_MS },
  keyMode: "boot",
  ...over,
});

type Case = [name: string, runners: StatusRunnerInput[], code: number, verdict: string, over?: Partial<StatusInput>];

const cases: Case[] = [
  // 0 OK
  ["one signer, the standbys verified key-less", [signer(), runner(1), runner(2)], 0, "OK: #0 holds the key and is Running"],
  ["one signer; a stopped and a frozen runner cannot sign, a warm standby is left", [signer(), stopped(1), runner(2, { unit: unit(2, { frozen: true }), stats: timeout, leaders: timeout, logs: timeout }), runner(3)], 0, "OK:", { cntRunners: 4 }],
  ["one cold standby next to a warm one is no warning", [withSlots(signer()), withSlots(runner(1)), runner(2)], 0, "OK: #0 holds the key and is Running"],
  ["co-holders computing the new epoch count as warm", [withSlots(signer(), 11), coHolder(1), coHolder(2)], 0, "boundary hand-out to #1, #2", { nowMs: BOUNDARY + 200 }],
  ["a single-runner setup has no standby to miss", [signer()], 0, "OK: #0 holds the key and is Running"],
  ["a standby booting with key_mode rest cannot hold the key", [signer(), runner(1, { stats: booting, leaders: booting }), runner(2)], 0, "OK:", { keyMode: "rest" }],
  [
    "boundary hand-out before the boundary: co-holders with armed switches",
    [signer(), coHolder(1), coHolder(2)],
    0,
    "OK: #0 holds the key and is Running; boundary hand-out to #1, #2",
    { nowMs: BOUNDARY - 10_000 },
  ],
  ["boundary hand-out just after the boundary, before the strip", [signer(), coHolder(1), coHolder(2)], 0, "boundary hand-out to #1, #2", { nowMs: BOUNDARY + 200 }],
  [
    "a co-holder whose /leaders is locked by the computation is harmless while its switch is armed",
    [signer(), coHolder(1, { leaders: timeout }), runner(2)],
    0,
    "boundary hand-out to #1",
    { nowMs: BOUNDARY + 200 },
  ],

  // 1 WARNING
  ["a standby's /leaders hangs: it may hold the key", [signer(), runner(1, { leaders: timeout }), runner(2)], 1, "#1's key state is unknown"],
  ["a standby's /leaders answers garbage: it may hold the key", [signer(), runner(1, { leaders: garbage }), runner(2)], 1, "#1's key state is unknown"],
  ["a standby's REST is silent while its process runs", [signer(), runner(1, { stats: timeout, leaders: timeout, logs: timeout }), runner(2)], 1, "#1's key state is unknown"],
  ["a standby booting with key_mode boot may hold the key", [signer(), runner(1, { stats: booting, leaders: booting }), runner(2)], 1, "#1's key state is unknown", { keyMode: "boot" }],
  ["without systemd a refused REST does not prove a runner stopped", [signer(), runner(1, { unit: null, stats: refused, leaders: refused }), runner(2, { unit: null })], 1, "#1's key state is unknown", { systemdAsked: false, systemdError: "not asked (--rest-only)" }],
  ["no warm standby", [signer(), stopped(1), stopped(2)], 1, "no warm standby"],
  // Warm: holding this epoch's remaining slots (issue 10). Every standby cold means a failover loses them.
  ["every standby cold: none holds the slots left in the epoch", [withSlots(signer()), runner(1), runner(2)], 1, "no warm standby (#1, #2 lack epoch 10's schedule"],
  ["a standby whose leader logs cannot be read is not counted warm", [withSlots(signer()), runner(1, { logs: timeout }), stopped(2)], 1, "no warm standby"],
  ["a unit failed", [signer(), runner(1), runner(2, { unit: unit(2, { activeState: "failed", subState: "failed", mainPid: 0 }), stats: refused, leaders: refused })], 1, "#2's unit failed"],
  ["PoolTool unreachable", [signer(), runner(1), runner(2)], 1, "PoolTool: majority max unavailable", { pooltool: { majorityMax: null, error: "majority max unavailable: timeout" } }],
  ["systemd unreadable", [signer(), runner(1), runner(2)], 1, "systemd: cannot read unit states", { systemdError: "cannot read unit states: systemctl exit 1: Failed to connect to bus" }],
  [
    "after the strip was queued: the co-holder's /leaders waits behind it and its switch is disarmed",
    [signer(), runner(1, { leaders: timeout, deadManSwitch: { armed: false, fireAtMs: null } }), runner(2)],
    1,
    "#1's key state is unknown",
    { nowMs: BOUNDARY + 300 },
  ],
  ["a running unit beyond cnt_runners: its keys are not asked", [signer(), runner(1), runner(2), runner(3, { stats: null, leaders: null, logs: null })], 1, "#3's key state is unknown", { cntRunners: 3 }],

  // 2 CRITICAL
  ["no runner holds the key", [runner(0), runner(1), runner(2)], 2, "CRITICAL: no runner holds the key"],
  ["the only holder is frozen", [runner(0, { keys: [1], unit: unit(0, { frozen: true }) }), runner(1), runner(2)], 2, "#0 holds the key but is frozen"],
  ["the only holder is not Running", [runner(0, { keys: [1], stats: stats("Bootstrapping") }), runner(1), runner(2)], 2, "#0 holds the key but is Bootstrapping"],
  ["no known holder while a key state is unknown", [runner(0), runner(1, { leaders: timeout }), runner(2)], 2, "keys unknown for #1"],
  ["two holders mid-epoch", [signer(), runner(1, { keys: [1] }), runner(2)], 2, "2 runners may sign outside a hand-out (#0, #1)"],
  ["two holders mid-epoch, even with a switch armed", [signer(), coHolder(1)], 2, "2 runners may sign outside a hand-out (#0, #1)"],
  ["two holders at the boundary without an armed switch", [signer(), runner(1, { keys: [1] }), runner(2)], 2, "2 runners may sign outside a hand-out", { nowMs: BOUNDARY - 10_000 }],
  ["a hand-out whose switch fires after slot 1's window opened", [signer(), coHolder(1, { deadManSwitch: armed(BOUNDARY + 900) }), runner(2)], 2, "not before slot 1 of epoch 11", { nowMs: BOUNDARY - 10_000 }],
  ["a switch whose fire time is unreadable is no proof", [signer(), coHolder(1, { deadManSwitch: { armed: true, fireAtMs: null } }), runner(2)], 2, "2 runners may sign", { nowMs: BOUNDARY - 10_000 }],
  [
    "a co-holder with a leader event before its switch fires",
    [signer(), coHolder(1, { logs: { ok: true, value: [pending(10, 55)] } }), runner(2)],
    2,
    "#1 has a leader event at 10.55",
    { nowMs: BOUNDARY - 10_000 },
  ],
  ["the hand-out starts event_action before the boundary, not earlier", [signer(), coHolder(1), runner(2)], 2, "2 runners may sign", { nowMs: BOUNDARY - EVENT_ACTION_MS - 5_000 }],
  ["after slot 1's window opened, holders are holders again", [signer(), coHolder(1, { deadManSwitch: armed(BOUNDARY + 2_000) }), runner(2)], 2, "2 runners may sign", { nowMs: BOUNDARY + 800 }],
  ["with the switches unreadable (e.g. --rest-only) a hand-out is not recognised", [signer(), coHolder(1, { deadManSwitch: null }), runner(2)], 2, "dead-man switches unreadable", { nowMs: BOUNDARY - 10_000, switchesError: "systemctl exit 1: Failed to connect to bus" }],
  ["only co-holders hold the key: the signer is gone", [stopped(0), coHolder(1), coHolder(2)], 2, "only boundary co-holders hold the key (#1, #2)", { nowMs: BOUNDARY - 10_000 }],
  ["a leftover unit holding the key", [signer(), runner(1), runner(2), runner(3, { keys: [1] })], 2, "(#0, #3)", { cntRunners: 3 }],
];

describe("status exit codes", () => {
  for (const [name, runners, code, verdict, over] of cases) {
    test(`${code}: ${name}`, () => {
      const m = statusModel(input(runners, over));
      const text = renderStatus(m);
      expect({ code: m.exitCode as number, verdict: text.split("\n").at(-1) }).toMatchObject({ code, verdict: expect.stringContaining(verdict) });
    });
  }
});

describe("the boundary hand-out, shown as such", () => {
  test("the table marks co-holders `hand-out` and says when their switches fire; --json has it per runner and on top", () => {
    const m = statusModel(input([signer(), coHolder(1), coHolder(2, { leaders: timeout })], { nowMs: BOUNDARY - 10_000 }));
    expect(m.exitCode as number).toBe(0);
    const text = renderStatus(m);
    expect(text).toContain("boundary hand-out: #1, #2 hold the key to compute epoch 11's schedule; dead-man switches freeze them in 11 s at the latest");
    expect(text).toMatch(/#0 .* SIGNER /);
    expect(text).toMatch(/#1 .* hand-out /);
    expect(text).toMatch(/#2 .* hand-out /);
    const json = JSON.parse(JSON.stringify(m));
    expect(json.handout).toEqual({ epoch: 11, boundaryMs: BOUNDARY, coHolders: [1, 2], switchesFireByMs: LEASE_AT });
    expect(json.rows.map((r: { handout: boolean; signing: string }) => [r.handout, r.signing])).toEqual([
      [false, "signer"],
      [true, "hand-out"],
      [true, "hand-out"],
    ]);
    expect(json.state).toBe("OK");
  });

  test("no hand-out: handout is null and no row is one", () => {
    const m = statusModel(input([signer(), runner(1), runner(2)]));
    expect(m.handout).toBeNull();
    expect(m.rows.some((r) => r.handout)).toBe(false);
  });
});

describe("status in cluster mode (issue 13)", () => {
  const cl = (holder: string | null, error: string | null = null) => ({ cluster: { self: "host-a", holder, error } });
  test("another host holds the signer lease: key-less runners here are OK, not 'nobody signs'", () => {
    const m = statusModel(input([runner(0), runner(1), runner(2)], cl("host-b")));
    expect(m.exitCode).toBe(0);
    expect(m.verdict).toBe("host-b signs (it holds the etcd signer lease); this host's runners are key-less");
    // Without the cluster's answer the same runners are CRITICAL, as on one server
    expect(statusModel(input([runner(0), runner(1), runner(2)])).exitCode).toBe(2);
  });

  test("another host holds the lease and a runner here holds the key: CRITICAL, two hosts may sign", () => {
    const m = statusModel(input([signer(), runner(1), runner(2)], cl("host-b")));
    expect(m.exitCode).toBe(2);
    expect(m.verdict).toContain("host-b holds the etcd signer lease, yet #0 on this host may sign");
  });

  test("this host holds the lease: judged as on one server; etcd unreadable or nobody holding it is said", () => {
    expect(statusModel(input([signer(), runner(1), runner(2)], cl("host-a"))).exitCode).toBe(0);
    expect(statusModel(input([runner(0), runner(1), runner(2)], cl(null, "etcd: no endpoint answered"))).verdict).toContain("(etcd: etcd: no endpoint answered)");
    expect(statusModel(input([runner(0), runner(1), runner(2)], cl(null))).verdict).toContain("(no host holds the etcd signer lease)");
  });
});

describe("warm standbys (issue 10): who could take over and sign the rest of the epoch", () => {
  test("the table's WARM column and --json's rows say who is warm, and why", () => {
    const m = statusModel(input([withSlots(signer()), withSlots(runner(1)), runner(2), stopped(3), runner(4, { logs: timeout })], { cntRunners: 5 }));
    expect(m.rows.map((r) => r.warm)).toEqual([true, true, false, false, null]);
    expect(m.cold).toEqual([2]);
    expect(m.rows[2]!.warmWhy).toBe("its logs show none of epoch 10's 2 remaining slots (cold)");
    const text = renderStatus(m);
    expect(text).toMatch(/RUNNER .* KEY +WARM +EVENTS LEFT/);
    expect(text).toMatch(/#1 .* no +yes +2 /);
    expect(text).toMatch(/#2 .* no +no +0 /);
    expect(text).toMatch(/#4 .* \? +- /);
    const json = JSON.parse(JSON.stringify(m));
    expect(json.rows.map((r: { warm: boolean | null }) => r.warm)).toEqual([true, true, false, false, null]);
    expect(json.cold).toEqual([2]);
  });

  test("key mode rest: a cold standby gets a line saying no mid-epoch remedy exists until the next boundary", () => {
    const m = statusModel(input([withSlots(signer()), withSlots(runner(1)), runner(2)], { keyMode: "rest" }));
    expect(m.exitCode as number).toBe(0);
    expect(m.notes).toEqual(["key mode rest: #2 lacks epoch 10's schedule; no mid-epoch remedy exists until the next boundary"]);
    expect(renderStatus(m)).toContain("key mode rest: #2 lacks epoch 10's schedule; no mid-epoch remedy exists until the next boundary\n");
    const boot = statusModel(input([withSlots(signer()), withSlots(runner(1)), runner(2)], { keyMode: "boot" }));
    expect(boot.notes.join()).toContain("the daemon restarts cold standbys one at a time");
    expect(statusModel(input([withSlots(signer()), withSlots(runner(1)), withSlots(runner(2))], { keyMode: "rest" })).notes).toEqual([]);
  });
});

// Across hosts (issue 13 point 6): the registry's entries say what the OTHER hosts' runners do.
// This host is host-a; its own runners are judged from status's own reads, as above.
describe("status across hosts: the registry of <prefix>/hosts/", () => {
  const NOW = MID_EPOCH;
  const GRACE_MS = 20_000;
  type HR = HostEntry["runners"][number];
  const hr = (id: number, cap: HR["cap"], o: Partial<HR> = {}): HR => ({ id, state: cap === "stopped" ? "stopped" : "Running", cap, signer: false, coHolderUntilMs: null, height: 500, ...o });
  const signing = (id = 0): HR => hr(id, "holder", { signer: true });
  const entry = (host: string, o: Partial<HostEntry> = {}): HostEntry => ({
    v: 1,
    host,
    pid: 4242,
    version: "1.0.0",
    publishedAtMs: NOW - 500,
    observedAtMs: NOW - 600,
    loopPeriodMs: 500,
    maySign: false,
    signer: null,
    etcd: { ok: true, error: null },
    signerSeen: { host: "host-b", createRevision: 77, sinceMs: NOW - 300_000 },
    peers: ["host-a", "host-b", "host-c"],
    runners: [hr(0, "keyless"), hr(1, "keyless")],
    ...o,
  });
  const signerB = (o: Partial<HostEntry> = {}) => entry("host-b", { maySign: true, signer: 0, runners: [signing(0), hr(1, "keyless")], ...o });
  const reg = (entries: HostEntry[], o: Partial<StatusRegistry> = {}): StatusRegistry => ({
    signer: { host: "host-b", lease: "7587", createRevision: 77 },
    leaseTtl: { grantedS: 5, leftS: 4 },
    entries,
    invalid: [],
    noSignerGraceMs: GRACE_MS,
    ...o,
  });
  const keyless = [runner(0), runner(1), runner(2)];
  const cl = (registry: StatusRegistry | null, error: string | null = null): Partial<StatusInput> => ({
    cluster: { self: "host-a", holder: error === null ? (registry?.signer?.host ?? null) : null, error, registry },
  });
  const calm = [entry("host-a"), signerB(), entry("host-c")];

  type HostCase = [name: string, runners: StatusRunnerInput[], code: number, verdict: string, over: Partial<StatusInput>];
  const hostCases: HostCase[] = [
    // 0 OK
    ["host-b signs, host-a (here) and host-c key-less", keyless, 0, "OK: host-b signs", cl(reg(calm))],
    [
      "host-c's co-holder of a granted hand-out, its switch still ahead, is no second signer",
      keyless,
      0,
      "OK: host-b signs",
      cl(reg([entry("host-a"), signerB(), entry("host-c", { runners: [hr(0, "holder", { coHolderUntilMs: NOW + 5_000 }), hr(1, "keyless")] })])),
    ],
    ["this host signs; host-b and host-c key-less", [signer(), runner(1), runner(2)], 0, "OK: #0 holds the key and is Running", cl(reg([entry("host-a", { maySign: true, signer: 0, runners: [signing(0)] }), entry("host-b"), entry("host-c")], { signer: { host: "host-a", lease: "1", createRevision: 77 } }))],

    // 1 WARNING
    ["the signing host does not know a standby's keys (as on one server)", keyless, 1, "host-b's #1 key state is unknown: it may sign", cl(reg([entry("host-a"), signerB({ runners: [signing(0), hr(1, "unknown")] }), entry("host-c")]))],
    ["host-c's entry is missing (host-b saw it)", keyless, 1, "host-c has no registry entry (seen by host-a, host-b", cl(reg([entry("host-a"), signerB()]))],
    ["this host's own entry is missing: its daemon does not publish", keyless, 1, "host-a has no registry entry (the daemon on this host does not publish it)", cl(reg([signerB(), entry("host-c")]))],
    ["host-c's entry is stale", keyless, 1, "host-c's registry entry is stale (published 30 s ago", cl(reg([entry("host-a"), signerB(), entry("host-c", { publishedAtMs: NOW - 30_000 })]))],
    ["host-c publishes, but its daemon's last observation is old (a hung loop)", keyless, 1, "host-c's registry entry is stale", cl(reg([entry("host-a"), signerB(), entry("host-c", { observedAtMs: NOW - 60_000 })]))],
    ["an observation as old as a long loop_period is not stale", keyless, 0, "OK: host-b signs", cl(reg([entry("host-a"), signerB(), entry("host-c", { observedAtMs: NOW - 30_000, loopPeriodMs: 30_000 })]))],
    [
      "this host took the lease 3 s ago and waits out its takeover: nobody signs yet, not an outage",
      keyless,
      1,
      "WARNING: this host's runners are key-less, but cluster: nobody signs yet: host-a holds the signer key but may not sign yet (its takeover wait, or its allowance ran out) (for 3 s; CRITICAL after 20 s)",
      cl(reg([entry("host-a", { signerSeen: { host: "host-a", createRevision: 95, sinceMs: NOW - 3_000 } }), entry("host-b", { signerSeen: { host: "host-a", createRevision: 95, sinceMs: NOW - 2_000 } }), entry("host-c")], { signer: { host: "host-a", lease: "9", createRevision: 95 } })),
    ],
    [
      "this host waits out its takeover, yet one of its runners holds the key (not Running): still CRITICAL",
      [runner(0, { keys: [1], stats: stats("Bootstrapping") }), runner(1), runner(2)],
      2,
      "#0 holds the key but is Bootstrapping",
      cl(reg([entry("host-a", { signerSeen: { host: "host-a", createRevision: 95, sinceMs: NOW - 3_000 } }), entry("host-b"), entry("host-c")], { signer: { host: "host-a", lease: "9", createRevision: 95 } })),
    ],
    [
      "host-b took the lease 3 s ago and waits: nobody signs yet",
      keyless,
      1,
      "nobody signs yet: host-b holds the signer key but may not sign yet",
      cl(reg([entry("host-a", { signerSeen: { host: "host-b", createRevision: 90, sinceMs: NOW - 3_000 } }), signerB({ maySign: false, signer: null, runners: [hr(0, "keyless")], signerSeen: { host: "host-b", createRevision: 90, sinceMs: NOW - 2_500 } })], { signer: { host: "host-b", lease: "9", createRevision: 90 } })),
    ],
    [
      "the signer key is gone for 4 s (the old lease ended): nobody signs yet",
      keyless,
      1,
      "nobody signs yet: no host holds the signer key",
      cl(reg([entry("host-a", { signerSeen: { host: null, createRevision: null, sinceMs: NOW - 4_000 } }), entry("host-b", { signerSeen: { host: null, createRevision: null, sinceMs: NOW - 4_000 } })], { signer: null })),
    ],

    // 2 CRITICAL
    [
      "host-c reports a runner holding the key while host-b signs",
      keyless,
      2,
      "host-c does not hold the signer key (host-b does), yet its #1 holder may hold the pool's key",
      cl(reg([entry("host-a"), signerB(), entry("host-c", { runners: [hr(0, "keyless"), hr(1, "holder")] })])),
    ],
    ["host-c reports a runner whose keys are unknown (fail closed)", keyless, 2, "its #0 unknown may hold", cl(reg([entry("host-a"), signerB(), entry("host-c", { runners: [hr(0, "unknown")] })]))],
    ["a stale entry holding the key still counts", keyless, 2, "host-c does not hold the signer key", cl(reg([entry("host-a"), signerB(), entry("host-c", { publishedAtMs: NOW - 30_000, runners: [hr(0, "booting-holder")] })]))],
    [
      "a co-holder whose switch should have fired counts as a holder again",
      keyless,
      2,
      "its #0 holder may hold",
      cl(reg([entry("host-a"), signerB(), entry("host-c", { runners: [hr(0, "holder", { coHolderUntilMs: NOW - 1 })] })])),
    ],
    ["the signing host reports a second holder besides its signer", keyless, 2, "host-b reports #1 holder besides its signer #0: they may sign the same slot", cl(reg([entry("host-a"), signerB({ runners: [signing(0), hr(1, "holder")] }), entry("host-c")]))],
    ["two hosts say the lease lets them sign", keyless, 2, "host-b and host-c both say the signer lease lets them sign", cl(reg([entry("host-a"), signerB(), entry("host-c", { maySign: true })]))],
    ["a host says it may sign but the key names another", keyless, 2, "host-c says the signer lease lets it sign, but the signer key names host-b", cl(reg([entry("host-a"), signerB({ maySign: false, signer: null }), entry("host-c", { maySign: true })]))],
    [
      "nobody has signed for longer than a takeover takes",
      keyless,
      2,
      "nobody signs: no host holds the signer key, for 60 s",
      cl(reg([entry("host-a", { signerSeen: { host: null, createRevision: null, sinceMs: NOW - 60_000 } })], { signer: null })),
    ],
    [
      "this host has held the lease for long, its daemon says it may sign, yet none of its runners holds the key",
      keyless,
      2,
      "CRITICAL: no runner holds the key: nobody signs",
      cl(reg([entry("host-a", { maySign: true, signerSeen: { host: "host-a", createRevision: 95, sinceMs: NOW - 300_000 } }), entry("host-b")], { signer: { host: "host-a", lease: "9", createRevision: 95 } })),
    ],
    [
      "this host waited out its takeover for too long: nobody signs",
      keyless,
      2,
      "nobody signs: host-a holds the signer key but may not sign yet (its takeover wait, or its allowance ran out), for 60 s",
      cl(reg([entry("host-a", { signerSeen: { host: "host-a", createRevision: 95, sinceMs: NOW - 60_000 } }), entry("host-b")], { signer: { host: "host-a", lease: "9", createRevision: 95 } })),
    ],
    ["no host holds the key, yet this host's runner does", [signer(), runner(1), runner(2)], 2, "no host holds the signer key, yet #0 on this host may sign", cl(reg([entry("host-a")], { signer: null }))],

    // 3 UNKNOWN
    ["etcd cannot be read: whether another host signs is unknown", keyless, 3, "UNKNOWN: etcd cannot be read (range: no endpoint answered", cl(null, "range: no endpoint answered within 2000 ms")],
    ["etcd cannot be read while this host signs: still UNKNOWN", [signer(), runner(1), runner(2)], 3, "this host: #0 holds the key and is Running", cl(null, "range: no endpoint answered")],
  ];
  for (const [name, runners, code, verdict, over] of hostCases) {
    test(`${code}: ${name}`, () => {
      const m = statusModel(input(runners, over));
      expect({ code: m.exitCode as number, verdict: renderStatus(m).split("\n").at(-1) }).toMatchObject({ code, verdict: expect.stringContaining(verdict) });
    });
  }

  test("the cluster section: the signing host, its lease's age and TTL, one row per host with its runners; --json has it all", () => {
    const m = statusModel(input(keyless, cl(reg([entry("host-a"), signerB(), entry("host-c", { runners: [hr(0, "keyless"), hr(1, "stopped", { height: null })] })]))));
    const text = renderStatus(m);
    expect(text).toContain("cluster: host-b holds the signer key (lease 7587, create revision 77, held at least 5 min: first read by host-a; TTL 5 s, 4 s left)");
    expect(text).toMatch(/HOST +ROLE +SIGNER +RUNNERS +HEIGHT +ETCD +ENTRY/);
    expect(text).toMatch(/host-a \(this host\) +standby +- +#0 key-less, #1 key-less +500 +ok +1 s ago/);
    expect(text).toMatch(/host-b +signs +#0 +#0 signer, #1 key-less +500 +ok/);
    expect(text).toMatch(/host-c +standby +- +#0 key-less, #1 stopped/);
    const json = JSON.parse(JSON.stringify(m));
    expect(json.cluster.signer).toEqual({ host: "host-b", createRevision: 77, lease: "7587", seenForMs: 300_000, seenBy: "host-a", ttl: { grantedS: 5, leftS: 4 } });
    expect(json.cluster.hosts.map((h: { host: string; role: string }) => [h.host, h.role])).toEqual([
      ["host-a", "standby"],
      ["host-b", "signs"],
      ["host-c", "standby"],
    ]);
  });
});
