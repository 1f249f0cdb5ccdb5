// End to end under a real `systemd --user` manager (issue 5, part 5): the compiled binary installs
// itself with `install --scope user`, the simulated node stands in for jormungandr (1 s slots), the
// master runs as a unit and supervises three runner units. Then faults, each answered:
//   kill -9 the signer · SIGSTOP the signer for 3 s (1.0–1.3 s before a leader slot window opens) ·
//   kill -9 the master three times · systemctl restart
// and the checks: no slot double-produced and no window two could sign (sim audit over the whole
// run), a new (or re-adopted) signer within 2 s of each fault being observable (or of the close of a
// pool slot window open then: a window has one signer), runner MainPIDs unchanged across restarts,
// alerts (a json webhook on 127.0.0.1 served by this test) for the daemon's starts and the failover,
// through the master unit's IP filter, and `uninstall --purge` leaves nothing of what install
// created. A timeline of the faults is printed.
//
// Run with `bun run test:e2e` (not part of plain `bun test`). Needs root for the user manager
// (scripts/user-manager.sh); skipped with the reason elsewhere, a failure under CI.
// Env: JORM_E2E_BIN (binary to install; default dist/jorm-master-linux-x64, built when missing),
// JORM_E2E_KEEP=1 (keep the e2e root for a post-mortem; units are still removed),
// JORM_E2E_LOGS_TO=DIR (copy the units' logs, install/uninstall output and the simulator's journal
// there before cleaning up; CI keeps them in .ci/out/e2e).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, relative } from "node:path";
import { Chain } from "../../src/sim/chain.ts";
import { loadWorld } from "../../src/sim/worldfile.ts";
import { freeLowPorts } from "../ports.ts";
import { awayFromBoundary as awayFrom, commands, leaderCount, Sampler, tail as tailOf, writeDropIn as writeDropInFile } from "./support.ts";
import { ensureUserManager, requireUserManager } from "./user-manager.ts";

const REPO = join(import.meta.dir, "..", "..");
const BIN = process.env.JORM_E2E_BIN ?? join(REPO, "dist", "jorm-master-linux-x64");
const RUNNERS = 3;
const MASTER_UNIT = "jorm_master.service";
const RUNNER_TEMPLATE = "jorm_runner@.service";
const runnerUnit = (id: number) => `jorm_runner@${id}.service`;
/** Units PrivateTmp=yes: binaries and inputs must not live under /tmp or /var/tmp. */
const ROOT = `/var/lib/jm-e2e-${process.pid}`;
const UNIT_DIR = join(homedir(), ".config", "systemd", "user");
const DIRS = {
  config: join(ROOT, "config"),
  bin: join(ROOT, "bin"),
  storage: join(ROOT, "storage"),
  state: join(ROOT, "state"),
  world: join(ROOT, "world"),
  inputs: join(ROOT, "inputs"),
  logs: join(ROOT, "logs"),
};
/** Files this test writes itself (not install): excluded from "what install created". */
const OWN_DROPINS = [join(UNIT_DIR, `${RUNNER_TEMPLATE}.d`, "e2e-sim.conf"), join(UNIT_DIR, `${MASTER_UNIT}.d`, "e2e-log.conf")];
const GENESIS_HASH = "8e4d2a343f3dcf9330ad9035b3e8d168e6728904262f2c434a4f8f934ec7b676";

// Chain and master timing: 1 s slots, 60 per epoch, 8 leader slots per epoch; the master at 4 Hz.
const SLOT_MS = 1_000;
const SLOTS_PER_EPOCH = 60;
const EPOCH_MS = SLOT_MS * SLOTS_PER_EPOCH;
const DENSITY = 8;
const BOOTSTRAP_MS = 3_000;
const COMPUTE_MS = 2_000;
const LOOP_PERIOD_S = 0.25;
const REST_TIMEOUT_MS = 300;
const SLOT_GUARD_S = 0.4;
const SLOT_MARGIN_S = 0.4;
const EVENT_ACTION_S = 4;

/** The bound of the issue: a new signer within 2 s of the fault being observable. */
const ANSWER_MS = 2_000;
/** A frozen runner is observable only once a REST call to it timed out. */
const FREEZE_MS = 3_000;
/** The SIGSTOP lands this far before a leader slot's guarded window opens (the master detects it within DETECT_MS) */
const STOP_BEFORE_WINDOW_MS = [1_000, 1_300] as const;
/** systemd restarts the master after RestartSec=1. */
const MASTER_RESTART_WAIT_MS = 15_000;
const SETTLE_TIMEOUT_MS = 90_000;
const MONITOR_PERIOD_MS = 100;
const MONITOR_TIMEOUT_MS = 250;
/** Faults are injected away from epoch boundaries (hand-out from event_action before, schedule compute after). */
const BOUNDARY_QUIET_BEFORE_MS = 7_000;
const BOUNDARY_QUIET_AFTER_MS = 6_000;
/** The line the daemon logs after its first observation (its adoption of what runs). */
const FIRST_OBSERVATION = "first observation done";
/** An alert is queued at the tick that saw its cause and posted at once; allow for a retry (2 s). */
const ALERT_WAIT_MS = 10_000;

const um = await ensureUserManager();
if (!um.ok) console.warn(`skipping the systemd e2e test: ${um.reason}`);
test.if(requireUserManager)("CI has a real user manager for the e2e test", () => {
  expect(um.ok ? "ok" : um.reason).toBe("ok");
});

const env: Record<string, string> = um.ok ? um.env : {};

const { run, must, systemctl } = commands(env);

async function show(unit: string): Promise<{ mainPid: number; activeState: string; restarts: number }> {
  const out = (await systemctl("show", "-p", "MainPID,ActiveState,NRestarts", "--", unit)).stdout;
  const prop = (k: string) => new RegExp(`^${k}=(.*)$`, "m").exec(out)?.[1] ?? "";
  return { mainPid: Number(prop("MainPID")) || 0, activeState: prop("ActiveState"), restarts: Number(prop("NRestarts")) || 0 };
}

async function runnerPids(): Promise<number[]> {
  return Promise.all(Array.from({ length: RUNNERS }, async (_, id) => (await show(runnerUnit(id))).mainPid));
}


// --- The monitor: every 100 ms, GET /api/v0/leaders on every runner (what "a signer" means here) ---

interface Sample {
  /** When the sample's requests had all returned (ms since epoch) */
  t: number;
  /** Leader count per runner; null: no answer (down, frozen, booting: 503) */
  leaders: (number | null)[];
}

/** Every MONITOR_PERIOD_MS, every runner's leader count */
const monitorOf = (ports: number[]) =>
  new Sampler<Sample>(async () => ({ leaders: await Promise.all(ports.map((p) => leaderCount(p, MONITOR_TIMEOUT_MS))) }), MONITOR_PERIOD_MS);
type Monitor = Sampler<Sample>;

const holders = (s: Sample) => s.leaders.flatMap((n, id) => (n !== null && n > 0 ? [id] : []));

// --- The alert receiver: a json webhook on loopback, as an operator's would be on the LAN ---

interface Alert {
  /** When it arrived (ms since epoch) */
  t: number;
  kind: string;
  title: string;
  runner?: number;
}

class AlertReceiver {
  readonly alerts: Alert[] = [];
  readonly bad: string[] = [];
  private server: ReturnType<typeof Bun.serve> | null = null;

  start(): string {
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async (req) => {
        const text = await req.text();
        try {
          const body = JSON.parse(text) as { source?: unknown; kind?: unknown; title?: unknown; runner?: unknown };
          if (body.source !== "jorm-master" || typeof body.kind !== "string" || typeof body.title !== "string") throw new Error("not an alert");
          this.alerts.push({ t: Date.now(), kind: body.kind, title: body.title, ...(typeof body.runner === "number" ? { runner: body.runner } : {}) });
        } catch {
          this.bad.push(text.slice(0, 200));
        }
        return new Response("ok");
      },
    });
    return `http://127.0.0.1:${this.server.port}/hook`;
  }

  stop(): void {
    this.server?.stop(true);
  }

  /** The first alert after `fromMs` that satisfies `ok`, waiting for it up to `timeoutMs`. */
  async first(fromMs: number, ok: (a: Alert) => boolean, timeoutMs = ALERT_WAIT_MS): Promise<Alert | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.alerts.find((a) => a.t >= fromMs && ok(a));
      if (hit) return hit;
      if (Date.now() > deadline) return null;
      await Bun.sleep(50);
    }
  }

  count(kind: string): number {
    return this.alerts.filter((a) => a.kind === kind).length;
  }

  summary(): string {
    return this.alerts.map((a) => `${a.kind}: ${a.title}`).join("; ") || "none";
  }
}

// --- Files: what install created must be gone after uninstall ---

function listTree(dir: string, into: Set<string>): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    into.add(p);
    if (lstatSync(p).isDirectory()) listTree(p, into);
  }
}

function snapshotFiles(): Set<string> {
  const files = new Set<string>();
  for (const d of [DIRS.config, DIRS.bin, DIRS.storage, DIRS.state, UNIT_DIR]) {
    if (existsSync(d)) files.add(d);
    listTree(d, files);
  }
  return files;
}

async function ourLoadedUnits(): Promise<string[]> {
  const out = (await systemctl("list-units", "--all", "--plain", "--no-legend", "--no-pager")).stdout;
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((u) => /^jorm_master\.service$|^jorm_runner@|^jorm-master-lease-jorm_runner/.test(u));
}

// --- The timeline the closing note quotes ---

interface Fault {
  name: string;
  /** When the fault was injected */
  atMs: number;
  /** When it became observable (the master could know) */
  observableMs: number;
  /** When the answer was verified (new or re-adopted signer), null if never */
  answeredMs: number | null;
  detail: string;
}

const faults: Fault[] = [];
let t0 = Date.now();
const rel = (ms: number) => `${((ms - t0) / 1000).toFixed(1).padStart(6)} s`;

function printTimeline(audit: string): void {
  const lines = [
    "",
    "e2e timeline (t since install; latency = answer - observable)",
    ...faults.map(
      (f) =>
        `${rel(f.atMs)}  ${f.name.padEnd(32)} observable +${f.observableMs - f.atMs} ms, ` +
        `answered ${f.answeredMs === null ? "NEVER" : `+${f.answeredMs - f.observableMs} ms`}  ${f.detail}`,
    ),
    audit,
    "",
  ];
  console.log(lines.join("\n"));
}

// --- Chain clock (from the world file) ---

let block0Ms = 0;
let chain: Chain | null = null;
/** Time for the master to see a fault and fence: one loop period plus a REST deadline. */
const DETECT_MS = LOOP_PERIOD_S * 1000 + REST_TIMEOUT_MS;

/**
 * When the answer to a fault observable at `ms` is due. A window has one signer: the one lost may
 * have signed its slot, so the master hands over only once every pool slot window open while it
 * detects the fault [ms, ms + DETECT_MS] has closed (the issue's 2 s run from then).
 */
function answerDueMs(ms: number): { dueMs: number; note: string } {
  const guard = SLOT_GUARD_S * 1000;
  const margin = SLOT_MARGIN_S * 1000;
  const open = (chain?.leaderSlotsBetween(ms - SLOT_MS - margin, ms + DETECT_MS + guard) ?? [])
    .map((p) => ({ p, startMs: chain!.slotStartMs(p.epoch, p.slot) - guard, endMs: chain!.slotStartMs(p.epoch, p.slot) + SLOT_MS + margin }))
    .filter((w) => w.startMs < ms + DETECT_MS && w.endMs > ms);
  if (open.length === 0) return { dueMs: ms + ANSWER_MS, note: "" };
  const last = open[open.length - 1]!;
  return { dueMs: Math.max(...open.map((w) => w.endMs)) + ANSWER_MS, note: ` (slot ${last.p.epoch}.${last.p.slot}'s window was open: waited for it)` };
}

/**
 * Waits until the next leader slot's guarded window opens within `range` ms, away from a boundary
 * (`needMs` as awayFromBoundary); returns how far ahead it opens.
 */
async function beforeWindow(range: readonly [number, number], needMs: number): Promise<number> {
  const deadline = Date.now() + 2 * EPOCH_MS;
  for (;;) {
    const now = Date.now();
    const intoEpoch = (now - block0Ms) % EPOCH_MS;
    const quiet = intoEpoch >= BOUNDARY_QUIET_AFTER_MS && EPOCH_MS - intoEpoch >= BOUNDARY_QUIET_BEFORE_MS + needMs;
    const next = chain!.leaderSlotsBetween(now, now + EPOCH_MS).map((p) => chain!.slotStartMs(p.epoch, p.slot) - SLOT_GUARD_S * 1000).find((w) => w > now);
    if (quiet && next !== undefined && next - now >= range[0] && next - now <= range[1]) return next - now;
    if (now > deadline) throw new Error(`no leader slot window ${range[0]}–${range[1]} ms ahead, away from a boundary, within two epochs`);
    await Bun.sleep(20);
  }
}

/**
 * Tells the audit that the test stopped the process `pid` at `atMs`. A simulated node journals a
 * SIGSTOP itself only once it runs again; one the master then SIGKILLs leaves nothing, and the audit
 * would count it able to sign until its restart (or 2 s after its last entry): a sign overlap that
 * never was, whenever the promotion and a window fall in that span (seen: 182 and 231 ms).
 */
function journalFreeze(pid: number, atMs: number): void {
  const path = join(DIRS.world, "journal.jsonl");
  const started = readFileSync(path, "utf8").split("\n").filter((l) => l.includes('"proc_start"')).map((l) => JSON.parse(l) as { pid: number; runner: number; inc: number });
  const proc = started.findLast((e) => e.pid === pid);
  if (proc === undefined) throw new Error(`no proc_start for pid ${pid} in ${path}`);
  appendFileSync(path, `${JSON.stringify({ t: atMs, kind: "freeze", runner: proc.runner, inc: proc.inc })}\n`);
}

/** Waits until the next `needMs` are clear of an epoch boundary's hand-out and schedule computation. */
const awayFromBoundary = (needMs: number) =>
  awayFrom({ block0Ms, epochMs: EPOCH_MS, afterMs: BOUNDARY_QUIET_AFTER_MS, beforeMs: BOUNDARY_QUIET_BEFORE_MS }, needMs);

// --- Steady state: every runner unit active and answering, exactly one holder, for a while ---

const STEADY_FOR_MS = 1_500;

async function steady(monitor: Monitor, timeoutMs = SETTLE_TIMEOUT_MS): Promise<{ signer: number; pids: number[] }> {
  const deadline = Date.now() + timeoutMs;
  let since: number | null = null;
  let signer = -1;
  for (;;) {
    const s = monitor.latest();
    const ok = s !== undefined && s.leaders.every((n) => n !== null) && holders(s).length === 1;
    if (ok && (since === null || holders(s)[0] !== signer)) {
      since = s.t;
      signer = holders(s)[0]!;
    }
    if (!ok) since = null;
    if (since !== null && s !== undefined && s.t - since >= STEADY_FOR_MS) {
      const pids = await runnerPids();
      const states = await Promise.all(Array.from({ length: RUNNERS }, (_, id) => show(runnerUnit(id))));
      if (pids.every((p) => p > 0) && states.every((st) => st.activeState === "active")) return { signer, pids };
    }
    if (Date.now() > deadline) {
      throw new Error(`no steady state within ${timeoutMs} ms; last sample ${JSON.stringify(s)}; master log tail:\n${tail(join(DIRS.logs, "master.log"))}`);
    }
    await Bun.sleep(MONITOR_PERIOD_MS);
  }
}

const tail = (file: string, lines = 30) => tailOf(file, lines);

const firstObservations = () => {
  try {
    return readFileSync(join(DIRS.logs, "master.log"), "utf8").split(FIRST_OBSERVATION).length - 1;
  } catch {
    return 0;
  }
};

/** After the master was killed or restarted: its new process, then its first observation (adoption). */
async function masterBack(oldPid: number, countBefore: number): Promise<{ newPid: number; startedMs: number; adoptedMs: number | null }> {
  const deadline = Date.now() + MASTER_RESTART_WAIT_MS;
  let newPid = 0;
  let startedMs = 0;
  while (Date.now() < deadline) {
    const m = await show(MASTER_UNIT);
    if (m.mainPid > 0 && m.mainPid !== oldPid) {
      newPid = m.mainPid;
      startedMs = Date.now();
      break;
    }
    await Bun.sleep(50);
  }
  if (newPid === 0) throw new Error(`${MASTER_UNIT} did not come back within ${MASTER_RESTART_WAIT_MS} ms`);
  while (Date.now() < deadline) {
    if (firstObservations() > countBefore) return { newPid, startedMs, adoptedMs: Date.now() };
    await Bun.sleep(25);
  }
  return { newPid, startedMs, adoptedMs: null };
}

// --- The run ---

describe.skipIf(!um.ok)("jorm-master under systemd --user: install, faults, audit, uninstall", () => {
  // Below the ephemeral range (test/ports.ts): a runner restarted on its port must not find it taken
  // by some client socket's source port.
  const restBase = um.ok ? freeLowPorts(RUNNERS) : 0;
  const ports = Array.from({ length: RUNNERS }, (_, i) => restBase + i);
  const monitor = monitorOf(ports);
  const receiver = new AlertReceiver();
  let before = new Set<string>();
  let installed = new Set<string>();
  let uninstalled = false;
  let auditLine = "audit: not run";

  beforeAll(async () => {
    await ensureSessionBus();
    await preclean();
    if (!existsSync(BIN)) await must(["bun", "run", "build"], 300_000);
    // Only what the operator brings exists before install; install creates bin, storage and state.
    for (const d of [DIRS.config, DIRS.world, DIRS.inputs, DIRS.logs]) mkdirSync(d, { recursive: true });

    // The simulated chain, and a wrapper that runs the installed binary as a jormungandr.
    await must([BIN, "sim", "world", "init", DIRS.world, "--slot-ms", String(SLOT_MS), "--slots-per-epoch", String(SLOTS_PER_EPOCH),
      "--density", String(DENSITY), "--bootstrap-ms", String(BOOTSTRAP_MS), "--compute-ms", String(COMPUTE_MS)]);
    const world = readFileSync(join(DIRS.world, "sim-world.yaml"), "utf8");
    block0Ms = Date.parse(/block0_time:\s*"?([^"\n]+)"?/.exec(world)?.[1] ?? "");
    expect(Number.isFinite(block0Ms)).toBe(true);
    chain = new Chain(loadWorld(join(DIRS.world, "sim-world.yaml")).chain);
    const wrapper = join(DIRS.world, "jormungandr-sim");
    writeFileSync(wrapper, `#!/bin/sh\nexec '${join(DIRS.bin, "jorm-master")}' sim node "$@"\n`, { mode: 0o755 });

    const hookUrl = receiver.start();
    const secret = join(DIRS.inputs, "node_secret.yaml");
    writeFileSync(secret, `genesis:\n  sig_key: kes25519-12-sk1FAKE\n  vrf_key: vrf_sk1FAKE\n  node_id: "${"0".repeat(63)}1"\n`, { mode: 0o600 });

    // The operator's config, written before install (install keeps it): fast slots need a short loop,
    // guard + margin < 0.9 s for the boundary hand-out, and ports nobody else uses.
    writeFileSync(
      join(DIRS.config, "jorm_master.yaml"),
      [
        `cnt_runners: ${RUNNERS}`,
        `node_secret: "${join(DIRS.config, "node_secret.yaml")}"`,
        `genesis_hash_file: "${join(DIRS.config, "genesis.txt")}"`,
        `runner_binary: "${join(DIRS.bin, "jormungandr_runner_{id}")}"`,
        `runner_config: "${join(DIRS.config, "jorm_runner_{id}.yaml")}"`,
        `runner_storage: "${join(DIRS.storage, "storage_jorm_runner_{id}")}"`,
        "key_mode: boot",
        `rest_host: "127.0.0.1"`,
        `rest_base_port: ${restBase}`,
        "max_offset: 3",
        "max_boot: 60",
        `event_action: ${EVENT_ACTION_S}`,
        "start_before_event: 10",
        "boot_catch_up: 15",
        `slot_guard: ${SLOT_GUARD_S}`,
        `slot_margin: ${SLOT_MARGIN_S}`,
        `loop_period: ${LOOP_PERIOD_S}`,
        `rest_timeout: ${REST_TIMEOUT_MS / 1000}`,
        `metrics_listen: ""`,
        "log_level: info",
        "systemd:",
        "  scope: user",
        // A webhook on loopback: the master unit keeps its IP filter (deny any, allow localhost).
        "alerts:",
        "  channels:",
        "    - name: e2e",
        "      type: webhook",
        "      preset: json",
        `      url: "${hookUrl}"`,
        "",
      ].join("\n"),
    );
    await must([BIN, "config", "check", "--config", join(DIRS.config, "jorm_master.yaml")]);

    // Drop-ins of the test (not of install): the simulated nodes share a world dir they must write
    // (the units may write only their storage), and the units' output goes to files (no journald here).
    writeDropIn(OWN_DROPINS[0]!, [
      "[Service]",
      `Environment=JORM_SIM_WORLD=${DIRS.world}`,
      `ReadWritePaths=${DIRS.world}`,
      `StandardOutput=append:${DIRS.logs}/runner-%i.log`,
      "StandardError=inherit",
    ]);
    writeDropIn(OWN_DROPINS[1]!, ["[Service]", `StandardOutput=append:${DIRS.logs}/master.log`, "StandardError=inherit"]);

    before = snapshotFiles();
    t0 = Date.now();
    const out = await must(
      [BIN, "install", "--scope", "user", "--runners", String(RUNNERS), "--jormungandr", wrapper, "--genesis-hash", GENESIS_HASH,
        "--secret", secret, "--config-dir", DIRS.config, "--bin-dir", DIRS.bin, "--storage-dir", DIRS.storage, "--state-dir", DIRS.state],
      120_000,
    );
    writeFileSync(join(DIRS.logs, "install.log"), out);
    installed = snapshotFiles();
    monitor.start();
    const first = await steady(monitor);
    console.log(`e2e: install → one verified signer (#${first.signer}) in ${Date.now() - t0} ms; runner pids ${first.pids.join(", ")}`);
  }, 240_000);

  afterAll(async () => {
    await monitor.stop();
    receiver.stop();
    printTimeline(auditLine);
    console.log(`e2e: alerts received: ${receiver.summary()}`);
    if (!uninstalled) {
      for (let id = 0; id < RUNNERS; id++) {
        const r = await systemctl("show", "-p", "NRestarts,Result,ExecMainStatus,ExecMainCode,ActiveState", "--", runnerUnit(id));
        console.log(`${runnerUnit(id)}: ${r.stdout.trim().split("\n").join(" ")}`);
      }
    }
    if (!uninstalled) await run([BIN, "uninstall", "--scope", "user", "--state-dir", DIRS.state, "--purge", "--force", "--yes"], 120_000);
    const logsTo = process.env.JORM_E2E_LOGS_TO;
    if (logsTo) {
      mkdirSync(logsTo, { recursive: true });
      cpSync(DIRS.logs, logsTo, { recursive: true });
      for (const f of ["sim-world.yaml", "journal.jsonl"]) if (existsSync(join(DIRS.world, f))) cpSync(join(DIRS.world, f), join(logsTo, f));
    }
    await cleanup();
  }, 180_000);

  test("alerts leave the daemon through the hardened unit: its start reached the webhook on 127.0.0.1", async () => {
    const unit = readFileSync(join(UNIT_DIR, MASTER_UNIT), "utf8");
    expect(unit).toMatch(/^IPAddressDeny=any$/m);
    expect(unit).toMatch(/^IPAddressAllow=localhost$/m);
    const started = await receiver.first(t0, (a) => a.kind === "daemon_start");
    expect(started?.title ?? `no daemon_start alert; received: ${receiver.summary()}`).toBe("daemon started");
    expect(receiver.bad).toEqual([]);
  }, 30_000);

  test("kill -9 the signer: another runner signs within 2 s", async () => {
    await awayFromBoundary(8_000);
    const { signer } = await steady(monitor);
    const pid = (await show(runnerUnit(signer))).mainPid;
    const atMs = Date.now();
    process.kill(pid, "SIGKILL");
    const hit = await monitor.first(atMs, (s) => holders(s).some((id) => id !== signer), 10_000);
    const due = answerDueMs(atMs);
    const f: Fault = { name: `kill -9 signer #${signer}`, atMs, observableMs: atMs, answeredMs: hit?.t ?? null, detail: hit ? `→ #${holders(hit).join(",")}${due.note}` : "" };
    faults.push(f);
    expect(f.answeredMs).not.toBeNull();
    expect(f.answeredMs!).toBeLessThanOrEqual(due.dueMs);
    // The failover is told: an alert naming the runner that took over.
    const next = holders(hit!).find((id) => id !== signer)!;
    const alert = await receiver.first(atMs, (a) => a.kind === "failover" && a.runner === next);
    expect(alert?.title ?? `no failover alert for #${next}; received: ${receiver.summary()}`).toContain(`#${next} signs`);
    await steady(monitor);
  }, 120_000);

  test("SIGSTOP the signer for 3 s: another runner signs within 2 s + the REST timeout", async () => {
    await awayFromBoundary(FREEZE_MS + 5_000);
    const { signer } = await steady(monitor);
    const pid = (await show(runnerUnit(signer))).mainPid;
    // The hard case: the stop comes just before a leader slot's window, so the master must fence
    // the stopped signer and promote another before that window opens (or leave the window to it).
    const before = await beforeWindow(STOP_BEFORE_WINDOW_MS, FREEZE_MS + 5_000);
    const atMs = Date.now();
    process.kill(pid, "SIGSTOP");
    journalFreeze(pid, Date.now());
    let hit: Sample | null;
    try {
      hit = await monitor.first(atMs, (s) => holders(s).some((id) => id !== signer), Math.max(FREEZE_MS, answerDueMs(atMs).dueMs + REST_TIMEOUT_MS - atMs));
    } finally {
      await Bun.sleep(Math.max(0, atMs + FREEZE_MS - Date.now()));
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // the master fenced it with SIGKILL: nothing to thaw
      }
    }
    const f: Fault = {
      name: `SIGSTOP signer #${signer} (${FREEZE_MS / 1000} s)`,
      atMs,
      // The master may see the stop at once (/proc state T) or only when a REST call times out:
      // measured from the stop itself, bounded by 2 s + the REST timeout.
      observableMs: atMs,
      answeredMs: hit?.t ?? null,
      detail: `${hit ? `→ #${holders(hit).join(",")}${answerDueMs(atMs).note}` : ""}; stopped ${before} ms before a window opened`,
    };
    faults.push(f);
    expect(f.answeredMs).not.toBeNull();
    expect(f.answeredMs!).toBeLessThanOrEqual(answerDueMs(atMs).dueMs + REST_TIMEOUT_MS);
    await steady(monitor);
  }, 120_000);

  async function masterFault(name: string, inject: (pid: number) => Promise<void>): Promise<void> {
    const old = await show(MASTER_UNIT);
    expect(old.mainPid).toBeGreaterThan(0);
    const countBefore = firstObservations();
    const atMs = Date.now();
    await inject(old.mainPid);
    const back = await masterBack(old.mainPid, countBefore);
    // The signer kept its key while the master was away; the new master must re-adopt it (or hand
    // over) and leave exactly one holder.
    const verified = back.adoptedMs === null ? null : await monitor.first(back.adoptedMs, (s) => holders(s).length === 1, ANSWER_MS * 2);
    const f: Fault = {
      name,
      atMs,
      observableMs: back.startedMs,
      answeredMs: back.adoptedMs === null || verified === null ? null : Math.max(back.adoptedMs, verified.t),
      detail: `master pid ${old.mainPid} → ${back.newPid}${verified ? `, signer #${holders(verified).join(",")}` : ""}`,
    };
    faults.push(f);
    expect(f.answeredMs).not.toBeNull();
    expect(f.answeredMs! - f.observableMs).toBeLessThanOrEqual(ANSWER_MS);
  }

  test("kill -9 the master three times, then systemctl restart: re-adopted each time, no runner restarted", async () => {
    await awayFromBoundary(12_000);
    const { pids } = await steady(monitor);
    const startsBefore = receiver.count("daemon_start");
    for (let i = 1; i <= 3; i++) {
      await masterFault(`kill -9 master (${i}/3)`, async (pid) => {
        process.kill(pid, "SIGKILL");
      });
      await Bun.sleep(1_000);
    }
    await awayFromBoundary(6_000);
    await masterFault("systemctl --user restart master", async () => {
      await must(["systemctl", "--user", "restart", MASTER_UNIT]);
    });
    await Bun.sleep(2_000);
    expect(await runnerPids()).toEqual(pids);
    const settled = await steady(monitor);
    expect(settled.pids).toEqual(pids);
    // Each new master announces itself once it has observed (3 after kill -9, 1 after the restart).
    const deadline = Date.now() + ALERT_WAIT_MS;
    while (receiver.count("daemon_start") < startsBefore + 4 && Date.now() < deadline) await Bun.sleep(100);
    expect(receiver.count("daemon_start") - startsBefore).toBe(4);
  }, 180_000);

  test("an epoch boundary under the restarted master keeps one signer", async () => {
    // Run across the next boundary: the hand-out happens under the master that adopted the runners.
    const now = Date.now();
    const nextBoundary = block0Ms + Math.ceil((now - block0Ms) / EPOCH_MS) * EPOCH_MS;
    await Bun.sleep(Math.max(0, nextBoundary - now) + BOUNDARY_QUIET_AFTER_MS);
    await steady(monitor);
  }, EPOCH_MS + 120_000);

  // --- The operator's toolbox (issue 12): switchover, hold/release, rolling upgrade ---
  const CONFIG = () => join(DIRS.config, "jorm_master.yaml");
  const NEW_VERSION = "jormungandr 0.8.15-e2e";
  let opsFromMs = 0;
  let opsToMs = 0;

  async function nodeVersion(port: number): Promise<string | null> {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/api/v0/node/stats`, { signal: AbortSignal.timeout(1_000) });
      return ((await r.json()) as { version?: string }).version ?? null;
    } catch {
      return null;
    }
  }

  test("switchover N: the key moves to N in a gap between windows, answered with the gap", async () => {
    await awayFromBoundary(15_000);
    const { signer } = await steady(monitor);
    opsFromMs = Date.now();
    const target = (signer + 1) % RUNNERS;
    const r = await run([BIN, "switchover", String(target), "--yes", "--config", CONFIG()], 120_000);
    console.log(`e2e: switchover → ${r.stdout.trim()} ${r.stderr.trim().split("\n").join(" | ")}`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`to #${target} (in the gap`);
    const after = await steady(monitor);
    expect(after.signer).toBe(target);
  }, 180_000);

  test("hold a standby and stop it by hand: it stays stopped, status shows the hold; release starts it", async () => {
    await awayFromBoundary(20_000);
    const { signer } = await steady(monitor);
    const id = (signer + 1) % RUNNERS;
    expect((await run([BIN, "hold", String(id), "--reason", "e2e maintenance", "--config", CONFIG()])).code).toBe(0);
    await must(["systemctl", "--user", "stop", runnerUnit(id)]);
    await Bun.sleep(6_000);
    expect(await show(runnerUnit(id))).toMatchObject({ activeState: "inactive", mainPid: 0 });
    const st = await run([BIN, "status", "--config", CONFIG()]);
    expect(st.stdout + st.stderr).toContain(`#${id} held (e2e maintenance)`);
    expect((await run([BIN, "release", String(id), "--config", CONFIG()])).code).toBe(0);
    await steady(monitor);
    expect((await show(runnerUnit(id))).activeState).toBe("active");
  }, 180_000);

  test("upgrade --jormungandr: every runner runs the new build, one signer throughout", async () => {
    const v2 = join(DIRS.world, "jormungandr-sim-v2");
    writeFileSync(v2, `#!/bin/sh\nJORM_SIM_NODE_VERSION='${NEW_VERSION}' exec '${join(DIRS.bin, "jorm-master")}' sim node "$@"\n`, { mode: 0o755 });
    await steady(monitor);
    expect(await Promise.all(ports.map(nodeVersion))).not.toContain(NEW_VERSION);
    const dry = await run([BIN, "upgrade", "--jormungandr", v2, "--dry-run", "--config", CONFIG()]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("switchover: move the key");
    const r = await run([BIN, "upgrade", "--jormungandr", v2, "--yes", "--config", CONFIG()], 540_000);
    writeFileSync(join(DIRS.logs, "upgrade.log"), `${r.stdout}\n${r.stderr}`);
    console.log(`e2e: upgrade (exit ${r.code}): ${r.stdout.trim()}\n${r.stderr.trim()}`);
    expect(r.code).toBe(0);
    await steady(monitor);
    expect(await Promise.all(ports.map(nodeVersion))).toEqual(ports.map(() => NEW_VERSION));
    opsToMs = Date.now();
    // Never two key holders while it ran (the boundary hand-out's co-holders aside, which the audit judges).
  }, 600_000);

  test("sim audit over the operator's steps: no slot double-produced, none missed that was producible", async () => {
    expect(opsToMs).toBeGreaterThan(opsFromMs);
    const r = await run([BIN, "sim", "audit", "--world", DIRS.world, "--from", String(opsFromMs), "--to", String(opsToMs),
      "--guard-ms", String(SLOT_GUARD_S * 1000), "--margin-ms", String(SLOT_MARGIN_S * 1000), "--json"]);
    const report = JSON.parse(r.stdout) as { scheduled: number; produced: number; doubleProduced: number; missed: number; unproducible: number; unproducibleReasons: Record<string, number>; sharedWindows: number };
    console.log(`e2e: audit of the operator's steps (${Math.round((opsToMs - opsFromMs) / 1000)} s): ${JSON.stringify({ ...report, slots: undefined })}`);
    expect(report.scheduled).toBeGreaterThan(0);
    expect(report.doubleProduced).toBe(0);
    expect(report.missed).toBe(0);
    expect(report.sharedWindows).toBe(0);
  }, 60_000);

  test("uninstall --purge leaves nothing of what install created", async () => {
    await monitor.stop();
    const out = await must([BIN, "uninstall", "--scope", "user", "--state-dir", DIRS.state, "--purge", "--yes"], 120_000);
    writeFileSync(join(DIRS.logs, "uninstall.log"), out);
    uninstalled = true;
    const after = snapshotFiles();
    const created = [...installed].filter((p) => !before.has(p));
    expect(created.length).toBeGreaterThan(0);
    expect(created.filter((p) => after.has(p)).map((p) => relative("/", p))).toEqual([]);
    // Nothing the test owned before install was taken either.
    expect([...before].filter((p) => !after.has(p))).toEqual([]);
    expect(await ourLoadedUnits()).toEqual([]);
    for (const unit of [MASTER_UNIT, RUNNER_TEMPLATE]) expect(existsSync(join(UNIT_DIR, unit))).toBe(false);
  }, 180_000);

  test("sim audit: no slot double-produced, no two processes able to sign one, over the whole run", async () => {
    const r = await run([BIN, "sim", "audit", "--world", DIRS.world, "--guard-ms", String(SLOT_GUARD_S * 1000), "--margin-ms", String(SLOT_MARGIN_S * 1000), "--json"]);
    const report = JSON.parse(r.stdout) as {
      scheduled: number;
      produced: number;
      doubleProduced: number;
      missed: number;
      unproducible: number;
      coveragePct: number;
      overlapMs: number;
      boundaryOverlapMs: number;
      signOverlapMs: number;
      sharedWindows: number;
    };
    auditLine =
      `audit: scheduled ${report.scheduled}, produced ${report.produced}, double-produced ${report.doubleProduced}, ` +
      `missed ${report.missed}, unproducible ${report.unproducible}, coverage ${report.coveragePct.toFixed(1)} %, ` +
      `two able to sign a slot inside its window ${report.signOverlapMs} ms at once, in ${report.sharedWindows} window(s) at all; ` +
      `key overlap (two hold the key, unfrozen, schedule or not) in slot windows ${report.overlapMs} ms, at boundaries ${report.boundaryOverlapMs} ms`;
    expect(report.scheduled).toBeGreaterThan(0);
    expect(report.doubleProduced).toBe(0);
    expect(report.signOverlapMs).toBe(0);
    expect(report.sharedWindows).toBe(0);
    expect(r.code).toBe(0);
  }, 60_000);
});

/**
 * The dead-man switch (systemd-run --user) and the runners' is-active check need the session bus. A
 * socket file removed by someone else leaves dbus.socket "listening" on nothing: restarting the
 * socket unit binds it again.
 */
async function ensureSessionBus(): Promise<void> {
  if (!um.ok || existsSync(join(um.xdgRuntimeDir, "bus"))) return;
  console.warn(`e2e: ${join(um.xdgRuntimeDir, "bus")} is missing; restarting dbus.socket in the user manager`);
  await must(["systemctl", "--user", "restart", "dbus.socket"]);
}

const writeDropIn = (path: string, lines: string[]) => writeDropInFile(path, lines, "test/e2e/systemd.e2e.ts");

/** A run killed before its cleanup leaves units pointing into /var/lib/jm-e2e-*: remove those; refuse anything else. */
async function preclean(): Promise<void> {
  for (const unit of [MASTER_UNIT, RUNNER_TEMPLATE]) {
    const p = join(UNIT_DIR, unit);
    if (!existsSync(p)) continue;
    if (!readFileSync(p, "utf8").includes("/var/lib/jm-e2e-")) {
      throw new Error(`${p} exists and is not from an e2e run: this test installs ${unit} in user scope; remove it first`);
    }
  }
  await cleanup(true);
}

/** Stops and removes whatever the run (or an earlier killed run) left: units, drop-ins, the e2e root. */
async function cleanup(stale = false): Promise<void> {
  await systemctl("stop", MASTER_UNIT);
  await systemctl("stop", "jorm_runner@*.service", "jorm-master-lease-jorm_runner*", "app-jorm_runner.slice");
  for (const unit of [MASTER_UNIT, RUNNER_TEMPLATE]) {
    const p = join(UNIT_DIR, unit);
    if (existsSync(p) && readFileSync(p, "utf8").includes("/var/lib/jm-e2e-")) {
      await systemctl("disable", unit);
      rmSync(p, { force: true });
    }
    const dropIns = join(UNIT_DIR, `${unit}.d`);
    for (const own of ["e2e-sim.conf", "e2e-log.conf"]) rmSync(join(dropIns, own), { force: true });
    if (existsSync(dropIns) && readdirSync(dropIns).length === 0) rmSync(dropIns, { recursive: true });
  }
  await systemctl("daemon-reload");
  await systemctl("reset-failed");
  const roots = stale ? readdirSync("/var/lib").filter((n) => n.startsWith("jm-e2e-")).map((n) => join("/var/lib", n)) : [ROOT];
  for (const r of roots) {
    const pid = Number(r.replace(/^.*jm-e2e-/, ""));
    // Another e2e run that is still alive keeps its root.
    if (stale && pid !== process.pid && existsSync(`/proc/${pid}`)) continue;
    if (!stale && process.env.JORM_E2E_KEEP === "1") continue;
    rmSync(r, { recursive: true, force: true });
  }
}
