// Alerts from the cluster's host registry (issue 13 point 6): the signing host changing (with both
// names) and another host's entry disappearing, told once each; the first read is only a baseline.
import { describe, expect, test } from "bun:test";
import { emptyRegistryAlertMemory, registryAlertEvents, RegistryAlertWatcher, type AlertEvent, type RegistryAlertMemory } from "../../src/alerts/events.ts";
import { createAlerts } from "../../src/alerts/index.ts";
import { simConfig } from "../../src/lab/harness.ts";
import { emptyRegistryMemory, type HostEntry, type RegistryRound } from "../../src/master/registry.ts";

const entry = (host: string): HostEntry => ({
  v: 1,
  host,
  pid: 1,
  version: "t",
  publishedAtMs: 0,
  observedAtMs: 0,
  loopPeriodMs: 500,
  maySign: false,
  signer: null,
  etcd: { ok: true, error: null },
  signerSeen: null,
  peers: [],
  runners: [],
});
let rev = 10;
const round = (atMs: number, signer: string | null, hosts: string[], self = "host-a", createRevision = rev): RegistryRound => ({
  atMs,
  self,
  read: { signer: signer === null ? null : { host: signer, lease: "1", createRevision }, entries: hosts.map(entry), invalid: [] },
  memory: emptyRegistryMemory(),
});

/** Feeds the rounds in order; returns every event as "kind severity: title". */
function run(rounds: RegistryRound[]): string[] {
  let m: RegistryAlertMemory = emptyRegistryAlertMemory();
  const out: string[] = [];
  for (const r of rounds) {
    const { events, memory } = registryAlertEvents(r, m);
    m = memory;
    out.push(...events.map((e) => `${e.kind} ${e.severity}: ${e.title}`));
  }
  return out;
}

describe("registry alerts", () => {
  const all = ["host-a", "host-b", "host-c"];
  test("the first read is a baseline: nothing told", () => {
    expect(run([round(0, "host-b", all)])).toEqual([]);
  });

  test("the signing host changes from A to B: told with both names, once", () => {
    expect(run([round(0, "host-b", all), round(2_000, "host-c", all, "host-a", 20), round(4_000, "host-c", all, "host-a", 20)])).toEqual(["cluster_signer warning: signing host changed: host-b → host-c"]);
  });

  test("across a spell without a signer, A → nobody → B is still A → B", () => {
    expect(run([round(0, "host-b", all), round(2_000, null, all), round(4_000, "host-c", all, "host-a", 21)])).toEqual(["cluster_signer warning: signing host changed: host-b → host-c"]);
  });

  test("the same host re-elected is no change of signing host", () => {
    expect(run([round(0, "host-b", all), round(2_000, null, all), round(4_000, "host-b", all, "host-a", 22)])).toEqual([]);
  });

  test("a daemon that started while nobody signed tells the first signing host (info)", () => {
    expect(run([round(0, null, all), round(2_000, "host-b", all)])).toEqual(["cluster_signer info: signing host: host-b"]);
  });

  test("another host's entry disappears: told once; when it comes back, told once", () => {
    const events = run([round(0, "host-b", all), round(2_000, "host-b", ["host-a", "host-b"]), round(4_000, "host-b", ["host-a", "host-b"]), round(6_000, "host-b", all)]);
    expect(events).toEqual(["cluster_host_gone warning: host host-c left the cluster registry", "cluster_host_back info: host host-c is back in the cluster registry"]);
  });

  test("the signing host's entry going says it still holds the key; this host's own entry going is not told", () => {
    const m = registryAlertEvents(round(2_000, "host-b", ["host-c"]), { signer: "host-b", hosts: all });
    expect(m.events.map((e) => [e.kind, e.text])).toEqual([["cluster_host_gone", "host-b's entry is gone: its daemon stopped, died, or has not reached etcd for a member-lease TTL; it still holds the signer key"]]);
  });

  test("a host seen for the first time after the baseline is not 'back'", () => {
    expect(run([round(0, "host-b", ["host-a", "host-b"]), round(2_000, "host-b", all)])).toEqual([]);
  });

  test("the watcher hands each event to notify", () => {
    const got: AlertEvent[] = [];
    const w = new RegistryAlertWatcher((e) => got.push(e));
    w.onRound(round(0, "host-b", all));
    w.onRound(round(2_000, "host-c", all, "host-a", 30));
    expect(got.map((e) => [e.kind, e.atMs, e.title])).toEqual([["cluster_signer", 2_000, "signing host changed: host-b → host-c"]]);
  });
});

test("the daemon's alerts deliver registry events to a channel (JSON webhook at a local receiver)", async () => {
  const got: { kind: string; title: string; severity: string }[] = [];
  const receiver = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: async (req) => (got.push((await req.json()) as (typeof got)[number]), new Response("ok")) });
  try {
    const config = {
      ...simConfig(1),
      alerts: { channels: [{ name: "hook", type: "webhook" as const, preset: "json" as const, url: `http://127.0.0.1:${receiver.port}/hook` }], dedupWindowMs: 600_000, rateLimit: 100, rateWindowMs: 600_000, retries: 0, timeoutMs: 2_000 },
    };
    const alerts = createAlerts(config, { info() {}, warn() {} }, { host: "host-a" });
    alerts.onRegistry(round(0, "host-b", ["host-a", "host-b", "host-c"]));
    alerts.onRegistry(round(2_000, "host-c", ["host-a", "host-c"], "host-a", 40));
    await alerts.stopping("flush", 2_000);
    expect(got.filter((e) => e.kind !== "daemon_stop").map((e) => [e.kind, e.severity, e.title])).toEqual([
      ["cluster_signer", "warning", "signing host changed: host-b → host-c"],
      ["cluster_host_gone", "warning", "host host-b left the cluster registry"],
    ]);
  } finally {
    receiver.stop(true);
  }
});
