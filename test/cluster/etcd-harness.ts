// Test harness: real etcd for the cluster tests. The shared 3-member cluster comes from CI
// (scripts/etcd-cluster.sh, endpoints in JORM_ETCD_ENDPOINTS); tests that kill members start a
// private cluster of their own on other ports, so they never disturb the shared one. Where etcd is
// not set up the tests skip with the reason, except under CI (or JORM_REQUIRE_ETCD=1), where that
// is a failure: CI must exercise the real etcd path.

import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ETCD_SCRIPT = join(import.meta.dir, "..", "..", "scripts", "etcd-cluster.sh");

/** True when tests needing etcd must fail rather than skip. */
export const requireEtcd = Boolean(process.env.CI) || process.env.JORM_REQUIRE_ETCD === "1";

/** The shared cluster's client URLs, or [] when none was started for this run. */
export const sharedEndpoints: string[] = (process.env.JORM_ETCD_ENDPOINTS ?? "")
  .split(",")
  .map((e) => e.trim())
  .filter((e) => e !== "");

export const etcdInstalled = Bun.which("etcd") !== null;

/** A unique key prefix per test, so tests never see each other's keys on the shared cluster. */
export function uniquePrefix(name: string): string {
  return `/jorm-test/${name}/${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
}

export interface PrivateCluster {
  endpoints: string[];
  /** SIGKILL member n (1..3) */
  kill(member: 1 | 2 | 3): Promise<void>;
  /** Starts the members not running (their data kept) and waits until all three are healthy */
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function run(args: string[], env: Record<string, string>): Promise<string> {
  const proc = Bun.spawn(["bash", ETCD_SCRIPT, ...args], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  if (code !== 0) throw new Error(`etcd-cluster.sh ${args.join(" ")} exited ${code}: ${stderr.trim().split("\n").slice(-4).join(" | ")}`);
  return stdout;
}

/** A 3-member cluster of its own on client ports clientPort..+2 and peer ports peerPort..+2. */
export async function startPrivateCluster(name: string, clientPort: number, peerPort: number): Promise<PrivateCluster> {
  const env = {
    JORM_ETCD_DIR: join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), `jorm-etcd-test-${name}-${process.pid}`),
    JORM_ETCD_CLIENT_PORT: String(clientPort),
    JORM_ETCD_PEER_PORT: String(peerPort),
  };
  const stdout = await run(["start"], env);
  const m = /^export JORM_ETCD_ENDPOINTS=(.*)$/m.exec(stdout);
  if (!m) throw new Error(`etcd-cluster.sh printed no endpoints: ${stdout}`);
  return {
    endpoints: m[1]!.split(","),
    kill: async (member) => void (await run(["kill", String(member)], env)),
    start: async () => void (await run(["start"], env)),
    stop: async () => void (await run(["stop"], env)),
  };
}
