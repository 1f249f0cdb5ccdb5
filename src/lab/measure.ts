// Figures the lab reports (the benchmarks, the demo, the scenarios), each computed one way only.

/** Nearest-rank percentile; null for no samples. */
export function percentile(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/**
 * Failover time: from the moment a fault hits the signer to the end of the first tick whose signer
 * is another runner. A second fault before the first failover completes restarts the measurement.
 */
export class FailoverTimer {
  /** Every completed failover, in ms */
  readonly doneMs: number[] = [];
  private pending: { atMs: number; from: number } | null = null;

  /** The signer `from` was hit at `atMs`. */
  faulted(from: number, atMs: number): void {
    this.pending = { atMs, from };
  }

  /** After each tick: the failover this tick completed, if any. */
  tick(signer: number | null, nowMs: number): { from: number; to: number; ms: number } | null {
    const p = this.pending;
    if (!p || signer === null || signer === p.from) return null;
    this.pending = null;
    const ms = nowMs - p.atMs;
    this.doneMs.push(ms);
    return { from: p.from, to: signer, ms };
  }
}
