// withDeadline in virtual time: an in-process transport that never settles is a timeout after
// exactly timeoutMs of the injected clock, and an answer cancels the pending timer.

import { describe, expect, test } from "bun:test";
import { createNodeApi, withDeadline } from "../../src/node/client.ts";
import type { Clock } from "../../src/ports.ts";
import { realClock } from "../../src/ports.ts";
import type { RawResponse, Transport } from "../../src/node/types.ts";

/** A minimal manual clock: sleeps resolve only when the test advances time. */
class ManualClock implements Clock {
  private t = 0;
  readonly sleepers = new Set<{ at: number; resolve: () => void }>();
  now() {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal) {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const sleeper = { at: this.t + ms, resolve };
      this.sleepers.add(sleeper);
      signal?.addEventListener("abort", () => {
        this.sleepers.delete(sleeper);
        resolve();
      });
    });
  }
  async advance(ms: number) {
    this.t += ms;
    for (const s of [...this.sleepers]) {
      if (s.at <= this.t) {
        this.sleepers.delete(s);
        s.resolve();
      }
    }
    await Bun.sleep(0);
  }
}

const LEADERS: RawResponse = { status: 200, body: "[2]", contentType: "application/json" };
const never: Transport = () => new Promise(() => {});

describe("withDeadline", () => {
  test("a transport that never settles → unreachable/timeout once the clock reaches the deadline, not before", async () => {
    const clock = new ManualClock();
    const api = createNodeApi(withDeadline(never, clock, 500));
    let settled: unknown;
    const call = api.leaders().then((r) => (settled = r));
    await clock.advance(499);
    expect(settled).toBeUndefined();
    await clock.advance(1);
    await call;
    expect(settled).toEqual({
      ok: false,
      error: { kind: "unreachable", reason: "timeout", message: "GET /leaders: no answer within 500 ms" },
    });
  });

  test("an answer wins and cancels the timer (no sleeper left queued in the virtual clock)", async () => {
    const clock = new ManualClock();
    const api = createNodeApi(withDeadline(async () => LEADERS, clock, 500));
    expect(await api.leaders()).toEqual({ ok: true, value: [2] });
    expect(clock.sleepers.size).toBe(0);
  });

  test("an answer that arrives after some virtual time but before the deadline wins", async () => {
    const clock = new ManualClock();
    let answer!: (r: RawResponse) => void;
    const slow: Transport = () => new Promise((resolve) => (answer = resolve));
    const pending = createNodeApi(withDeadline(slow, clock, 500)).leaders();
    await clock.advance(300);
    answer(LEADERS);
    expect(await pending).toEqual({ ok: true, value: [2] });
  });

  test("a transport that throws (or throws synchronously) is unreachable/other", async () => {
    const clock = new ManualClock();
    const throwsSync: Transport = () => {
      throw new Error("sync boom");
    };
    const rejects: Transport = async () => {
      throw new Error("async boom");
    };
    expect(await withDeadline(throwsSync, clock, 500)({ method: "GET", path: "/tip" })).toEqual({
      kind: "unreachable",
      reason: "other",
      message: "GET /tip: sync boom",
    });
    expect(await withDeadline(rejects, clock, 500)({ method: "GET", path: "/tip" })).toMatchObject({ reason: "other" });
  });

  test("with the real clock: bounded in wall time too", async () => {
    const started = performance.now();
    expect(await withDeadline(never, realClock, 50)({ method: "GET", path: "/node/stats" })).toMatchObject({ reason: "timeout" });
    expect(performance.now() - started).toBeLessThan(50 + 200);
  });
});
