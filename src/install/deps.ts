// The real world for install/uninstall: systemctl, a TTY prompt, the running executable.

import { terminalPrompt } from "../ui/confirm.ts";
import { execChecked, lookupUser } from "./apply.ts";
import { selfInstall, type InstallDeps } from "./install.ts";
import { primaryGroup, userExists } from "./observe.ts";
import { realSystemctl } from "./systemctl.ts";

/** A `bun build --compile` binary runs its entry from Bun's embedded file system. */
export function isCompiled(): boolean {
  return Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:/~BUN/");
}

export function realInstallDeps(env: { home: string; currentUser: string }): InstallDeps {
  return {
    systemctlFor: (scope) => realSystemctl(scope),
    prompt: terminalPrompt(),
    out: (text) => process.stdout.write(`${text}\n`),
    home: env.home,
    currentUser: env.currentUser,
    isRoot: process.getuid?.() === 0,
    self: (execPath, root) => selfInstall(execPath, root, { compiled: isCompiled(), executable: process.execPath, script: Bun.main }),
    userExists,
    primaryGroup,
    apply: { lookupUser, exec: execChecked },
  };
}
