// The few systemctl calls install and uninstall make (daemon-reload, enable/disable, start/stop,
// restart, and two queries), behind an interface so plans can be applied against a fake in tests.
// The master's own driver (showAll, kill, ...) is src/systemd/systemctl.ts, whose spawner (bounded,
// never rejecting) runs these too.

import type { Scope } from "../config/types.ts";
import { UserError } from "../errors.ts";
import { bunSpawner, type Spawner } from "../systemd/systemctl.ts";

/** daemon-reload and stopping a node can take a while; no call may hang install forever. */
export const SYSTEMCTL_TIMEOUT_MS = 90_000;

export interface Systemctl {
  /** How the plan shows these calls: "systemctl" or "systemctl --user" */
  readonly prefix: string;
  run(args: readonly string[]): Promise<void>;
  isEnabled(unit: string): Promise<boolean>;
  isActive(unit: string): Promise<boolean>;
}

export function realSystemctl(scope: Scope, timeoutMs = SYSTEMCTL_TIMEOUT_MS, run: Spawner = bunSpawner): Systemctl {
  const base = scope === "user" ? ["systemctl", "--user"] : ["systemctl"];
  const exec = async (args: readonly string[]) => {
    const r = await run([...base, ...args], { timeoutMs });
    return { code: r.exitCode, stdout: r.stdout.trim(), stderr: r.stderr.trim(), killed: r.timedOut };
  };
  return {
    prefix: base.join(" "),
    async run(args) {
      const r = await exec(args);
      if (r.killed) throw new UserError(`${base.join(" ")} ${args.join(" ")} did not finish within ${timeoutMs / 1000} s`);
      if (r.code !== 0) throw new UserError(`${base.join(" ")} ${args.join(" ")} failed (exit ${r.code ?? "none"}): ${r.stderr || r.stdout}`);
    },
    async isEnabled(unit) {
      // "enabled", "static", "linked", ... print on stdout; a missing unit is "not-found" (exit != 0)
      const r = await exec(["is-enabled", unit]);
      return r.code === 0 && r.stdout.split("\n")[0] === "enabled";
    },
    async isActive(unit) {
      const r = await exec(["is-active", unit]);
      return ["active", "reloading", "activating"].includes(r.stdout.split("\n")[0] ?? "");
    },
  };
}
