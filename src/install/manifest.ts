// What install created, so uninstall removes exactly that. Paths are final paths (as the running
// system sees them), never staging paths: a tree staged with --root keeps a manifest that is true
// once the tree is copied into place.

import { z } from "zod";
import { ConfigError } from "../errors.ts";

export const MANIFEST_VERSION = 1;
export const MANIFEST_FILE = "manifest.json";

export const EntryRoleSchema = z.enum([
  "config",
  "node-config",
  "unit",
  "genesis",
  "secret",
  "binary",
  "runner-binary",
  "storage",
  "dir",
  "user",
]);
export type EntryRole = z.infer<typeof EntryRoleSchema>;

export const ManifestEntrySchema = z.strictObject({
  type: z.enum(["file", "dir", "symlink", "user"]),
  /** A path, or the user name for type user */
  path: z.string().min(1),
  role: EntryRoleSchema,
  /** Content hash when we wrote it: a different hash later means the operator changed the file */
  sha256: z.string().optional(),
  /** Set for per-runner entries, so fewer runners can remove exactly theirs */
  runner: z.number().int().nonnegative().optional(),
});
export type ManifestEntry = z.infer<typeof ManifestEntrySchema>;

export const ManifestSchema = z.strictObject({
  version: z.literal(MANIFEST_VERSION),
  scope: z.enum(["system", "user"]),
  runners: z.number().int().nonnegative(),
  configPath: z.string(),
  masterUnit: z.string(),
  /** e.g. jorm_runner@{id}.service */
  runnerUnit: z.string(),
  /** The jormungandr config template the runner configs were made from, so a re-run keeps it */
  nodeConfigTemplate: z.string().nullable(),
  entries: z.array(ManifestEntrySchema),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export function parseManifest(text: string, path: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path}: the install manifest is not valid JSON (${(error as Error).message})`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${path}: the install manifest is damaged: ${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

export function formatManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
