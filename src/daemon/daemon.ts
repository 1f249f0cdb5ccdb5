// The daemon as an object: start (lock, metrics, readiness, the loop), reload (a new configuration
// and every port rebuilt from it, or a refusal naming the keys that need a restart) and stop (the
// parting fences). `jorm-master daemon` wires it to signals; tests and the loop benchmark drive it
// directly, with ports of their own or decorated production ones.

import type { ResolvedConfig } from "../config/types.ts";
import { EXIT_FAILURE, EXIT_OK } from "../errors.ts";
import type { MasterDeps } from "../master/act.ts";
import { bootPermits, clearBootPermits, writeBootPermits } from "../master/bootpermits.ts";
import { READY_TIMEOUT_MS } from "../master/bootpolicy.ts";
import { coHolderSwitches } from "../master/cluster.ts";
import { acquireLock, type Lock } from "../master/lock.ts";
import { Master, TicksFailingError, type MasterLog, type TickFailureLimit, type TickReport } from "../master/loop.ts";
import { runnerIds } from "../master/observe.ts";
import { configChanges, statusLine } from "../master/summary.ts";
import { MasterMetrics } from "../metrics/master.ts";
import { serveMetrics, type MetricsServer } from "../metrics/server.ts";
import { createNotifier, type Notifier } from "../systemd/notify.ts";
import { VERSION } from "../version.ts";
import { createElection } from "../cluster/election.ts";
import type { Etcd } from "../cluster/etcd.ts";
import { createGatewayClient } from "../cluster/gateway.ts";
import { fileLeaseStore, settledHandoutEpoch, SignerLease } from "./lease.ts";
import { HostRegistry, type RegistryRound } from "./registry.ts";
import { buildPorts } from "./ports.ts";

/** Test-only: after this many ticks the loop blocks forever, so tests can watch systemd's watchdog act. */
export const STALL_AFTER_TICKS_ENV = "JORM_MASTER_TEST_STALL_AFTER_TICKS";

/** The tick count after which the test hook stalls the loop, or null (the hook is off). */
export function stallAfterTicks(env: Record<string, string | undefined> = process.env): number | null {
  const v = env[STALL_AFTER_TICKS_ENV];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
}

/** Longest a healthy tick may take beyond loop_period: a REST deadline, a systemctl show, fences,
 *  a promotion and systemctl jobs (each bounded by its own timeout) one after the other. */
export const TICK_STALL_LIMIT_MS = 60_000;
/** Ticks come up to 20 a second; systemd needs a ping only every WatchdogSec/2 */
const WATCHDOG_MIN_GAP_MS = 1_000;
/** The parting fences (one observation, SIGSTOPs, demotions) get this long before the daemon exits. */
export const PART_TIMEOUT_MS = 10_000;

/** Test hook: a shorter bound on the first observation than READY_TIMEOUT_MS (never longer). */
export const READY_TIMEOUT_ENV = "JORM_MASTER_TEST_READY_TIMEOUT_MS";
export function readyTimeoutMs(env: Record<string, string | undefined> = process.env): number {
  const v = Number(env[READY_TIMEOUT_ENV]);
  return Number.isSafeInteger(v) && v > 0 && v < READY_TIMEOUT_MS ? v : READY_TIMEOUT_MS;
}

/**
 * Keys a running daemon cannot take over: the lock it holds is per scope (a daemon of the other
 * scope would not see it), and the user it runs as is the installed unit's. Everything else is
 * rebuilt on reload.
 */
export const RESTART_KEYS = ["systemd.scope", "systemd.user"] as const;

/**
 * Whether the watchdog may be pinged between ticks: only while the last tick ended recently. Every
 * tick pings too; this covers a loop_period longer than half of WatchdogSec. A loop stuck in an
 * await stops being vouched for after loop_period + TICK_STALL_LIMIT_MS; a blocked thread
 * pings nothing at all.
 */
export function loopLooksAlive(nowMs: number, lastTickEndMs: number, loopPeriodMs: number): boolean {
  return nowMs - lastTickEndMs <= loopPeriodMs + TICK_STALL_LIMIT_MS;
}

/** Blocks this thread for good without spinning: nothing runs any more, timers and sockets included. */
function stallForever(): never {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(cell, 0, 0);
}

export type ReloadResult =
  | { applied: true; changes: string[] }
  /** restartKeys: the changed keys only a restart can apply (empty when the file itself was refused) */
  | { applied: false; reason: string; restartKeys: string[] };

export interface DaemonOptions {
  config: ResolvedConfig;
  /** Reads the configuration again (reload); throws when the file is invalid */
  load: () => Promise<ResolvedConfig>;
  /** The daemon's own lines (start, reload, stop) */
  log: MasterLog;
  /** The loop's lines (actions, failures); default `log` */
  loopLog?: MasterLog;
  /** Builds the ports from a configuration, at start and at every reload (default: production) */
  ports?: (config: ResolvedConfig) => MasterDeps;
  /** The registry /metrics serves (default: a plain one) */
  metrics?: MasterMetrics;
  /** sd_notify; default: none */
  notifier?: Notifier;
  /** The single-daemon lock; null: none taken (tests, the benchmark) */
  lockPath: string | null;
  /** Where runners find the permits to boot with --secret (bootpolicy.ts); null: none written */
  bootPermitDir?: string | null;
  /** An activating daemon that completes no observation within this fences nobody: it exits 1 so
   *  systemd restarts it (default: no bound) */
  readyTimeoutMs?: number | null;
  /** How the READY bound ends the process (default process.exit): the loop may hang in a tick */
  exit?: (code: number) => void;
  /** Right after the lock is taken (the control socket belongs to the lock holder) */
  onStart?: () => Promise<void>;
  /** Last of all, however start() ends */
  onClose?: () => Promise<void>;
  onTick?: (r: TickReport) => void;
  /** Once, when the first observation is done (READY=1), with the status line */
  onReady?: (statusLine: string) => void;
  /** Last, after the parting fences: why the daemon stops and its last status line (bounded by the caller) */
  beforeExit?: (why: string, lastStatus: string) => Promise<void>;
  /** After a reload was applied (the command re-applies the log level) */
  onConfig?: (config: ResolvedConfig) => void;
  tickFailureLimit?: TickFailureLimit;
  /** Test hook: stall the loop after this many ticks */
  stallAfterTicks?: number | null;
  /** Cluster mode: the etcd client (default: the JSON gateway on cluster.etcd) */
  etcd?: (cluster: NonNullable<ResolvedConfig["cluster"]>) => Etcd;
  /** Cluster mode: monotonic ms for the lease deadlines (default performance.now) */
  mono?: () => number;
  /** Cluster mode: where the lease is remembered so a restarted daemon takes it up again (null: nowhere) */
  leaseFile?: string | null;
  /** Cluster mode: after each read of the host registry (the alerts follow who signs and who goes) */
  onRegistry?: (r: RegistryRound) => void;
}

export class Daemon {
  config: ResolvedConfig;
  readonly master: Master;
  readonly metrics: MasterMetrics;
  private readonly opts: DaemonOptions;
  private readonly ports: (config: ResolvedConfig) => MasterDeps;
  private readonly notifier: Notifier;
  private readonly ac = new AbortController();
  private metricsServer: MetricsServer | null = null;
  private lock: Lock | null = null;
  private started = false;
  private ready = false;
  private ticks = 0;
  private lastTickEndMs = Date.now();
  private lastPingMs = 0;
  private lastStatus = "";
  private stopReason = "";
  private permitsFailing = false;
  /** Cluster mode: the etcd signer lease this host campaigns for and keeps (null: one server) */
  readonly lease: SignerLease | null = null;
  /** Cluster mode: this host's entry in `<prefix>/hosts/`, published on its own timer (null: one server) */
  readonly registry: HostRegistry | null = null;
  private lastReport: TickReport | null = null;

  constructor(opts: DaemonOptions) {
    this.opts = opts;
    this.config = opts.config;
    const basePorts = opts.ports ?? ((c: ResolvedConfig) => buildPorts(c));
    const cluster = opts.config.cluster;
    if (cluster !== null) {
      const etcd = opts.etcd ? opts.etcd(cluster) : createGatewayClient({ endpoints: cluster.etcdEndpoints, callTimeoutMs: cluster.etcdTimeoutMs });
      const mono = opts.mono ?? (() => performance.now());
      const election = createElection({ etcd, prefix: cluster.prefix, candidate: cluster.name, ttlS: cluster.leaseTtlS, now: mono });
      this.lease = new SignerLease({
        election,
        services: () => this.master.deps.services,
        clock: { now: () => this.master.deps.clock.now(), sleep: (ms, signal) => this.master.deps.clock.sleep(ms, signal) },
        mono,
        signer: () => this.master.memory.signer,
        coHolders: () => coHolderSwitches(this.master.memory, this.master.deps.clock.now()),
        handoutSettled: () => settledHandoutEpoch(this.master.memory.handout),
        log: opts.log,
        prefix: cluster.prefix,
        store: opts.leaseFile ? fileLeaseStore(opts.leaseFile) : null,
      });
      // A client of its own: the registry's calls never queue behind (or steer) the signer lease's.
      this.registry = new HostRegistry({
        etcd: opts.etcd ? opts.etcd(cluster) : createGatewayClient({ endpoints: cluster.etcdEndpoints, callTimeoutMs: cluster.etcdTimeoutMs }),
        prefix: cluster.prefix,
        name: cluster.name,
        pid: process.pid,
        version: VERSION,
        report: () => this.lastReport,
        config: () => this.config,
        cluster: () => this.lease?.observe() ?? null,
        clock: { now: () => this.master.deps.clock.now(), sleep: (ms, signal) => this.master.deps.clock.sleep(ms, signal) },
        log: opts.log,
        onRound: (r) => {
          this.metrics.updateRegistry(r);
          opts.onRegistry?.(r);
        },
      });
    }
    // Every set of ports decide observes through carries what the lease allows (cluster mode).
    const lease = this.lease;
    this.ports = lease === null ? basePorts : (c) => ({ ...basePorts(c), cluster: () => lease.observe() });
    this.notifier = opts.notifier ?? createNotifier({});
    this.metrics = opts.metrics ?? new MasterMetrics({ version: VERSION });
    this.master = new Master({
      deps: this.ports(opts.config),
      config: opts.config,
      log: opts.loopLog ?? opts.log,
      onTick: (r) => this.onTick(r),
      ...(opts.tickFailureLimit ? { tickFailureLimit: opts.tickFailureLimit } : {}),
    });
  }

  /** The metrics address in use, or null. */
  get metricsUrl(): string | null {
    return this.metricsServer?.url ?? null;
  }

  /**
   * Supervises until stop(); then fences what would sign without a daemon. Resolves with the exit
   * code: 0 when told to stop, 1 when ticks kept failing (systemd restarts it and shows it).
   */
  async start(): Promise<number> {
    const { log } = this.opts;
    if (this.opts.lockPath !== null) this.lock = acquireLock(this.opts.lockPath);
    this.started = true;
    let watchdogTimer: ReturnType<typeof setInterval> | null = null;
    let readyTimer: ReturnType<typeof setTimeout> | null = null;
    try {
      await this.opts.onStart?.();
      this.listenMetrics(this.config.metricsListen);
      const n = this.notifier;
      if (n.watchdogIntervalMs !== null) {
        log.info(`systemd watchdog: ${n.watchdogUsec! / 1e6} s; pinged from the loop while ticks keep coming`);
        watchdogTimer = setInterval(() => {
          const now = Date.now();
          if (this.ready && loopLooksAlive(now, this.lastTickEndMs, this.config.loopPeriodMs)) this.ping(now);
        }, n.watchdogIntervalMs);
      }
      const bound = this.opts.readyTimeoutMs ?? null;
      if (bound !== null) readyTimer = setTimeout(() => this.readyTimedOut(bound), bound);
      const c = this.config;
      log.info(
        `supervising ${c.cntRunners} runners (${runnerIds(c).length - c.cntRunners} more ids watched for leftovers), key mode ${c.keyMode}` +
          (this.lock ? `, lock ${this.lock.path}` : ""),
      );
      let code = EXIT_OK;
      const c0 = this.config.cluster;
      const leaseLoop = this.lease !== null && c0 !== null ? this.lease.run(this.ac.signal, c0.leaseTtlS) : Promise.resolve();
      const registryLoop = this.registry !== null ? this.registry.run(this.ac.signal) : Promise.resolve();
      if (c0 !== null) log.info(`cluster ${c0.prefix} as ${c0.name}: signing only while holding ${c0.prefix}/signer (lease ${c0.leaseTtlS} s, etcd ${c0.etcdEndpoints.join(", ")})`);
      try {
        await this.master.run(this.ac.signal);
      } catch (e) {
        if (!(e instanceof TicksFailingError)) throw e;
        log.error(`${e.message}: the daemon is blind, exiting so systemd restarts it`);
        this.notifier.stopping(`ticks keep failing: ${e.last}`);
        this.stopReason = `ticks kept failing (${e.last})`;
        this.clearPermits();
        code = EXIT_FAILURE;
      }
      await this.part();
      this.ac.abort();
      // The lease is kept, not revoked: a restarted daemon takes it up and the signer signs on. If no
      // daemon comes back, the signer's switch fires when the allowance ends, then the lease ends.
      await leaseLoop;
      // Our entry goes now, not a member-lease TTL later: the other hosts see this daemon stopped.
      await registryLoop;
      await this.registry?.close();
      await this.opts.beforeExit?.(this.stopReason, this.lastStatus);
      return code;
    } finally {
      if (readyTimer !== null) clearTimeout(readyTimer);
      this.clearPermits();
      this.lock?.release();
      await this.opts.onClose?.();
      this.metricsServer?.stop();
      if (watchdogTimer !== null) clearInterval(watchdogTimer);
      this.notifier.close();
    }
  }

  /** No complete observation within the bound: this daemon supervises nothing, so it must not look
   *  like it does (runners would wait for its permits): exit non-zero, systemd restarts it. */
  private readyTimedOut(boundMs: number): void {
    if (this.ready) return;
    this.opts.log.error(`no complete observation within ${boundMs / 1000} s of starting; exiting so systemd restarts the daemon`);
    this.clearPermits();
    this.lock?.release();
    (this.opts.exit ?? ((code: number) => process.exit(code)))(EXIT_FAILURE);
  }

  private clearPermits(): void {
    const dir = this.opts.bootPermitDir ?? null;
    if (dir !== null) clearBootPermits(dir);
  }

  /** Runners boot with --secret only on a fresh permit from a daemon that observes (bootpolicy.ts). */
  private writePermits(r: TickReport): void {
    const dir = this.opts.bootPermitDir ?? null;
    if (dir === null || this.ac.signal.aborted) return;
    try {
      writeBootPermits(dir, bootPermits(this.config.cntRunners, this.config.keyMode, r.observation.atMs, r.plan.bootModes));
      if (this.permitsFailing) this.opts.log.info(`boot permits written again in ${dir}`);
      this.permitsFailing = false;
    } catch (e) {
      if (!this.permitsFailing) this.opts.log.error(`cannot write boot permits in ${dir} (runners restarted meanwhile boot passive): ${e instanceof Error ? e.message : String(e)}`);
      this.permitsFailing = true;
    }
  }

  /** Ends the loop; start() then fences what would sign without a daemon and resolves. */
  stop(why: string): void {
    if (this.ac.signal.aborted) return;
    this.stopReason = `stopped by ${why}`;
    this.opts.log.info(`${why}: stopping; the signer is left as it is, standbys that would sign without a daemon are fenced`);
    this.notifier.stopping();
    this.ac.abort();
    // No runner restarted from now on boots with the key: nobody would demote it.
    this.clearPermits();
  }

  /**
   * Reads the configuration again and rebuilds every port from it (REST clients, the service manager
   * with its scope and unit names, PoolTool, the metrics listener). Refused, with the old
   * configuration kept, when the file is invalid, a key only a restart can change differs, or the
   * ports cannot be built.
   */
  async reload(): Promise<ReloadResult> {
    const { log } = this.opts;
    let next: ResolvedConfig;
    try {
      next = await this.opts.load();
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      log.error(`SIGHUP: the new config is invalid, keeping the old one:\n${reason}`);
      return { applied: false, reason, restartKeys: [] };
    }
    if (JSON.stringify(next.cluster) !== JSON.stringify(this.config.cluster)) {
      const reason = `cluster cannot change while the daemon runs; restart it (systemctl restart ${this.config.systemd.masterUnit})`;
      log.error(`SIGHUP: refused, keeping the old config: ${reason}`);
      return { applied: false, reason, restartKeys: ["cluster"] };
    }
    const changes = configChanges(this.config, next);
    const changedKeys = changes.map((c) => c.slice(0, c.indexOf(":")));
    const restartKeys = changedKeys.filter((k) => RESTART_KEYS.some((r) => k === r || k.startsWith(`${r}.`)));
    if (restartKeys.length > 0) {
      const reason = `${restartKeys.join(", ")} cannot change while the daemon runs; restart it (systemctl restart ${this.config.systemd.masterUnit})`;
      log.error(`SIGHUP: refused, keeping the old config: ${reason}`);
      return { applied: false, reason, restartKeys };
    }
    let deps: MasterDeps;
    try {
      deps = this.ports(next);
    } catch (e) {
      const reason = `cannot build the ports: ${e instanceof Error ? e.message : String(e)}`;
      log.error(`SIGHUP: refused, keeping the old config: ${reason}`);
      return { applied: false, reason, restartKeys: [] };
    }
    // Before start() nothing listens yet; start() takes whatever the configuration says then.
    if (next.metricsListen !== this.config.metricsListen && this.started) {
      try {
        this.listenMetrics(next.metricsListen);
      } catch (e) {
        log.error(`SIGHUP: ${e instanceof Error ? e.message : String(e)}; metrics are off until the next reload`);
      }
    }
    this.config = next;
    this.master.reconfigure(next, deps);
    this.opts.onConfig?.(next);
    log.info(changes.length === 0 ? "SIGHUP: config re-read, nothing changed" : `SIGHUP: config re-read: ${changes.join("; ")}`);
    return { applied: true, changes };
  }

  private listenMetrics(listen: string | null): void {
    this.metricsServer?.stop();
    this.metricsServer = null;
    if (listen === null) return;
    this.metricsServer = serveMetrics(listen, () => this.metrics.render());
    this.opts.log.info(`metrics at ${this.metricsServer.url}`);
  }

  private ping(now: number): void {
    if (now - this.lastPingMs < WATCHDOG_MIN_GAP_MS) return;
    this.lastPingMs = now;
    this.notifier.watchdog();
  }

  private onTick(r: TickReport): void {
    const { log } = this.opts;
    this.lastTickEndMs = Date.now();
    this.lastReport = r;
    this.writePermits(r);
    this.metrics.update(r, this.config, { poolToolFailures: this.master.poolToolFailures });
    const line = statusLine(r.observation, r.views, r.memory, this.config, Date.now());
    if (!this.ready) {
      this.ready = true;
      this.notifier.ready(line);
      log.info(`first observation done: ${line}`);
      // Before the first tick's own events: the start comes first in the alerts and the event log.
      this.opts.onReady?.(line);
    } else if (line !== this.lastStatus) {
      this.notifier.status(line);
    }
    this.lastStatus = line;
    this.opts.onTick?.(r);
    this.ping(this.lastTickEndMs);
    const stallAfter = this.opts.stallAfterTicks ?? null;
    if (stallAfter !== null && ++this.ticks >= stallAfter) {
      log.warn(`${STALL_AFTER_TICKS_ENV}=${stallAfter}: stalling the loop on purpose (test hook)`);
      stallForever();
    }
  }

  /** A standby booting with --secret would become a second signer while no daemon runs (an
   *  operator's stop, a restart into a broken config): fence it. Bounded: systemd waits for us. */
  private async part(): Promise<void> {
    const { log } = this.opts;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), PART_TIMEOUT_MS);
    });
    const parted = await Promise.race([this.master.part().then(() => true), timeout]).catch((e) => {
      log.error(`fencing before exit failed: ${e instanceof Error ? e.message : String(e)}`);
      return true;
    });
    clearTimeout(timer);
    if (!parted) log.error(`fencing before exit took over ${PART_TIMEOUT_MS / 1000} s; exiting anyway`);
  }
}
