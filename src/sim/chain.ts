// The simulated network: epoch clock, the network tip and the pool's leader schedule, all pure
// functions of (params, time) so any process (in-process world, HTTP node, audit) that shares the
// params sees the same chain without exchanging a single message.

export interface ChainParams {
  /** Whole seconds (the node prints block0Time without a fraction) */
  block0TimeMs: number;
  /** Whole seconds (settings.slotDuration is an integer number of seconds) */
  slotDurationMs: number;
  slotsPerEpoch: number;
  seed: number;
  /** Density: the pool's leader slots per epoch (ITN pools of note had tens per epoch) */
  leaderSlotsPerEpoch: number;
  /** Share of slots that carry a network block (ITN: consensus_genesis_praos_active_slot_coeff 0.1) */
  activeSlotCoeff: number;
  /** 64 hex; derived from the seed when absent */
  block0Hash?: string;
  /** Every n-th epoch's first and last slots (1 and slotsPerEpoch-1) are the pool's too: the hardest
   *  case for the boundary hand-out (a window on each side of the boundary). 1: every epoch */
  edgeLeaderSlotsEvery?: number;
}

export const MS_PER_S = 1000;

/** ITN v0.8.x chain: block0 2019-12-13T19:13:37, 2 s slots, 43200 slots per epoch. */
export const ITN_CHAIN: ChainParams = {
  block0TimeMs: Date.UTC(2019, 11, 13, 19, 13, 37),
  slotDurationMs: 2000,
  slotsPerEpoch: 43200,
  seed: 1,
  leaderSlotsPerEpoch: 50,
  activeSlotCoeff: 0.1,
};

export interface SlotPos {
  epoch: number;
  slot: number;
  /** Slots since block0 */
  abs: number;
}

// --- deterministic hashing -------------------------------------------------------------------

function mix32(x: number): number {
  let a = x >>> 0;
  a ^= a >>> 16;
  a = Math.imul(a, 0x7feb352d);
  a ^= a >>> 15;
  a = Math.imul(a, 0x846ca68b);
  a ^= a >>> 16;
  return a >>> 0;
}

const TWO_32 = 2 ** 32;

/** A 32-bit hash of integers (each may exceed 32 bits, e.g. times in ms). */
export function hash32(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    const lo = p % TWO_32;
    const hi = Math.floor(p / TWO_32);
    h = mix32(h ^ mix32(lo + 0x632be5ab));
    h = mix32(h ^ mix32(hi + 0x85ebca6b));
  }
  return h;
}

/** Deterministic lowercase hex of `chars` characters from integers. */
export function hexOf(chars: number, ...parts: number[]): string {
  let out = "";
  for (let i = 0; out.length < chars; i++) out += hash32(...parts, i).toString(16).padStart(8, "0");
  return out.slice(0, chars);
}

/** mulberry32: a tiny seeded PRNG, [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / TWO_32;
  };
}

/** The network's blocks sit in chunks of this many slots, each holding a fixed number of blocks at
 *  seeded positions: the tip is O(1) to evaluate at any time and still irregular. */
const CHUNK_SLOTS = 50;
const CACHE_LIMIT = 64;

export function validateChainParams(p: ChainParams): string[] {
  const problems: string[] = [];
  if (!Number.isFinite(p.block0TimeMs) || p.block0TimeMs % MS_PER_S !== 0) problems.push("block0TimeMs must be whole seconds");
  if (!Number.isInteger(p.slotDurationMs) || p.slotDurationMs <= 0 || p.slotDurationMs % MS_PER_S !== 0)
    problems.push("slotDurationMs must be a positive whole number of seconds");
  if (!Number.isInteger(p.slotsPerEpoch) || p.slotsPerEpoch < 2) problems.push("slotsPerEpoch must be an integer ≥ 2");
  if (!Number.isInteger(p.leaderSlotsPerEpoch) || p.leaderSlotsPerEpoch < 0) problems.push("leaderSlotsPerEpoch must be an integer ≥ 0");
  if (!(p.activeSlotCoeff > 0 && p.activeSlotCoeff <= 1)) problems.push("activeSlotCoeff must be in (0, 1]");
  if (p.block0Hash !== undefined && !/^[0-9a-f]{64}$/.test(p.block0Hash)) problems.push("block0Hash must be 64 lowercase hex");
  return problems;
}

export class Chain {
  readonly params: Readonly<ChainParams>;
  readonly epochMs: number;
  readonly block0Hash: string;
  /** Network blocks per CHUNK_SLOTS slots */
  private readonly perChunk: number;
  private readonly scheduleCache = new Map<number, readonly number[]>();
  private readonly chunkCache = new Map<number, readonly number[]>();
  private readonly hashCache = new Map<number, string>();

  constructor(params: ChainParams) {
    const problems = validateChainParams(params);
    if (problems.length) throw new Error(`invalid chain parameters: ${problems.join("; ")}`);
    this.params = { ...params };
    this.epochMs = params.slotDurationMs * params.slotsPerEpoch;
    this.block0Hash = params.block0Hash ?? hexOf(64, params.seed, 0xb10c0);
    this.perChunk = Math.max(1, Math.min(CHUNK_SLOTS, Math.round(CHUNK_SLOTS * params.activeSlotCoeff)));
  }

  get slotMs(): number {
    return this.params.slotDurationMs;
  }
  get slotsPerEpoch(): number {
    return this.params.slotsPerEpoch;
  }

  // --- epoch clock ---

  absSlotAt(tMs: number): number {
    return Math.floor((tMs - this.params.block0TimeMs) / this.params.slotDurationMs);
  }

  slotAt(tMs: number): SlotPos {
    const abs = this.absSlotAt(tMs);
    const spe = this.params.slotsPerEpoch;
    const epoch = Math.floor(abs / spe);
    return { epoch, slot: abs - epoch * spe, abs };
  }

  epochAt(tMs: number): number {
    return Math.floor((tMs - this.params.block0TimeMs) / this.epochMs);
  }

  epochStartMs(epoch: number): number {
    return this.params.block0TimeMs + epoch * this.epochMs;
  }

  slotStartMs(epoch: number, slot: number): number {
    return this.epochStartMs(epoch) + slot * this.params.slotDurationMs;
  }

  absSlotStartMs(abs: number): number {
    return this.params.block0TimeMs + abs * this.params.slotDurationMs;
  }

  // --- the pool's leader schedule ---

  /** The pool's leader slots in `epoch`: sorted, distinct, in 1..slotsPerEpoch-1 (never slot 0:
   *  the node computes the schedule at the boundary for the slots after it). */
  leaderSlots(epoch: number): readonly number[] {
    const hit = this.scheduleCache.get(epoch);
    if (hit) return hit;
    const n = this.params.slotsPerEpoch - 1;
    const k = Math.min(this.params.leaderSlotsPerEpoch, n);
    const rand = prng(hash32(this.params.seed, epoch, 0x5c4ed));
    // Floyd's sampling: exactly k distinct values of 1..n.
    const chosen = new Set<number>();
    for (let j = n - k + 1; j <= n; j++) {
      const t = 1 + Math.floor(rand() * j);
      chosen.add(chosen.has(t) ? j : t);
    }
    const every = this.params.edgeLeaderSlotsEvery;
    if (every && every > 0 && epoch % every === 0 && n >= 1) chosen.add(1).add(n);
    const slots = [...chosen].sort((a, b) => a - b);
    remember(this.scheduleCache, epoch, slots);
    return slots;
  }

  /** Leader slots whose start lies in [fromMs, toMs), in time order. */
  leaderSlotsBetween(fromMs: number, toMs: number): SlotPos[] {
    const out: SlotPos[] = [];
    if (toMs <= fromMs) return out;
    for (let e = Math.max(0, this.epochAt(fromMs)); this.epochStartMs(e) < toMs; e++) {
      for (const slot of this.leaderSlots(e)) {
        const t = this.slotStartMs(e, slot);
        if (t >= fromMs && t < toMs) out.push({ epoch: e, slot, abs: e * this.params.slotsPerEpoch + slot });
      }
    }
    return out;
  }

  // --- the network tip ---

  /** Offsets (0..CHUNK_SLOTS-1, sorted) of the slots carrying a network block in chunk c. */
  private chunk(c: number): readonly number[] {
    const hit = this.chunkCache.get(c);
    if (hit) return hit;
    const rand = prng(hash32(this.params.seed, c, 0xc4a1));
    const chosen = new Set<number>();
    for (let j = CHUNK_SLOTS - this.perChunk; j < CHUNK_SLOTS; j++) {
      const t = Math.floor(rand() * (j + 1));
      chosen.add(chosen.has(t) ? j : t);
    }
    const offsets = [...chosen].sort((a, b) => a - b);
    remember(this.chunkCache, c, offsets);
    return offsets;
  }

  /** The network's last block at or before absolute slot `abs`: its height and slot. Height 0 is
   *  block0 (before any slot). */
  lastBlockAtSlot(abs: number): { height: number; abs: number } {
    if (abs < 0) return { height: 0, abs: -1 };
    let c = Math.floor(abs / CHUNK_SLOTS);
    const off = abs - c * CHUNK_SLOTS;
    const offsets = this.chunk(c);
    let n = 0;
    while (n < offsets.length && offsets[n]! <= off) n++;
    if (n > 0) return { height: c * this.perChunk + n, abs: c * CHUNK_SLOTS + offsets[n - 1]! };
    if (c === 0) return { height: 0, abs: -1 };
    c -= 1;
    const prev = this.chunk(c);
    return { height: (c + 1) * this.perChunk, abs: c * CHUNK_SLOTS + prev[prev.length - 1]! };
  }

  /** Network tip height at time t (a block counts from the start of its slot). */
  tipHeight(tMs: number): number {
    return this.lastBlockAtSlot(this.absSlotAt(tMs)).height;
  }

  blockHash(height: number): string {
    if (height === 0) return this.block0Hash;
    const hit = this.hashCache.get(height);
    if (hit) return hit;
    const hash = hexOf(64, this.params.seed, height, 0xb1);
    remember(this.hashCache, height, hash);
    return hash;
  }

  dateString(epoch: number, slot: number): string {
    return `${epoch}.${slot}`;
  }
}

function remember<V>(cache: Map<number, V>, key: number, value: V): void {
  if (cache.size >= CACHE_LIMIT) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(key, value);
}

/** A small chain for tests and the real-time demo: 1 s slots, 60 slots per epoch. */
export function testChainParams(over: Partial<ChainParams> = {}): ChainParams {
  return {
    block0TimeMs: Date.UTC(2020, 2, 6, 0, 0, 0),
    slotDurationMs: 1000,
    slotsPerEpoch: 60,
    seed: 7,
    leaderSlotsPerEpoch: 5,
    activeSlotCoeff: 0.5,
    ...over,
  };
}
