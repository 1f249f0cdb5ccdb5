// Whether a runner in key mode `boot` may start with --secret. A --secret runner is a leader from
// boot and computes its own schedule; only a live daemon demotes it before it could sign next to
// the signer. With no daemon (crashed, or refusing a broken config with exit 78) a runner that
// systemd restarts boots passive instead: a cold standby costs slots, a second signer costs forks.

export function startWithSecret(keyMode: "boot" | "rest", daemonAlive: boolean): boolean {
  return keyMode === "boot" && daemonAlive;
}
