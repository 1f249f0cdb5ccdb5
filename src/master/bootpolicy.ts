// Whether a runner in key mode `boot` may start with --secret. A --secret runner is a leader from
// boot and computes its own schedule; only a live daemon demotes it before it could sign next to
// the signer. With no daemon (crashed, or refusing a broken config with exit 78) a runner that
// systemd restarts boots passive instead: a cold standby costs slots, a second signer costs forks.
//
// "A live daemon" is proven, not assumed: the daemon writes a boot permit per runner after every
// complete observation (<runtime dir>/boot/<id>), and a runner boots with the key only on a fresh
// permit that says so. A master unit that is merely activating, or a daemon that stopped observing,
// gives no fresh permit; anything unreadable or doubtful means passive.

import { z } from "zod";

/** A permit older than this proves nothing: the daemon writes one after every tick (every
 *  loop_period plus the tick's own time), so a live daemon's permit is always younger. */
export const BOOT_PERMIT_MAX_AGE_MS = 5_000;
/** A permit dated this far in the future (a clock step back) is doubtful too. */
export const BOOT_PERMIT_MAX_SKEW_MS = 1_000;
/** The daemon must complete its first observation within this time of starting, or exit non-zero
 *  (jorm_master.service's TimeoutStartSec is just above it): an activating master that never
 *  observes must not leave runners booting with the key for long. */
export const READY_TIMEOUT_MS = 20_000;
/** A runner starting while the master unit is active or activating waits this long at most for a
 *  fresh permit (a first start: the daemon's first observation), then boots passive. */
export const BOOT_PERMIT_WAIT_MS = READY_TIMEOUT_MS + 2_000;

const permitSchema = z.strictObject({
  /** When the observation this permit follows was complete (ms since epoch, the host's clock) */
  at_ms: z.number().int().nonnegative(),
  boot: z.enum(["key", "passive"]),
});
export type BootPermit = z.infer<typeof permitSchema>;

export function formatBootPermit(p: BootPermit): string {
  return `${JSON.stringify(p)}\n`;
}

/** null for anything that is not exactly a permit (a torn write, garbage, another version). */
export function parseBootPermit(text: string | null): BootPermit | null {
  if (text === null) return null;
  try {
    const r = permitSchema.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export interface BootDecision {
  key: boolean;
  /** Why, for the runner's stderr (journal) */
  why: string;
  /** No decision from the daemon yet: worth waiting a little for one (the master is starting) */
  wait: boolean;
}

/**
 * The runner wrapper's decision, a pure function. `masterRunning`: the master unit is active or
 * activating (systemd); `permitText`: the permit file's content, null when absent or unreadable.
 */
export function bootDecision(input: {
  keyMode: "boot" | "rest";
  masterRunning: boolean;
  permitText: string | null;
  nowMs: number;
}): BootDecision {
  if (input.keyMode !== "boot") return { key: false, wait: false, why: "key mode rest: the master posts the key" };
  if (!input.masterRunning) return { key: false, wait: false, why: "the master unit is not active" };
  if (input.permitText === null) return { key: false, wait: true, why: "no boot permit from the daemon (it has not observed yet)" };
  const p = parseBootPermit(input.permitText);
  if (p === null) return { key: false, wait: true, why: "the boot permit is unreadable" };
  const age = input.nowMs - p.at_ms;
  if (age > BOOT_PERMIT_MAX_AGE_MS) return { key: false, wait: true, why: `the daemon's boot permit is ${Math.round(age / 1000)} s old: it is not observing` };
  if (age < -BOOT_PERMIT_MAX_SKEW_MS) return { key: false, wait: false, why: "the boot permit is dated in the future" };
  if (p.boot !== "key") return { key: false, wait: false, why: "the daemon wants it passive" };
  return { key: true, wait: false, why: "the daemon observed just now" };
}

/** The simulator's view of the same rule: a simulated daemon observes from its first instant (and a
 *  runner starting before its first permit waits for it), so "alive" stands for "fresh permit". */
export function startWithSecret(keyMode: "boot" | "rest", daemonAlive: boolean): boolean {
  return keyMode === "boot" && daemonAlive;
}

/** The directory of the permits: the master unit's RuntimeDirectory, which systemd removes when the
 *  daemon stops or dies, so no permit outlives it. Readable by the runners (mode 0755, files 0644). */
export function bootPermitDir(scope: "system" | "user", env: Record<string, string | undefined> = process.env): string {
  const explicit = env[BOOT_PERMIT_DIR_ENV];
  if (explicit) return explicit;
  if (scope === "user") return `${env.XDG_RUNTIME_DIR ?? `/run/user/${process.getuid?.() ?? 0}`}/jorm-master/boot`;
  return "/run/jorm-master/boot";
}
export const BOOT_PERMIT_DIR_ENV = "JORM_MASTER_BOOT_DIR";
