// Several hosts in one simulated world, in virtual time: each host is the real Master over its own
// runners (world ids offset..offset+n-1 seen as 0..n-1) plus the daemon's SignerLease over one shared
// fake etcd. Faults: a host cut off from etcd (requests and answers lost), a host's daemon killed
// (its runners keep running), a whole host down (daemon and runners), etcd down for everyone, and a
// host clock running fast or slow (its monotonic clock and its systemd timers) within the bound.

import type { Etcd, EtcdResult } from "../../src/cluster/etcd.ts";
import { createElection } from "../../src/cluster/election.ts";
import { SignerLease, settledHandoutEpoch, type LeaseStore, type SavedLease } from "../../src/daemon/lease.ts";
import type { MasterDeps } from "../../src/master/act.ts";
import { coHolderSwitches } from "../../src/master/cluster.ts";
import { silentLog, simConfig, simDeps } from "../../src/lab/harness.ts";
import { Master, type MasterLog, type TickReport } from "../../src/master/loop.ts";
import type { NodeApi } from "../../src/node/types.ts";
import type { ServiceManager, UnitState } from "../../src/ports.ts";
import { signOverlapMs } from "../../src/sim/audit.ts";
import type { ChainParams } from "../../src/sim/chain.ts";
import { World } from "../../src/sim/world.ts";
import { createFakeEtcd, type FakeEtcd } from "./fake-etcd.ts";
import { Operator } from "../../src/control/operator.ts";
import type { ControlAnswer } from "../../src/control/protocol.ts";

export interface HostSpec {
  name: string;
  runners: number;
  /** Clock rate error of this host's monotonic clock (and so its timers), e.g. -0.01: 1 % slow */
  drift?: number;
}

export type ClusterEvent =
  | { atMs: number; kind: "partition"; host: number; forMs: number }
  | { atMs: number; kind: "daemonCrash"; host: number; downMs: number }
  | { atMs: number; kind: "hostDown"; host: number; downMs: number }
  | { atMs: number; kind: "etcdDown"; forMs: number }
  /** The runner that signs on this host crashes (systemd restarts it) */
  | { atMs: number; kind: "signerCrash"; host: number }
  /** `jorm-master switchover --host <to>` run on host `host` (through its daemon's Operator) */
  | { atMs: number; kind: "switchover"; host: number; to: string }
  /** etcd revokes the signer key's lease before its TTL ran out, as a stuck old leader of an etcd
   *  without the lease fixes does (etcd #15247): only meaningful with such versions */
  | { atMs: number; kind: "earlyRevoke" };

export interface ClusterSpec {
  chain: ChainParams;
  hosts: HostSpec[];
  ttlS: number;
  durationMs: number;
  events: ClusterEvent[];
  /** One-way network delay to etcd (request and answer each) */
  etcdLatencyMs?: number;
  log?: (host: string) => MasterLog;
  /** The signing host grants the others the boundary hand-out (default); false: it never does */
  grants?: boolean;
  /** The etcd members' versions (null: a member cannot be asked); default the fake's (3.4.23) */
  etcdVersions?: (string | null)[];
}

export interface ClusterResult {
  world: World;
  etcd: FakeEtcd;
  doubleProduced: number;
  sharedWindows: number;
  firstShared: unknown;
  /** Per host: instants its runners were promoted to sign (virtual ms) */
  promotions: { host: string; atMs: number; id: number }[];
  /** Which host held the signer key at the end (etcd's answer) */
  holderAtEnd: string | null;
  /** Each switchover event: when asked, the daemon's first answer, and its final answer with when */
  switchovers: { host: string; askedAtMs: number; accepted: ControlAnswer; done: ControlAnswer | null; doneAtMs: number | null }[];
  scheduled: number;
  produced: number;
  coveragePct: number;
  fromMs: number;
  toMs: number;
}

const UNAVAILABLE = { ok: false as const, error: { kind: "unavailable" as const, message: "cut off from etcd (simulated)" } };

function unreachableApi(): NodeApi {
  return new Proxy({} as NodeApi, {
    get: () => async () => ({ ok: false, error: { kind: "unreachable", reason: "other", message: "no such runner on this host" } }),
  });
}

/** One host's view of the world: its own runners as ids 0..n-1; its timers run at its clock's rate. */
function hostDeps(world: World, offset: number, count: number, drift: number): MasterDeps {
  const base = simDeps(world);
  const s = base.services;
  const w = (id: number) => offset + id;
  const absent = (id: number): UnitState => ({ id, activeState: "inactive", subState: "dead", mainPid: 0, sinceMs: null, restarts: 0, frozen: null });
  const none = unreachableApi();
  const services: ServiceManager = {
    async showAll(ids) {
      const inner = await s.showAll(ids.filter((i) => i < count).map(w));
      const out = new Map<number, UnitState>();
      for (const id of ids) out.set(id, id < count ? { ...inner.get(w(id))!, id } : absent(id));
      return out;
    },
    start: (id) => s.start(w(id)),
    stop: (id) => s.stop(w(id)),
    restart: (id) => s.restart(w(id)),
    kill: (id, sig) => s.kill(w(id), sig),
    // systemd counts the timer's delay on this host's monotonic clock
    armFreeze: (id, atMs) => {
      const now = world.clock.now();
      return s.armFreeze!(w(id), now + (atMs - now) / (1 + drift));
    },
    disarmFreeze: (id) => s.disarmFreeze!(w(id)),
  };
  return { ...base, node: (id) => (id < count ? world.api(w(id)) : none), services };
}

export async function runClusterScenario(spec: ClusterSpec): Promise<ClusterResult> {
  const total = spec.hosts.reduce((n, h) => n + h.runners, 0);
  // Key mode rest everywhere: in a cluster every runner boots passive (master/cluster.ts).
  const world = new World({ chain: spec.chain, runners: total, keyMode: "rest", boot: { Bootstrapping: 1_000 }, scheduleComputeMs: 1_500, restartDelayMs: 2_000, restTimeoutMs: 500 });
  const fromMs = world.clock.now();
  const toMs = fromMs + spec.durationMs;
  const etcd = createFakeEtcd(fromMs);
  if (spec.etcdVersions) etcd.versions = [...spec.etcdVersions];
  const sync = () => etcd.advance(Math.max(0, world.clock.now() - etcd.nowMs()));
  let etcdDownUntil = -Infinity;
  const cutUntil = spec.hosts.map(() => -Infinity);
  const reachable = (h: number) => world.clock.now() >= cutUntil[h]! && world.clock.now() >= etcdDownUntil;
  const latency = spec.etcdLatencyMs ?? 0;

  /** The shared fake as one host reaches it: a request sent while cut off is lost, so is an answer. */
  function hostEtcd(h: number): Etcd {
    return new Proxy(etcd as Etcd, {
      get(target, prop) {
        const f = (target as unknown as Record<string, unknown>)[prop as string];
        if (typeof f !== "function") return f;
        return async (...args: unknown[]): Promise<EtcdResult<unknown>> => {
          if (!reachable(h)) return UNAVAILABLE;
          if (latency > 0) await world.clock.sleep(latency);
          if (!reachable(h)) return UNAVAILABLE;
          sync();
          const r = (await (f as (...a: unknown[]) => Promise<EtcdResult<unknown>>).apply(target, args)) as EtcdResult<unknown>;
          if (latency > 0) await world.clock.sleep(latency);
          return reachable(h) ? r : UNAVAILABLE;
        };
      },
    });
  }

  const config = (n: number) =>
    simConfig(n, { keyMode: "rest", restTimeoutMs: 500, eventActionMs: 5_000, startBeforeEventMs: 20_000, bootCatchUpMs: 30_000, maxBootMs: 120_000, slotGuardMs: 400, slotMarginMs: 400 });
  const promotions: ClusterResult["promotions"] = [];
  const switchovers: ClusterResult["switchovers"] = [];
  const offsets: number[] = [];
  let off = 0;
  for (const h of spec.hosts) (offsets.push(off), (off += h.runners));

  interface Running {
    ac: AbortController;
    done: Promise<unknown>;
    master: Master;
    operator: Operator;
  }
  const running: (Running | null)[] = spec.hosts.map(() => null);
  // Each host's disk: the lease a restarted daemon takes up again.
  const disks: LeaseStore[] = spec.hosts.map(() => {
    let saved: Omit<SavedLease, "bootId"> | null = null;
    return { load: () => saved, save: (x) => void (saved = x) };
  });
  function startHost(h: number): void {
    const host = spec.hosts[h]!;
    const drift = host.drift ?? 0;
    const t0 = world.clock.now();
    const mono = () => t0 + (world.clock.now() - t0) * (1 + drift);
    const election = createElection({ etcd: hostEtcd(h), prefix: "/jorm-test", candidate: host.name, ttlS: spec.ttlS, now: mono });
    const log = spec.log?.(host.name) ?? silentLog;
    const deps = hostDeps(world, offsets[h]!, host.runners, drift);
    let master: Master | null = null;
    const lease = new SignerLease({ election, services: () => deps.services, clock: world.clock, mono, signer: () => master?.memory.signer ?? null, coHolders: () => (master ? coHolderSwitches(master.memory, world.clock.now()) : null), handoutSettled: () => (spec.grants === false ? null : settledHandoutEpoch(master?.memory.handout)), log, prefix: "/jorm-test", store: disks[h]! });
    const operator = new Operator({ stateDir: null, log, cntRunners: () => host.runners, now: () => world.clock.now(), handover: lease, onChange: (i) => master && (master.intent = i) });
    const onTick = (r: TickReport) => {
      for (const o of r.outcomes) if (o.ok && o.action.kind === "promote" && o.action.purpose === "sign") promotions.push({ host: host.name, atMs: world.clock.now(), id: o.action.id });
      operator.onTick(r);
    };
    master = new Master({ deps: { ...deps, cluster: () => lease.observe() }, config: config(host.runners), log, onTick });
    const ac = new AbortController();
    const done = Promise.all([master.run(ac.signal), lease.run(ac.signal, spec.ttlS)]);
    running[h] = { ac, done, master, operator };
  }
  function stopHost(h: number): void {
    running[h]?.ac.abort();
    running[h] = null;
  }

  for (let h = 0; h < spec.hosts.length; h++) startHost(h);
  for (const ev of spec.events) {
    const at = fromMs + ev.atMs;
    if (at >= toMs) continue;
    world.clock.at(at, () => {
      const now = world.clock.now();
      if (ev.kind === "etcdDown") etcdDownUntil = Math.max(etcdDownUntil, now + ev.forMs);
      else if (ev.kind === "partition") cutUntil[ev.host] = Math.max(cutUntil[ev.host]!, now + ev.forMs);
      else if (ev.kind === "switchover") {
        const op = running[ev.host]?.operator;
        if (!op) return;
        const accepted = op.apply({ cmd: "switchover", target: null, force: false, check: false, host: ev.to });
        const rec: ClusterResult["switchovers"][number] = { host: spec.hosts[ev.host]!.name, askedAtMs: now, accepted, done: null, doneAtMs: null };
        switchovers.push(rec);
        if (accepted.ok) void op.waitSwitchover().then((a) => ((rec.done = a), (rec.doneAtMs = world.clock.now())));
      } else if (ev.kind === "earlyRevoke") {
        sync();
        const signer = etcd.kv.get("/jorm-test/signer");
        if (signer !== undefined && signer.lease !== "0") etcd.revoke(signer.lease);
      } else if (ev.kind === "signerCrash") {
        const id = running[ev.host]?.master.memory.signer ?? null;
        if (id !== null) world.inject(offsets[ev.host]! + id, { kind: "crash" });
      }
      else {
        // The daemon dies without a word (SIGKILL, power): no parting fences, no resign.
        stopHost(ev.host);
        if (ev.kind === "hostDown") for (let i = 0; i < spec.hosts[ev.host]!.runners; i++) world.inject(offsets[ev.host]! + i, { kind: "crash" });
        world.clock.at(now + ev.downMs, () => startHost(ev.host));
      }
    });
  }
  await world.runUntil(toMs);
  for (let h = 0; h < spec.hosts.length; h++) stopHost(h);
  await world.runUntil(toMs + 2_000);
  sync();
  const audit = world.audit({ fromMs, toMs, guardMs: 400, marginMs: 400 });
  const phys = signOverlapMs(world.journal.entries(), world.chain, { fromMs, toMs, guardMs: 400, marginMs: 400 });
  const holder = [...etcd.kv.values()].find((kv) => kv.key === "/jorm-test/signer")?.value ?? null;
  return {
    world,
    etcd,
    doubleProduced: audit.doubleProduced,
    sharedWindows: phys.sharedWindows,
    firstShared: phys.firstShared,
    promotions,
    holderAtEnd: holder,
    switchovers,
    scheduled: audit.scheduled,
    produced: audit.produced,
    coveragePct: audit.coveragePct,
    fromMs,
    toMs,
  };
}
