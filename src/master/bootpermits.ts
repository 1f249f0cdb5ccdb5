// The daemon's side of the boot permits (see bootpolicy.ts): after every complete observation, one
// file per runner saying whether it may boot with --secret, written atomically (temp file, rename) so
// a runner never reads half a permit. Cleared when the daemon stops.

import { chmodSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatBootPermit, type BootPermit } from "./bootpolicy.ts";

/** Runners run as another user: they must read the permits, never write them. */
const DIR_MODE = 0o755;
const FILE_MODE = 0o644;

/** The permits for one tick: in key mode boot, every runner in scope may boot with the key while this
 *  daemon observes, unless the tick's plan says passive for it (its boot would not fit between the
 *  windows: decide's bootModes; in a cluster, always). With the plan's modes given, a runner they do
 *  not name (the config counted fewer runners when the tick planned) boots passive: nothing decided
 *  it may boot with the key. */
export function bootPermits(cntRunners: number, keyMode: "boot" | "rest", observedAtMs: number, modes?: Readonly<Record<number, "key" | "passive">>): Map<number, BootPermit> {
  const out = new Map<number, BootPermit>();
  const mode = (id: number) => (modes === undefined ? "key" : (modes[id] ?? "passive"));
  for (let id = 0; id < cntRunners; id++) out.set(id, { at_ms: observedAtMs, boot: keyMode === "boot" && mode(id) === "key" ? "key" : "passive" });
  return out;
}

/** Writes the permits; throws on failure (the caller logs it: runners then boot passive, which is safe). */
export function writeBootPermits(dir: string, permits: ReadonlyMap<number, BootPermit>): void {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  // The daemon's UMask=0077 would leave them unreadable to the runners.
  chmodSync(dir, DIR_MODE);
  for (const [id, p] of permits) {
    const tmp = join(dir, `.${id}.tmp`);
    writeFileSync(tmp, formatBootPermit(p), { mode: FILE_MODE });
    chmodSync(tmp, FILE_MODE);
    renameSync(tmp, join(dir, String(id)));
  }
}

/** Removes every permit (the daemon stops): a runner restarted meanwhile boots passive. */
export function clearBootPermits(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) rmSync(join(dir, n), { force: true });
}
