// Where the node secret is, one rule for the runner (--secret) and the daemon (promotions).
import { statSync } from "node:fs";
import { join } from "node:path";
import type { ResolvedConfig } from "../config/types.ts";
import { SECRET_CREDENTIAL } from "../systemd/units.ts";

/** Under systemd the secret arrives as a credential; elsewhere it is read from the configured path. */
export function secretPath(config: ResolvedConfig, env: Record<string, string | undefined>): string {
  const dir = env.CREDENTIALS_DIRECTORY;
  if (dir !== undefined && dir !== "") {
    const credential = join(dir, SECRET_CREDENTIAL);
    if (exists(credential)) return credential;
  }
  return config.nodeSecretPath;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
