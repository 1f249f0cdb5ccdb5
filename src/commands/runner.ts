import { accessSync, constants, lstatSync, mkdirSync, readFileSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { defineCommand } from "citty";
import { configArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import type { ResolvedConfig } from "../config/types.ts";
import { ConfigError } from "../errors.ts";
import { SECRET_CREDENTIAL } from "../systemd/units.ts";
import { BOOT_PERMIT_WAIT_MS, bootDecision, bootPermitDir, startWithSecret, type BootDecision } from "../master/bootpolicy.ts";
import { unitIsActive } from "../systemd/systemctl.ts";
import { secretModeProblem } from "../node/secret.ts";

// ExecStart of jorm_runner@.service. Everything a node needs is checked here, each failure one line
// and exit 78 (RestartPreventExitStatus=78 stops the crash loop); then the process becomes the node
// (execve), so the unit's MainPID is jormungandr and no Bun process stays resident.

const GENESIS_HASH = /^[0-9a-fA-F]{64}$/;
/** How long a runner waits to learn whether the master runs before assuming it does not. */
const MASTER_CHECK_TIMEOUT_MS = 3_000;

export interface RunnerCommand {
  /** The executable (the runner's symlink, kept as is so `ps` shows jormungandr_runner_N) */
  file: string;
  /** Full argv, argv[0] included */
  argv: string[];
}

/** Check everything the node needs and build its command line; throws ConfigError (exit 78). */
export function prepareRunner(
  config: ResolvedConfig,
  idText: string,
  env: Record<string, string | undefined>,
  /** Whether the master daemon runs now (only it demotes a runner that boots holding the key) */
  masterActive = true,
  /** false for --print, which must change nothing: a missing storage dir is then only reported */
  createStorage = true,
): RunnerCommand & { passive: boolean; storageMissing: boolean } {
  const where = config.source ?? "the built-in defaults";
  const id = Number(idText);
  if (!/^\d+$/.test(idText) || !Number.isSafeInteger(id)) {
    throw new ConfigError(`runner id must be a number 0..${config.cntRunners - 1}, found "${idText}"`);
  }
  const runner = config.runners.find((r) => r.id === id);
  if (runner === undefined) {
    throw new ConfigError(
      `runner ${id} is out of range: cnt_runners is ${config.cntRunners} in ${where} (runner ids 0..${config.cntRunners - 1})`,
    );
  }
  const label = `runner ${id}`;

  checkExecutable(runner.binary, label);
  const genesisHash = readGenesisHash(config.genesisHashPath);
  checkFile(runner.nodeConfig, `${label}: node config`, `runner_config in ${where}`);
  const storageMissing = createStorage ? (ensureStorage(runner.storage, label), false) : checkStorage(runner.storage, label);

  const args = [
    "--genesis-block-hash",
    genesisHash,
    "--config",
    runner.nodeConfig,
    "--rest-listen",
    runner.restListen,
    "--storage",
    runner.storage,
  ];
  if (config.keyMode === "boot") {
    // Checked either way: a bad secret is a config error whether or not it is used this time.
    const secret = checkSecret(secretPath(config, env));
    if (startWithSecret(config.keyMode, masterActive)) args.push("--secret", secret);
  }
  const passive = config.keyMode === "boot" && !masterActive;
  return { file: runner.binary, argv: [runner.binary, ...args], passive, storageMissing };
}

/** Under systemd the secret arrives as a credential; elsewhere it is read from the configured path. */
export function secretPath(config: ResolvedConfig, env: Record<string, string | undefined>): string {
  const dir = env.CREDENTIALS_DIRECTORY;
  if (dir !== undefined && dir !== "") {
    const credential = join(dir, SECRET_CREDENTIAL);
    if (exists(credential)) return credential;
  }
  return config.nodeSecretPath;
}

function checkExecutable(path: string, label: string): void {
  let link: ReturnType<typeof lstatSync>;
  try {
    link = lstatSync(path);
  } catch {
    throw new ConfigError(
      `${label}: jormungandr binary ${path} does not exist; link it to a jormungandr executable: ln -s /usr/local/bin/jormungandr_<version> ${path}`,
    );
  }
  let target: string;
  try {
    target = realpathSync(path);
  } catch {
    const to = link.isSymbolicLink() ? readlinkSync(path) : "?";
    throw new ConfigError(`${label}: jormungandr binary ${path} is a broken symlink to ${to}`);
  }
  const isFile = statSync(target).isFile();
  let executable = isFile;
  if (isFile) {
    try {
      accessSync(target, constants.X_OK);
    } catch {
      executable = false;
    }
  }
  if (!executable) {
    const via = target === path ? "" : ` (via ${path})`;
    throw new ConfigError(`${label}: jormungandr binary ${target}${via} is not an executable file`);
  }
}

function readGenesisHash(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`genesis hash file ${path} ${describeReadError(error)}; it must hold the genesis block hash (64 hex characters)`);
  }
  const hash = text.trim();
  if (!GENESIS_HASH.test(hash)) {
    const shown = hash.length > 80 ? `${hash.slice(0, 77)}...` : hash;
    throw new ConfigError(`genesis hash file ${path} must hold the genesis block hash (64 hex characters), found "${shown}"`);
  }
  return hash.toLowerCase();
}

function checkFile(path: string, what: string, configKey: string): void {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch (error) {
    throw new ConfigError(`${what} ${path} ${describeReadError(error)} (${configKey})`);
  }
  if (!isFile) throw new ConfigError(`${what} ${path} is not a file (${configKey})`);
}

function ensureStorage(path: string, label: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    throw new ConfigError(`${label}: storage dir ${path} does not exist and cannot be created (${code}: ${(error as Error).message})`);
  }
  if (!statSync(path).isDirectory()) throw new ConfigError(`${label}: storage dir ${path} is not a directory`);
}

/** The read-only half of ensureStorage: true when the dir is missing (a start would create it). */
function checkStorage(path: string, label: string): boolean {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return true;
    throw new ConfigError(`${label}: storage dir ${path} ${describeReadError(error)}`);
  }
  if (!isDirectory) throw new ConfigError(`${label}: storage dir ${path} is not a directory`);
  return false;
}

function checkSecret(path: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
    accessSync(path, constants.R_OK);
  } catch (error) {
    throw new ConfigError(`node secret ${path} ${describeReadError(error)}`);
  }
  const problem = secretModeProblem(path, mode);
  if (problem !== null) throw new ConfigError(problem);
  return path;
}

function describeReadError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return "does not exist";
  if (code === "EACCES") return `is not readable by this user (uid ${process.getuid?.() ?? "?"})`;
  return `cannot be read (${code ?? String(error)})`;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** How often a runner starting next to a starting master looks for the daemon's first permit. */
const BOOT_PERMIT_POLL_MS = 250;

/**
 * Key mode boot: may runner `id` start with --secret? Only while the master unit runs (or starts) and
 * the daemon's permit for it is fresh (bootpolicy.ts). While the master starts and has written no
 * permit yet, waits up to `waitMs` for its first observation; then passive.
 */
export async function decideBootMode(
  config: ResolvedConfig,
  id: string,
  opts: {
    waitMs: number;
    masterRunning?: () => Promise<boolean>;
    readPermit?: (path: string) => string | null;
    now?: () => number;
    sleep?: (ms: number) => Promise<void>;
  },
): Promise<BootDecision & { masterRunning: boolean }> {
  const masterRunning = opts.masterRunning ?? (() => unitIsActive(config.systemd.scope, config.systemd.masterUnit, MASTER_CHECK_TIMEOUT_MS));
  const readPermit = opts.readPermit ?? ((path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return null;
    }
  });
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => Bun.sleep(ms));
  const path = join(bootPermitDir(config.systemd.scope), id);
  const until = now() + opts.waitMs;
  const running = config.keyMode === "boot" && (await masterRunning());
  for (;;) {
    const d = bootDecision({ keyMode: config.keyMode, masterRunning: running, permitText: readPermit(path), nowMs: now() });
    if (d.key || !d.wait || now() >= until) return { ...d, masterRunning: running };
    await sleep(BOOT_PERMIT_POLL_MS);
  }
}

/** POSIX-shell quoting, so --print output can be pasted into a shell. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

export default defineCommand({
  meta: {
    name: "runner",
    description:
      "Start runner N's Jormungandr node (the ExecStart of jorm_runner@.service).\n" +
      "Checks the runner's symlink, the genesis hash, its node config, its storage and (key mode boot) the\n" +
      "secret, each failing with one line and exit 78, then replaces itself with the node, so the unit's\n" +
      "MainPID is jormungandr. The node gets --genesis-block-hash, --config, --rest-listen, --storage\n" +
      "and, in key mode boot only, --secret ($CREDENTIALS_DIRECTORY/node_secret under systemd).\n" +
      "Example: jorm-master runner 0 --print",
  },
  args: {
    id: { type: "positional", description: "Runner number, 0 .. cnt_runners-1", required: true, valueHint: "N" },
    ...configArgs,
    print: { type: "boolean", description: "Print the node's command line instead of starting it (changes nothing on disk)", default: false },
  },
  async run({ args }) {
    const config = await loadConfig(args.config);
    // --print shows what would run now; it does not wait for a starting master.
    const boot = config.keyMode === "boot" ? await decideBootMode(config, String(args.id), { waitMs: args.print ? 0 : BOOT_PERMIT_WAIT_MS }) : null;
    const masterActive = boot === null || boot.key;
    // --print only prints: nothing is created (the storage dir included)
    const command = prepareRunner(config, String(args.id), process.env, masterActive, !args.print);
    if (command.passive) {
      process.stderr.write(
        `${config.systemd.masterUnit} ${boot?.masterRunning === false ? "is not active" : `runs but ${boot?.why ?? "?"}`}: starting runner ${String(args.id)} without --secret, so no second signer can appear while nobody demotes it; the master gives it the key when it runs\n`,
      );
    }
    if (args.print) {
      const runner = config.runners.find((r) => String(r.id) === String(args.id));
      if (command.storageMissing && runner) process.stderr.write(`storage dir ${runner.storage} does not exist yet; starting the runner creates it\n`);
      process.stdout.write(`${command.argv.map(shellQuote).join(" ")}\n`);
      return;
    }
    process.execve!(command.file, command.argv, process.env as Record<string, string>);
  },
});
