// One simulated node as a process: takes jormungandr's own command line, so a symlink
// jormungandr_runner_N → `exec jorm-master sim node "$@"` is a drop-in node under systemd. Real
// timers, so SIGSTOP/SIGCONT act exactly as on a real node (timers fire late → too-late rejects).

import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { parse } from "yaml";
import { ConfigError, UserError } from "../errors.ts";
import { Chain } from "./chain.ts";
import { RealScheduler } from "./clock.ts";
import { FileJournal, readJournalFile } from "./journal.ts";
import type { ExitReason } from "./journal.ts";
import { SimNode } from "./node.ts";
import { serveNode } from "./server.ts";
import { loadWorld, locateWorld, type LoadedWorld } from "./worldfile.ts";

export interface NodeFlags {
  config?: string;
  restListen?: string;
  storage?: string;
  secrets: string[];
  genesisBlockHash?: string;
  genesisBlock?: string;
  /** Flags we accept and do nothing with (named once on stderr) */
  ignored: string[];
  /** --full-version / --source-version: print the version and exit, like the node */
  version?: "full" | "source";
}

const VALUE_FLAGS = new Set([
  "--config",
  "--rest-listen",
  "--storage",
  "--secret",
  "--genesis-block-hash",
  "--genesis-block",
  "--trusted-peer",
  "--log-level",
  "--log-format",
  "--log-output",
]);

/** jormungandr v0.8.14's flags (`--flag value` or `--flag=value`; --secret repeatable). */
export function parseNodeFlags(argv: readonly string[]): NodeFlags {
  const flags: NodeFlags = { secrets: [], ignored: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    let value: string | undefined;
    if (VALUE_FLAGS.has(name)) {
      value = eq > 0 && arg.startsWith("--") ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UserError(`${name} needs a value`, 64);
    }
    switch (name) {
      case "--config":
        flags.config = value;
        break;
      case "--rest-listen":
        flags.restListen = value;
        break;
      case "--storage":
        flags.storage = value;
        break;
      case "--secret":
        flags.secrets.push(value!);
        break;
      case "--genesis-block-hash":
        flags.genesisBlockHash = value;
        break;
      case "--genesis-block":
        flags.genesisBlock = value;
        break;
      case "--version":
      case "--full-version":
        flags.version = "full";
        break;
      case "--source-version":
        flags.version = "source";
        break;
      default:
        flags.ignored.push(name);
    }
  }
  return flags;
}

interface NodeConfigView {
  restListen?: string;
  storage?: string;
  logsCapacity?: number;
  secretFiles: string[];
}

/** The parts of the node config YAML the simulator uses; the rest is the real node's business. */
export function readNodeConfig(path: string): NodeConfigView {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ConfigError(`${path}: ${(error as Error).message.split("\n")[0]}`);
  }
  const d = (doc ?? {}) as Record<string, unknown>;
  const rest = d.rest as Record<string, unknown> | undefined;
  const leadership = d.leadership as Record<string, unknown> | undefined;
  return {
    restListen: typeof rest?.listen === "string" ? rest.listen : undefined,
    storage: typeof d.storage === "string" ? d.storage : undefined,
    logsCapacity: typeof leadership?.logs_capacity === "number" ? leadership.logs_capacity : undefined,
    secretFiles: Array.isArray(d.secret_files) ? d.secret_files.filter((s): s is string => typeof s === "string") : [],
  };
}

/** host:port → parts; the node only listens where it is told. */
export function parseListen(listen: string): { hostname: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port < 1 || port > 65535) throw new ConfigError(`rest listen address ${JSON.stringify(listen)}: expected HOST:PORT`);
  return { hostname: m[1]!, port };
}

/** The runner id: the storage dir's trailing number (storage_jorm_runner_N), else the port's last digit. */
export function runnerIdOf(storage: string | undefined, port: number): number {
  const m = storage ? /(\d+)\/*$/.exec(basename(storage.replace(/\/+$/, ""))) : null;
  return m ? Number(m[1]) : port % 10;
}

/** A node secret YAML in the JSON form POST /leaders takes. Read here, passed to the model, never printed. */
export function readSecret(path: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, "utf8"));
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new ConfigError(`--secret ${path}: ${code === "ENOENT" ? "no such file" : "not a readable YAML file"}`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError(`--secret ${path}: expected a YAML mapping (genesis: …)`);
  return doc as Record<string, unknown>;
}

/** Gaps in a 100 ms heartbeat longer than this mean the process was stopped (SIGSTOP). */
const HEARTBEAT_MS = 100;
const FROZEN_GAP_MS = 1000;
/** How often the journal hears that this process lives (a SIGKILL leaves no exit entry) */
export const ALIVE_BEAT_MS = 1000;

export interface RunningSimNode {
  node: SimNode;
  world: LoadedWorld;
  url: string;
  /** Resolves with the exit code when the simulated process ends */
  exited: Promise<number>;
}

export function startSimNode(flags: NodeFlags, env: Record<string, string | undefined> = process.env): RunningSimNode {
  const worldFile = locateWorld(flags.config, env);
  const world = loadWorld(worldFile);
  const cfg = flags.config ? readNodeConfig(flags.config) : { secretFiles: [] as string[] };
  const listen = flags.restListen ?? cfg.restListen;
  if (!listen) throw new ConfigError("simulated node: no REST address (--rest-listen, or rest.listen in --config)");
  const { hostname, port } = parseListen(listen);
  const storage = flags.storage ?? cfg.storage;
  const runner = runnerIdOf(storage, port);
  // Like the node, create the storage directory (it stays empty: the chain is simulated).
  if (storage) mkdirSync(storage, { recursive: true });
  const secrets = [...cfg.secretFiles, ...flags.secrets].map(readSecret);
  const hash = flags.genesisBlockHash?.toLowerCase();
  const chain = new Chain(hash && /^[0-9a-f]{64}$/.test(hash) ? { ...world.chain, block0Hash: hash } : world.chain);
  try {
    appendFileSync(world.journalPath, "");
  } catch (error) {
    const code = (error as { code?: string }).code ?? "error";
    throw new ConfigError(`journal ${world.journalPath}: not writable (${code}); set journal: in ${world.file} to a path this user can write`);
  }
  const journal = new FileJournal(world.journalPath);
  const incarnation = readJournalFile(world.journalPath).filter((e) => e.kind === "proc_start" && e.runner === runner).length + 1;
  const sched = new RealScheduler();

  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((r) => (resolveExit = r));
  let server: ReturnType<typeof serveNode> | null = null;
  let heartbeat: ReturnType<typeof setInterval> | null = null;
  const onExit = (reason: ExitReason) => {
    server?.stop();
    if (heartbeat) clearInterval(heartbeat);
    resolveExit(reason === "crash" ? 1 : 0);
  };
  const node = new SimNode({
    runner,
    incarnation,
    pid: process.pid,
    chain,
    sched,
    journal,
    secrets,
    boot: world.bootFor(runner),
    scheduleComputeMs: world.scheduleComputeMsFor(runner),
    logsCapacity: cfg.logsCapacity ?? world.logsCapacity,
    shutdownMs: world.shutdownMs,
    // The beat is written every second; the audit allows a little more before calling it gone.
    beatMs: ALIVE_BEAT_MS + FROZEN_GAP_MS,
    onExit,
  });
  try {
    server = serveNode(node, { hostname, port, journal });
  } catch (error) {
    node.kill("crash");
    throw new UserError(`simulated node: cannot listen on ${listen}: ${(error as Error).message}`);
  }
  // A real SIGSTOP is invisible to the model (its timers just fire late); record it in the journal
  // so the audit does not count a stopped process as one that could sign.
  let last = Date.now();
  let lastBeat = last;
  heartbeat = setInterval(() => {
    const now = Date.now();
    if (now - last > FROZEN_GAP_MS) {
      journal.append({ t: last + HEARTBEAT_MS, kind: "freeze", runner, inc: incarnation });
      journal.append({ t: now, kind: "thaw", runner, inc: incarnation });
    }
    if (now - lastBeat >= ALIVE_BEAT_MS) {
      journal.append({ t: now, kind: "alive", runner, inc: incarnation });
      lastBeat = now;
    }
    last = now;
  }, HEARTBEAT_MS);
  return { node, world, url: server.url, exited };
}
