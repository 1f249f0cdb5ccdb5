// The installer's core: a pure function from what should exist (Wanted) and what does exist
// (Existing) to a list of operations. Applying is elsewhere (apply.ts); printing is formatPlan.
// A second run over an applied plan yields no operations: "nothing to do".

import { lineDiff } from "./diff.ts";
import { formatManifest, MANIFEST_VERSION, type EntryRole, type Manifest, type ManifestEntry } from "./manifest.ts";

export type Entry =
  | { type: "user"; name: string; home: string }
  | { type: "dir"; path: string; mode: number; owner: string | null; role: "storage" | "dir"; runner?: number }
  | {
      type: "file";
      path: string;
      content: string;
      mode: number;
      owner: string | null;
      role: Exclude<EntryRole, "storage" | "dir" | "user" | "runner-binary">;
      runner?: number;
    }
  /** Copy of the running executable: replaced whenever it differs (that is an upgrade) */
  | { type: "binary"; path: string; source: string; sha256: string; mode: number }
  /** explicit: the target was given on the command line, so an existing link to elsewhere is replaced */
  | { type: "symlink"; path: string; target: string; explicit: boolean; runner: number };

export type Found =
  | { kind: "missing" }
  | { kind: "file"; sha256: string; text: string | null }
  | { kind: "dir" }
  | { kind: "symlink"; target: string }
  | { kind: "other" };

export interface UnitStates {
  masterEnabled: boolean;
  masterActive: boolean;
}

export interface Wanted {
  /** In dependency order: user, dirs, files, symlinks */
  entries: Entry[];
  runners: number;
  scope: "system" | "user";
  configPath: string;
  masterUnit: string;
  /** Instance name pattern, e.g. jorm_runner@{id}.service */
  runnerUnit: string;
  nodeConfigTemplate: string | null;
  manifestPath: string;
}

export interface Existing {
  /** What is at each path the plan looks at (wanted entries and the previous manifest's) */
  paths: Record<string, Found>;
  users: Record<string, boolean>;
  manifest: Manifest | null;
  /** null when no service manager is driven (--root staging) */
  units: UnitStates | null;
}

export interface PlanOptions {
  force: boolean;
  /** Enable and start the master (not --no-start) */
  start: boolean;
}

export type Op =
  | { op: "useradd"; name: string; home: string }
  | { op: "mkdir"; path: string; mode: number; owner: string | null }
  | {
      op: "write";
      path: string;
      content: string;
      mode: number;
      owner: string | null;
      action: "create" | "update" | "overwrite";
      diff: string | null;
      role: EntryRole;
    }
  | { op: "copy"; path: string; source: string; mode: number; action: "create" | "update" }
  /** forced: replaces what is there only because of --force */
  | { op: "symlink"; path: string; target: string; previous: string | null; forced?: true }
  /** forced: removes a file changed since install only because of --force */
  | { op: "remove"; path: string; what: string; recursive?: boolean; forced?: true }
  | { op: "rmdir"; path: string }
  | { op: "userdel"; name: string }
  | { op: "systemctl"; args: string[]; why: string }
  | { op: "manifest"; path: string; manifest: Manifest | null };

export interface Kept {
  path: string;
  why: string;
  diff: string | null;
}

export interface Plan {
  ops: Op[];
  kept: Kept[];
  notes: string[];
}

export function runnerUnitName(pattern: string, id: number): string {
  return pattern.replaceAll("{id}", String(id));
}

export function planInstall(wanted: Wanted, existing: Existing, options: PlanOptions): Plan {
  const ops: Op[] = [];
  const kept: Kept[] = [];
  const notes: string[] = [];
  const previous = existing.manifest;
  const prevEntry = new Map((previous?.entries ?? []).map((e) => [`${e.type}:${e.path}`, e]));
  const recorded: ManifestEntry[] = [];
  const found = (path: string): Found => existing.paths[path] ?? { kind: "missing" };
  const carry = (type: ManifestEntry["type"], path: string) => {
    const e = prevEntry.get(`${type}:${path}`);
    if (e) recorded.push(e);
  };
  const changedRoles = new Set<EntryRole>();
  const plannedDirs = new Set<string>();

  for (const entry of wanted.entries) {
    switch (entry.type) {
      case "user": {
        if (existing.users[entry.name] === true) carry("user", entry.name);
        else {
          ops.push({ op: "useradd", name: entry.name, home: entry.home });
          recorded.push({ type: "user", path: entry.name, role: "user" });
        }
        break;
      }
      case "dir": {
        const f = found(entry.path);
        if (f.kind === "missing") {
          // Missing parents first, recorded too, so uninstall leaves no empty directory behind
          for (const parent of missingAncestors(entry.path, found, plannedDirs)) {
            ops.push({ op: "mkdir", path: parent, mode: DEFAULT_DIR_MODE, owner: null });
            recorded.push({ type: "dir", path: parent, role: "dir" });
            plannedDirs.add(parent);
          }
          plannedDirs.add(entry.path);
          ops.push({ op: "mkdir", path: entry.path, mode: entry.mode, owner: entry.owner });
          recorded.push(withRunner({ type: "dir", path: entry.path, role: entry.role }, entry.runner));
        } else if (f.kind === "dir") carry("dir", entry.path);
        else kept.push({ path: entry.path, why: "exists and is not a directory; move it away", diff: null });
        break;
      }
      case "file": {
        const f = found(entry.path);
        const sha = sha256Hex(entry.content);
        const record = () => recorded.push(withRunner({ type: "file", path: entry.path, role: entry.role, sha256: sha }, entry.runner));
        const write = (action: "create" | "update" | "overwrite", diff: string | null) => {
          ops.push({ op: "write", path: entry.path, content: entry.content, mode: entry.mode, owner: entry.owner, action, diff, role: entry.role });
          changedRoles.add(entry.role);
        };
        if (f.kind === "missing") {
          write("create", null);
          record();
        } else if (f.kind !== "file") {
          kept.push({ path: entry.path, why: `exists and is not a regular file (${f.kind}); move it away`, diff: null });
        } else if (f.sha256 === sha) {
          carry("file", entry.path);
        } else {
          const ours = prevEntry.get(`file:${entry.path}`);
          const untouched = ours !== undefined && ours.sha256 === f.sha256;
          const diff = f.text === null ? null : lineDiff(f.text, entry.content);
          if (entry.role === "config" || entry.role === "binary") {
            // The operator's own config stays theirs (install only sets cnt_runners in it); a
            // different jorm-master launcher is an upgrade.
            write("update", diff);
            if (ours) record();
          } else if (untouched) {
            write("update", diff);
            record();
          } else if (options.force) {
            write("overwrite", diff);
            record();
          } else {
            const why = ours ? "changed since install" : "exists with other content";
            kept.push({ path: entry.path, why: `${why}; kept (pass --force to overwrite)`, diff: entry.role === "secret" ? null : diff });
            carry("file", entry.path);
          }
        }
        break;
      }
      case "binary": {
        const f = found(entry.path);
        const record = () => recorded.push({ type: "file", path: entry.path, role: "binary", sha256: entry.sha256 });
        if (f.kind === "missing") {
          ops.push({ op: "copy", path: entry.path, source: entry.source, mode: entry.mode, action: "create" });
          changedRoles.add("binary");
          record();
        } else if (f.kind === "file" && f.sha256 === entry.sha256) {
          carry("file", entry.path);
        } else if (f.kind === "file") {
          ops.push({ op: "copy", path: entry.path, source: entry.source, mode: entry.mode, action: "update" });
          changedRoles.add("binary");
          record();
        } else {
          kept.push({ path: entry.path, why: `exists and is not a regular file (${f.kind}); move it away`, diff: null });
        }
        break;
      }
      case "symlink": {
        const f = found(entry.path);
        const record = () => recorded.push({ type: "symlink", path: entry.path, role: "runner-binary", runner: entry.runner });
        if (f.kind === "missing") {
          ops.push({ op: "symlink", path: entry.path, target: entry.target, previous: null });
          record();
        } else if (f.kind === "symlink" && f.target === entry.target) {
          carry("symlink", entry.path);
        } else if (f.kind === "symlink" && (entry.explicit || options.force)) {
          ops.push({ op: "symlink", path: entry.path, target: entry.target, previous: f.target, ...(entry.explicit ? {} : { forced: true as const }) });
          record();
        } else if (f.kind === "symlink") {
          carry("symlink", entry.path);
        } else if (options.force && f.kind === "file") {
          ops.push({ op: "symlink", path: entry.path, target: entry.target, previous: "(a file)", forced: true });
          record();
        } else {
          kept.push({ path: entry.path, why: `exists and is not a symlink (${f.kind}); kept (pass --force to replace it)`, diff: null });
        }
        break;
      }
    }
  }

  // Fewer runners than before: remove what install made for the extra ones, keep their storage.
  const extras: number[] = [];
  for (let id = wanted.runners; id < (previous?.runners ?? 0); id++) extras.push(id);
  const removedOps: Op[] = [];
  for (const e of previous?.entries ?? []) {
    if (e.runner === undefined || e.runner < wanted.runners) continue;
    if (recorded.some((r) => r.type === e.type && r.path === e.path)) continue;
    const f = found(e.path);
    if (e.role === "storage") {
      recorded.push(e);
      notes.push(`storage ${e.path} of runner ${e.runner} is kept (uninstall --purge removes it)`);
    } else if (e.type === "symlink" && f.kind === "symlink") {
      removedOps.push({ op: "remove", path: e.path, what: `runner ${e.runner}'s jormungandr symlink` });
    } else if (e.type === "file" && f.kind === "file" && (f.sha256 === e.sha256 || options.force)) {
      removedOps.push({ op: "remove", path: e.path, what: `runner ${e.runner}'s ${e.role}`, ...(f.sha256 === e.sha256 ? {} : { forced: true as const }) });
    } else if (e.type === "file" && f.kind === "file") {
      kept.push({ path: e.path, why: `runner ${e.runner}'s ${e.role} changed since install; kept (pass --force to remove)`, diff: null });
    }
  }
  ops.push(...removedOps);
  // Whatever an earlier install made and this one does not mention (a secret or genesis file given
  // then, a symlink kept now) is still ours to remove on uninstall.
  for (const e of previous?.entries ?? []) {
    if (recorded.some((r) => r.type === e.type && r.path === e.path)) continue;
    if (e.runner !== undefined && e.runner >= wanted.runners) continue;
    if (e.type === "user" || found(e.path).kind !== "missing") recorded.push(e);
  }

  // The service manager
  const units = existing.units;
  const master = wanted.masterUnit;
  const unitsChanged = changedRoles.has("unit");
  const masterAffected = ["unit", "config", "binary", "secret"].some((r) => changedRoles.has(r as EntryRole)) || extras.length > 0;
  if (units === null) {
    if (ops.length > 0) {
      notes.push(`staged only: no systemctl calls; on the target run: systemctl${wanted.scope === "user" ? " --user" : ""} daemon-reload && systemctl${wanted.scope === "user" ? " --user" : ""} enable --now ${master}`);
    }
  } else {
    if (unitsChanged) ops.push({ op: "systemctl", args: ["daemon-reload"], why: "unit files changed" });
    if (extras.length > 0) {
      // Stop the master first, or it would restart the extra runners it still knows about.
      if (units.masterActive) ops.push({ op: "systemctl", args: ["stop", master], why: "so it does not restart the runners being removed" });
      for (const id of extras) {
        ops.push({ op: "systemctl", args: ["disable", "--now", runnerUnitName(wanted.runnerUnit, id)], why: `runner ${id} is beyond cnt_runners=${wanted.runners}` });
      }
      if (options.start && !units.masterEnabled) ops.push({ op: "systemctl", args: ["enable", "--now", master], why: "adopts the remaining runners" });
      else if (options.start || units.masterActive) ops.push({ op: "systemctl", args: ["start", master], why: "adopts the remaining runners" });
    } else if (options.start) {
      if (!units.masterEnabled && !units.masterActive) ops.push({ op: "systemctl", args: ["enable", "--now", master], why: "start the master now and at boot" });
      else {
        if (!units.masterEnabled) ops.push({ op: "systemctl", args: ["enable", master], why: "start it at boot" });
        if (!units.masterActive) ops.push({ op: "systemctl", args: ["start", master], why: "it is not running" });
        else if (masterAffected) ops.push({ op: "systemctl", args: ["restart", master], why: "its binary, unit, config or secret changed; runners keep running" });
      }
    } else if (masterAffected && units.masterActive) {
      notes.push(`${master} is running with the old settings; --no-start leaves it: systemctl${wanted.scope === "user" ? " --user" : ""} restart ${master}`);
    }
    if (previous !== null && (changedRoles.has("node-config") || changedRoles.has("genesis") || unitsChanged)) {
      notes.push("running runners keep their old node config and unit until their next restart");
    }
  }

  const manifest: Manifest = {
    version: MANIFEST_VERSION,
    scope: wanted.scope,
    runners: wanted.runners,
    configPath: wanted.configPath,
    masterUnit: wanted.masterUnit,
    runnerUnit: wanted.runnerUnit,
    nodeConfigTemplate: wanted.nodeConfigTemplate,
    entries: dedupe(recorded),
  };
  if (previous === null || formatManifest(previous) !== formatManifest(manifest)) {
    ops.push({ op: "manifest", path: wanted.manifestPath, manifest });
  }
  return { ops, kept, notes };
}

export interface UninstallOptions {
  purge: boolean;
  force: boolean;
}

/** Remove what the manifest lists, newest first; storage, secrets and the user stay unless purge. */
export function planUninstall(manifest: Manifest, manifestPath: string, existing: Omit<Existing, "manifest">, options: UninstallOptions): Plan {
  const ops: Op[] = [];
  const kept: Kept[] = [];
  const notes: string[] = [];
  const found = (path: string): Found => existing.paths[path] ?? { kind: "missing" };
  if (existing.units !== null) {
    ops.push({ op: "systemctl", args: ["disable", "--now", manifest.masterUnit], why: "stop the master first, so it starts no runner" });
    for (let id = 0; id < manifest.runners; id++) {
      ops.push({ op: "systemctl", args: ["disable", "--now", runnerUnitName(manifest.runnerUnit, id)], why: `runner ${id}` });
    }
  }
  let unitsRemoved = false;
  // Newest first, and directories last (deepest first), so each is empty by the time it is removed
  const files = [...manifest.entries].reverse().filter((e) => e.type !== "dir");
  const dirs = manifest.entries.filter((e) => e.type === "dir").sort((a, b) => b.path.split("/").length - a.path.split("/").length);
  for (const e of [...files, ...dirs]) {
    const f = found(e.path);
    if (e.type === "user") {
      if (options.purge && existing.users[e.path] === true) ops.push({ op: "userdel", name: e.path });
      else if (existing.users[e.path] === true) notes.push(`user ${e.path} is kept (--purge removes it)`);
      continue;
    }
    if (f.kind === "missing") continue;
    if (e.role === "storage") {
      if (options.purge) ops.push({ op: "remove", path: e.path, what: "storage", recursive: true });
      else notes.push(`storage ${e.path} is kept (--purge removes it)`);
    } else if (e.role === "secret" && !options.purge) {
      notes.push(`node secret ${e.path} is kept (--purge removes it)`);
    } else if (e.type === "dir") {
      if (f.kind === "dir") ops.push({ op: "rmdir", path: e.path });
    } else if (e.type === "symlink") {
      if (f.kind === "symlink") ops.push({ op: "remove", path: e.path, what: e.role });
    } else if (f.kind === "file" && (f.sha256 === e.sha256 || options.force || e.role === "binary")) {
      const forced = f.sha256 !== e.sha256 && e.role !== "binary";
      ops.push({ op: "remove", path: e.path, what: e.role, ...(forced ? { forced: true as const } : {}) });
      if (e.role === "unit") unitsRemoved = true;
    } else if (f.kind === "file") {
      kept.push({ path: e.path, why: `changed since install; kept (pass --force to remove)`, diff: null });
    }
  }
  // Then: reload (the units are gone), the manifest, and only then the directories, so the state
  // dir (and any dir it was in) can go too
  const rmdirs = ops.filter((o) => o.op === "rmdir");
  const rest = ops.filter((o) => o.op !== "rmdir");
  if (existing.units !== null && unitsRemoved) rest.push({ op: "systemctl", args: ["daemon-reload"], why: "unit files removed" });
  rest.push({ op: "manifest", path: manifestPath, manifest: null });
  ops.splice(0, ops.length, ...rest, ...rmdirs);
  return { ops, kept, notes };
}

/**
 * What in a plan cannot be undone and so is confirmed first (a question on a terminal, --yes
 * without one): deleting runner storage, the node secret or the user (uninstall --purge), dropping
 * runners (install with fewer --runners), and whatever only --force replaces or removes.
 */
export function destructiveSteps(plan: Plan, kind: "install" | "uninstall"): string[] {
  const out: string[] = [];
  for (const op of plan.ops) {
    if (op.op === "write" && op.action === "overwrite") out.push(`overwrite ${op.path} (changed since install)`);
    else if (op.op === "symlink" && op.forced === true) out.push(`replace ${op.path} (was ${op.previous})`);
    else if (op.op === "remove" && op.forced === true) out.push(`remove ${op.path} (changed since install)`);
    else if (op.op === "remove" && op.recursive === true) out.push(`delete ${op.path} and everything in it (${op.what})`);
    else if (op.op === "remove" && op.what === "secret") out.push(`delete the node secret ${op.path}`);
    else if (op.op === "remove" && kind === "install") out.push(`remove ${op.path} (${op.what})`);
    else if (op.op === "userdel") out.push(`delete user ${op.name}`);
    else if (op.op === "systemctl" && kind === "install" && op.args[0] === "disable") out.push(`stop and disable ${op.args.at(-1)} (${op.why})`);
  }
  return out;
}

const DEFAULT_DIR_MODE = 0o755;

/** Ancestors of `path` that are missing and not yet planned, outermost first. */
function missingAncestors(path: string, found: (path: string) => Found, planned: Set<string>): string[] {
  const out: string[] = [];
  for (let p = parentOf(path); p !== null && !planned.has(p) && found(p).kind === "missing"; p = parentOf(p)) out.unshift(p);
  return out;
}

function parentOf(path: string): string | null {
  const i = path.lastIndexOf("/");
  return i <= 0 ? null : path.slice(0, i);
}

function withRunner(entry: ManifestEntry, runner: number | undefined): ManifestEntry {
  return runner === undefined ? entry : { ...entry, runner };
}

const TYPE_ORDER: Record<ManifestEntry["type"], number> = { user: 0, dir: 1, file: 2, symlink: 3 };

/** One entry per path, in a canonical order, so an unchanged install records an identical manifest. */
function dedupe(entries: ManifestEntry[]): ManifestEntry[] {
  const seen = new Set<string>();
  return entries
    .filter((e) => {
      const key = `${e.type}:${e.path}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort((a, b) => TYPE_ORDER[a.type] - TYPE_ORDER[b.type] || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export function sha256Hex(content: string | Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(content).digest("hex");
}

const MODE_TEXT = (mode: number) => `0${mode.toString(8)}`;

/** The plan as an operator reads it: one line per operation, diffs indented under their file. */
export function formatPlan(plan: Plan, systemctlPrefix: string): string {
  const lines: string[] = [];
  for (const op of plan.ops) {
    switch (op.op) {
      case "useradd":
        lines.push(`+ create system user ${op.name}`);
        break;
      case "mkdir":
        lines.push(`+ mkdir ${op.path} (${MODE_TEXT(op.mode)}${op.owner ? `, owner ${op.owner}` : ""})`);
        break;
      case "write":
        lines.push(`${op.action === "create" ? "+" : "~"} ${op.action === "create" ? "write" : op.action} ${op.path} (${MODE_TEXT(op.mode)})`);
        if (op.diff !== null && op.role !== "secret") lines.push(indent(op.diff));
        break;
      case "copy":
        lines.push(`${op.action === "create" ? "+" : "~"} ${op.action === "create" ? "install" : "upgrade"} ${op.path} from ${op.source}`);
        break;
      case "symlink":
        lines.push(`${op.previous === null ? "+" : "~"} link ${op.path} -> ${op.target}${op.previous === null ? "" : ` (was ${op.previous})`}`);
        break;
      case "remove":
        lines.push(`- remove ${op.path} (${op.what})`);
        break;
      case "rmdir":
        lines.push(`- rmdir ${op.path} (if empty)`);
        break;
      case "userdel":
        lines.push(`- delete user ${op.name}`);
        break;
      case "systemctl":
        lines.push(`> ${systemctlPrefix} ${op.args.join(" ")}  (${op.why})`);
        break;
      case "manifest":
        lines.push(op.manifest === null ? `- remove ${op.path} (install manifest)` : `+ record ${op.path} (install manifest)`);
        break;
    }
  }
  for (const k of plan.kept) {
    lines.push(`= keep ${k.path}: ${k.why}`);
    if (k.diff !== null) lines.push(indent(k.diff));
  }
  for (const note of plan.notes) lines.push(`note: ${note}`);
  if (plan.ops.length === 0) lines.unshift("nothing to do");
  return lines.join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}
