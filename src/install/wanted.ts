// What an install should leave on disk, computed from the settings, the existing configuration and
// the node config template. Pure: file contents come in as text, nothing is read here.

import { dirname, join } from "node:path";
import { isMap, isSeq, parseDocument, type Document } from "yaml";
import { DEFAULT_CONFIG_YAML } from "../config/default-text.ts";
import { parseConfigText } from "../config/load.ts";
import type { KeyMode, ResolvedConfig, RunnerConfig, Scope } from "../config/types.ts";
import { ConfigError } from "../errors.ts";
import { renderUnits } from "../systemd/units.ts";
import type { Layout } from "./layout.ts";
import type { Entry, Wanted } from "./plan.ts";

export const DEFAULT_P2P_BASE_PORT = 3000;
const CONFIG_MODE = 0o644;
const SECRET_MODE = 0o600;
const EXEC_MODE = 0o755;
const DIR_MODE = 0o755;
/** The node's storage: its own user only, and the group for an operator's backups */
const STORAGE_MODE = 0o750;

/** Used when no --node-config is given: enough for a node to start; add trusted_peers for a real network. */
export const DEFAULT_NODE_CONFIG_TEMPLATE = `# Jormungandr node configuration written by \`jorm-master install\` (no --node-config given).
# rest.listen, storage and the p2p ports are set per runner; put the rest of your network's settings
# (trusted_peers, ...) into a template and re-run install with --node-config TEMPLATE.
log:
  - level: info
    format: plain
    output: stderr
rest:
  listen: "127.0.0.1:3100"
storage: "/var/lib/jormungandr"
p2p:
  public_address: "/ip4/127.0.0.1/tcp/${DEFAULT_P2P_BASE_PORT}"
  listen_address: "/ip4/127.0.0.1/tcp/${DEFAULT_P2P_BASE_PORT}"
  trusted_peers: []
`;

export interface FreshConfigSettings {
  scope: Scope;
  user: string;
  keyMode: KeyMode | null;
  layout: Layout;
}

/** `install --cluster`: the keys given, written into the config's cluster section (others kept). */
export interface ClusterFlag {
  name: string;
  etcd: string[];
  prefix?: string;
  lease_ttl?: number;
  etcd_timeout?: number;
}

const CLUSTER_FLAG_KEYS = ["name", "etcd", "prefix", "lease_ttl", "etcd_timeout"] as const;

/**
 * Parses `name=host-a,etcd=http://10.0.0.1:2379,http://10.0.0.2:2379[,prefix=/jorm-master,lease_ttl=5]`:
 * a part without `=` continues the etcd list (URLs hold no commas). Throws Error with the reason;
 * the caller makes it a usage error.
 */
export function parseClusterFlag(value: string): ClusterFlag {
  const out: Record<string, string | string[]> = {};
  let last: string | null = null;
  for (const raw of value.split(",")) {
    const part = raw.trim();
    if (part === "") continue;
    const eq = part.indexOf("=");
    const key = eq > 0 ? part.slice(0, eq) : null;
    if (key === null || !(CLUSTER_FLAG_KEYS as readonly string[]).includes(key)) {
      // A bare value only continues the etcd list: http://a:2379,http://b:2379
      if (last === "etcd" && !/^[a-z_]+=/.test(part)) {
        (out.etcd as string[]).push(part);
        continue;
      }
      throw new Error(`--cluster: unknown part "${part}" (keys: ${CLUSTER_FLAG_KEYS.join(", ")}; e.g. name=host-a,etcd=http://10.0.0.1:2379,http://10.0.0.2:2379)`);
    }
    if (key in out) throw new Error(`--cluster: ${key} given twice`);
    const v = part.slice(eq + 1).trim();
    if (v === "") throw new Error(`--cluster: ${key} is empty`);
    out[key] = key === "etcd" ? [v] : v;
    last = key;
  }
  if (typeof out.name !== "string") throw new Error("--cluster: name=HOST is missing (this host's name, unique in the cluster)");
  if (!Array.isArray(out.etcd)) throw new Error("--cluster: etcd=URL[,URL...] is missing");
  for (const u of out.etcd) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new Error(`--cluster: etcd endpoint "${u}" is not a URL (e.g. http://10.0.0.1:2379)`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`--cluster: etcd endpoint "${u}" must be http:// or https://`);
  }
  const flag: ClusterFlag = { name: out.name, etcd: out.etcd };
  if (typeof out.prefix === "string") flag.prefix = out.prefix;
  for (const k of ["lease_ttl", "etcd_timeout"] as const) {
    const v = out[k];
    if (typeof v !== "string") continue;
    const n = Number(v);
    if (!Number.isFinite(n) || (k === "lease_ttl" && !Number.isInteger(n))) throw new Error(`--cluster: ${k} must be a ${k === "lease_ttl" ? "whole " : ""}number of seconds, found "${v}"`);
    flag[k] = n;
  }
  return flag;
}

/** The cluster section's keys from the flag, set one by one: comments and keys not given are kept. */
function setCluster(doc: Document, cluster: ClusterFlag): boolean {
  let changed = false;
  for (const k of CLUSTER_FLAG_KEYS) {
    const v = cluster[k];
    if (v === undefined) continue;
    const cur = doc.getIn(["cluster", k]);
    const same = Array.isArray(v) ? isSeq(cur) && JSON.stringify((cur as { toJSON(): unknown }).toJSON()) === JSON.stringify(v) : cur === v;
    if (same) continue;
    if (!isMap(doc.get("cluster"))) doc.set("cluster", doc.createNode({}));
    doc.setIn(["cluster", k], Array.isArray(v) ? doc.createNode(v) : v);
    changed = true;
  }
  return changed;
}

/**
 * The configuration file install leaves: an existing one keeps everything but cnt_runners and the
 * cluster keys `--cluster` gives (comments included); a fresh one is the commented default with this layout's paths.
 */
export function configText(existing: string | null, runners: number, fresh: FreshConfigSettings, cluster: ClusterFlag | null = null): string {
  if (existing !== null) {
    const doc = parseYaml(existing, "the existing configuration");
    const clusterChanged = cluster !== null && setCluster(doc, cluster);
    if (doc.get("cnt_runners") === runners && !clusterChanged) return existing;
    doc.set("cnt_runners", runners);
    return doc.toString();
  }
  const { layout } = fresh;
  const doc = parseYaml(DEFAULT_CONFIG_YAML, "the default configuration");
  doc.set("cnt_runners", runners);
  doc.set("node_secret", join(layout.configDir, "node_secret.yaml"));
  doc.set("genesis_hash_file", join(layout.configDir, "genesis.txt"));
  doc.set("runner_binary", join(layout.binDir, "jormungandr_runner_{id}"));
  doc.set("runner_config", join(layout.configDir, "jorm_runner_{id}.yaml"));
  doc.set("runner_storage", join(layout.storageDir, "storage_jorm_runner_{id}"));
  if (fresh.keyMode !== null) doc.set("key_mode", fresh.keyMode);
  doc.setIn(["systemd", "scope"], fresh.scope);
  doc.setIn(["systemd", "user"], fresh.user);
  if (cluster !== null) setCluster(doc, cluster);
  return doc.toString();
}

function parseYaml(text: string, what: string): Document {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new ConfigError(`${what} is not valid YAML: ${doc.errors[0]!.message}`);
  return doc;
}

/** The p2p port of a multiaddr like /ip4/1.2.3.4/tcp/3000, or null. */
function tcpPort(address: unknown): number | null {
  if (typeof address !== "string") return null;
  const m = /\/tcp\/(\d+)/.exec(address);
  return m ? Number(m[1]) : null;
}

export function p2pBasePort(template: string): number {
  const doc = parseYaml(template, "the node config template");
  return tcpPort(doc.getIn(["p2p", "public_address"])) ?? tcpPort(doc.getIn(["p2p", "listen_address"])) ?? DEFAULT_P2P_BASE_PORT;
}

/** One runner's node config: the template with its REST address, storage and p2p port (base + id). */
export function nodeConfigText(template: string, runner: RunnerConfig, p2pPort: number): string {
  const doc = parseYaml(template, "the node config template");
  if (!isMap(doc.contents)) throw new ConfigError("the node config template must be a YAML mapping (a jormungandr config)");
  doc.setIn(["rest", "listen"], runner.restListen);
  doc.set("storage", runner.storage);
  for (const key of ["public_address", "listen_address"]) {
    const address = doc.getIn(["p2p", key]);
    if (typeof address === "string" && tcpPort(address) !== null) {
      doc.setIn(["p2p", key], address.replace(/\/tcp\/\d+/, `/tcp/${p2pPort}`));
    }
  }
  return doc.toString();
}

/** Every REST and p2p port on this host is used once: two runners never share a port. */
export function checkPorts(config: ResolvedConfig, p2pBase: number): void {
  const owners = new Map<number, string>();
  const claim = (port: number, what: string) => {
    const before = owners.get(port);
    if (before !== undefined) {
      throw new ConfigError(
        `port ${port} would be used twice: ${before} and ${what}; move the p2p ports with the template's p2p.public_address ` +
          `(runner N gets base + N) or the REST ports with rest_prefix/rest_base_port`,
      );
    }
    owners.set(port, what);
  };
  for (const r of config.runners) {
    claim(Number(/:(\d+)$/.exec(r.restListen)?.[1]), `runner ${r.id}'s REST`);
    const p2p = p2pBase + r.id;
    if (p2p > 65535) throw new ConfigError(`runner ${r.id}'s p2p port ${p2p} is out of range (base ${p2pBase} + ${r.id})`);
    claim(p2p, `runner ${r.id}'s p2p`);
  }
}

export type SelfInstall =
  /** The running executable is already the installed one */
  | { kind: "in-place" }
  /** A compiled binary elsewhere: copy it */
  | { kind: "binary"; source: string; sha256: string }
  /** Running from source: a launcher script that execs bun on the source tree */
  | { kind: "launcher"; content: string };

export interface WantedInput {
  layout: Layout;
  scope: Scope;
  /** The user the runners run as (system scope); created when missing */
  user: string;
  createUser: boolean;
  /** The runner user's primary group when it exists already (the master unit's Group=); absent: the user's name */
  runnerGroup?: string;
  configText: string;
  /** Symlink target for every runner; explicit (--jormungandr) replaces links to elsewhere. null: keep what exists */
  jormungandr: { target: string; explicit: boolean } | null;
  /** Content for the genesis hash file, null: keep what exists */
  genesis: string | null;
  /** Content for the node secret, null: keep what exists */
  secret: string | null;
  /** The template the runner configs are made from */
  nodeConfigTemplate: string;
  /** Whether that template came from the operator (recorded for re-runs) */
  templateFromOperator: boolean;
  self: SelfInstall;
}

export interface WantedResult {
  wanted: Wanted;
  config: ResolvedConfig;
}

export function wantedState(input: WantedInput): WantedResult {
  const { layout } = input;
  const config = parseConfigText(input.configText, layout.configPath).config;
  const units = renderUnits({ config, configPath: layout.configPath, execPath: layout.execPath, runnerGroup: input.runnerGroup });
  const p2pBase = p2pBasePort(input.nodeConfigTemplate);
  checkPorts(config, p2pBase);
  const system = input.scope === "system";
  const runAs = system ? input.user : null;

  const entries: Entry[] = [];
  if (system && input.createUser) entries.push({ type: "user", name: input.user, home: layout.storageDir });

  const dirs = new Map<string, Entry>();
  const dir = (path: string, role: "dir" | "storage", owner: string | null, runner?: number) => {
    if (!dirs.has(path)) dirs.set(path, { type: "dir", path, mode: role === "storage" ? STORAGE_MODE : DIR_MODE, owner, role, ...(runner === undefined ? {} : { runner }) });
  };
  for (const path of [dirname(layout.configPath), dirname(config.genesisHashPath), dirname(config.nodeSecretPath), layout.unitDir, dirname(layout.execPath), dirname(layout.manifestPath)]) {
    dir(path, "dir", null);
  }
  for (const r of config.runners) {
    dir(dirname(r.binary), "dir", null);
    dir(dirname(r.nodeConfig), "dir", null);
    dir(dirname(r.storage), "dir", runAs);
    dir(r.storage, "storage", runAs, r.id);
  }
  // Parents before children, so each mkdir applies its own owner and mode
  entries.push(...[...dirs.values()].sort((a, b) => depth(a) - depth(b)));

  const file = (path: string, content: string, mode: number, role: Extract<Entry, { type: "file" }>["role"], runner?: number) =>
    entries.push({ type: "file", path, content, mode, owner: null, role, ...(runner === undefined ? {} : { runner }) });

  if (input.self.kind === "binary") entries.push({ type: "binary", path: layout.execPath, source: input.self.source, sha256: input.self.sha256, mode: EXEC_MODE });
  if (input.self.kind === "launcher") file(layout.execPath, input.self.content, EXEC_MODE, "binary");
  file(layout.configPath, input.configText, CONFIG_MODE, "config");
  if (input.genesis !== null) file(config.genesisHashPath, input.genesis, CONFIG_MODE, "genesis");
  if (input.secret !== null) file(config.nodeSecretPath, input.secret, SECRET_MODE, "secret");
  for (const r of config.runners) file(r.nodeConfig, nodeConfigText(input.nodeConfigTemplate, r, p2pBase + r.id), CONFIG_MODE, "node-config", r.id);
  file(join(layout.unitDir, units.master.name), units.master.text, CONFIG_MODE, "unit");
  file(join(layout.unitDir, units.runner.name), units.runner.text, CONFIG_MODE, "unit");
  if (input.jormungandr !== null) {
    const { target, explicit } = input.jormungandr;
    for (const r of config.runners) entries.push({ type: "symlink", path: r.binary, target, explicit, runner: r.id });
  }

  return {
    config,
    wanted: {
      entries,
      runners: config.cntRunners,
      scope: input.scope,
      configPath: layout.configPath,
      masterUnit: config.systemd.masterUnit,
      runnerUnit: config.systemd.runnerUnitTemplate,
      nodeConfigTemplate: input.templateFromOperator ? input.nodeConfigTemplate : null,
      manifestPath: layout.manifestPath,
    },
  };
}

function depth(e: Entry): number {
  return "path" in e ? e.path.split("/").length : 0;
}
