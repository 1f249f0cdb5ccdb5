// Where the daemon's control socket and its state (the event log) live. The daemon and the CLI must
// find the same places without talking, so both are derived from the scope and the environment only.

import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { Scope } from "../config/types.ts";
import { defaultLockPath, LOCK_PATH_ENV } from "../master/lock.ts";

export const CONTROL_SOCKET_ENV = "JORM_MASTER_CONTROL_SOCKET";
export const STATE_DIR_ENV = "JORM_MASTER_STATE_DIR";
export const CONTROL_SOCKET_NAME = "control.sock";

type Env = Record<string, string | undefined>;

/**
 * The control socket: beside the daemon's lock, in the runtime directory systemd creates for the unit
 * (RuntimeDirectory=jorm-master): /run/jorm-master/control.sock, or $XDG_RUNTIME_DIR/jorm-master/ in
 * the user scope. A daemon run with an explicit lock ($JORM_MASTER_LOCK: tests, a second set of
 * runners) gets its own socket beside that lock, so two daemons never share one.
 */
export function controlSocketPath(scope: Scope, env: Env = process.env): string {
  const explicit = env[CONTROL_SOCKET_ENV];
  if (explicit) return explicit;
  if (env[LOCK_PATH_ENV]) return `${env[LOCK_PATH_ENV]}.${CONTROL_SOCKET_NAME}`;
  return join(dirname(defaultLockPath(scope, env)), CONTROL_SOCKET_NAME);
}

/**
 * The state directory (StateDirectory=jorm-master in the unit, the installer's layout outside it):
 * /var/lib/jorm-master, or $XDG_STATE_HOME/jorm-master (~/.local/state/jorm-master) in the user scope.
 * $STATE_DIRECTORY is what systemd sets inside the unit; $JORM_MASTER_STATE_DIR overrides both; with an
 * explicit lock the state sits beside it (as the socket does).
 */
export function stateDir(scope: Scope, env: Env = process.env): string {
  const explicit = env[STATE_DIR_ENV];
  if (explicit) return explicit;
  if (env[LOCK_PATH_ENV]) return dirname(env[LOCK_PATH_ENV]!);
  // STATE_DIRECTORY may list several (colon-separated); the unit names one.
  if (env.STATE_DIRECTORY) return env.STATE_DIRECTORY.split(":")[0]!;
  if (scope === "user") return join(env.XDG_STATE_HOME ?? join(env.HOME ?? homedir(), ".local/state"), "jorm-master");
  return "/var/lib/jorm-master";
}

/**
 * Where a reader (the CLI, outside the unit) looks for the daemon's state, in order. A user unit's
 * StateDirectory= is ~/.local/state/… from systemd 254 on but ~/.config/… before (seen on systemd
 * 252): the daemon writes where systemd points it, so the CLI looks in both.
 */
export function stateDirsToRead(scope: Scope, env: Env = process.env): string[] {
  const first = stateDir(scope, env);
  if (scope !== "user" || env[STATE_DIR_ENV] || env[LOCK_PATH_ENV] || env.STATE_DIRECTORY) return [first];
  return [first, join(env.XDG_CONFIG_HOME ?? join(env.HOME ?? homedir(), ".config"), "jorm-master")];
}
