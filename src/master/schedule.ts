import { epochClock as baseClock, type EpochSettings } from "../node/time.ts";

/** Epoch and slot arithmetic over a node's settings. Slots are counted absolutely
 *  (epoch * slotsPerEpoch + slot) so the two epochs around a boundary compare simply. */
export interface EpochClock {
  slotMs: number;
  slotsPerEpoch: number;
  absSlotAt(ms: number): number;
  epochAt(ms: number): number;
  slotStartMs(absSlot: number): number;
  epochStartMs(epoch: number): number;
  abs(epoch: number, slot: number): number;
  epochOf(absSlot: number): number;
}

/** The node client's epoch clock (src/node/time.ts), seen in absolute slots. */
export function epochClock(s: EpochSettings): EpochClock {
  const c = baseClock(s);
  const spe = c.slotsPerEpoch;
  return {
    slotMs: c.slotDurationMs,
    slotsPerEpoch: spe,
    absSlotAt: (ms) => {
      const d = c.slotAt(ms);
      return d.epoch * spe + d.slot;
    },
    epochAt: (ms) => c.slotAt(ms).epoch,
    // slotStartMs(0, abs) = block0 + abs × slot: any absolute slot, whatever its epoch
    slotStartMs: (abs) => c.slotStartMs(0, abs),
    epochStartMs: c.epochStartMs,
    abs: (epoch, slot) => epoch * spe + slot,
    epochOf: (abs) => Math.floor(abs / spe),
  };
}

export interface Window {
  absSlot: number;
  startMs: number;
  endMs: number;
}

/** The guarded window of a leader slot: nobody but the signer may be able to sign inside it. */
export function windowOf(clock: EpochClock, absSlot: number, guardMs: number, marginMs: number): Window {
  const start = clock.slotStartMs(absSlot);
  return { absSlot, startMs: start - guardMs, endMs: start + clock.slotMs + marginMs };
}

/** Windows that are not over at `now`, in time order. `events` must be sorted. */
export function upcomingWindows(
  clock: EpochClock,
  events: readonly number[],
  now: number,
  guardMs: number,
  marginMs: number,
): Window[] {
  const out: Window[] = [];
  for (const abs of events) {
    const w = windowOf(clock, abs, guardMs, marginMs);
    if (w.endMs > now) out.push(w);
  }
  return out;
}

/** True when `now` is inside a window or less than `leadMs` before one starts. */
export function inDanger(windows: readonly Window[], now: number, leadMs: number): boolean {
  for (const w of windows) {
    if (w.startMs - leadMs <= now && now < w.endMs) return true;
    if (w.startMs - leadMs > now) break;
  }
  return false;
}

/** True when some window intersects [fromMs, toMs). */
export function windowBetween(windows: readonly Window[], fromMs: number, toMs: number): boolean {
  return windows.some((w) => w.startMs < toMs && w.endMs > fromMs);
}
