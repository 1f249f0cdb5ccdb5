// Whether this build may run a daemon with a `cluster` section. Until the daemon holds the etcd
// signer lease and fences itself by it (issue 13), two hosts configured as one cluster would each
// elect their own signer and sign the same slots: a config that asks for coordination the build does
// not enforce is refused (exit 78) rather than silently run as a single server.

import type { ResolvedConfig } from "../config/types.ts";
import { ConfigError } from "../errors.ts";

/** Whether this build's daemon enforces the cluster section (the signer lease and its dead-man switch). */
export const CLUSTER_ENFORCED = false;

/** Why the daemon refuses this configuration, or null when it may run it. */
export function clusterRefusal(config: ResolvedConfig, enforced: boolean = CLUSTER_ENFORCED): string | null {
  if (config.cluster === null || enforced) return null;
  return (
    `${config.source ?? "the configuration"}: cluster: cluster mode not enforced by this build: ` +
    "the daemon would not coordinate with the other hosts through etcd, and two hosts would both sign. " +
    "Remove the cluster section and run the pool's runners on one host only."
  );
}

/** Throws the refusal as a config error (exit 78, no stack trace). */
export function assertClusterRunnable(config: ResolvedConfig, enforced: boolean = CLUSTER_ENFORCED): void {
  const why = clusterRefusal(config, enforced);
  if (why !== null) throw new ConfigError(why);
}
