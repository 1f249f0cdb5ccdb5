// install / uninstall: gather the inputs (flags, what exists, prompts in a TTY), compute the plan,
// print it, apply it. The deciding is in plan.ts; this file only reads and asks.

import { accessSync, constants, readFileSync, realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { KeyMode, Scope } from "../config/types.ts";
import { EXIT_USAGE, UserError } from "../errors.ts";
import { confirmSteps } from "../ui/confirm.ts";
import { applyPlan, checkStagedOps, type ApplyDeps } from "./apply.ts";
import { layoutFor, staged, type Layout, type LayoutOverrides } from "./layout.ts";
import { observePaths, observeUnits, pathsOf, readManifest, readTextIfExists } from "./observe.ts";
import { destructiveSteps, formatPlan, planInstall, planUninstall, sha256Hex, type Plan } from "./plan.ts";
import type { Systemctl } from "./systemctl.ts";
import { configText, DEFAULT_NODE_CONFIG_TEMPLATE, parseClusterFlag, wantedState, type ClusterFlag, type SelfInstall } from "./wanted.ts";
import { parseDocument } from "yaml";

const GENESIS_HASH = /^[0-9a-fA-F]{64}$/;
export const DEFAULT_RUN_AS = "cardano";

export interface InstallFlags {
  runners?: string;
  jormungandr?: string;
  genesisHash?: string;
  genesisFile?: string;
  nodeConfig?: string;
  secret?: string;
  user?: string;
  scope?: string;
  keyMode?: string;
  /** name=HOST,etcd=URL[,URL...][,prefix=P,lease_ttl=S,etcd_timeout=S]: writes the cluster section */
  cluster?: string;
  root?: string;
  dryRun: boolean;
  start: boolean;
  force: boolean;
  /** Do what cannot be undone (runners dropped, --force overwrites) without asking */
  yes?: boolean;
  dirs: LayoutOverrides;
}

export interface InstallDeps {
  /** null: no service manager is driven (--root); otherwise one for the scope */
  systemctlFor: (scope: Scope) => Systemctl | null;
  /** Asks for a missing value in a TTY; null when there is no TTY (then missing inputs are errors) */
  prompt: ((question: string) => Promise<string>) | null;
  out: (text: string) => void;
  home: string;
  /** The name of the user running install (the run-as user in user scope) */
  currentUser: string;
  isRoot: boolean;
  /** How to put the running jorm-master into the bin dir */
  self: (execPath: string, root: string | null) => SelfInstall;
  userExists: (name: string) => boolean;
  /** An existing user's primary group name (null: unknown). Absent: assume the group useradd --user-group makes */
  primaryGroup?: (name: string) => string | null;
  apply: Omit<ApplyDeps, "root" | "systemctl">;
}

export interface InstallResult {
  plan: Plan;
  layout: Layout;
  applied: boolean;
}

function usage(message: string): UserError {
  return new UserError(message, EXIT_USAGE);
}

function parseScope(value: string | undefined): Scope {
  if (value === undefined || value === "system" || value === "user") return value ?? "system";
  throw usage(`--scope must be system or user, found "${value}"`);
}

async function ask(deps: InstallDeps, question: string, flag: string, why: string): Promise<string> {
  if (deps.prompt === null) throw usage(`${why}: pass ${flag} (no terminal to ask on)`);
  const answer = (await deps.prompt(`${why}. ${question}`)).trim();
  if (answer === "") throw usage(`${why}: pass ${flag}`);
  return answer;
}

export async function runInstall(flags: InstallFlags, deps: InstallDeps): Promise<InstallResult> {
  const scope = parseScope(flags.scope);
  const root = flags.root === undefined || flags.root === "" ? null : resolve(flags.root);
  if (scope === "system" && root === null && !deps.isRoot) {
    throw usage("installing for the system service manager needs root: run it with sudo, or pass --scope user, or --root DIR to stage");
  }
  const keyMode = parseKeyMode(flags.keyMode);
  let cluster: ClusterFlag | null = null;
  if (flags.cluster !== undefined) {
    try {
      cluster = parseClusterFlag(flags.cluster);
    } catch (e) {
      throw usage((e as Error).message);
    }
  }

  // The existing configuration decides the defaults of a re-run
  const provisional = layoutFor(scope, deps.home, flags.user ?? DEFAULT_RUN_AS, flags.dirs);
  const existingConfig = readTextIfExists(staged(root, provisional.configPath));
  const existingDoc = existingConfig === null ? null : parseDocument(existingConfig);
  const configUser = existingDoc?.getIn(["systemd", "user"]);
  const user = scope === "user" ? deps.currentUser : (flags.user ?? (typeof configUser === "string" ? configUser : DEFAULT_RUN_AS));
  if (scope === "system" && !/^[a-z_][a-z0-9_-]*\$?$/.test(user)) throw usage(`--user "${user}" is not a valid user name`);
  const layout = layoutFor(scope, deps.home, user, flags.dirs);
  const manifest = readManifest(root, layout.manifestPath);

  let runners: number;
  const existingRunners = existingDoc?.get("cnt_runners");
  if (flags.runners !== undefined) runners = parseRunners(flags.runners);
  else if (typeof existingRunners === "number") runners = existingRunners;
  else runners = parseRunners(await ask(deps, "How many runners (Jormungandr nodes)?", "--runners N", "the number of runners is not set"));

  // Node config template: the flag, else the one recorded by the last install, else a minimal one
  let template = DEFAULT_NODE_CONFIG_TEMPLATE;
  let templateFromOperator = false;
  if (flags.nodeConfig !== undefined) {
    template = readInput(flags.nodeConfig, "--node-config");
    templateFromOperator = true;
  } else if (manifest?.nodeConfigTemplate != null) {
    template = manifest.nodeConfigTemplate;
    templateFromOperator = true;
  }

  const text = configText(existingConfig, runners, { scope, user, keyMode, layout }, cluster);
  // Resolve once to learn the paths; wantedState resolves again with the final inputs.
  const { config } = wantedState({
    layout,
    scope,
    user,
    createUser: false,
    configText: text,
    jormungandr: null,
    genesis: null,
    secret: null,
    nodeConfigTemplate: template,
    templateFromOperator,
    self: { kind: "in-place" },
  });
  const exists = (path: string) => readTextIfExists(staged(root, path)) !== null;

  // Genesis hash
  if (flags.genesisHash !== undefined && flags.genesisFile !== undefined) throw usage("pass either --genesis-hash or --genesis-file, not both");
  let genesis: string | null = null;
  if (flags.genesisHash !== undefined) genesis = checkHash(flags.genesisHash, "--genesis-hash");
  else if (flags.genesisFile !== undefined) genesis = checkHash(readInput(flags.genesisFile, "--genesis-file"), `--genesis-file ${flags.genesisFile}`);
  else if (!exists(config.genesisHashPath)) {
    genesis = checkHash(await ask(deps, "Genesis block hash (64 hex)?", "--genesis-hash HASH or --genesis-file FILE", `${config.genesisHashPath} does not exist`), "the genesis hash");
  }

  // Node secret
  let secret: string | null = null;
  let secretSource = flags.secret;
  if (secretSource === undefined && !exists(config.nodeSecretPath)) {
    secretSource = await ask(deps, "Path of the node secret YAML?", "--secret FILE", `the node secret ${config.nodeSecretPath} does not exist`);
  }
  if (secretSource !== undefined && !samePath(secretSource, staged(root, config.nodeSecretPath))) secret = readInput(secretSource, "--secret");

  // Jormungandr binary for the symlinks: the flag, else where the existing runners' links point
  // (so adding runners needs no flag), else asked
  let jormungandr: { target: string; explicit: boolean } | null = null;
  const links = observePaths(root, config.runners.map((r) => r.binary));
  const missingLinks = config.runners.filter((r) => links[r.binary]!.kind === "missing");
  const existingTarget = Object.values(links).find((f) => f.kind === "symlink");
  if (flags.jormungandr !== undefined) jormungandr = { target: resolve(flags.jormungandr), explicit: true };
  else if (missingLinks.length > 0 && existingTarget?.kind === "symlink") jormungandr = { target: existingTarget.target, explicit: false };
  else if (missingLinks.length > 0) {
    const answer = await ask(deps, "Path of the jormungandr executable?", "--jormungandr PATH", `${missingLinks[0]!.binary} does not exist`);
    jormungandr = { target: resolve(answer), explicit: true };
  }
  // A staged tree links to where the binary will be; only a live install can check it.
  if (jormungandr?.explicit === true && root === null) checkExecutable(jormungandr.target);

  const self = deps.self(layout.execPath, root);
  const needUser = scope === "system" && root === null && !deps.userExists(user);
  const { wanted } = wantedState({
    layout,
    scope,
    user,
    createUser: needUser,
    // A user that exists already may have another primary group; a new one gets its own (useradd --user-group).
    runnerGroup: scope === "system" && root === null && !needUser ? (deps.primaryGroup?.(user) ?? undefined) : undefined,
    configText: text,
    jormungandr,
    genesis,
    secret,
    nodeConfigTemplate: template,
    templateFromOperator,
    self,
  });

  const systemctl = root === null ? deps.systemctlFor(scope) : null;
  const users: Record<string, boolean> = { [user]: !needUser };
  const existing = {
    paths: observePaths(root, pathsOf(wanted.entries, manifest)),
    users,
    manifest,
    units: await observeUnits(systemctl, wanted.masterUnit),
  };
  const plan = planInstall(wanted, existing, { force: flags.force, start: flags.start });
  const prefix = scope === "user" ? "systemctl --user" : "systemctl";
  deps.out(formatPlan(plan, prefix));
  if (root !== null) checkStagedOps(plan.ops, root);
  if (flags.dryRun || plan.ops.length === 0) return { plan, layout, applied: false };
  await confirmSteps(destructiveSteps(plan, "install"), flags.yes === true, deps.prompt);
  await applyPlan(plan.ops, { ...deps.apply, root, systemctl });
  const journal = scope === "user" ? "journalctl --user" : "journalctl";
  deps.out(`done: ${plan.ops.length} operation(s) applied${root === null ? `; follow the master with: ${journal} -u ${wanted.masterUnit} -f` : ` under ${root}`}`);
  return { plan, layout, applied: true };
}

export interface UninstallFlags {
  scope?: string;
  root?: string;
  purge: boolean;
  force: boolean;
  dryRun: boolean;
  /** Do what cannot be undone (--purge, --force) without asking */
  yes?: boolean;
  stateDir?: string;
}

export async function runUninstall(flags: UninstallFlags, deps: InstallDeps): Promise<InstallResult> {
  const scope = parseScope(flags.scope);
  const root = flags.root === undefined || flags.root === "" ? null : resolve(flags.root);
  if (scope === "system" && root === null && !deps.isRoot) {
    throw usage("uninstalling from the system service manager needs root: run it with sudo, or pass --scope user");
  }
  const layout = layoutFor(scope, deps.home, DEFAULT_RUN_AS, { stateDir: flags.stateDir });
  const manifest = readManifest(root, layout.manifestPath);
  if (manifest === null) {
    throw new UserError(`nothing to uninstall: no install manifest at ${staged(root, layout.manifestPath)} (pass --scope/--root/--state-dir as given to install)`);
  }
  const users: Record<string, boolean> = {};
  for (const e of manifest.entries) if (e.type === "user") users[e.path] = root === null && deps.userExists(e.path);
  const systemctl = root === null ? deps.systemctlFor(scope) : null;
  const plan = planUninstall(
    manifest,
    layout.manifestPath,
    { paths: observePaths(root, pathsOf([], manifest)), users, units: systemctl === null ? null : { masterEnabled: true, masterActive: true } },
    { purge: flags.purge, force: flags.force },
  );
  deps.out(formatPlan(plan, scope === "user" ? "systemctl --user" : "systemctl"));
  if (root !== null) checkStagedOps(plan.ops, root);
  if (flags.dryRun) return { plan, layout, applied: false };
  await confirmSteps(destructiveSteps(plan, "uninstall"), flags.yes === true, deps.prompt);
  await applyPlan(plan.ops, { ...deps.apply, root, systemctl: systemctl === null ? null : tolerant(systemctl) });
  deps.out(`done: ${plan.ops.length} operation(s) applied`);
  return { plan, layout, applied: true };
}

/** On uninstall a unit may already be gone or never have run: stopping it is then done. */
function tolerant(systemctl: Systemctl): Systemctl {
  return {
    ...systemctl,
    async run(args) {
      try {
        await systemctl.run(args);
      } catch (error) {
        if (args[0] === "disable" && /not (found|loaded)|does not exist|No such file/i.test((error as Error).message)) return;
        throw error;
      }
    },
  };
}

function parseRunners(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw usage(`--runners must be a whole number of at least 1, found "${value}"`);
  return n;
}

function parseKeyMode(value: string | undefined): KeyMode | null {
  if (value === undefined) return null;
  if (value === "boot" || value === "rest") return value;
  throw usage(`--key-mode must be boot or rest, found "${value}"`);
}

function checkHash(value: string, what: string): string {
  const hash = value.trim();
  if (!GENESIS_HASH.test(hash)) throw usage(`${what} must be the genesis block hash (64 hex characters), found "${hash.slice(0, 80)}"`);
  return `${hash.toLowerCase()}\n`;
}

function readInput(path: string, flag: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw usage(`${flag} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

function checkExecutable(path: string): void {
  try {
    if (!statSync(path).isFile()) throw new Error("not a file");
    accessSync(path, constants.X_OK);
  } catch {
    throw usage(`--jormungandr ${path} is not an executable file`);
  }
}

function samePath(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** How the running program gets into the bin dir: copy a compiled binary, or a launcher for a source tree. */
export function selfInstall(execPath: string, root: string | null, running: { compiled: boolean; executable: string; script: string }): SelfInstall {
  const target = staged(root, execPath);
  if (running.compiled) {
    if (samePath(running.executable, target)) return { kind: "in-place" };
    return { kind: "binary", source: running.executable, sha256: sha256Hex(readFileSync(running.executable)) };
  }
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  return {
    kind: "launcher",
    content:
      "#!/bin/sh\n# jorm-master from a source tree (installed by `jorm-master install` run with bun)\n" +
      `exec ${quote(running.executable)} ${quote(running.script)} "$@"\n`,
  };
}
