// The real world for install/uninstall: systemctl, a TTY prompt, the running executable.

import { createInterface } from "node:readline/promises";
import { UserError } from "../errors.ts";
import { execChecked, lookupUser } from "./apply.ts";
import { selfInstall, type InstallDeps } from "./install.ts";
import { userExists } from "./observe.ts";
import { realSystemctl } from "./systemctl.ts";

/** A `bun build --compile` binary runs its entry from Bun's embedded file system. */
export function isCompiled(): boolean {
  return Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:/~BUN/");
}

export function realInstallDeps(env: { home: string; currentUser: string }): InstallDeps {
  const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
  return {
    systemctlFor: (scope) => realSystemctl(scope),
    prompt: tty ? askLine : null,
    out: (text) => process.stdout.write(`${text}\n`),
    home: env.home,
    currentUser: env.currentUser,
    isRoot: process.getuid?.() === 0,
    self: (execPath, root) => selfInstall(execPath, root, { compiled: isCompiled(), executable: process.execPath, script: Bun.main }),
    userExists,
    apply: { lookupUser, exec: execChecked },
  };
}

/**
 * One line from the terminal. Not consola.prompt: under Bun 1.4.5 its text prompt returns undefined
 * whatever is typed (seen through a pty), so a plain readline question it is.
 */
async function askLine(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const closed = new Promise<never>((_, reject) => rl.once("close", () => reject(new UserError("cancelled: no answer"))));
  try {
    return await Promise.race([rl.question(`${question} `), closed]);
  } finally {
    rl.close();
  }
}
