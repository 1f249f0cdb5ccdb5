// Cluster end to end (issue 13, "How it is tested"): three "hosts" on this machine, each a real
// `jorm-master daemon` (run directly as a child process of the test, with its own config, state and
// runtime dir, lock, control socket and boot permit dir) over its own runner units under the real
// `systemd --user` manager (installed by `install --scope user --no-start` with distinct unit names,
// jm-e2e-<h>-runner@.service), its own REST ports and simulated nodes (`jorm-master sim node` as
// jormungandr) sharing one world and one journal. Each host reaches a private 3-member etcd (started
// by the test with scripts/etcd-cluster.sh on its own ports and dir, so losing quorum disturbs no
// other test) only through TCP proxies the test controls. Faults, each followed by a check that a new
// signer on ANOTHER host is verified within lease_ttl + one window + 2 s:
//   kill every process of the signing host at once (daemon and its runner units' processes)
//   cut the signing host off from etcd (its proxies black-hole) while its runners keep running
//   SIGSTOP the signing host's daemon
//   lose etcd's leader (its member killed, then restarted): never two hosts, a signer within the bound
//   (or, when the switch froze the signer with the only schedule, that signer kept until the boundary)
//   lose etcd's quorum (2 of 3 members killed): once the lease is gone nobody signs; restored after
// after each, one signer again with every runner of every host answering (none left frozen by a
// dead-man switch), and at the end `sim audit` over the shared journal: 0 double-produced slots, 0 shared windows.
//
// Run with `flock /tmp/jorm-e2e.lock bun run test:e2e:cluster`. Needs root (user manager) and an
// `etcd` binary; skipped with the reason elsewhere, a failure under CI.
// Env: JORM_E2E_BIN, JORM_E2E_KEEP=1, JORM_E2E_LOGS_TO=DIR (as the systemd e2e).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { renewIntervalMs, takeoverSafeAtMs } from "../../src/cluster/deadline.ts";
import { tcpProxy, type Proxy } from "../cluster/tcp-proxy.ts";
import { freeLowPorts } from "../ports.ts";
import { awayFromBoundary as awayFrom, commands, leaderCount, Sampler, tail as tailOf, writeDropIn as writeDropInFile } from "./support.ts";
import { ensureUserManager } from "./user-manager.ts";

const REPO = join(import.meta.dir, "..", "..");
const BIN = process.env.JORM_E2E_BIN ?? join(REPO, "dist", "jorm-master-linux-x64");
const ETCD_SCRIPT = join(REPO, "scripts", "etcd-cluster.sh");
const HOSTS = ["a", "b", "c"] as const;
type Host = (typeof HOSTS)[number];
const RUNNERS = 2;
/** Not /var/lib/jm-e2e-*: the systemd e2e removes those it finds stale. Units are PrivateTmp=yes: nothing under /tmp. */
const ROOT = `/var/lib/jm-ecl-${process.pid}`;
const UNIT_DIR = join(homedir(), ".config", "systemd", "user");
const ETCD_DIR = `/dev/shm/jm-e2e-etcd-${process.pid}`;
const PREFIX = `/jm-e2e-${process.pid}`;
const GENESIS_HASH = "8e4d2a343f3dcf9330ad9035b3e8d168e6728904262f2c434a4f8f934ec7b676";
const masterUnit = (h: Host) => `jm-e2e-${h}-master.service`;
const runnerTemplate = (h: Host) => `jm-e2e-${h}-runner@.service`;
const runnerUnit = (h: Host, id: number) => `jm-e2e-${h}-runner@${id}.service`;

const SLOT_MS = 1_000;
const SLOTS_PER_EPOCH = 60;
const EPOCH_MS = SLOT_MS * SLOTS_PER_EPOCH;
const DENSITY = 10;
const LEASE_TTL_S = 2;
const SLOT_GUARD_S = 0.4;
const SLOT_MARGIN_S = 0.4;
const WINDOW_MS = (SLOT_GUARD_S + SLOT_MARGIN_S) * 1000 + SLOT_MS;
/** The issue's target: a new signer on another host within lease_ttl + one window + 2 s of the fault. */
const ISSUE_BOUND_MS = LEASE_TTL_S * 1000 + WINDOW_MS + 2_000;
/**
 * What the product promises (README "The bounds it assumes"), asserted: the old lease ends within
 * lease_ttl of the fault, a standby host campaigns once per renew interval, then waits
 * takeoverSafeAt (one etcd election timeout + the old holder's allowance + its stop margin,
 * stretched by the clock-rate bound) before promoting, a window open then stays the old host's,
 * and 2 s for the promotion and its verification. The issue's target above is printed beside it:
 * with the takeover wait it cannot be met (see the timeline's "issue target" column).
 */
const TAKEOVER_WAIT_MS = takeoverSafeAtMs(0, LEASE_TTL_S);
const FAILOVER_BOUND_MS = LEASE_TTL_S * 1000 + renewIntervalMs(LEASE_TTL_S) + TAKEOVER_WAIT_MS + WINDOW_MS + 2_000;
const MONITOR_PERIOD_MS = 100;
const MONITOR_TIMEOUT_MS = 250;
const STEADY_FOR_MS = 1_500;
const SETTLE_TIMEOUT_MS = 90_000;
const BOUNDARY_QUIET_BEFORE_MS = 7_000;
const BOUNDARY_QUIET_AFTER_MS = 6_000;
/** Without quorum: how long the test watches that nobody signs once the lease is gone. */
const NO_QUORUM_WATCH_MS = 6_000;

const um = await ensureUserManager();
const etcdBin = Bun.which("etcd");
const requireAll = Boolean(process.env.CI);
const skipReason = !um.ok ? um.reason : etcdBin === null ? "no etcd binary (apt-get install etcd-server)" : null;
if (skipReason) console.warn(`skipping the cluster e2e test: ${skipReason}`);
test.if(requireAll)("CI has a user manager and etcd for the cluster e2e test", () => {
  expect(skipReason ?? "ok").toBe("ok");
});
const env: Record<string, string> = um.ok ? um.env : {};

const { run, must, systemctl } = commands(env);
async function mainPid(unit: string): Promise<number> {
  const out = (await systemctl("show", "-p", "MainPID", "--", unit)).stdout;
  return Number(/^MainPID=(\d+)/m.exec(out)?.[1] ?? 0);
}

// --- etcd: a private cluster, reached by each host through its own proxies ---

let etcdClientPort = 0;
const etcdEnv = () => ({ JORM_ETCD_DIR: ETCD_DIR, JORM_ETCD_CLIENT_PORT: String(etcdClientPort), JORM_ETCD_PEER_PORT: String(etcdClientPort + 10) });
const etcd = (...args: string[]) => must(["bash", ETCD_SCRIPT, ...args], 60_000, etcdEnv());

// --- hosts ---

interface HostState {
  name: Host;
  dir: string;
  proxies: Proxy[];
  restBase: number;
  daemon: Subprocess | null;
  daemonEnv: Record<string, string>;
}
const hosts = new Map<Host, HostState>();

function startDaemon(h: HostState): void {
  const log = openSync(join(ROOT, "logs", `daemon-${h.name}.log`), "a");
  h.daemon = Bun.spawn([join(h.dir, "bin", "jorm-master"), "daemon", "--config", join(h.dir, "config", "jorm_master.yaml")], {
    env: { ...env, ...h.daemonEnv },
    stdout: log,
    stderr: log,
    stdin: "ignore",
  });
}

async function stopDaemon(h: HostState, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
  const d = h.daemon;
  if (!d) return;
  try {
    process.kill(d.pid, "SIGCONT");
  } catch {}
  d.kill(signal);
  const timer = setTimeout(() => d.kill("SIGKILL"), 10_000);
  await d.exited;
  clearTimeout(timer);
  h.daemon = null;
}

// --- the monitor: every 100 ms, GET /api/v0/leaders on every runner of every host ---

interface Sample {
  t: number;
  /** per host, per runner: leader count; null: no answer */
  leaders: Record<Host, (number | null)[]>;
}
/** "a0", "b1": the runners holding the key in a sample */
const holders = (s: Sample) => HOSTS.flatMap((h) => s.leaders[h].flatMap((n, id) => (n !== null && n > 0 ? [`${h}${id}`] : [])));
const holderHosts = (s: Sample) => [...new Set(holders(s).map((x) => x[0] as Host))];

/** Every MONITOR_PERIOD_MS, every runner of every host */
const monitor = new Sampler<Sample>(async () => {
  const per = await Promise.all(HOSTS.map((h) => Promise.all(Array.from({ length: RUNNERS }, (_, i) => leaderCount(hosts.get(h)!.restBase + i, MONITOR_TIMEOUT_MS)))));
  return { leaders: Object.fromEntries(HOSTS.map((h, i) => [h, per[i]!])) as Record<Host, (number | null)[]> };
}, MONITOR_PERIOD_MS);

/**
 * Exactly one runner holds the key for STEADY_FOR_MS and every runner of every host answers: a
 * runner a dead-man switch froze must not stay frozen (the daemon kills it and systemd restarts it;
 * once every runner of the signing host stayed frozen, nobody signed again after quorum returned).
 */
async function steady(timeoutMs = SETTLE_TIMEOUT_MS): Promise<{ host: Host; runner: string; sinceMs: number }> {
  return steadyOf((s) => HOSTS.every((h) => s.leaders[h].every((n) => n !== null)), timeoutMs);
}

/** After a fault: wait for the steady state and say in the timeline when every runner answered again. */
async function recovered(f: Fault): Promise<void> {
  const { sinceMs } = await steady();
  f.detail += `; all runners answering, one signer: +${sinceMs - f.atMs} ms`;
}

/** Exactly one runner holds the key for STEADY_FOR_MS, in samples where `answering` holds. */
async function steadyOf(answering: (s: Sample) => boolean, timeoutMs = SETTLE_TIMEOUT_MS): Promise<{ host: Host; runner: string; sinceMs: number }> {
  const deadline = Date.now() + timeoutMs;
  let since: number | null = null;
  let signer = "";
  for (;;) {
    const s = monitor.latest();
    const ok = s !== undefined && answering(s) && holders(s).length === 1;
    if (ok && (since === null || holders(s)[0] !== signer)) {
      since = s.t;
      signer = holders(s)[0]!;
    }
    if (!ok) since = null;
    if (since !== null && s !== undefined && s.t - since >= STEADY_FOR_MS) return { host: signer[0] as Host, runner: signer, sinceMs: since };
    if (Date.now() > deadline) {
      throw new Error(`no steady state within ${timeoutMs} ms; last sample ${JSON.stringify(s)}\n${HOSTS.map((h) => `--- daemon ${h}:\n${tail(join(ROOT, "logs", `daemon-${h}.log`))}`).join("\n")}`);
    }
    await Bun.sleep(MONITOR_PERIOD_MS);
  }
}
const tail = (file: string, lines = 15) => tailOf(file, lines);

let block0Ms = 0;
const awayFromBoundary = (needMs: number) =>
  awayFrom({ block0Ms, epochMs: EPOCH_MS, afterMs: BOUNDARY_QUIET_AFTER_MS, beforeMs: BOUNDARY_QUIET_BEFORE_MS }, needMs);

// --- timeline ---

interface Fault {
  name: string;
  atMs: number;
  answeredMs: number | null;
  detail: string;
}
const faults: Fault[] = [];
let t0 = Date.now();
const rel = (ms: number) => `${((ms - t0) / 1000).toFixed(1).padStart(6)} s`;

/** After a fault on `from`: the first sample where a runner of another host holds the key (and nobody on `from`). */
async function failover(name: string, from: Host, atMs: number, extra = ""): Promise<Fault> {
  const hit = await monitor.first(atMs, (s) => holderHosts(s).length === 1 && holderHosts(s)[0] !== from, FAILOVER_BOUND_MS + 10_000);
  const within = hit === null ? "" : hit.t - atMs <= ISSUE_BOUND_MS ? " (issue target met)" : ` (issue target ${ISSUE_BOUND_MS} ms MISSED)`;
  const f: Fault = { name, atMs, answeredMs: hit?.t ?? null, detail: hit ? `→ ${holders(hit).join(",")}${within}${extra}` : extra };
  faults.push(f);
  return f;
}

/** No sample may ever show two hosts' runners holding the key at once. */
function noTwoHosts(fromMs: number, toMs: number): Sample[] {
  return monitor.between(fromMs, toMs).filter((s) => holderHosts(s).length > 1);
}

describe.skipIf(skipReason !== null)("three hosts over one etcd: faults, audit", () => {
  let auditLine = "audit: not run";

  beforeAll(async () => {
    await preclean();
    if (!existsSync(BIN)) await must(["bun", "run", "build"], 300_000);
    for (const d of ["world", "inputs", "logs"]) mkdirSync(join(ROOT, d), { recursive: true });

    // Below the ephemeral range (test/ports.ts): a runner or etcd member restarted on its port must not
    // find it taken by some client socket's source port (a restarted runner failed to listen for good).
    etcdClientPort = freeLowPorts(13);
    const etcdOut = await etcd("start");
    const endpoints = /JORM_ETCD_ENDPOINTS=(\S+)/.exec(etcdOut)?.[1]?.split(",") ?? [];
    expect(endpoints.length).toBe(3);
    const memberPorts = endpoints.map((u) => Number(new URL(u).port));

    const world = join(ROOT, "world");
    await must([BIN, "sim", "world", "init", world, "--slot-ms", String(SLOT_MS), "--slots-per-epoch", String(SLOTS_PER_EPOCH),
      "--density", String(DENSITY), "--bootstrap-ms", "2000", "--compute-ms", "1500"]);
    block0Ms = Date.parse(/block0_time:\s*"?([^"\n]+)"?/.exec(readFileSync(join(world, "sim-world.yaml"), "utf8"))?.[1] ?? "");
    expect(Number.isFinite(block0Ms)).toBe(true);
    const secret = join(ROOT, "inputs", "node_secret.yaml");
    writeFileSync(secret, `genesis:\n  sig_key: kes25519-12-sk1FAKE\n  vrf_key: vrf_sk1FAKE\n  node_id: "${"0".repeat(63)}1"\n`, { mode: 0o600 });

    const restBase = freeLowPorts(HOSTS.length * RUNNERS);
    t0 = Date.now();
    for (const [i, name] of HOSTS.entries()) {
      const dir = join(ROOT, name);
      for (const d of ["config", "run", "inputs"]) mkdirSync(join(dir, d), { recursive: true });
      const proxies = memberPorts.map((p) => tcpProxy({ hostname: "127.0.0.1", port: p }));
      const h: HostState = {
        name,
        dir,
        proxies,
        restBase: restBase + i * RUNNERS,
        daemon: null,
        daemonEnv: { JORM_MASTER_LOCK: join(dir, "run", "daemon.pid"), JORM_MASTER_BOOT_DIR: join(dir, "run", "boot") },
      };
      hosts.set(name, h);
      const wrapper = join(dir, "inputs", "jormungandr-sim");
      writeFileSync(wrapper, `#!/bin/sh\nexec '${join(dir, "bin", "jorm-master")}' sim node "$@"\n`, { mode: 0o755 });
      const cfg = join(dir, "config", "jorm_master.yaml");
      writeFileSync(
        cfg,
        [
          `cnt_runners: ${RUNNERS}`,
          `node_secret: "${join(dir, "config", "node_secret.yaml")}"`,
          `genesis_hash_file: "${join(dir, "config", "genesis.txt")}"`,
          `runner_binary: "${join(dir, "bin", "jormungandr_runner_{id}")}"`,
          `runner_config: "${join(dir, "config", "jorm_runner_{id}.yaml")}"`,
          `runner_storage: "${join(dir, "storage", "storage_jorm_runner_{id}")}"`,
          "key_mode: rest",
          `rest_host: "127.0.0.1"`,
          `rest_base_port: ${h.restBase}`,
          "max_offset: 3",
          "max_boot: 60",
          "event_action: 4",
          "start_before_event: 10",
          "boot_catch_up: 15",
          `slot_guard: ${SLOT_GUARD_S}`,
          `slot_margin: ${SLOT_MARGIN_S}`,
          "loop_period: 0.25",
          "rest_timeout: 0.3",
          `metrics_listen: ""`,
          "log_level: info",
          "systemd:",
          "  scope: user",
          `  master_unit: ${masterUnit(name)}`,
          `  runner_unit: "jm-e2e-${name}-runner@{id}.service"`,
          "cluster:",
          `  name: host-${name}`,
          `  etcd: [${proxies.map((p) => `"${p.url}"`).join(", ")}]`,
          `  prefix: ${PREFIX}`,
          `  lease_ttl: ${LEASE_TTL_S}`,
          "  etcd_timeout: 0.5",
          "",
        ].join("\n"),
      );
      writeDropIn(join(UNIT_DIR, `${runnerTemplate(name)}.d`, "e2e-sim.conf"), [
        "[Service]",
        `Environment=JORM_SIM_WORLD=${world}`,
        `Environment=JORM_MASTER_BOOT_DIR=${h.daemonEnv.JORM_MASTER_BOOT_DIR}`,
        `ReadWritePaths=${world}`,
        `StandardOutput=append:${join(ROOT, "logs", `runner-${name}-%i.log`)}`,
        "StandardError=inherit",
      ]);
      const out = await must(
        [BIN, "install", "--scope", "user", "--no-start", "--runners", String(RUNNERS), "--jormungandr", wrapper, "--genesis-hash", GENESIS_HASH,
          "--secret", secret, "--config-dir", join(dir, "config"), "--bin-dir", join(dir, "bin"), "--storage-dir", join(dir, "storage"),
          "--state-dir", join(dir, "state")],
        120_000,
      );
      writeFileSync(join(ROOT, "logs", `install-${name}.log`), out);
    }
    await systemctl("daemon-reload");
    for (const h of hosts.values()) startDaemon(h);
    monitor.start();
    const first = await steady();
    console.log(`cluster e2e: three daemons → one verified signer (${first.runner}) in ${Date.now() - t0} ms`);
  }, 240_000);

  afterAll(async () => {
    await monitor.stop();
    console.log(
      [
        "",
        `cluster e2e timeline (t since the daemons started; asserted bound = lease_ttl ${LEASE_TTL_S} s + renew ${renewIntervalMs(LEASE_TTL_S).toFixed(0)} ms + takeover wait ${TAKEOVER_WAIT_MS} ms + window ${WINDOW_MS} ms + 2 s = ${FAILOVER_BOUND_MS.toFixed(0)} ms; issue target lease_ttl + window + 2 s = ${ISSUE_BOUND_MS} ms)`,
        ...faults.map((f) => `${rel(f.atMs)}  ${f.name.padEnd(40)} answered ${f.answeredMs === null ? "NEVER" : `+${f.answeredMs - f.atMs} ms`}  ${f.detail}`),
        auditLine,
        "",
      ].join("\n"),
    );
    const logsTo = process.env.JORM_E2E_LOGS_TO;
    if (logsTo && existsSync(join(ROOT, "logs"))) {
      mkdirSync(logsTo, { recursive: true });
      cpSync(join(ROOT, "logs"), logsTo, { recursive: true });
      for (const f of ["sim-world.yaml", "journal.jsonl"]) if (existsSync(join(ROOT, "world", f))) cpSync(join(ROOT, "world", f), join(logsTo, f));
    }
    await cleanup();
  }, 180_000);

  test("kill every process of the signing host at once: another host signs within the bound", async () => {
    await awayFromBoundary(FAILOVER_BOUND_MS + 3_000);
    const { host } = await steady();
    const h = hosts.get(host)!;
    const pids = [h.daemon!.pid, ...(await Promise.all(Array.from({ length: RUNNERS }, (_, i) => mainPid(runnerUnit(host, i)))))].filter((p) => p > 0);
    const atMs = Date.now();
    for (const p of pids) process.kill(p, "SIGKILL");
    // The host is gone: its service manager must not bring the runners back either.
    await systemctl("stop", ...Array.from({ length: RUNNERS }, (_, i) => runnerUnit(host, i)));
    await h.daemon!.exited;
    h.daemon = null;
    let f: Fault;
    try {
      f = await failover(`kill host ${host} (${pids.length} processes)`, host, atMs);
    } finally {
      // The host comes back (a reboot): its daemon starts its runners again, key-less.
      startDaemon(h);
    }
    expect(f.answeredMs).not.toBeNull();
    expect(f.answeredMs! - atMs).toBeLessThanOrEqual(FAILOVER_BOUND_MS);
    expect(noTwoHosts(atMs, Date.now())).toEqual([]);
    await recovered(f);
  }, 180_000);

  test("cut the signing host off from etcd, its runners running: another host signs within the bound", async () => {
    await awayFromBoundary(FAILOVER_BOUND_MS + 3_000);
    const { host } = await steady();
    const h = hosts.get(host)!;
    const atMs = Date.now();
    for (const p of h.proxies) p.cut(true);
    let f: Fault;
    try {
      f = await failover(`cut host ${host} off from etcd`, host, atMs);
    } finally {
      await Bun.sleep(2_000);
      for (const p of h.proxies) p.cut(false);
    }
    expect(f.answeredMs).not.toBeNull();
    expect(f.answeredMs! - atMs).toBeLessThanOrEqual(FAILOVER_BOUND_MS);
    expect(noTwoHosts(atMs, Date.now())).toEqual([]);
    await recovered(f);
  }, 180_000);

  test("SIGSTOP the signing host's daemon: another host signs within the bound", async () => {
    await awayFromBoundary(FAILOVER_BOUND_MS + 3_000);
    const { host } = await steady();
    const h = hosts.get(host)!;
    const atMs = Date.now();
    process.kill(h.daemon!.pid, "SIGSTOP");
    let f: Fault;
    try {
      f = await failover(`SIGSTOP host ${host}'s daemon`, host, atMs);
    } finally {
      await Bun.sleep(1_000);
      process.kill(h.daemon!.pid, "SIGCONT");
    }
    expect(f.answeredMs).not.toBeNull();
    expect(f.answeredMs! - atMs).toBeLessThanOrEqual(FAILOVER_BOUND_MS);
    expect(noTwoHosts(atMs, Date.now())).toEqual([]);
    await recovered(f);
  }, 180_000);

  test("lose the etcd leader: never two hosts; one signer again within the bound, or its frozen signer kept for the schedule", async () => {
    await awayFromBoundary(FAILOVER_BOUND_MS + 3_000);
    const { host } = await steady();
    const member = (await etcd("leader")).trim();
    const daemonLog = join(ROOT, "logs", `daemon-${host}.log`);
    const logFrom = readFileSync(daemonLog, "utf8").length;
    const atMs = Date.now();
    await etcd("kill", member);
    // The other two elect a leader within about an election timeout, which extends every lease by
    // as much (etcd PR #4778); the signing host's keep-alives may fail meanwhile, and its switch fire.
    try {
      await Bun.sleep(FAILOVER_BOUND_MS);
    } finally {
      await etcd("start");
    }
    const signing = await monitor.first(atMs + FAILOVER_BOUND_MS, (s) => holders(s).length === 1, 2_000);
    const during = monitor.between(atMs, signing?.t ?? Date.now());
    const firstGap = during.find((s) => holders(s).length === 0);
    const back = firstGap === undefined ? undefined : during.find((s) => s.t > firstGap.t && holders(s).length === 1);
    // When the switch froze the signer WITH the key (before its demotion) and no other runner of
    // that host has the epoch's schedule, decide keeps the frozen signer until the boundary (the
    // keep-silent-signer rule: the slots left are lost either way) and nobody holds a key meanwhile.
    const kept = signing === null && readFileSync(daemonLog, "utf8").slice(logFrom).includes("no standby has a schedule for");
    const f: Fault = {
      name: `etcd leader m${member} killed (signer host ${host})`,
      atMs,
      answeredMs: firstGap === undefined ? atMs : (back?.t ?? null),
      detail:
        firstGap === undefined
          ? "the signer kept signing"
          : `no holder from +${firstGap.t - atMs} ms${back ? ` → ${holders(back).join(",")}` : kept ? ": its signer, frozen with the key by the switch, kept until the boundary (the only schedule)" : ""}`,
    };
    faults.push(f);
    expect(signing !== null || kept).toBe(true);
    expect(noTwoHosts(atMs, Date.now())).toEqual([]);
    await recovered(f);
    expect(noTwoHosts(atMs, Date.now())).toEqual([]);
  }, 180_000);

  test("lose etcd's quorum: once the lease is gone nobody signs; a signer again after it is back", async () => {
    await awayFromBoundary(NO_QUORUM_WATCH_MS + FAILOVER_BOUND_MS + 3_000);
    const { host } = await steady();
    const atMs = Date.now();
    await etcd("kill", "2");
    await etcd("kill", "3");
    // The holder's allowance ends within lease_ttl of its last keep-alive; then no runner anywhere holds the key.
    const none = await monitor.first(atMs, (s) => holders(s).length === 0, LEASE_TTL_S * 1000 + 2_000);
    const watchFrom = Date.now();
    await Bun.sleep(NO_QUORUM_WATCH_MS);
    const signedWithoutQuorum = monitor.between(watchFrom, Date.now()).filter((s) => holders(s).length > 0);
    faults.push({
      name: `etcd quorum lost (signer was host ${host})`,
      atMs,
      answeredMs: none?.t ?? null,
      detail: `nobody holds the key; ${signedWithoutQuorum.length} sample(s) with a holder during ${NO_QUORUM_WATCH_MS} ms after`,
    });
    const backAtMs = Date.now();
    await etcd("start");
    const back = await monitor.first(backAtMs, (s) => holders(s).length === 1, 30_000);
    const restored: Fault = { name: "etcd quorum restored", atMs: backAtMs, answeredMs: back?.t ?? null, detail: back ? `→ ${holders(back).join(",")}` : "" };
    faults.push(restored);
    expect(none).not.toBeNull();
    expect(signedWithoutQuorum).toEqual([]);
    expect(back).not.toBeNull();
    expect(noTwoHosts(atMs, Date.now())).toEqual([]);
    // The signer the dead-man switch froze when the allowance ran out is killed and restarted: one
    // signer again and every runner answering.
    await recovered(restored);
  }, 180_000);

  test("sim audit over the shared journal: no slot double-produced, no window shared across hosts", async () => {
    await monitor.stop();
    for (const h of hosts.values()) await stopDaemon(h, "SIGTERM");
    const r = await run([BIN, "sim", "audit", "--world", join(ROOT, "world"), "--guard-ms", String(SLOT_GUARD_S * 1000), "--margin-ms", String(SLOT_MARGIN_S * 1000), "--json"]);
    const report = JSON.parse(r.stdout) as { scheduled: number; produced: number; doubleProduced: number; missed: number; coveragePct: number; signOverlapMs: number; sharedWindows: number };
    auditLine =
      `audit: scheduled ${report.scheduled}, produced ${report.produced}, double-produced ${report.doubleProduced}, missed ${report.missed}, ` +
      `coverage ${report.coveragePct.toFixed(1)} %, shared windows ${report.sharedWindows}, sign overlap ${report.signOverlapMs} ms`;
    expect(report.scheduled).toBeGreaterThan(0);
    expect(report.doubleProduced).toBe(0);
    expect(report.signOverlapMs).toBe(0);
    expect(report.sharedWindows).toBe(0);
  }, 60_000);
});

const writeDropIn = (path: string, lines: string[]) => writeDropInFile(path, lines, "test/e2e/cluster.e2e.ts");

/** A run killed before its cleanup leaves jm-e2e-* units pointing into /var/lib/jm-ecl-*: remove those. */
async function preclean(): Promise<void> {
  await cleanup(true);
}

async function cleanup(stale = false): Promise<void> {
  for (const h of hosts.values()) {
    await stopDaemon(h, "SIGTERM");
    for (const p of h.proxies) p.stop();
  }
  await systemctl("stop", "jm-e2e-*-runner@*.service", "jorm-master-lease-jm-e2e-*");
  if (existsSync(UNIT_DIR)) {
    for (const name of readdirSync(UNIT_DIR).filter((n) => /^jm-e2e-[abc]-(master\.service|runner@\.service)(\.d)?$/.test(n))) {
      const p = join(UNIT_DIR, name);
      if (name.endsWith(".d") || readFileSync(p, "utf8").includes("/var/lib/jm-ecl-")) rmSync(p, { recursive: true, force: true });
    }
  }
  await systemctl("daemon-reload");
  await systemctl("reset-failed");
  if (etcdClientPort > 0) await run(["bash", ETCD_SCRIPT, "stop"], 60_000, etcdEnv());
  const roots = stale ? readdirSync("/var/lib").filter((n) => n.startsWith("jm-ecl-")).map((n) => join("/var/lib", n)) : [ROOT];
  for (const r of roots) {
    const pid = Number(r.replace(/^.*jm-ecl-/, ""));
    if (stale && pid !== process.pid && existsSync(`/proc/${pid}`)) continue;
    if (!stale && process.env.JORM_E2E_KEEP === "1") continue;
    rmSync(r, { recursive: true, force: true });
  }
}
