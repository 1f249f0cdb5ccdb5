// Where install puts things. System scope keeps the seed's layout (/etc/cardano, /usr/local/bin,
// /home/<user>); user scope puts everything under $HOME (XDG locations), where a user manager can
// reach it and no root is needed. Every directory can be overridden with a flag.

import { join } from "node:path";
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
