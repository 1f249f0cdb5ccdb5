// The host registry's pure parts (issue 13 point 6): the entry a daemon publishes, built from its
// last tick; the parse of a range read (zod at the boundary: entries cross hosts); the fold of
// consecutive reads (signer-lease changes, since when the signer key reads as it does, peers).
import { describe, expect, test } from "bun:test";
import { simConfig } from "../../src/lab/harness.ts";
import type { ClusterObs } from "../../src/master/cluster.ts";
import type { TickReport } from "../../src/master/loop.ts";
import { emptyRegistryMemory, foldRegistry, hostEntry, hostEntrySchema, hostKey, parseRegistry, type HostEntry, type RegistryRead } from "../../src/master/registry.ts";
import type { RunnerView } from "../../src/master/types.ts";
import type { Settings } from "../../src/node/types.ts";

const settings: Settings = { block0Hash: "h", block0TimeMs: 0, slotDurationMs: 1000, slotsPerEpoch: 60, consensusVersion: "genesis_praos", currSlotStartTimeMs: null };
const view = (id: number, cap: RunnerView["cap"], o: Partial<RunnerView> = {}): RunnerView => ({
  id,
  cap,
  pid: cap === "stopped" ? 0 : 100 + id,
  running: cap === "holder" || cap === "keyless",
  responsive: cap !== "stopped",
  nodeState: cap === "stopped" ? null : "Running",
  height: cap === "stopped" ? null : 500 + id,
  leaderIds: cap === "holder" ? [1] : [],
  busy: false,
  unitActive: cap !== "stopped",
  frozen: false,
  ...o,
});
const report = (views: RunnerView[], memory: Partial<TickReport["memory"]> = {}, atMs = 620_000): TickReport =>
  ({ startedMs: atMs, durationMs: 5, observation: { atMs, settings }, views, plan: {}, outcomes: [], memory: { signer: null, boundary: null, ...memory } }) as unknown as TickReport;
const may: ClusterObs = { maySign: true, mustStopByMs: 700_000, takeoverSafeAtMs: null, holder: "host-a" };
const config = simConfig(3);

const build = (r: TickReport | null, cluster: ClusterObs | null, nowMs = 620_100) =>
  hostEntry({ host: "host-a", pid: 7, version: "1.2.3", nowMs, report: r, config, cluster, etcd: { ok: true, error: null }, signerSeen: { host: "host-a", createRevision: 9, sinceMs: 1 }, peers: ["host-a", "host-b"] });

describe("hostEntry: what a daemon publishes about itself", () => {
  test("its signer, each runner's capability, state and tip, whether the lease lets it sign; valid by its own schema", () => {
    const e = build(report([view(0, "holder"), view(1, "keyless"), view(2, "stopped")], { signer: 0 }), may);
    expect(e).toMatchObject({ v: 1, host: "host-a", pid: 7, version: "1.2.3", publishedAtMs: 620_100, observedAtMs: 620_000, maySign: true, signer: 0, peers: ["host-a", "host-b"] });
    expect(e.runners).toEqual([
      { id: 0, state: "Running", cap: "holder", signer: true, coHolderUntilMs: null, height: 500 },
      { id: 1, state: "Running", cap: "keyless", signer: false, coHolderUntilMs: null, height: 501 },
      { id: 2, state: "stopped", cap: "stopped", signer: false, coHolderUntilMs: null, height: null },
    ]);
    expect(hostEntrySchema.parse(JSON.parse(JSON.stringify(e)))).toEqual(e);
  });

  test("fail closed: no lease view, an allowance run out or a takeover wait is 'may not sign'; no tick yet is no runners", () => {
    expect(build(null, null)).toMatchObject({ maySign: false, observedAtMs: null, runners: [], signer: null });
    expect(build(null, { ...may, mustStopByMs: 620_000 }).maySign).toBe(false);
    expect(build(null, { ...may, takeoverSafeAtMs: 630_000 }).maySign).toBe(false);
    expect(build(null, { maySign: false, mustStopByMs: null, takeoverSafeAtMs: null, holder: "host-b" }).maySign).toBe(false);
  });

  test("a boundary co-holder says until when (its switch, at the latest slot 1's guarded window); after that it is a plain holder", () => {
    // Epoch 11 starts at 660 000; slot 1's guarded window opens at 661 000 - slot_guard.
    const slotRule = 661_000 - config.slotGuardMs;
    const boundary = { epoch: 11, coHolders: [1], switchAtMs: slotRule - 200 };
    const r = report([view(0, "holder"), view(1, "holder")], { signer: 0, boundary }, 659_000);
    expect(build(r, may, 659_100).runners[1]).toMatchObject({ cap: "holder", coHolderUntilMs: slotRule - 200 });
    expect(build(r, may, slotRule - 100).runners[1]).toMatchObject({ cap: "holder", coHolderUntilMs: null });
    // No switch time known (a host handing out on the signing host's grant): slot 1's rule bounds it.
    const granted = report([view(0, "keyless"), view(1, "holder")], { signer: null, boundary: { epoch: 11, coHolders: [1] } }, 659_000);
    expect(build(granted, null, 659_100).runners[1]!.coHolderUntilMs).toBe(slotRule);
    // Stripped: the hand-out is over.
    expect(build(report([view(0, "holder"), view(1, "holder")], { signer: 0, boundary: { ...boundary, stripped: true } }, 659_000), may, 659_100).runners[1]!.coHolderUntilMs).toBeNull();
  });
});

describe("parseRegistry: one range read of <prefix>/", () => {
  const kv = (key: string, value: string, createRevision = 5, lease = "0") => ({ key, value, createRevision, lease });
  const entry = (host: string): HostEntry => build(null, null) && { ...build(null, null), host };
  test("the signer key, every valid entry sorted by host; garbled, foreign or misnamed entries are reported, not trusted", () => {
    const r = parseRegistry("/p", [
      kv("/p/signer", "host-b", 42, "777"),
      kv("/p/handout/12", "host-b"),
      kv(hostKey("/p", "host-c"), JSON.stringify(entry("host-c"))),
      kv(hostKey("/p", "host-a"), JSON.stringify(entry("host-a"))),
      kv(hostKey("/p", "host-x"), "{not json"),
      kv(hostKey("/p", "host-y"), JSON.stringify({ ...entry("host-y"), maySign: "yes" })),
      kv(hostKey("/p", "host-z"), JSON.stringify(entry("host-a"))),
    ]);
    expect(r.signer).toEqual({ host: "host-b", lease: "777", createRevision: 42 });
    expect(r.entries.map((e) => e.host)).toEqual(["host-a", "host-c"]);
    expect(r.invalid).toEqual(["/p/hosts/host-x: not JSON", "/p/hosts/host-y: maySign Invalid input: expected boolean, received string", '/p/hosts/host-z: names host "host-a"']);
    expect(parseRegistry("/p/", []).signer).toBeNull();
  });
});

describe("foldRegistry: what a daemon remembers between reads", () => {
  const read = (signer: { host: string; createRevision: number } | null, hosts: string[] = []): RegistryRead => ({
    signer: signer && { ...signer, lease: "1" },
    entries: hosts.map((h) => ({ ...build(null, null), host: h })),
    invalid: [],
  });
  test("a change of the signer lease is a new create revision: another host, or the same host re-elected; the first read is none", () => {
    let m = foldRegistry(emptyRegistryMemory(), read({ host: "a", createRevision: 10 }), "self", 1_000);
    expect(m).toMatchObject({ leaseChanges: 0, seen: { host: "a", createRevision: 10, sinceMs: 1_000 } });
    m = foldRegistry(m, read({ host: "a", createRevision: 10 }), "self", 3_000);
    expect(m).toMatchObject({ leaseChanges: 0, seen: { sinceMs: 1_000 } });
    // a → nobody → b counts once; the spell without a key has its own "since"
    m = foldRegistry(m, read(null), "self", 5_000);
    expect(m).toMatchObject({ leaseChanges: 0, seen: { host: null, createRevision: null, sinceMs: 5_000 } });
    m = foldRegistry(m, read({ host: "b", createRevision: 20 }), "self", 7_000);
    expect(m).toMatchObject({ leaseChanges: 1, seen: { host: "b", createRevision: 20, sinceMs: 7_000 } });
    // b re-elected under a new lease
    m = foldRegistry(m, read({ host: "b", createRevision: 30 }), "self", 9_000);
    expect(m.leaseChanges).toBe(2);
  });

  test("a daemon that starts while nobody signs counts the first signer it sees", () => {
    const m = foldRegistry(foldRegistry(emptyRegistryMemory(), read(null), "self", 0), read({ host: "a", createRevision: 3 }), "self", 2_000);
    expect(m.leaseChanges).toBe(1);
  });

  test("peers: every host seen since the start, itself included, kept when they go", () => {
    let m = foldRegistry(emptyRegistryMemory(), read(null, ["host-b", "host-c"]), "host-a", 0);
    m = foldRegistry(m, read(null, ["host-b"]), "host-a", 2_000);
    expect(m.peers).toEqual(["host-a", "host-b", "host-c"]);
  });
});
