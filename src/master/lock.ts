// Only one daemon may supervise a set of runners: two would fight over the key. The lock is an
// flock(2) on the pid file, held through an open descriptor for the daemon's whole life: the kernel
// grants it to one open file at a time and drops it when the holder dies (kill -9 included), so
// there is no stale lock to judge and nothing is ever unlinked by a process that does not hold it.
// (The pid file alone was not exclusive: a second daemon reading it between its creation and the
// pid being written saw no pid, took it as stale, unlinked the live lock and took its own.)
// The pid in the file only names the holder in messages.

import { dlopen, FFIType, read } from "bun:ffi";
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { EXIT_LOCKED, UserError } from "../errors.ts";

export const LOCK_PATH_ENV = "JORM_MASTER_LOCK";

const LOCK_EX = 2;
const LOCK_NB = 4;
const EINTR = 4;
const EWOULDBLOCK = 11;
/** Linux: not inherited by the processes the daemon spawns (systemctl), which would keep the lock alive */
const O_CLOEXEC = 0o2000000;
/** Each retry means a holder released (and unlinked) the file between our open and our flock */
const MAX_ATTEMPTS = 20;

export function defaultLockPath(scope: "system" | "user", env: Record<string, string | undefined> = process.env): string {
  const explicit = env[LOCK_PATH_ENV];
  if (explicit) return explicit;
  if (scope === "user") return `${env.XDG_RUNTIME_DIR ?? `/run/user/${process.getuid?.() ?? 0}`}/jorm-master/daemon.pid`;
  return "/run/jorm-master/daemon.pid";
}

export interface Lock {
  path: string;
  release(): void;
}

/** Whether `pid` runs a jorm-master daemon (only for the wording of the "lock is held" message). */
export function isLiveDaemon(pid: number, readCmdline = (p: number) => readFileSync(`/proc/${p}/cmdline`, "utf8")): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    const argv = readCmdline(pid).split("\0");
    return argv.includes("daemon") && argv.some((a) => a.includes("jorm-master") || a.endsWith("cli.ts"));
  } catch {
    return false; // no such process
  }
}

type Flock = (fd: number, operation: number) => { ok: true } | { ok: false; errno: number };

let flockImpl: Flock | null = null;

/** flock(2) from libc through bun:ffi, loaded once (as the sd_notify code loads socket/sendto). */
function libcFlock(): Flock {
  if (flockImpl) return flockImpl;
  const symbols = {
    flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  } as const;
  let lastError: unknown;
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      const libc = dlopen(name, symbols).symbols;
      flockImpl = (fd, operation) => {
        if (libc.flock(fd, operation) === 0) return { ok: true };
        const p = libc.__errno_location();
        return { ok: false, errno: p === null ? -1 : read.i32(p, 0) };
      };
      return flockImpl;
    } catch (error) {
      lastError = error;
    }
  }
  throw new UserError(
    `cannot lock: flock(2) is not available through bun:ffi (${(lastError as Error | undefined)?.message ?? "unknown"})`,
    EXIT_LOCKED,
  );
}

function holderPid(path: string): number | null {
  try {
    const text = readFileSync(path, "utf8").trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/** The same file (inode) is still at `path`: a holder that released unlinked the one we opened. */
function stillAtPath(fd: number, path: string): boolean {
  try {
    const open = fstatSync(fd, { bigint: true });
    const named = statSync(path, { bigint: true });
    return open.ino === named.ino && open.dev === named.dev;
  } catch {
    return false; // gone
  }
}

/**
 * Takes the daemon lock or throws a UserError with exit code 75 (EXIT_LOCKED). The returned lock
 * holds an open descriptor until release() or the end of the process.
 */
export function acquireLock(path: string, isLive: (pid: number) => boolean = isLiveDaemon): Lock {
  const flock = libcFlock();
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (e) {
    throw new UserError(`cannot create the directory of the daemon lock ${path}: ${(e as Error).message}`, EXIT_LOCKED);
  }
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT | O_CLOEXEC, 0o644);
    } catch (e) {
      throw new UserError(`cannot open the daemon lock ${path}: ${(e as Error).message}`, EXIT_LOCKED);
    }
    let locked = flock(fd, LOCK_EX | LOCK_NB);
    while (!locked.ok && locked.errno === EINTR) locked = flock(fd, LOCK_EX | LOCK_NB);
    if (!locked.ok) {
      closeSync(fd);
      if (locked.errno !== EWOULDBLOCK) {
        throw new UserError(`cannot lock the daemon lock ${path}: flock failed (errno ${locked.errno})`, EXIT_LOCKED);
      }
      const pid = holderPid(path);
      if (pid !== null && isLive(pid)) {
        throw new UserError(
          `another jorm-master daemon (pid ${pid}) is already running (lock ${path}); stop it first (systemctl stop jorm_master)`,
          EXIT_LOCKED,
        );
      }
      throw new UserError(
        `the daemon lock ${path} is held by another process (${pid === null ? "pid not written yet" : `pid ${pid}`}); ` +
          "another jorm-master daemon is probably starting or running: stop it first (systemctl stop jorm_master)",
        EXIT_LOCKED,
      );
    }
    if (!stillAtPath(fd, path)) {
      // We locked a file its holder had just released and unlinked: the lock is the file at `path` now.
      closeSync(fd);
      continue;
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
    let held = true;
    return {
      path,
      release() {
        if (!held) return;
        held = false;
        try {
          // Unlinked while still locked, so no one can be holding the file at `path` meanwhile; a
          // process that opened this inode before sees it is no longer at `path` and retries.
          if (stillAtPath(fd, path) && holderPid(path) === process.pid) unlinkSync(path);
        } catch {
          // already gone
        }
        closeSync(fd); // drops the flock
      },
    };
  }
  throw new UserError(`cannot take the daemon lock ${path}: it was released and recreated ${MAX_ATTEMPTS} times in a row`, EXIT_LOCKED);
}
