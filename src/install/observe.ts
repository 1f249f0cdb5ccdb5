// What exists: the files, symlinks and directories a plan looks at, the users, the previous
// manifest and the master unit's state. Read-only.

import { lstatSync, readFileSync, readlinkSync } from "node:fs";
import { dirname } from "node:path";
import { staged } from "./layout.ts";
import { parseManifest, type Manifest } from "./manifest.ts";
import { sha256Hex, type Found, type UnitStates } from "./plan.ts";
import type { Systemctl } from "./systemctl.ts";

/** Larger files (the binary) are hashed but not kept as text for diffs. */
const MAX_DIFF_BYTES = 256 * 1024;

export function observePath(root: string | null, path: string): Found {
  const real = staged(root, path);
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(real);
  } catch {
    return { kind: "missing" };
  }
  if (st.isSymbolicLink()) return { kind: "symlink", target: readlinkSync(real) };
  if (st.isDirectory()) return { kind: "dir" };
  if (!st.isFile()) return { kind: "other" };
  const bytes = readFileSync(real);
  const text = bytes.length <= MAX_DIFF_BYTES && !bytes.includes(0) ? bytes.toString("utf8") : null;
  return { kind: "file", sha256: sha256Hex(bytes), text };
}

export function observePaths(root: string | null, paths: Iterable<string>): Record<string, Found> {
  const out: Record<string, Found> = {};
  for (const path of paths) out[path] = observePath(root, path);
  return out;
}

export function readManifest(root: string | null, path: string): Manifest | null {
  let text: string;
  try {
    text = readFileSync(staged(root, path), "utf8");
  } catch {
    return null;
  }
  return parseManifest(text, staged(root, path));
}

export function readTextIfExists(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

export function userExists(name: string): boolean {
  return Bun.spawnSync(["id", "-u", name], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
}

/** The primary group's name of an existing user (`id -gn`), null when it cannot be told. */
export function primaryGroup(name: string): string | null {
  const r = Bun.spawnSync(["id", "-gn", name], { stdout: "pipe", stderr: "ignore" });
  const group = r.stdout.toString().trim();
  return r.exitCode === 0 && group !== "" ? group : null;
}

export async function observeUnits(systemctl: Systemctl | null, masterUnit: string): Promise<UnitStates | null> {
  if (systemctl === null) return null;
  const [masterEnabled, masterActive] = await Promise.all([systemctl.isEnabled(masterUnit), systemctl.isActive(masterUnit)]);
  return { masterEnabled, masterActive };
}

export function pathsOf(entries: readonly object[], manifest: Manifest | null): Set<string> {
  const paths = new Set<string>();
  const add = (path: string) => {
    // Ancestors too: the plan records every directory a mkdir -p would create
    for (let p = path; p !== "/" && p !== "." && !paths.has(p); p = dirname(p)) paths.add(p);
  };
  for (const e of entries) if ("path" in e && typeof e.path === "string") add(e.path);
  for (const e of manifest?.entries ?? []) if (e.type !== "user") add(e.path);
  return paths;
}
