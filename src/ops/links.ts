// The runners' jormungandr links, as the installer makes them: replaced atomically (a new link
// beside the old, renamed over it), so a runner starting meanwhile finds the old or the new binary,
// never none.

import { readlinkSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export function readLink(path: string): string {
  return readlinkSync(path);
}

export function relink(path: string, target: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.upgrade-${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, path);
}

/** `PATH --version`: its first line, or why the binary is not usable. */
export function binaryVersion(path: string, timeoutMs = 10_000): { ok: true; version: string } | { ok: false; error: string } {
  try {
    const r = Bun.spawnSync([path, "--version"], { stdout: "pipe", stderr: "pipe", stdin: "ignore", timeout: timeoutMs });
    const out = `${r.stdout.toString()}${r.stderr.toString()}`.trim().split("\n")[0] ?? "";
    if (r.exitCode !== 0) return { ok: false, error: `${path} --version exited ${r.exitCode ?? "by a signal"}${out ? `: ${out}` : ""}` };
    if (out === "") return { ok: false, error: `${path} --version printed nothing` };
    return { ok: true, version: out };
  } catch (e) {
    return { ok: false, error: `${path}: ${e instanceof Error ? e.message : String(e)}` };
  }
}
