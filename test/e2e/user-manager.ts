// Test harness: a real `systemd --user` manager via scripts/user-manager.sh (started or reused).
// Tests that need it call ensureUserManager(); where none can be had they skip with the reason,
// except under CI, where a missing manager is a failure (CI must exercise the real systemd path).

import { join } from "node:path";

export const USER_MANAGER_SCRIPT = join(import.meta.dir, "..", "..", "scripts", "user-manager.sh");
const START_TIMEOUT_MS = 60_000;

export type UserManager =
  | { ok: true; env: Record<string, string>; xdgRuntimeDir: string }
  | { ok: false; reason: string };

let cached: Promise<UserManager> | undefined;

/** Parses the `export NAME=value` lines the script prints (values are %q-quoted, ours never need it). */
export function parseExports(stdout: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) vars[m[1]!] = m[2]!.replace(/^'(.*)'$/, "$1");
  }
  return vars;
}

async function start(): Promise<UserManager> {
  if (process.platform !== "linux") return { ok: false, reason: "not Linux" };
  if (process.getuid?.() !== 0) return { ok: false, reason: "scripts/user-manager.sh needs root here" };
  const proc = Bun.spawn(["bash", USER_MANAGER_SCRIPT, "start"], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), START_TIMEOUT_MS);
  const [code, stdout, stderr] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  clearTimeout(timer);
  if (code !== 0) return { ok: false, reason: `user-manager.sh exited ${code}: ${stderr.trim().split("\n").slice(-3).join(" | ")}` };
  const vars = parseExports(stdout);
  const xdg = vars.XDG_RUNTIME_DIR;
  if (!xdg || !vars.DBUS_SESSION_BUS_ADDRESS) return { ok: false, reason: `user-manager.sh printed no env: ${stdout}` };
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, vars);
  return { ok: true, env, xdgRuntimeDir: xdg };
}

/** Starts or reuses the manager once per test process. It is left running: other suites reuse it. */
export function ensureUserManager(): Promise<UserManager> {
  cached ??= start();
  return cached;
}

/** True when tests needing a manager must fail rather than skip. */
export const requireUserManager = Boolean(process.env.CI) || process.env.JORM_REQUIRE_USER_MANAGER === "1";
