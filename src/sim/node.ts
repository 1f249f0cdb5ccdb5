// One runner's node process, ITN v0.8.14 semantics (jormungandr/NOTES.md, DESIGN.md "The node
// semantics that decide everything"). The model is driven only by a Scheduler, so it runs in
// virtual time (tests, bench) and in real time (process mode) unchanged.
//
// Process-level behaviour: every timer of the process goes through procAt, which defers callbacks
// while the process is frozen (SIGSTOP) and runs them in order on thaw — late. Lateness is judged
// when a callback runs, which is how a thawed node rejects a slot that is already over.

import type { Scheduler } from "./clock.ts";
import { type Chain, hash32, hexOf, MS_PER_S } from "./chain.ts";
import type { ExitReason, Journal } from "./journal.ts";
import type { NodeState, RawRequest, RawResponse } from "../node/types.ts";

export const NODE_VERSION = "jormungandr 0.8.14-9ca427ef";
/** Two "builds" of the simulated node for upgrade tests: a wrapper sets this to report another version. */
export const NODE_VERSION_ENV = "JORM_SIM_NODE_VERSION";
export const nodeVersion = (env: Record<string, string | undefined> = process.env): string => env[NODE_VERSION_ENV] || NODE_VERSION;
export const NOT_READY_BODY = "Full REST context not available yet";
export const LEADER_NOT_FOUND_BODY = "Leader with given ID not found";
export const REJECT_TOO_LATE = "Missed the deadline to compute the schedule";
export const rejectNotInEnclave = (id: number): string => `Cannot sign the block: This leader ${id} is not in the enclave`;
export const DEFAULT_LOGS_CAPACITY = 1024;
/** How long a node takes to exit once asked to (SIGTERM, GET /shutdown) */
export const DEFAULT_NODE_SHUTDOWN_MS = 300;

export type BootPhase = Exclude<NodeState, "Running">;
export const BOOT_PHASES: readonly BootPhase[] = [
  "StartingRestServer",
  "PreparingStorage",
  "PreparingBlock0",
  "Bootstrapping",
  "StartingWorkers",
];
export type BootDurations = Record<BootPhase, number>;
/** A node with its storage up to date: about a minute to Running. */
export const DEFAULT_BOOT_MS: BootDurations = {
  StartingRestServer: 100,
  PreparingStorage: 2000,
  PreparingBlock0: 1000,
  Bootstrapping: 60_000,
  StartingWorkers: 1000,
};
/** Signing and storing a block after waking up: finished_at_time − wake_at_time. */
const SIGN_MS = 48;

const JSON_TYPE = "application/json";
const TEXT_TYPE = "text/plain; charset=utf-8";

/** The REST connection dropped because the process went away (TCP reset). */
export class ConnectionReset extends Error {
  constructor() {
    super("connection reset by peer");
    this.name = "ConnectionReset";
  }
}
/** Nothing listens on the port. */
export class ConnectionRefused extends Error {
  constructor() {
    super("connection refused");
    this.name = "ConnectionRefused";
  }
}

export interface SimNodeOptions {
  runner: number;
  /** 1, 2, … per runner; part of the journal's identity of a signer */
  incarnation: number;
  pid?: number;
  chain: Chain;
  sched: Scheduler;
  journal: Journal;
  /** The node_secret JSON of each --secret flag: the enclave holds them from boot */
  secrets?: readonly Record<string, unknown>[];
  boot?: Partial<BootDurations>;
  /** Time to compute a schedule while holding keys (enclave locked meanwhile). 0..30 s on ITN. */
  scheduleComputeMs?: number;
  logsCapacity?: number;
  /** How far behind the network this node sees the chain, under one slot (at most one block per slot,
   *  so the node is 0–1 block behind); default: seeded in [0, slot) */
  viewLagMs?: number;
  /** GET /shutdown: how long the node takes to exit after answering (default 300 ms) */
  shutdownMs?: number;
  /** The pool's node_id: only keys of this pool lead in its slots (a key of another pool gets no
   *  slots of ours). Unset: every key counts as the pool's. */
  poolNodeId?: string;
  /** Process mode: the caller journals "alive" at least this often (see JournalEntry proc_start) */
  beatMs?: number;
  onExit?: (reason: ExitReason) => void;
}

export type LogStatus =
  | { kind: "Pending" }
  | { kind: "Rejected"; reason: string }
  | { kind: "Block"; block: string; parent: string; chainLength: number };

export interface SimLogEntry {
  leaderId: number;
  epoch: number;
  slot: number;
  createdAtMs: number;
  scheduledAtMs: number;
  wakeAtMs: number | null;
  finishedAtMs: number | null;
  status: LogStatus;
}

interface PendingRequest {
  req: RawRequest;
  resolve: (res: RawResponse) => void;
  reject: (err: Error) => void;
}

export interface NodeFaults {
  /** Height frozen (a stuck node stops following the network) */
  stuck: boolean;
  /** Accepts requests, never answers */
  restHang: boolean;
  /** Every request answers 500 */
  rest500: boolean;
}

const response = (status: number, body: string, contentType = JSON_TYPE): RawResponse => ({ status, body, contentType });
const json = (value: unknown, status = 200): RawResponse => response(status, JSON.stringify(value));

/** chrono to_rfc3339 in UTC: `+00:00`, fraction omitted when zero. */
/** How far behind the network a node's view runs unless told (under a slot: every healthy node has
 *  a block before the next slot starts); fixed per process incarnation. */
export function defaultViewLagMs(chain: Chain, runner: number, incarnation: number): number {
  return hash32(chain.params.seed, runner, incarnation, 0x1a9) % chain.slotMs;
}

export function rfc3339(ms: number, nanosWithin?: number): string {
  const whole = Math.floor(ms / MS_PER_S) * MS_PER_S;
  const base = new Date(whole).toISOString().slice(0, 19);
  const nanos = (ms - whole) * 1_000_000 + (nanosWithin ?? 0);
  if (nanos === 0) return `${base}+00:00`;
  const digits = String(nanos).padStart(9, "0");
  const frac = digits.endsWith("000000") ? digits.slice(0, 3) : digits.endsWith("000") ? digits.slice(0, 6) : digits;
  return `${base}.${frac}+00:00`;
}
/** Sub-millisecond nanoseconds for a time the real node stamps with Instant precision. */
const nanoTail = (...parts: number[]): number => 1 + (hash32(...parts) % 999_999);

export class SimNode {
  readonly runner: number;
  readonly incarnation: number;
  readonly pid: number;
  readonly startedAtMs: number;
  readonly faults: NodeFaults = { stuck: false, restHang: false, rest500: false };
  /** The p2p id (24 bytes hex), new per process */
  readonly nodeId: string;

  private readonly chain: Chain;
  private readonly sched: Scheduler;
  private readonly journal: Journal;
  private readonly boot: BootDurations;
  private readonly logsCapacity: number;
  private readonly viewLagMs: number;
  private readonly onExit?: (reason: ExitReason) => void;
  private readonly shutdownMs: number;
  private readonly poolNodeId: string | undefined;
  private computeMs: number;

  private alive = true;
  private frozenFlag = false;
  private terminating = false;
  private pendingTerm: { shutdownMs: number; reason: ExitReason } | null = null;
  private phase = 0; // index into BOOT_PHASES; BOOT_PHASES.length = Running
  private phaseTimer: (() => void) | null = null;
  private phaseStartMs: number;
  private runningAtMs: number | null = null;
  private stuckAtMs: number | null = null;
  private computing = 0; // schedule computations in progress (the enclave is locked while > 0)

  /** enclave id → node_id (the pool id the key signs for) */
  private readonly enclave = new Map<number, string>();
  private readonly logs = new Map<string, SimLogEntry>();
  private readonly timers = new Set<{ cancel: () => void }>();
  private deferred: (() => void)[] = [];
  private frozenRequests: PendingRequest[] = [];
  private leaderQueue: PendingRequest[] = [];
  /** While set, what happens belongs to this instant (see finishSchedule) */
  private instantMs: number | null = null;
  /** Events due while the enclave was locked by a schedule computation */
  private waitingEvents: SimLogEntry[] = [];
  private hung: PendingRequest[] = [];
  /** Answers computed while the REST hang was on, delivered if it ends */
  private withheld: [PendingRequest, RawResponse][] = [];
  private readonly inFlight = new Set<PendingRequest>();

  constructor(opts: SimNodeOptions) {
    this.runner = opts.runner;
    this.incarnation = opts.incarnation;
    this.pid = opts.pid ?? 1000 + opts.runner * 1000 + opts.incarnation;
    this.chain = opts.chain;
    this.sched = opts.sched;
    this.journal = opts.journal;
    this.boot = { ...DEFAULT_BOOT_MS, ...opts.boot };
    this.computeMs = opts.scheduleComputeMs ?? 0;
    this.logsCapacity = opts.logsCapacity ?? DEFAULT_LOGS_CAPACITY;
    this.viewLagMs = opts.viewLagMs ?? defaultViewLagMs(this.chain, opts.runner, opts.incarnation);
    this.onExit = opts.onExit;
    this.shutdownMs = opts.shutdownMs ?? DEFAULT_NODE_SHUTDOWN_MS;
    this.poolNodeId = opts.poolNodeId;
    this.nodeId = hexOf(48, this.chain.params.seed, opts.runner, opts.incarnation, 0x1d);
    this.startedAtMs = this.sched.now();
    this.phaseStartMs = this.startedAtMs;
    for (const secret of opts.secrets ?? []) this.enclaveAdd(secret);
    this.journal.append({
      t: this.startedAtMs,
      kind: "proc_start",
      runner: this.runner,
      inc: this.incarnation,
      pid: this.pid,
      keys: this.leaderIds(),
      ...(opts.beatMs === undefined ? {} : { beatMs: opts.beatMs }),
    });
    this.armPhase();
  }

  // --- observation for tests, the world and the audit ---

  get isAlive(): boolean {
    return this.alive;
  }
  get isFrozen(): boolean {
    return this.frozenFlag;
  }
  get isComputing(): boolean {
    return this.computing > 0;
  }
  get isTerminating(): boolean {
    return this.terminating;
  }
  get state(): NodeState {
    return this.phase >= BOOT_PHASES.length ? "Running" : BOOT_PHASES[this.phase]!;
  }
  leaderIds(): number[] {
    return [...this.enclave.keys()];
  }
  logEntries(): SimLogEntry[] {
    return [...this.logs.values()];
  }
  /** The chain time this node has seen: the network minus its lag, frozen when stuck. */
  private viewTimeMs(): number {
    const now = this.sched.now();
    return Math.min(now, this.stuckAtMs ?? now) - this.viewLagMs;
  }
  height(): number {
    return this.chain.tipHeight(this.viewTimeMs());
  }

  // --- process control (signals) ---

  /** SIGSTOP: nothing runs; timers and requests wait for thaw. */
  freeze(): void {
    if (!this.alive || this.frozenFlag) return;
    this.frozenFlag = true;
    this.journal.append({ t: this.sched.now(), kind: "freeze", runner: this.runner, inc: this.incarnation });
  }

  /** SIGCONT: due timers run now (late), in order, then the requests that waited in the socket. */
  thaw(): void {
    if (!this.alive || !this.frozenFlag) return;
    this.frozenFlag = false;
    this.journal.append({ t: this.sched.now(), kind: "thaw", runner: this.runner, inc: this.incarnation });
    while (this.alive && !this.frozenFlag && this.deferred.length) this.deferred.shift()!();
    const term = this.pendingTerm;
    this.pendingTerm = null;
    if (term && this.alive) this.procAt(this.sched.now() + term.shutdownMs, () => this.exit(term.reason));
    const waiting = this.frozenRequests;
    this.frozenRequests = [];
    for (const p of waiting) this.dispatch(p);
  }

  /** SIGKILL (or a crash): gone at once, even when frozen. */
  kill(reason: ExitReason = "sigkill"): void {
    this.exit(reason);
  }

  /** SIGTERM: a graceful exit after `shutdownMs`, during which the process keeps running its
   *  timers (and signs due slots). A frozen process handles it only once thawed. */
  terminate(shutdownMs: number, reason: ExitReason = "sigterm"): void {
    if (!this.alive || this.terminating) return;
    this.terminating = true;
    if (this.frozenFlag) {
      // The signal stays pending until SIGCONT; the shutdown starts then.
      this.pendingTerm = { shutdownMs, reason };
      return;
    }
    this.procAt(this.sched.now() + shutdownMs, () => this.exit(reason));
  }

  setScheduleComputeMs(ms: number): void {
    this.computeMs = ms;
  }

  setStuck(on: boolean): void {
    this.faults.stuck = on;
    this.stuckAtMs = on ? (this.stuckAtMs ?? this.sched.now()) : null;
  }

  setRestHang(on: boolean): void {
    this.faults.restHang = on;
    if (!on) {
      const withheld = this.withheld;
      this.withheld = [];
      for (const [p, res] of withheld) {
        this.inFlight.delete(p);
        p.resolve(res);
      }
      const hung = this.hung;
      this.hung = [];
      for (const p of hung) this.dispatch(p);
    }
  }

  setRest500(on: boolean): void {
    this.faults.rest500 = on;
  }

  /** Slow boot: the Bootstrapping phase lasts `ms` (counted from its start) if not over yet. */
  setBootstrapMs(ms: number): void {
    this.boot.Bootstrapping = ms;
    const idx = BOOT_PHASES.indexOf("Bootstrapping");
    if (this.phase === idx && this.phaseTimer) {
      this.phaseTimer();
      this.phaseTimer = this.procAt(this.phaseStartMs + ms, () => this.nextPhase());
    }
  }

  private exit(reason: ExitReason): void {
    if (!this.alive) return;
    this.alive = false;
    this.frozenFlag = false;
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    this.deferred = [];
    const reset = new ConnectionReset();
    for (const p of this.inFlight) p.reject(reset);
    this.inFlight.clear();
    this.frozenRequests = [];
    this.leaderQueue = [];
    this.hung = [];
    this.withheld = [];
    this.journal.append({ t: this.sched.now(), kind: "proc_exit", runner: this.runner, inc: this.incarnation, reason });
    this.onExit?.(reason);
  }

  private procAt(tMs: number, fn: () => void): () => void {
    const handle = {
      cancel: () => {},
    };
    const inner = this.sched.at(tMs, () => {
      this.timers.delete(handle);
      if (!this.alive) return;
      if (this.frozenFlag) this.deferred.push(fn);
      else fn();
    });
    handle.cancel = () => {
      inner();
      this.timers.delete(handle);
      // Fired while frozen and waiting for the thaw: cancelling must drop it too, or a re-armed
      // timer (a boot phase whose duration changed) would run twice.
      const i = this.deferred.indexOf(fn);
      if (i >= 0) this.deferred.splice(i, 1);
    };
    this.timers.add(handle);
    return handle.cancel;
  }

  // --- boot ---

  private armPhase(): void {
    const phase = BOOT_PHASES[this.phase];
    if (!phase) return;
    this.phaseTimer = this.procAt(this.phaseStartMs + this.boot[phase], () => this.nextPhase());
  }

  private nextPhase(): void {
    this.phaseTimer = null;
    this.phase += 1;
    this.phaseStartMs = this.sched.now();
    if (this.phase < BOOT_PHASES.length) return this.armPhase();
    this.runningAtMs = this.phaseStartMs;
    this.journal.append({ t: this.phaseStartMs, kind: "running", runner: this.runner, inc: this.incarnation });
    this.armBoundary();
    // Started with --secret: the leadership task computes the rest of this epoch right away.
    if (this.enclave.size > 0) this.computeSchedule("boot");
  }

  // --- leadership: schedule and events ---

  private armBoundary(): void {
    const next = this.chain.epochStartMs(this.chain.epochAt(this.sched.now()) + 1);
    this.procAt(next, () => {
      this.computeSchedule("boundary");
      this.armBoundary();
    });
  }

  private computeSchedule(trigger: "boundary" | "boot"): void {
    const now = this.sched.now();
    const pos = this.chain.slotAt(now);
    // From the next slot: the one in progress is already being decided.
    const slots = this.chain.leaderSlots(pos.epoch).filter((s) => s > pos.slot);
    const held = this.leaderIds();
    const keys = held.filter((id) => this.poolNodeId === undefined || this.enclave.get(id) === this.poolNodeId);
    this.journal.append({ t: now, kind: "schedule_start", runner: this.runner, inc: this.incarnation, epoch: pos.epoch, slots, keys, trigger });
    const done = () => this.finishSchedule(pos.epoch, slots, keys);
    // The enclave computes for every key it holds; with none, there is nothing to compute.
    if (held.length === 0 || this.computeMs <= 0) return done();
    this.computing += 1;
    this.procAt(now + this.computeMs, done);
  }

  private finishSchedule(epoch: number, slots: readonly number[], keys: readonly number[]): void {
    const now = this.sched.now();
    this.computing = Math.max(0, this.computing - 1);
    const created: SimLogEntry[] = [];
    for (const leaderId of keys) {
      for (const slot of slots) {
        const entry: SimLogEntry = {
          leaderId,
          epoch,
          slot,
          createdAtMs: now,
          scheduledAtMs: this.chain.slotStartMs(epoch, slot),
          wakeAtMs: null,
          finishedAtMs: null,
          status: { kind: "Pending" },
        };
        this.putLog(entry);
        created.push(entry);
      }
    }
    this.journal.append({ t: now, kind: "schedule_done", runner: this.runner, inc: this.incarnation, epoch, slots: [...slots], keys: [...keys] });
    // The enclave lock is released: leader calls that waited apply now, in arrival order, before
    // any event of the new schedule can fire.
    if (this.computing === 0) {
      const queued = this.leaderQueue;
      this.leaderQueue = [];
      // Same instant as the computation's end: on a wall clock the journal would otherwise show the
      // key still held for a millisecond after the schedule, which the node never allows.
      this.instantMs = now;
      try {
        for (const p of queued) this.dispatch(p, true);
      } finally {
        this.instantMs = null;
      }
      const waiting = this.waitingEvents;
      this.waitingEvents = [];
      for (const e of waiting) this.fire(e);
    }
    for (const entry of created) this.procAt(entry.scheduledAtMs, () => this.fire(entry));
  }

  private putLog(entry: SimLogEntry): void {
    const key = `${entry.leaderId}:${entry.epoch}.${entry.slot}`;
    this.logs.delete(key);
    this.logs.set(key, entry);
    while (this.logs.size > this.logsCapacity) {
      const oldest = this.logs.keys().next().value;
      if (oldest === undefined) break;
      this.logs.delete(oldest);
    }
  }

  private fire(entry: SimLogEntry): void {
    if (entry.status.kind !== "Pending") return;
    // Signing takes the enclave: while a schedule is being computed it waits for the lock, behind
    // the leader calls that queued first (a removal sent during the computation wins).
    if (this.computing > 0) {
      this.waitingEvents.push(entry);
      return;
    }
    const now = this.sched.now();
    const slotEnd = entry.scheduledAtMs + this.chain.slotMs;
    entry.wakeAtMs = now;
    entry.finishedAtMs = now + SIGN_MS;
    const base = { t: now, runner: this.runner, inc: this.incarnation, epoch: entry.epoch, slot: entry.slot, leaderId: entry.leaderId };
    if (now >= slotEnd) {
      entry.status = { kind: "Rejected", reason: REJECT_TOO_LATE };
      this.journal.append({ ...base, kind: "reject", reason: REJECT_TOO_LATE });
      return;
    }
    if (!this.enclave.has(entry.leaderId)) {
      const reason = rejectNotInEnclave(entry.leaderId);
      entry.status = { kind: "Rejected", reason };
      this.journal.append({ ...base, kind: "reject", reason });
      return;
    }
    const abs = entry.epoch * this.chain.slotsPerEpoch + entry.slot;
    // The block extends the tip this node sees: a stuck node signs on a tip the network has left
    // (the audit counts such a block as lost, the network orphans it).
    const parentHeight = Math.min(this.chain.lastBlockAtSlot(abs - 1).height, this.height());
    const block = hexOf(64, this.chain.params.seed, abs, this.runner, this.incarnation, 0xb10c);
    entry.status = { kind: "Block", block, parent: this.chain.blockHash(parentHeight), chainLength: parentHeight + 1 };
    this.journal.append({ ...base, kind: "block", chainLength: parentHeight + 1, hash: block });
  }

  // --- enclave ---

  private enclaveAdd(secret: Record<string, unknown>): number {
    const nodeId = secretNodeId(secret);
    for (const [id, present] of this.enclave) if (present === nodeId) return id;
    const id = this.enclave.size === 0 ? 1 : Math.max(...this.enclave.keys()) + 1;
    this.enclave.set(id, nodeId);
    return id;
  }

  private journalKeys(): void {
    this.journal.append({ t: this.instantMs ?? this.sched.now(), kind: "keys", runner: this.runner, inc: this.incarnation, keys: this.leaderIds() });
  }

  // --- REST ---

  /** One REST exchange. Rejects with ConnectionRefused/ConnectionReset when the process is gone. */
  handle(req: RawRequest): Promise<RawResponse> {
    if (!this.alive) return Promise.reject(new ConnectionRefused());
    return new Promise<RawResponse>((resolve, reject) => {
      const p: PendingRequest = { req, resolve, reject };
      this.inFlight.add(p);
      this.dispatch(p);
    });
  }

  /** `accepted`: a leader call that was already in its handler, waiting for the enclave lock. A REST
   *  hang or 500s that began meanwhile withhold or replace its answer, not its effect: the handler
   *  is past the REST layer and runs to completion once it has the lock. */
  private dispatch(p: PendingRequest, accepted = false): void {
    if (!this.alive) return;
    if (this.frozenFlag) {
      this.frozenRequests.push(p);
      return;
    }
    if (this.faults.restHang && !accepted) {
      this.hung.push(p);
      return;
    }
    const answer = (res: RawResponse) => {
      if (this.faults.restHang) {
        this.withheld.push([p, res]);
        return;
      }
      this.inFlight.delete(p);
      p.resolve(res);
    };
    if (this.faults.rest500 && !accepted) return answer(response(500, "Internal Server Error", TEXT_TYPE));
    const { method, path } = p.req;
    if (method === "GET" && path === "/node/stats") return answer(this.stats());
    if (this.state !== "Running") return answer(response(503, NOT_READY_BODY, TEXT_TYPE));
    const isLeaderCall = path === "/leaders" || (/^\/leaders\/[^/]+$/.test(path) && path !== "/leaders/logs");
    if (isLeaderCall && this.computing > 0) {
      this.leaderQueue.push(p);
      return;
    }
    const res = this.route(p.req);
    answer(accepted && this.faults.rest500 ? response(500, "Internal Server Error", TEXT_TYPE) : res);
  }

  private route(req: RawRequest): RawResponse {
    const { method, path } = req;
    if (method === "GET") {
      switch (path) {
        case "/settings":
          return json(this.settings());
        case "/leaders":
          return json(this.leaderIds());
        case "/leaders/logs":
          return json(this.logEntries().map((e) => this.logJson(e)));
        case "/tip":
          return response(200, this.chain.blockHash(this.height()), TEXT_TYPE);
        case "/network/stats":
          return json(this.networkStats());
        case "/shutdown":
          this.terminate(this.shutdownMs, "shutdown");
          return response(200, "", TEXT_TYPE);
      }
    }
    if (method === "POST" && path === "/leaders") {
      let secret: unknown;
      try {
        secret = JSON.parse(req.body ?? "");
      } catch {
        return response(400, "Json deserialize error: invalid body", TEXT_TYPE);
      }
      if (typeof secret !== "object" || secret === null || Array.isArray(secret))
        return response(400, "Json deserialize error: expected a node secret", TEXT_TYPE);
      const before = this.enclave.size;
      const id = this.enclaveAdd(secret as Record<string, unknown>);
      if (this.enclave.size !== before) this.journalKeys();
      return json(id);
    }
    const del = method === "DELETE" ? /^\/leaders\/(\d+)$/.exec(path) : null;
    if (del) {
      const id = Number(del[1]);
      if (!this.enclave.delete(id)) return response(404, LEADER_NOT_FOUND_BODY, TEXT_TYPE);
      this.journalKeys();
      return response(200, "", TEXT_TYPE);
    }
    return response(404, "", TEXT_TYPE);
  }

  private lastBlock(): { height: number; epoch: number; slot: number; timeMs: number } {
    const { height, abs } = this.chain.lastBlockAtSlot(this.chain.absSlotAt(this.viewTimeMs()));
    const spe = this.chain.slotsPerEpoch;
    const epoch = Math.floor(abs / spe);
    return { height, epoch, slot: abs - epoch * spe, timeMs: this.chain.absSlotStartMs(abs) };
  }

  private stats(): RawResponse {
    if (this.state !== "Running") return json({ state: this.state, version: nodeVersion() });
    const now = this.sched.now();
    const last = this.lastBlock();
    const runningAt = this.runningAtMs ?? now;
    const receivedAt = last.timeMs + this.viewLagMs;
    const seed = this.chain.params.seed;
    const h = last.height;
    return json({
      blockRecvCnt: Math.max(0, h - this.chain.tipHeight(runningAt - this.viewLagMs)),
      lastBlockContentSize: hash32(seed, h, 1) % 2000,
      lastBlockDate: `${last.epoch}.${last.slot}`,
      lastBlockFees: hash32(seed, h, 2) % 1000,
      lastBlockHash: this.chain.blockHash(h),
      lastBlockHeight: String(h),
      lastBlockSum: hash32(seed, h, 3) % 100_000,
      lastBlockTime: rfc3339(last.timeMs),
      lastBlockTx: hash32(seed, h, 4) % 5,
      lastReceivedBlockTime: receivedAt >= runningAt ? rfc3339(Math.floor(receivedAt / MS_PER_S) * MS_PER_S) : null,
      nodeId: this.nodeId,
      peerAvailableCnt: 321,
      peerQuarantinedCnt: 123,
      peerTotalCnt: 449,
      peerUnreachableCnt: 5,
      state: "Running",
      txRecvCnt: hash32(seed, h, 5) % 10_000,
      uptime: Math.floor((now - runningAt) / MS_PER_S),
      version: nodeVersion(),
    });
  }

  private settings(): unknown {
    const last = this.lastBlock();
    const p = this.chain.params;
    return {
      block0Hash: this.chain.block0Hash,
      block0Time: rfc3339(p.block0TimeMs),
      blockContentMaxSize: 1024000,
      consensusVersion: "genesis",
      currSlotStartTime: last.height > 0 ? rfc3339(last.timeMs) : null,
      epochStabilityDepth: 10,
      fees: {
        certificate: 10000,
        coefficient: 100000,
        constant: 200000,
        per_certificate_fees: { certificate_pool_registration: 500000000, certificate_stake_delegation: 400000 },
      },
      rewardParams: {
        compoundingRatio: { denominator: 1, numerator: 0 },
        compoundingType: "Linear",
        epochRate: 1,
        epochStart: 1,
        initialValue: 3835616440000,
        poolParticipationCapping: [100, 100],
        rewardDrawingLimitMax: { ByStakeAbsolute: { denominator: 10000000000, numerator: 4109589 } },
      },
      slotDuration: p.slotDurationMs / MS_PER_S,
      slotsPerEpoch: p.slotsPerEpoch,
      treasuryTax: { fixed: 0, ratio: { denominator: 10, numerator: 1 } },
    };
  }

  private logJson(e: SimLogEntry): unknown {
    const seed = this.chain.params.seed;
    const status =
      e.status.kind === "Pending"
        ? "Pending"
        : e.status.kind === "Rejected"
          ? { Rejected: { reason: e.status.reason } }
          : { Block: { block: e.status.block, parent: e.status.parent, chain_length: e.status.chainLength } };
    return {
      created_at_time: rfc3339(e.createdAtMs, nanoTail(seed, e.epoch, e.slot, e.leaderId, 1)),
      scheduled_at_time: rfc3339(e.scheduledAtMs),
      scheduled_at_date: `${e.epoch}.${e.slot}`,
      wake_at_time: e.wakeAtMs === null ? null : rfc3339(e.wakeAtMs, nanoTail(seed, e.epoch, e.slot, e.leaderId, 2)),
      finished_at_time: e.finishedAtMs === null ? null : rfc3339(e.finishedAtMs, nanoTail(seed, e.epoch, e.slot, e.leaderId, 3)),
      status,
      enclave_leader_id: e.leaderId,
    };
  }

  private networkStats(): unknown {
    const seed = this.chain.params.seed;
    const since = this.runningAtMs ?? this.startedAtMs;
    return [0, 1, 2].map((i) => ({
      nodeId: hexOf(48, seed, this.runner, this.incarnation, i, 0x9e),
      addr: `198.51.100.${10 + i}:3000`,
      establishedAt: rfc3339(since, nanoTail(seed, this.runner, i)),
      lastBlockReceived: null,
      lastFragmentReceived: null,
      lastGossipReceived: null,
    }));
  }
}

/** The key's identity in the enclave: genesis.node_id (the pool id), else the BFT key, else the
 *  whole document — re-posting the same secret must find it. */
export function secretNodeId(secret: Record<string, unknown>): string {
  const genesis = secret.genesis as Record<string, unknown> | undefined;
  if (genesis && typeof genesis.node_id === "string") return genesis.node_id;
  const bft = secret.bft as Record<string, unknown> | undefined;
  if (bft && typeof bft.signing_key === "string") return `bft:${bft.signing_key}`;
  return JSON.stringify(secret);
}
