// Time for the simulator. The node model only needs "now" and "call me at t"; the virtual clock
// provides both in discrete events (days of chain time in seconds of wall time), the real-time
// scheduler with setTimeout, so one node model serves property tests, the bench and process mode.

import type { Clock } from "../ports.ts";

/** A Clock that can also run a callback at an absolute time. `at` returns a cancel function. */
export interface Scheduler extends Clock {
  at(tMs: number, fn: () => void): () => void;
}

interface Timer {
  t: number;
  seq: number;
  fn: (() => void) | null;
}

/** Binary min-heap on (t, seq): equal times fire in scheduling order. */
class TimerHeap {
  private items: Timer[] = [];
  get size(): number {
    return this.items.length;
  }
  peek(): Timer | undefined {
    return this.items[0];
  }
  push(x: Timer): void {
    const a = this.items;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p]!;
      if (!before(x, parent)) break;
      a[i] = parent;
      i = p;
    }
    a[i] = x;
  }
  /** Drops the timers matching `dead` and restores the heap order. */
  compact(dead: (x: Timer) => boolean): void {
    const kept = this.items.filter((x) => !dead(x));
    this.items = [];
    for (const x of kept) this.push(x);
  }
  pop(): Timer | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    let i = 0;
    const n = a.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(a[r]!, a[l]!) ? r : l;
      if (!before(a[c]!, last)) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }
}

const before = (x: Timer, y: Timer): boolean => x.t < y.t || (x.t === y.t && x.seq < y.seq);

/** Below this many cancelled timers the heap is left alone */
const COMPACT_MIN = 1024;

const macrotask = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Discrete-event time. Nothing happens until `runUntil`/`advance` is awaited: timers pop in time
 * order, `now` jumps to each, and between two timers one macrotask passes so the promise chains
 * of the code under test (the master awaiting NodeApi calls) settle before time moves on.
 */
export class VirtualClock implements Scheduler {
  private t: number;
  private seq = 0;
  private readonly heap = new TimerHeap();
  private running = false;
  /** Cancelled timers still in the heap (lazy deletion) */
  private cancelled = 0;

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  /** Runs fn at tMs (or at now, after already-due timers, if tMs is in the past). */
  at(tMs: number, fn: () => void): () => void {
    const timer: Timer = { t: Math.max(tMs, this.t), seq: this.seq++, fn };
    this.heap.push(timer);
    // Lazy deletion: a cancelled timer stays in the heap and is skipped when it pops; when they
    // pile up (many cancelled far-future deadlines) the heap is rebuilt without them.
    return () => {
      if (timer.fn === null) return;
      timer.fn = null;
      this.cancelled++;
      if (this.cancelled > COMPACT_MIN && this.cancelled * 2 > this.heap.size) {
        this.heap.compact((x) => x.fn === null);
        this.cancelled = 0;
      }
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const cancel = this.at(this.t + Math.max(0, ms), done);
      function done() {
        cancel();
        signal?.removeEventListener("abort", done);
        resolve();
      }
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Timers still queued, cancelled ones included until they pop (for tests and leak checks). */
  get queued(): number {
    return this.heap.size;
  }

  /** Fires every timer due up to tMs (inclusive), then leaves now at tMs. */
  async runUntil(tMs: number): Promise<void> {
    if (this.running) throw new Error("VirtualClock.runUntil is already running");
    this.running = true;
    try {
      // Let whatever the caller just started (e.g. a master loop's first tick) register its timers.
      await macrotask();
      for (;;) {
        const next = this.heap.peek();
        if (!next || next.t > tMs) break;
        this.heap.pop();
        const fn = next.fn;
        if (!fn) {
          this.cancelled = Math.max(0, this.cancelled - 1);
          continue;
        }
        next.fn = null;
        this.t = next.t;
        fn();
        await macrotask();
      }
      if (tMs > this.t) this.t = tMs;
    } finally {
      this.running = false;
    }
  }

  advance(ms: number): Promise<void> {
    return this.runUntil(this.t + ms);
  }
}

/** setTimeout's limit; longer waits are re-armed in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface RealSchedulerOptions {
  /** Simulated ms per wall ms (default 1). A demo can run an epoch a minute at 10×. */
  speed?: number;
  /** What now() reads at construction (default: the wall clock) */
  startMs?: number;
}

/**
 * Wall-clock scheduler with the same shape, for process mode and the demo. A SIGSTOPped process
 * fires its timers late on SIGCONT, which is exactly how a frozen node misses its slot.
 */
export class RealScheduler implements Scheduler {
  private readonly speed: number;
  private readonly wall0: number;
  private readonly start: number;

  constructor(opts: RealSchedulerOptions = {}) {
    this.speed = opts.speed ?? 1;
    if (!(this.speed > 0)) throw new RangeError("RealScheduler speed must be > 0");
    this.wall0 = Date.now();
    this.start = opts.startMs ?? this.wall0;
  }

  now(): number {
    const wall = Date.now();
    return this.speed === 1 && this.start === this.wall0 ? wall : this.start + (wall - this.wall0) * this.speed;
  }

  at(tMs: number, fn: () => void): () => void {
    let handle: ReturnType<typeof setTimeout> | null = null;
    const arm = () => {
      const wait = (tMs - this.now()) / this.speed;
      if (wait > MAX_TIMEOUT_MS) {
        handle = setTimeout(arm, MAX_TIMEOUT_MS);
        return;
      }
      handle = setTimeout(() => {
        handle = null;
        fn();
      }, Math.max(0, wait));
    };
    arm();
    return () => {
      if (handle !== null) clearTimeout(handle);
      handle = null;
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const cancel = this.at(this.now() + Math.max(0, ms), done);
      function done() {
        cancel();
        signal?.removeEventListener("abort", done);
        resolve();
      }
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}
