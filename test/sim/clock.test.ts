import { describe, expect, test } from "bun:test";
import { RealScheduler, VirtualClock } from "../../src/sim/clock.ts";

describe("VirtualClock", () => {
  test("fires timers in time order, equal times in scheduling order, and sets now to each", async () => {
    const clock = new VirtualClock(1000);
    const seen: string[] = [];
    clock.at(3000, () => seen.push(`c@${clock.now()}`));
    clock.at(2000, () => seen.push(`a@${clock.now()}`));
    clock.at(2000, () => seen.push(`b@${clock.now()}`));
    await clock.runUntil(5000);
    expect(seen).toEqual(["a@2000", "b@2000", "c@3000"]);
    expect(clock.now()).toBe(5000);
  });

  test("does not fire timers after the target time, and leaves them queued", async () => {
    const clock = new VirtualClock(0);
    let fired = false;
    clock.at(101, () => (fired = true));
    await clock.runUntil(100);
    expect(fired).toBe(false);
    await clock.advance(1);
    expect(fired).toBe(true);
  });

  test("cancel stops a timer", async () => {
    const clock = new VirtualClock(0);
    let fired = false;
    const cancel = clock.at(10, () => (fired = true));
    cancel();
    await clock.runUntil(20);
    expect(fired).toBe(false);
  });

  test("a time in the past fires at now, after timers already due", async () => {
    const clock = new VirtualClock(500);
    const seen: number[] = [];
    clock.at(500, () => {
      seen.push(1);
      clock.at(100, () => seen.push(clock.now()));
    });
    await clock.runUntil(600);
    expect(seen).toEqual([1, 500]);
  });

  test("sleep resolves in virtual time; abort resolves it early and drops the timer", async () => {
    const clock = new VirtualClock(0);
    let woke = -1;
    void clock.sleep(250).then(() => (woke = clock.now()));
    await clock.runUntil(1000);
    expect(woke).toBe(250);

    const ac = new AbortController();
    let early = -1;
    void clock.sleep(10_000, ac.signal).then(() => (early = clock.now()));
    await clock.runUntil(1100);
    ac.abort();
    await Promise.resolve();
    expect(early).toBe(1100);
  });

  test("promise chains of the code under test settle between two timers", async () => {
    const clock = new VirtualClock(0);
    const ticks: number[] = [];
    // A loop like the master's: several awaits between sleeps, each sleep scheduled after them.
    const loop = async () => {
      for (let i = 0; i < 5; i++) {
        await Promise.resolve();
        await (async () => {
          await Promise.resolve();
        })();
        ticks.push(clock.now());
        await clock.sleep(100);
      }
    };
    void loop();
    await clock.runUntil(1000);
    expect(ticks).toEqual([0, 100, 200, 300, 400]);
  });

  test("cancelled timers do not pile up (far-future deadlines cancelled at once)", async () => {
    const clock = new VirtualClock(0);
    for (let i = 0; i < 50_000; i++) {
      const ac = new AbortController();
      const p = clock.sleep(3_600_000, ac.signal);
      ac.abort();
      await p;
    }
    expect(clock.queued).toBeLessThan(5000);
    let fired = 0;
    clock.at(10, () => fired++);
    await clock.runUntil(3_600_000);
    expect(fired).toBe(1);
  });

  test("runUntil refuses to run re-entrantly", async () => {
    const clock = new VirtualClock(0);
    const first = clock.runUntil(10);
    await expect(clock.runUntil(20)).rejects.toThrow("already running");
    await first;
  });

  test("fast: 200k timers in well under a few seconds", async () => {
    const clock = new VirtualClock(0);
    let n = 0;
    const started = performance.now();
    const loop = async () => {
      for (;;) {
        n++;
        await clock.sleep(1000);
      }
    };
    void loop();
    await clock.runUntil(200_000_000);
    expect(n).toBe(200_001);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe("RealScheduler", () => {
  test("at fires at the wall-clock time, cancel prevents it", async () => {
    const s = new RealScheduler();
    const t0 = s.now();
    let firedAt = 0;
    let cancelled = false;
    s.at(t0 + 30, () => (firedAt = s.now()));
    const cancel = s.at(t0 + 10, () => (cancelled = true));
    cancel();
    await s.sleep(60);
    expect(firedAt).toBeGreaterThanOrEqual(t0 + 29);
    expect(cancelled).toBe(false);
  });

  test("speed: simulated time runs faster, timers fire at the simulated time", async () => {
    const s = new RealScheduler({ speed: 20, startMs: 1_000_000 });
    expect(s.now()).toBeGreaterThanOrEqual(1_000_000);
    expect(s.now()).toBeLessThan(1_000_000 + 200);
    const wall0 = performance.now();
    await s.sleep(1000); // 50 ms of wall time
    const wall = performance.now() - wall0;
    expect(wall).toBeGreaterThanOrEqual(40);
    expect(wall).toBeLessThan(500);
    expect(s.now()).toBeGreaterThanOrEqual(1_001_000);
    expect(() => new RealScheduler({ speed: 0 })).toThrow("speed");
  });

  test("sleep resolves early on abort", async () => {
    const s = new RealScheduler();
    const ac = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ac.abort(), 5);
    await s.sleep(5000, ac.signal);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
