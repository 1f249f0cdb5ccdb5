// Where install puts things. System scope keeps the seed's layout (/etc/cardano, /usr/local/bin,
// /home/<user>); user scope puts everything under $HOME (XDG locations), where a user manager can
// reach it and no root is needed. Every directory can be overridden with a flag.

import { lstatSync, realpathSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { UserError } from "../errors.ts";
import type { Scope } from "../config/types.ts";

export const CONFIG_FILE = "jorm_master.yaml";
export const EXEC_NAME = "jorm-master";

export interface Layout {
  scope: Scope;
  configDir: string;
  binDir: string;
  /** Parent of the runners' storage dirs (storage_jorm_runner_N) */
  storageDir: string;
  unitDir: string;
  /** Holds the install manifest */
  stateDir: string;
  configPath: string;
  execPath: string;
  manifestPath: string;
}

export interface LayoutOverrides {
  configDir?: string;
  binDir?: string;
  storageDir?: string;
  unitDir?: string;
  stateDir?: string;
}

export function layoutFor(scope: Scope, home: string, user: string, overrides: LayoutOverrides = {}): Layout {
  const defaults =
    scope === "system"
      ? {
          configDir: "/etc/cardano",
          binDir: "/usr/local/bin",
          storageDir: `/home/${user}`,
          unitDir: "/etc/systemd/system",
          stateDir: "/var/lib/jorm-master",
        }
      : {
          configDir: join(home, ".config/jorm-master"),
          binDir: join(home, ".local/bin"),
          storageDir: join(home, ".local/share/jorm-master"),
          unitDir: join(home, ".config/systemd/user"),
          stateDir: join(home, ".local/state/jorm-master"),
        };
  const dirs = { ...defaults, ...definedOnly(overrides) };
  return {
    scope,
    ...dirs,
    configPath: join(dirs.configDir, CONFIG_FILE),
    execPath: join(dirs.binDir, EXEC_NAME),
    manifestPath: join(dirs.stateDir, "manifest.json"),
  };
}

function definedOnly(o: LayoutOverrides): LayoutOverrides {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== "")) as LayoutOverrides;
}

/** The real location of a final path when staging into `root` (DESTDIR-style). */
export function staged(root: string | null, path: string): string {
  return root === null ? path : join(root, path);
}

/**
 * Where `path` is staged under `root`, refused (UserError) when that is outside the root: through
 * `..` in the path, or through a symlink inside the root that points out of it (any existing
 * ancestor whose real path leaves the root's real path). With `followTarget`, the target itself
 * counts too when it exists (mkdir then chmod/chown follow a symlink); otherwise a symlink at the
 * target is what gets replaced or removed, which stays inside.
 */
export function stagedInside(root: string, path: string, options: { followTarget: boolean }): string {
  const target = join(root, path);
  if (!isWithin(root, target)) throw outside(root, path, `${target} (the path climbs out with "..")`);
  const realRoot = realOrNull(root) ?? resolve(root);
  for (let p = options.followTarget ? target : dirname(target); isWithin(root, p); p = dirname(p)) {
    if (!existsLstat(p)) continue;
    // The deepest existing ancestor: its real path holds every symlink on the way
    const real = realOrNull(p);
    if (real === null) throw outside(root, path, `an unknown place (${p} is a symlink that points nowhere or cannot be resolved)`);
    if (!isWithin(realRoot, real)) throw outside(root, path, `${real} (through a symlink at or above ${p})`);
    break;
  }
  return target;
}

function outside(root: string, path: string, where: string): UserError {
  return new UserError(`refusing to stage ${path}: under --root ${root} it would land at ${where}, outside the root; nothing outside --root is ever written`);
}

function isWithin(root: string, path: string): boolean {
  const rel = relative(resolve(root), resolve(path));
  return rel === "" || (rel !== ".." && !rel.startsWith("../") && !isAbsolute(rel));
}

function existsLstat(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function realOrNull(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}
