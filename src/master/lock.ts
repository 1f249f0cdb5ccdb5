// Only one daemon may supervise a set of runners: two would fight over the key. A pid file created
// with O_EXCL is the lock; a file left by a dead daemon (kill -9) is taken over, one whose pid still
// runs a jorm-master daemon is not.

import { closeSync, openSync, readFileSync, unlinkSync, writeSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { EXIT_LOCKED, UserError } from "../errors.ts";

export const LOCK_PATH_ENV = "JORM_MASTER_LOCK";

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

/** Whether `pid` runs a jorm-master daemon (so its lock is live). */
export function isLiveDaemon(pid: number, readCmdline = (p: number) => readFileSync(`/proc/${p}/cmdline`, "utf8")): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    const argv = readCmdline(pid).split("\0");
    return argv.includes("daemon") && argv.some((a) => a.includes("jorm-master") || a.endsWith("cli.ts"));
  } catch {
    return false; // no such process
  }
}

export function acquireLock(path: string, isLive: (pid: number) => boolean = isLiveDaemon): Lock {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new UserError(`cannot create the daemon lock ${path}: ${(e as Error).message}`, EXIT_LOCKED);
      }
      let pid = NaN;
      try {
        pid = Number(readFileSync(path, "utf8").trim());
      } catch {
        // vanished between open and read: retry
      }
      if (isLive(pid)) {
        throw new UserError(
          `another jorm-master daemon (pid ${pid}) is already running (lock ${path}); stop it first (systemctl stop jorm_master) or remove a stale lock`,
          EXIT_LOCKED,
        );
      }
      try {
        unlinkSync(path); // stale: its daemon is gone
      } catch {
        // someone else took it over first; the next attempt decides
      }
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return {
      path,
      release() {
        try {
          if (readFileSync(path, "utf8").trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      },
    };
  }
  throw new UserError(`cannot take the daemon lock ${path}: another process keeps recreating it`, EXIT_LOCKED);
}
