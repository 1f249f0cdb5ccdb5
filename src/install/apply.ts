// Carries out a plan, operation by operation, in order. Files are replaced atomically (write to a
// temporary name beside the target, then rename), so a crash never leaves half a unit or config.

import { chmodSync, chownSync, copyFileSync, mkdirSync, renameSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { UserError } from "../errors.ts";
import { staged, stagedInside } from "./layout.ts";
import { formatManifest } from "./manifest.ts";
import type { Op } from "./plan.ts";
import type { Systemctl } from "./systemctl.ts";

export interface ApplyDeps {
  root: string | null;
  systemctl: Systemctl | null;
  /** uid/gid of a user, null when unknown */
  lookupUser: (name: string) => { uid: number; gid: number } | null;
  /** Runs useradd/userdel; throws on failure */
  exec: (argv: string[]) => void;
}

export async function applyPlan(ops: readonly Op[], deps: ApplyDeps): Promise<void> {
  // Staging never writes outside the root: every target is checked before the first change, and
  // again as it is changed (an earlier operation may have made a directory the next one goes through).
  if (deps.root !== null) for (const op of ops) stagedTarget(op, deps.root);
  for (const op of ops) await applyOp(op, deps);
}

/** Refuses (UserError) a staged plan that would change anything outside its root. */
export function checkStagedOps(ops: readonly Op[], root: string): void {
  for (const op of ops) stagedTarget(op, root);
}

/** The staged path an operation changes (checked to stay inside the root), or null for none. */
function stagedTarget(op: Op, root: string): string | null {
  if (!("path" in op)) return null;
  // mkdir and rmdir act on what a symlink at the target points to; the others replace or remove the link itself
  return stagedInside(root, op.path, { followTarget: op.op === "mkdir" || op.op === "rmdir" });
}

async function applyOp(op: Op, deps: ApplyDeps): Promise<void> {
  const root = deps.root;
  if (root !== null) stagedTarget(op, root);
  const at = (path: string) => staged(root, path);
  const chown = (path: string, owner: string | null) => {
    // Staged trees keep the installing user's ownership: the packaging step sets owners.
    if (owner === null || deps.root !== null) return;
    const ids = deps.lookupUser(owner);
    if (ids === null) throw new UserError(`cannot set the owner of ${path}: user ${owner} does not exist`);
    chownSync(at(path), ids.uid, ids.gid);
  };
  switch (op.op) {
    case "useradd":
      deps.exec(["useradd", "--system", "--user-group", "--home-dir", op.home, "--no-create-home", "--shell", "/usr/sbin/nologin", op.name]);
      return;
    case "userdel":
      deps.exec(["userdel", op.name]);
      return;
    case "mkdir":
      mkdirSync(at(op.path), { recursive: true, mode: op.mode });
      chmodSync(at(op.path), op.mode);
      chown(op.path, op.owner);
      return;
    case "write": {
      mkdirSync(dirname(at(op.path)), { recursive: true });
      const tmp = tempBeside(at(op.path));
      writeFileSync(tmp, op.content, { mode: op.mode });
      chmodSync(tmp, op.mode);
      renameSync(tmp, at(op.path));
      chown(op.path, op.owner);
      return;
    }
    case "copy": {
      mkdirSync(dirname(at(op.path)), { recursive: true });
      const tmp = tempBeside(at(op.path));
      copyFileSync(op.source, tmp);
      chmodSync(tmp, op.mode);
      renameSync(tmp, at(op.path));
      return;
    }
    case "symlink": {
      mkdirSync(dirname(at(op.path)), { recursive: true });
      const tmp = tempBeside(at(op.path));
      symlinkSync(op.target, tmp);
      renameSync(tmp, at(op.path));
      return;
    }
    case "remove":
      rmSync(at(op.path), { recursive: op.recursive === true, force: true });
      return;
    case "rmdir":
      removeDirIfEmpty(at(op.path));
      return;
    case "systemctl":
      if (deps.systemctl === null) throw new Error("a staged plan has no systemctl operations");
      await deps.systemctl.run(op.args);
      return;
    case "manifest":
      if (op.manifest === null) {
        // Its directory goes only if install created it (then it is recorded, and removed after this)
        rmSync(at(op.path), { force: true });
      } else {
        mkdirSync(dirname(at(op.path)), { recursive: true, mode: 0o755 });
        const tmp = tempBeside(at(op.path));
        writeFileSync(tmp, formatManifest(op.manifest), { mode: 0o644 });
        renameSync(tmp, at(op.path));
      }
      return;
  }
}

function tempBeside(path: string): string {
  const tmp = join(dirname(path), `.${basename(path)}.jm-${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  return tmp;
}

function removeDirIfEmpty(path: string): void {
  try {
    rmdirSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST" && code !== "ENOENT") throw error;
  }
}

/** uid/gid through `id`, which knows every NSS source (files, LDAP, ...). */
export function lookupUser(name: string): { uid: number; gid: number } | null {
  const uid = Bun.spawnSync(["id", "-u", name], { stdout: "pipe", stderr: "ignore" });
  const gid = Bun.spawnSync(["id", "-g", name], { stdout: "pipe", stderr: "ignore" });
  if (uid.exitCode !== 0 || gid.exitCode !== 0) return null;
  return { uid: Number(uid.stdout.toString().trim()), gid: Number(gid.stdout.toString().trim()) };
}

export function execChecked(argv: string[]): void {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new UserError(`${argv.join(" ")} failed (exit ${r.exitCode}): ${r.stderr.toString().trim()}`);
}
