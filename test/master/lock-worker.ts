// A separate process taking the daemon lock, for test/master/lock.test.ts (not a test itself).
//   bun lock-worker.ts hold PATH   take the lock, print "held" or "refused: <message>", keep it until killed
//   bun lock-worker.ts hold-spawn PATH   the same, then spawn `sleep 60` and print "held CHILD_PID"
//   bun lock-worker.ts race        per stdin line "go ROUND PATH AT_MS": wait until the wall clock reads
//                                  AT_MS (so all workers try at the same instant), try the lock, print
//                                  "ROUND held" or "ROUND refused"; "release ROUND" releases it, prints "ROUND released";
//                                  "releaseat ROUND AT_MS" does so at that instant
import { acquireLock, type Lock } from "../../src/master/lock.ts";

/** A live process counts as a daemon holding the lock (these workers are no `jorm-master daemon`). */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return pid !== process.pid;
  } catch {
    return false;
  }
};

const [mode, path] = process.argv.slice(2);
if (mode === "hold" || mode === "hold-spawn") {
  try {
    acquireLock(path!, alive);
    // hold-spawn: a long-lived child, as the daemon spawns systemctl; it must not inherit the lock
    const child = mode === "hold-spawn" ? Bun.spawn(["sleep", "60"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" }) : null;
    console.log(child ? `held ${child.pid}` : "held");
  } catch (error) {
    console.log(`refused: ${(error as Error).message}`);
    process.exit(1);
  }
  setInterval(() => {}, 1 << 30);
} else if (mode === "race") {
  const held = new Map<string, Lock>();
  console.log("ready");
  for await (const line of console) {
    const [verb, round, lockPath, at] = line.trim().split(" ");
    if (verb === "go") {
      const atMs = Number(at);
      while (performance.timeOrigin + performance.now() < atMs) {
        // spin: a timer would wake each worker at a slightly different moment
      }
      try {
        held.set(round!, acquireLock(lockPath!, alive));
        console.log(`${round} held`);
      } catch {
        console.log(`${round} refused`);
      }
    } else if (verb === "releaseat") {
      // Release at the instant the others try: they may lock the file this one just unlinked
      const atMs = Number(lockPath);
      while (performance.timeOrigin + performance.now() < atMs) {
        // spin, as above
      }
      held.get(round!)?.release();
      held.delete(round!);
      console.log(`${round} released`);
    } else if (verb === "release") {
      held.get(round!)?.release();
      held.delete(round!);
      console.log(`${round} released`);
    }
  }
}
