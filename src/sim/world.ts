// A whole simulated deployment: the chain, N runner units under a systemd-like service manager
// (Restart=always), PoolTool, and a NodeApi per runner. The master is wired to exactly the ports
// it uses in production (NodeApi, ServiceManager, PoolToolApi, Clock), so it cannot tell.

import { createNodeApi, DEFAULT_REST_TIMEOUT_MS, withDeadline } from "../node/client.ts";
import type { NodeApi, NodeError, NodeSecret, RawRequest, RawResponse, Transport } from "../node/types.ts";
import type { PoolToolApi, ServiceManager, Signal, UnitState } from "../ports.ts";
import type { KeyMode } from "../config/types.ts";
import { audit, type AuditOptions, type AuditReport } from "./audit.ts";
import { Chain, type ChainParams } from "./chain.ts";
import { type Scheduler, VirtualClock } from "./clock.ts";
import { type Journal, MemoryJournal } from "./journal.ts";
import { type BootDurations, ConnectionRefused, ConnectionReset, DEFAULT_NODE_SHUTDOWN_MS, secretNodeId, SimNode } from "./node.ts";

/** systemd RestartSec of the runner units */
export const DEFAULT_RESTART_DELAY_MS = 2000;
/** How long a node takes to exit after SIGTERM */
export const DEFAULT_SHUTDOWN_MS = DEFAULT_NODE_SHUTDOWN_MS;
/** systemd TimeoutStopSec: SIGKILL when a stop takes longer */
export const DEFAULT_STOP_TIMEOUT_MS = 90_000;
const FIRST_PID = 4000;

/** A pool secret in the JSON form POST /leaders takes (clearly fake key material). */
export const SIM_POOL_SECRET: { genesis: { sig_key: string; vrf_key: string; node_id: string } } = {
  genesis: {
    sig_key: "kes25519-12-sk1qqqqFAKEFAKEFAKEnotarealkey",
    vrf_key: "vrf_sk1FAKEFAKEFAKEnotarealkey",
    node_id: "5e11a7ed000000000000000000000000000000000000000000000000000000aa",
  },
};

export type Fault =
  /** The process exits at once (Restart=always brings a new one after restartDelayMs) */
  | { kind: "crash" }
  /** Height stops following the network until the process restarts (or on: false) */
  | { kind: "stuck"; on?: boolean }
  /** REST accepts requests and never answers them */
  | { kind: "restHang"; on?: boolean }
  /** REST answers 500 to everything */
  | { kind: "rest500"; on?: boolean }
  /** Bootstrapping takes this long for the current boot (if not past it) and every later one; null restores */
  | { kind: "slowBoot"; bootstrapMs: number | null }
  /** External SIGSTOP / SIGCONT */
  | { kind: "freeze" }
  | { kind: "thaw" }
  /** Schedule computation takes this long from now on (this and later processes); null restores */
  | { kind: "slowSchedule"; computeMs: number | null };

export interface WorldOptions<C extends Scheduler = VirtualClock> {
  chain: ChainParams;
  /** Runner ids 0..runners-1 */
  runners: number;
  /** Default: a VirtualClock at startMs */
  clock?: C;
  /** Default: the start of epoch 1 */
  startMs?: number;
  /** boot: a started process holds the key from boot (--secret); rest: passive until POST /leaders */
  keyMode?: KeyMode | ((runner: number) => KeyMode);
  /** The pool's secret: what --secret boots hold, and the only key that leads in the pool's slots.
   *  The master must post this same secret (its node_id decides). Default SIM_POOL_SECRET. */
  secret?: NodeSecret;
  boot?: Partial<BootDurations>;
  bootPerRunner?: Record<number, Partial<BootDurations>>;
  scheduleComputeMs?: number;
  restartDelayMs?: number;
  shutdownMs?: number;
  stopTimeoutMs?: number;
  /** The unit's KillSignal=: SIGTERM (systemd default) lets a frozen process thaw and sign during shutdown */
  killSignal?: "SIGTERM" | "SIGKILL";
  /** Deadline of the NodeApi calls (virtual time) */
  restTimeoutMs?: number;
  logsCapacity?: number;
  journal?: Journal;
  /** PoolTool's majority max lags the network tip by this many blocks */
  pooltoolLagBlocks?: number;
}

export interface ProcessEvent {
  kind: "spawn" | "exit";
  id: number;
  node: SimNode;
}

type UnitPhase = "inactive" | "active" | "deactivating" | "auto-restart";

interface Unit {
  id: number;
  phase: UnitPhase;
  sinceMs: number;
  restarts: number;
  incarnations: number;
  node: SimNode | null;
  restartTimer: (() => void) | null;
  stopTimer: (() => void) | null;
  stopWaiters: (() => void)[];
  bootstrapMs: number | null;
  computeMs: number | null;
}

/** The Transport of a runner's REST port: whatever process currently listens there. */
export function simTransport(target: SimNode | (() => SimNode | null)): Transport {
  const current = typeof target === "function" ? target : () => target;
  return async (req: RawRequest): Promise<RawResponse | NodeError> => {
    const node = current();
    const where = `${req.method} ${req.path}`;
    if (!node) return { kind: "unreachable", reason: "refused", message: `${where}: connection refused` };
    try {
      return await node.handle(req);
    } catch (error) {
      if (error instanceof ConnectionRefused) return { kind: "unreachable", reason: "refused", message: `${where}: connection refused` };
      if (error instanceof ConnectionReset) return { kind: "unreachable", reason: "reset", message: `${where}: connection reset` };
      return { kind: "unreachable", reason: "other", message: `${where}: ${(error as Error).message}` };
    }
  };
}

export class World<C extends Scheduler = VirtualClock> {
  readonly chain: Chain;
  readonly clock: C;
  readonly journal: Journal;
  readonly services: ServiceManager;
  readonly pooltool: PoolToolApi & { down: boolean };
  readonly ids: readonly number[];
  private readonly opts: WorldOptions<C>;
  private readonly units: Unit[];
  private readonly transports: Transport[];
  private readonly apis: NodeApi[];
  private nextPid = FIRST_PID;
  private disposed = false;
  private readonly listeners = new Set<(event: ProcessEvent) => void>();

  constructor(opts: WorldOptions<C>) {
    this.opts = opts;
    this.chain = new Chain(opts.chain);
    const startMs = opts.startMs ?? this.chain.epochStartMs(1);
    this.clock = opts.clock ?? (new VirtualClock(startMs) as unknown as C);
    this.journal = opts.journal ?? new MemoryJournal();
    this.ids = Array.from({ length: opts.runners }, (_, i) => i);
    const now = this.clock.now();
    this.units = this.ids.map((id) => ({
      id,
      phase: "inactive",
      sinceMs: now,
      restarts: 0,
      incarnations: 0,
      node: null,
      restartTimer: null,
      stopTimer: null,
      stopWaiters: [],
      bootstrapMs: null,
      computeMs: null,
    }));
    const timeout = opts.restTimeoutMs ?? DEFAULT_REST_TIMEOUT_MS;
    this.transports = this.units.map((u) => simTransport(() => u.node));
    this.apis = this.transports.map((t) => createNodeApi(withDeadline(t, this.clock, timeout)));
    this.services = this.makeServices();
    this.pooltool = this.makePoolTool();
  }

  // --- access ---

  /** The NodeApi of runner `id` (in-process transport, deadline in the world's clock). */
  api(id: number): NodeApi {
    return this.at(this.apis, id);
  }
  /** The raw REST transport of runner `id`, without deadline. */
  transport(id: number): Transport {
    return this.at(this.transports, id);
  }
  /** The live process of runner `id`, if any. */
  node(id: number): SimNode | null {
    return this.unit(id).node;
  }
  unitState(id: number): UnitState {
    const u = this.unit(id);
    const node = u.node;
    switch (u.phase) {
      case "inactive":
        return { id, activeState: "inactive", subState: "dead", mainPid: 0, sinceMs: u.sinceMs, restarts: u.restarts, frozen: null };
      case "auto-restart":
        return { id, activeState: "activating", subState: "auto-restart", mainPid: 0, sinceMs: u.sinceMs, restarts: u.restarts, frozen: null };
      case "active":
      case "deactivating":
        return {
          id,
          activeState: u.phase,
          subState: u.phase === "active" ? "running" : "stop-sigterm",
          mainPid: node?.pid ?? 0,
          sinceMs: u.sinceMs,
          restarts: u.restarts,
          frozen: node ? node.isFrozen : null,
        };
    }
  }

  /** Ends the world: every process killed, no restart, no timer of ours left (real-time worlds
   *  keep the event loop alive until this). */
  dispose(): void {
    this.disposed = true;
    for (const u of this.units) {
      u.restartTimer?.();
      u.restartTimer = null;
      u.node?.kill("sigkill");
    }
  }

  /** Called when a runner's process starts or exits (e.g. to open and close its HTTP port). */
  onProcess(listener: (event: ProcessEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: ProcessEvent): void {
    for (const l of this.listeners) l(event);
  }

  audit(opts: AuditOptions): AuditReport {
    return audit(this.journal.entries(), this.chain, opts);
  }

  /** Virtual time only: run the world (and whatever awaits its clock) until tMs. */
  async runUntil(tMs: number): Promise<void> {
    const clock = this.clock as unknown as VirtualClock;
    if (typeof clock.runUntil !== "function") throw new Error("runUntil needs a VirtualClock");
    await clock.runUntil(tMs);
  }

  /** Inject a fault now, or at atMs. */
  inject(id: number, fault: Fault, atMs?: number): void {
    if (atMs !== undefined && atMs > this.clock.now()) {
      this.clock.at(atMs, () => this.inject(id, fault));
      return;
    }
    const u = this.unit(id);
    const node = u.node;
    this.journal.append({ t: this.clock.now(), kind: "fault", runner: id, inc: node?.incarnation ?? 0, fault: JSON.stringify(fault) });
    switch (fault.kind) {
      case "crash":
        node?.kill("crash");
        return;
      case "stuck":
        node?.setStuck(fault.on ?? true);
        return;
      case "restHang":
        node?.setRestHang(fault.on ?? true);
        return;
      case "rest500":
        node?.setRest500(fault.on ?? true);
        return;
      case "slowBoot":
        u.bootstrapMs = fault.bootstrapMs;
        node?.setBootstrapMs(fault.bootstrapMs ?? this.bootFor(id).Bootstrapping ?? 0);
        return;
      case "freeze":
        node?.freeze();
        return;
      case "thaw":
        node?.thaw();
        return;
      case "slowSchedule":
        u.computeMs = fault.computeMs;
        node?.setScheduleComputeMs(fault.computeMs ?? this.opts.scheduleComputeMs ?? 0);
        return;
    }
  }

  // --- units ---

  private at<T>(list: readonly T[], id: number): T {
    const x = list[id];
    if (x === undefined) throw new RangeError(`no runner ${id} (runners: 0..${this.ids.length - 1})`);
    return x;
  }
  private unit(id: number): Unit {
    return this.at(this.units, id);
  }

  private keyModeOf(id: number): KeyMode {
    const m = this.opts.keyMode ?? "rest";
    return typeof m === "function" ? m(id) : m;
  }

  private bootFor(id: number): Partial<BootDurations> {
    const u = this.unit(id);
    const boot = { ...this.opts.boot, ...this.opts.bootPerRunner?.[id] };
    if (u.bootstrapMs !== null) boot.Bootstrapping = u.bootstrapMs;
    return boot;
  }

  private spawn(u: Unit): void {
    u.incarnations += 1;
    u.phase = "active";
    u.sinceMs = this.clock.now();
    const secret = this.opts.secret ?? SIM_POOL_SECRET;
    const node = new SimNode({
      runner: u.id,
      incarnation: u.incarnations,
      pid: this.nextPid++,
      chain: this.chain,
      sched: this.clock,
      journal: this.journal,
      secrets: this.keyModeOf(u.id) === "boot" ? [secret] : [],
      boot: this.bootFor(u.id),
      scheduleComputeMs: u.computeMs ?? this.opts.scheduleComputeMs ?? 0,
      logsCapacity: this.opts.logsCapacity,
      shutdownMs: this.opts.shutdownMs ?? DEFAULT_SHUTDOWN_MS,
      poolNodeId: secretNodeId(secret),
      onExit: () => this.exited(u, node),
    });
    u.node = node;
    this.emit({ kind: "spawn", id: u.id, node });
  }

  /** The main process is gone: a requested stop ends inactive; anything else restarts (Restart=always). */
  private exited(u: Unit, node: SimNode): void {
    if (u.node !== node) return;
    u.node = null;
    this.emit({ kind: "exit", id: u.id, node });
    u.stopTimer?.();
    u.stopTimer = null;
    const now = this.clock.now();
    if (u.phase === "deactivating") {
      u.phase = "inactive";
      u.sinceMs = now;
      const waiters = u.stopWaiters;
      u.stopWaiters = [];
      for (const w of waiters) w();
      return;
    }
    if (this.disposed) {
      u.phase = "inactive";
      u.sinceMs = now;
      return;
    }
    u.phase = "auto-restart";
    u.sinceMs = now;
    u.restartTimer = this.clock.at(now + (this.opts.restartDelayMs ?? DEFAULT_RESTART_DELAY_MS), () => {
      u.restartTimer = null;
      u.restarts += 1;
      this.spawn(u);
    });
  }

  private startUnit(u: Unit): Promise<void> {
    if (this.disposed) return Promise.reject(new Error("the simulated world was disposed"));
    if (u.phase === "deactivating") return this.stopped(u).then(() => this.startUnit(u));
    if (u.phase === "active") return Promise.resolve();
    u.restartTimer?.();
    u.restartTimer = null;
    this.spawn(u);
    return Promise.resolve();
  }

  private stopped(u: Unit): Promise<void> {
    return new Promise((resolve) => u.stopWaiters.push(resolve));
  }

  /** systemctl stop: returns once the unit is inactive. */
  private stopUnit(u: Unit): Promise<void> {
    if (u.phase === "inactive") return Promise.resolve();
    if (u.phase === "auto-restart") {
      u.restartTimer?.();
      u.restartTimer = null;
      u.phase = "inactive";
      u.sinceMs = this.clock.now();
      return Promise.resolve();
    }
    const done = this.stopped(u);
    if (u.phase === "deactivating") return done;
    const node = u.node;
    u.phase = "deactivating";
    u.sinceMs = this.clock.now();
    if (!node) return done;
    if ((this.opts.killSignal ?? "SIGTERM") === "SIGKILL") {
      node.kill("sigkill");
      return done;
    }
    node.terminate(this.opts.shutdownMs ?? DEFAULT_SHUTDOWN_MS);
    // systemd follows the stop signal with SIGCONT so a stopped process can handle it: a frozen
    // key holder wakes up and signs whatever is due while it shuts down.
    node.thaw();
    u.stopTimer = this.clock.at(this.clock.now() + (this.opts.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS), () => {
      u.stopTimer = null;
      node.kill("sigkill");
    });
    return done;
  }

  private makeServices(): ServiceManager {
    return {
      showAll: async (ids) => new Map(ids.map((id) => [id, this.unitState(id)] as const)),
      start: async (id) => this.startUnit(this.unit(id)),
      stop: async (id) => this.stopUnit(this.unit(id)),
      restart: async (id) => {
        const u = this.unit(id);
        await this.stopUnit(u);
        await this.startUnit(u);
      },
      kill: async (id, signal: Signal) => {
        const node = this.unit(id).node;
        if (!node) return;
        if (signal === "SIGSTOP") node.freeze();
        else if (signal === "SIGCONT") node.thaw();
        else if (signal === "SIGKILL") node.kill("sigkill");
        else node.terminate(this.opts.shutdownMs ?? DEFAULT_SHUTDOWN_MS);
      },
    };
  }

  private makePoolTool(): PoolToolApi & { down: boolean } {
    return new SimPoolTool(this.chain, this.clock, this.journal, this.opts.pooltoolLagBlocks ?? 0);
  }
}

/** PoolTool's view: the majority max is the network tip (minus a lag); shared tips are journalled. */
export class SimPoolTool implements PoolToolApi {
  /** Set to make every call fail as an unreachable PoolTool would */
  down = false;
  constructor(
    private readonly chain: Chain,
    private readonly clock: Scheduler,
    private readonly journal: Journal,
    private readonly lagBlocks = 0,
  ) {}
  async majorityMax(): Promise<number> {
    if (this.down) throw new Error("PoolTool unreachable (simulated)");
    return Math.max(0, this.chain.tipHeight(this.clock.now()) - this.lagBlocks);
  }
  async shareTip(height: number): Promise<void> {
    if (this.down) throw new Error("PoolTool unreachable (simulated)");
    this.journal.append({ t: this.clock.now(), kind: "tip_shared", height });
  }
}
