import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { acquireLock, isLiveDaemon } from "../../src/master/lock.ts";
import { EXIT_LOCKED, UserError } from "../../src/errors.ts";

const dir = () => mkdtempSync(join(tmpdir(), "jm-lock-"));
const WORKER = join(import.meta.dir, "lock-worker.ts");

/** Lines of a child's stdout, one per next() (null at its end). */
function lines(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return {
    async next(): Promise<string | null> {
      for (;;) {
        const at = buffer.indexOf("\n");
        if (at >= 0) {
          const line = buffer.slice(0, at);
          buffer = buffer.slice(at + 1);
          return line;
        }
        const { value, done } = await reader.read();
        if (done) return null;
        buffer += decoder.decode(value, { stream: true });
      }
    },
  };
}

describe("daemon lock", () => {
  test("the first daemon takes it; a second one exits non-zero and says which pid holds it", () => {
    const path = join(dir(), "run", "daemon.pid");
    const lock = acquireLock(path, () => false);
    expect(readFileSync(path, "utf8").trim()).toBe(String(process.pid));
    let err: unknown;
    try {
      acquireLock(path, (pid) => pid === process.pid);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(EXIT_LOCKED);
    expect((err as UserError).message).toContain(`another jorm-master daemon (pid ${process.pid}) is already running`);
    lock.release();
    expect(existsSync(path)).toBe(false);
  });

  test("a lock left by a daemon killed with -9 is taken over", () => {
    const path = join(dir(), "daemon.pid");
    writeFileSync(path, "999999\n");
    const lock = acquireLock(path); // pid 999999 does not run a jorm-master daemon
    expect(readFileSync(path, "utf8").trim()).toBe(String(process.pid));
    lock.release();
  });

  test("release leaves a lock that another daemon took over alone", () => {
    const path = join(dir(), "daemon.pid");
    const lock = acquireLock(path, () => false);
    writeFileSync(path, "12345\n");
    lock.release();
    expect(readFileSync(path, "utf8").trim()).toBe("12345");
  });

  test("isLiveDaemon: only a process whose command line is a jorm-master daemon counts (pid reuse)", () => {
    expect(isLiveDaemon(42, () => "/usr/local/bin/jorm-master\0daemon\0--config\0/etc/cardano/jorm_master.yaml\0")).toBe(true);
    expect(isLiveDaemon(42, () => "bun\0src/cli.ts\0daemon\0")).toBe(true);
    expect(isLiveDaemon(42, () => ["/usr/bin/sleep", "100", ""].join("\0"))).toBe(false);
    expect(isLiveDaemon(42, () => "/usr/local/bin/jorm-master\0status\0")).toBe(false);
    expect(isLiveDaemon(42, () => { throw new Error("ENOENT"); })).toBe(false);
    expect(isLiveDaemon(NaN)).toBe(false);
  });
});

test("a second `jorm-master daemon` exits 75 and names the running one", async () => {
  const path = join(dir(), "daemon.pid");
  // A stand-in that holds the lock and whose command line reads like a running daemon.
  const holder = Bun.spawn(["bun", WORKER, "hold", path, "jorm-master", "daemon"], { stdout: "pipe", stderr: "ignore" });
  try {
    expect(await lines(holder.stdout).next()).toBe("held");
    const cli = join(import.meta.dir, "..", "..", "src", "cli.ts");
    const p = Bun.spawn(["bun", cli, "daemon", "--config", join(import.meta.dir, "..", "fixtures", "seed", "jorm_master.yaml")], {
      env: { ...process.env, JORM_MASTER_LOCK: path },
      stdout: "pipe",
      stderr: "pipe",
    });
    const err = await new Response(p.stderr).text();
    expect(await p.exited).toBe(EXIT_LOCKED);
    expect(err).toContain(`another jorm-master daemon (pid ${holder.pid}) is already running`);
    expect(err).not.toMatch(/^\s+at /m);
  } finally {
    holder.kill();
  }
});

describe("exclusive between processes", () => {
  const ROUNDS = 200;
  const WORKERS = 3;
  /** Far enough ahead that every worker has read its "go" line before the instant comes */
  const START_AHEAD_MS = 15;

  /** No process has this pid: a lock file naming it was left by a daemon that died */
  const DEAD_PID = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8")) + 1;

  test(`${ROUNDS} rounds of ${WORKERS} processes taking the lock at the same instant: exactly one holder each round (none when it raced a release)`, async () => {
    const path = join(dir(), "run", "daemon.pid");
    mkdirSync(dirname(path));
    // Daemons start together after a crash too: some rounds begin with the file a dead daemon left,
    // naming its pid or empty (it died between creating the file and writing its pid).
    const leftBehind = (round: number) => [null, `${DEAD_PID}\n`, ""][round % 3]!;
    const workers = Array.from({ length: WORKERS }, () => {
      const proc = Bun.spawn(["bun", WORKER, "race"], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
      return { proc, out: lines(proc.stdout) };
    });
    try {
      for (const w of workers) expect(await w.out.next()).toBe("ready");
      const holdersPerRound: number[] = [];
      // In every third round the last holder releases at the very instant the others try, so a
      // worker may lock the file just unlinked (it must notice and retry): then nobody or one may win.
      const racingRelease = (round: number) => round % 3 === 0 && round > 0;
      let keeper: (typeof workers)[number] | null = null;
      for (let round = 0; round < ROUNDS; round++) {
        const stale = leftBehind(round);
        if (stale !== null && keeper === null) writeFileSync(path, stale);
        const at = Math.ceil(performance.timeOrigin + performance.now()) + START_AHEAD_MS;
        const trying = workers.filter((w) => w !== keeper);
        for (const w of trying) w.proc.stdin.write(`go ${round} ${path} ${at}\n`);
        keeper?.proc.stdin.write(`releaseat ${round - 1} ${at}\n`);
        for (const w of workers) w.proc.stdin.flush();
        const answers = await Promise.all(trying.map((w) => w.out.next()));
        if (keeper) expect(await keeper.out.next()).toBe(`${round - 1} released`);
        const holders = trying.filter((_, i) => answers[i] === `${round} held`);
        expect(answers.every((a) => a === `${round} held` || a === `${round} refused`)).toBe(true);
        holdersPerRound.push(racingRelease(round) && holders.length === 0 ? 1 : holders.length);
        keeper = null;
        if (racingRelease(round + 1) && holders.length === 1) {
          keeper = holders[0]!; // keeps it into the next round
          continue;
        }
        for (const w of workers) w.proc.stdin.write(`release ${round}\n`);
        for (const w of workers) w.proc.stdin.flush();
        for (const w of workers) expect(await w.out.next()).toBe(`${round} released`);
      }
      const wrong = holdersPerRound.map((n, round) => ({ round, n })).filter(({ n }) => n !== 1);
      expect(wrong).toEqual([]);
    } finally {
      for (const w of workers) w.proc.kill();
    }
  }, 120_000);

  test("a holder killed with -9 leaves a file behind, and the next daemon takes the lock at once", async () => {
    const path = join(dir(), "daemon.pid");
    const holder = Bun.spawn(["bun", WORKER, "hold", path], { stdout: "pipe", stderr: "inherit" });
    expect(await lines(holder.stdout).next()).toBe("held");
    expect(readFileSync(path, "utf8").trim()).toBe(String(holder.pid));
    expect(() => acquireLock(path, () => true)).toThrow(`another jorm-master daemon (pid ${holder.pid}) is already running`);
    holder.kill(9);
    await holder.exited;
    const lock = acquireLock(path, () => true);
    expect(readFileSync(path, "utf8").trim()).toBe(String(process.pid));
    lock.release();
  });

  test("a child the holder spawned does not inherit the lock: the holder's death frees it", async () => {
    const path = join(dir(), "daemon.pid");
    const holder = Bun.spawn(["bun", WORKER, "hold-spawn", path], { stdout: "pipe", stderr: "inherit" });
    const line = (await lines(holder.stdout).next()) ?? "";
    const childPid = Number(/^held (\d+)$/.exec(line)?.[1]);
    expect(childPid).toBeGreaterThan(0);
    try {
      holder.kill(9);
      await holder.exited;
      const lock = acquireLock(path, () => true);
      lock.release();
    } finally {
      process.kill(childPid, "SIGKILL");
    }
  });

  test("an empty lock file that a live process holds is neither unlinked nor taken (the pid is written after the lock)", async () => {
    const path = join(dir(), "daemon.pid");
    const holder = Bun.spawn(["bun", WORKER, "hold", path], { stdout: "pipe", stderr: "inherit" });
    try {
      expect(await lines(holder.stdout).next()).toBe("held");
      writeFileSync(path, ""); // as between the holder's lock and its pid write
      let err: unknown;
      try {
        acquireLock(path, () => false);
      } catch (e) {
        err = e;
      }
      expect((err as UserError).exitCode).toBe(EXIT_LOCKED);
      expect((err as UserError).message).toContain("is held by another process (pid not written yet)");
      expect(existsSync(path)).toBe(true);
    } finally {
      holder.kill();
    }
  });
});
