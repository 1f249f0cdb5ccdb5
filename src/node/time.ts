// Jormungandr's time and date formats, and the epoch clock derived from the node settings.
// chrono's to_rfc3339() writes "+00:00" (never "Z") and drops a zero fraction, otherwise 3, 6 or 9
// digits. Date.parse is only specified for millisecond fractions, so the fraction is cut to ms first.

import type { BlockDate, Settings } from "./types.ts";

const RFC3339 = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Epoch milliseconds of an RFC 3339 timestamp as Jormungandr writes it, or null when it is not one. */
export function parseRfc3339Ms(text: string): number | null {
  const m = RFC3339.exec(text);
  if (!m) return null;
  const [, date, time, fraction, offset] = m;
  const ms = (fraction ?? "").padEnd(3, "0").slice(0, 3);
  const value = Date.parse(`${date}T${time}.${ms}${offset}`);
  if (Number.isNaN(value)) return null;
  // Date.parse rolls some impossible dates over (e.g. "02-30" becomes "03-01"): reject those.
  const iso = new Date(Date.parse(`${date}T00:00:00Z`)).toISOString().slice(0, 10);
  return iso === date ? value : null;
}

const BLOCK_DATE = /^(\d+)\.(\d+)$/;

/** "84.13650" → {epoch: 84, slot: 13650}, or null when malformed. */
export function parseBlockDate(text: string): BlockDate | null {
  const m = BLOCK_DATE.exec(text);
  if (!m) return null;
  const epoch = Number(m[1]);
  const slot = Number(m[2]);
  if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(slot)) return null;
  return { epoch, slot };
}

export const formatBlockDate = (d: BlockDate): string => `${d.epoch}.${d.slot}`;

export type EpochSettings = Pick<Settings, "block0TimeMs" | "slotDurationMs" | "slotsPerEpoch">;

export interface EpochClock {
  readonly slotDurationMs: number;
  readonly slotsPerEpoch: number;
  readonly epochDurationMs: number;
  /** The slot in progress at `ms`. Before block0 the epoch is negative (floor arithmetic). */
  slotAt(ms: number): BlockDate;
  slotStartMs(epoch: number, slot: number): number;
  epochStartMs(epoch: number): number;
}

/** Slot arithmetic of the chain: epoch = floor((t - block0) / (slotDuration * slotsPerEpoch)). */
export function epochClock(settings: EpochSettings): EpochClock {
  const { block0TimeMs, slotDurationMs, slotsPerEpoch } = settings;
  if (!(slotDurationMs > 0) || !Number.isInteger(slotsPerEpoch) || slotsPerEpoch <= 0) {
    throw new RangeError(`epochClock: slotDurationMs (${slotDurationMs}) and slotsPerEpoch (${slotsPerEpoch}) must be positive`);
  }
  const epochDurationMs = slotDurationMs * slotsPerEpoch;
  const epochStartMs = (epoch: number) => block0TimeMs + epoch * epochDurationMs;
  return {
    slotDurationMs,
    slotsPerEpoch,
    epochDurationMs,
    slotAt(ms) {
      const absoluteSlot = Math.floor((ms - block0TimeMs) / slotDurationMs);
      const epoch = Math.floor(absoluteSlot / slotsPerEpoch);
      return { epoch, slot: absoluteSlot - epoch * slotsPerEpoch };
    },
    slotStartMs: (epoch, slot) => epochStartMs(epoch) + slot * slotDurationMs,
    epochStartMs,
  };
}
