import { describe, expect, test } from "bun:test";
import { FailoverTimer, percentile } from "../../src/lab/measure.ts";

describe("percentile (nearest rank)", () => {
  test("picks a sample, never interpolates", () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5], 99)).toBe(5);
    expect(percentile([4, 1, 3, 2], 50)).toBe(2);
    expect(percentile([4, 1, 3, 2], 99)).toBe(4);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)).toBe(9);
  });
});

describe("FailoverTimer", () => {
  test("from the fault to the first tick with another signer", () => {
    const t = new FailoverTimer();
    expect(t.tick(0, 100)).toBeNull(); // nothing pending
    t.faulted(0, 1_000);
    expect(t.tick(0, 1_200)).toBeNull(); // still the old signer
    expect(t.tick(null, 1_300)).toBeNull(); // nobody yet
    expect(t.tick(2, 1_450)).toEqual({ from: 0, to: 2, ms: 450 });
    expect(t.tick(1, 2_000)).toBeNull(); // measured once
    expect(t.doneMs).toEqual([450]);
  });
});
