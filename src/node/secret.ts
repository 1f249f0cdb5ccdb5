// node_secret.yaml holds the pool's signing keys. It is read at the moment a key is posted (so a
// rotated file takes effect without a daemon restart where the daemon reads it directly; under
// systemd it reads the credential copy LoadCredential= made when the unit started, so a rotation
// needs `systemctl restart jorm_master`) and nothing here ever puts its content into an
// error message or a log line: errors name the path and the missing key, never a value.

import { readFile, stat } from "node:fs/promises";
import { parse } from "yaml";
import { ConfigError } from "../errors.ts";
import type { NodeSecret } from "./types.ts";

const REQUIRED_GENESIS_KEYS = ["sig_key", "vrf_key", "node_id"] as const;
const NODE_ID = /^[0-9a-fA-F]{64}$/;

/** Group or other read bits: another user could read the key. */
const OTHERS_READ_BITS = 0o044;
/** Group or other write bits: another user could replace the key (or empty it) under the runners. */
const OTHERS_WRITE_BITS = 0o022;

export function formatMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, "0")}`;
}

/**
 * Whether node_secret.yaml's permission bits are acceptable: only its owner may read or write it
 * (0600, 0400; root-only files too). Returns the problem (path and mode only), or null.
 */
export function secretModeProblem(path: string, mode: number): string | null {
  const bits = mode & 0o777;
  const others = [(bits & OTHERS_READ_BITS) !== 0 ? "read" : null, (bits & OTHERS_WRITE_BITS) !== 0 ? "write" : null].filter(Boolean);
  if (others.length === 0) return null;
  return `node secret ${path} has mode ${formatMode(bits)}, so other users can ${others.join(" and ")} it; restrict it: chmod 600 ${path}`;
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** Validates the parsed document; returns the first problem (naming keys only) or null. */
export function secretProblem(doc: unknown): string | null {
  if (!isRecord(doc)) return "expected a mapping with a genesis: and/or bft: section";
  const { genesis, bft } = doc;
  if (genesis === undefined && bft === undefined) return "missing genesis (sig_key, vrf_key, node_id) or bft (signing_key)";
  if (genesis !== undefined) {
    if (!isRecord(genesis)) return "genesis must be a mapping";
    for (const key of REQUIRED_GENESIS_KEYS) {
      const value = genesis[key];
      if (typeof value !== "string" || value.length === 0) return `missing genesis.${key}`;
    }
    if (!NODE_ID.test(genesis.node_id as string)) return "genesis.node_id must be 64 hex characters (the stake pool id)";
  }
  if (bft !== undefined) {
    if (!isRecord(bft)) return "bft must be a mapping";
    if (typeof bft.signing_key !== "string" || bft.signing_key.length === 0) return "missing bft.signing_key";
  }
  return null;
}

/** Reads and validates node_secret.yaml now; throws ConfigError (path + problem only). A file that
 *  other users may read or write is refused here too, not only by the runner: in key mode rest the
 *  daemon reads the file itself, and another user who can write it chooses the key it posts. */
export async function readNodeSecret(path: string): Promise<NodeSecret> {
  let text: string;
  try {
    const modeProblem = secretModeProblem(path, (await stat(path)).mode);
    if (modeProblem) throw new ConfigError(modeProblem);
    text = await readFile(path, "utf8");
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as { code?: string }).code;
    const why = code === "ENOENT" ? "file not found" : code === "EACCES" ? "permission denied" : (code ?? "cannot be read");
    throw new ConfigError(`node secret ${path}: ${why}`);
  }
  let doc: unknown;
  try {
    // failsafe: every scalar stays a string, as serde reads it into String. The core schema would
    // turn an all-digit node_id into a number (and "12e4…" into a float), corrupting the key.
    doc = parse(text, { schema: "failsafe", logLevel: "error" });
  } catch (error) {
    // yaml's message quotes the offending source line, which may be key material: keep the position only
    const pos = (error as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
    throw new ConfigError(`node secret ${path}: not valid YAML${pos ? ` (line ${pos.line}, column ${pos.col})` : ""}`);
  }
  const problem = secretProblem(doc);
  if (problem) throw new ConfigError(`node secret ${path}: ${problem}`);
  return doc as NodeSecret;
}
