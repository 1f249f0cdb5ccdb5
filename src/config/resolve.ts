// Pure: the parsed YAML value in, the resolved configuration (ms, expanded per runner) or every
// problem found out. No I/O, so every rule is a table test away.

import { isAbsolute, resolve as resolvePath } from "node:path";
import type { ClusterConfig, PoolToolConfig, ResolvedConfig, RunnerConfig } from "./types.ts";
import { InputSchema, LEGACY_KEYS, type ParsedConfig } from "./schema.ts";
import { describeFound, issueToProblems, type Problem } from "./problems.ts";
import { checkHost, httpUrlProblem, isUnspecified, urlHost } from "./address.ts";
import { alertsProblems, resolveAlerts } from "./alerts.ts";

/** The seed's port scheme is `${rest_prefix}${id}`: the id is the last digit, so at most 10 runners. */
export const MAX_RUNNERS_WITH_PREFIX = 10;
const MAX_PORT = 65535;
const ID_PLACEHOLDER = "{id}";
const PLACEHOLDER_PATTERN = /\{[^}]*\}/g;
// The systemd/useradd convention for user names
const USER_NAME_PATTERN = /^[a-z_][a-z0-9_-]*\$?$/i;
/** host:port; the host is checked on its own (checkHost), so this only splits at the last colon */
const LISTEN_PATTERN = /^(.*):(\d+)$/s;
// systemd's unit name alphabet (unit_name_is_valid), and its length limit
const UNIT_NAME_PATTERN = /^[A-Za-z0-9:_.\\@-]+$/;
const MAX_UNIT_NAME_CHARS = 255;
const HEX64_PATTERN = /^[0-9a-f]{64}$/i;
const POOLTOOL_PLACEHOLDER = /^<.*>$/;

export type Resolution =
  | { ok: true; config: ResolvedConfig; notes: string[] }
  | { ok: false; problems: Problem[] };

const ms = (seconds: number) => Math.round(seconds * 1000);

export function expandTemplate(template: string, id: number): string {
  return template.replaceAll(ID_PLACEHOLDER, String(id));
}

/** A runner's --rest-listen address from rest_host (an IP literal) and its port, IPv6 in brackets as
 *  URLs and Rust's SocketAddr want it; null when rest_host is invalid. */
function restListen(restHost: string, port: number): string | null {
  const host = checkHost(restHost, { names: false });
  return host.ok ? `${urlHost(host.host, host.kind)}:${port}` : null;
}

/** A runner's REST base URL (the daemon's HTTP transport parses it with new URL()). */
const restUrlOf = (listen: string): string => `http://${listen}/api/v0`;

/** Whether the REST base URL parses as the daemon will parse it; the problem or null. */
function restUrlProblem(listen: string): string | null {
  try {
    new URL(restUrlOf(listen));
    return null;
  } catch {
    return `${restUrlOf(listen)} is not a valid URL`;
  }
}

export function runnerPort(p: Pick<ParsedConfig, "rest_prefix" | "rest_base_port">, id: number): number {
  return p.rest_base_port != null ? p.rest_base_port + id : Number(`${p.rest_prefix}${id}`);
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * @param input the parsed YAML (any shape)
 * @param source the file it came from, or null for built-in defaults
 * @param baseDir relative paths in the file are taken relative to this (the file's directory)
 */
export function resolveInput(input: unknown, source: string | null, baseDir: string): Resolution {
  if (input === null || input === undefined) {
    return { ok: false, problems: [{ path: [], message: "the file is empty (no keys set)" }] };
  }
  if (!isMapping(input)) {
    return {
      ok: false,
      problems: [{ path: [], message: `expected a mapping of keys like "cnt_runners: 3", found ${describeFound(input)}` }],
    };
  }
  const parsed = InputSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue) => issueToProblems(issue, input));
    // Only typos in key names: the rest of the file can still be checked, so the operator sees
    // every problem in one run instead of one round trip per kind.
    if (parsed.error.issues.every((issue) => issue.code === "unrecognized_keys")) {
      const retry = InputSchema.safeParse(withoutKeys(input, problems.map((p) => p.path)));
      if (retry.success) problems.push(...crossCheck(retry.data));
    }
    return { ok: false, problems };
  }
  const p = parsed.data;
  const problems = crossCheck(p);
  if (problems.length > 0) return { ok: false, problems };

  const path = (file: string) => (isAbsolute(file) ? file : resolvePath(baseDir, file));
  const runners: RunnerConfig[] = [];
  for (let id = 0; id < p.cnt_runners; id++) {
    const port = runnerPort(p, id);
    const listen = restListen(p.rest_host, port);
    if (listen === null) return { ok: false, problems: [{ path: ["rest_host"], message: `cannot build runner ${id}'s REST address` }] };
    runners.push({
      id,
      binary: path(expandTemplate(p.runner_binary, id)),
      nodeConfig: path(expandTemplate(p.runner_config, id)),
      storage: path(expandTemplate(p.runner_storage, id)),
      restListen: listen,
      restUrl: restUrlOf(listen),
      unit: expandTemplate(p.systemd.runner_unit, id),
    });
  }

  const notes: string[] = [];
  const pooltool = resolvePoolTool(p);
  if (pooltool === null) {
    notes.push(
      p.pooltool == null
        ? "PoolTool is off (no pooltool section): heights are compared between local runners only."
        : "PoolTool is off (pool_id and user_id are still the placeholders): heights are compared between local runners only.",
    );
  }
  const legacy: Record<string, number> = {};
  for (const key of LEGACY_KEYS) {
    const value = p[key];
    if (value !== undefined) legacy[key] = ms(value);
  }
  if (Object.keys(legacy).length > 0) {
    notes.push(
      `${Object.keys(legacy).join(", ")} (from the strict 2020-01 master) are accepted but not needed any more: ` +
        "runners are no longer stopped for events or epoch rollovers. You can delete them.",
    );
  }
  if (p.cluster != null) {
    notes.push(
      "cluster: this host signs only while it holds the etcd signer lease (its signer carries a dead-man switch to the lease's deadline); the other hosts' standbys take the key at each epoch boundary on the signing host's grant, so a host that takes over keeps the epoch's remaining slots.",
    );
  }
  if (p.rest_base_port != null && "rest_prefix" in input) {
    notes.push(`rest_prefix is ignored because rest_base_port is set (ports ${runnerPort(p, 0)}..${runnerPort(p, p.cnt_runners - 1)}).`);
  }

  const config: ResolvedConfig = {
    source,
    cntRunners: p.cnt_runners,
    runners,
    nodeSecretPath: path(p.node_secret),
    genesisHashPath: path(p.genesis_hash_file),
    keyMode: p.key_mode,
    maxOffset: p.max_offset,
    signerMaxLag: p.signer_max_lag,
    maxBootMs: ms(p.max_boot),
    eventActionMs: ms(p.event_action),
    startBeforeEventMs: ms(p.start_before_event),
    bootCatchUpMs: ms(p.boot_catch_up),
    slotGuardMs: ms(p.slot_guard),
    slotMarginMs: ms(p.slot_margin),
    loopPeriodMs: ms(p.loop_period),
    restTimeoutMs: ms(p.rest_timeout),
    systemd: {
      scope: p.systemd.scope,
      masterUnit: p.systemd.master_unit,
      runnerUnitTemplate: p.systemd.runner_unit,
      user: p.systemd.user,
    },
    metricsListen: p.metrics_listen === "" ? null : p.metrics_listen,
    pooltool,
    cluster: resolveCluster(p),
    alerts: resolveAlerts(p.alerts, path),
    logLevel: p.log_level,
    legacy,
  };
  return { ok: true, config, notes };
}

function withoutKeys(input: Record<string, unknown>, paths: readonly (readonly (string | number)[])[]): Record<string, unknown> {
  const copy: Record<string, unknown> = structuredClone(input);
  for (const path of paths) {
    let parent: unknown = copy;
    for (const key of path.slice(0, -1)) parent = isMapping(parent) ? parent[String(key)] : undefined;
    if (isMapping(parent)) delete parent[String(path[path.length - 1])];
  }
  return copy;
}

function resolvePoolTool(p: ParsedConfig): PoolToolConfig | null {
  const t = p.pooltool;
  if (t == null) return null;
  if (POOLTOOL_PLACEHOLDER.test(t.pool_id) && POOLTOOL_PLACEHOLDER.test(t.user_id)) return null;
  return {
    poolId: t.pool_id,
    userId: t.user_id,
    genesis: t.genesis,
    sendWaitMs: ms(t.send_wait),
    recvWaitMs: ms(t.recv_wait),
    endpTip: t.endp_tip,
    endpStats: t.endp_stats,
    sendSlots: t.send_slots,
    endpSlots: t.endp_slots,
  };
}

function resolveCluster(p: ParsedConfig): ClusterConfig | null {
  const c = p.cluster;
  if (c == null) return null;
  return {
    name: c.name,
    etcdEndpoints: c.etcd.map((url) => url.replace(/\/+$/, "")),
    prefix: c.prefix.replace(/\/+$/, ""),
    leaseTtlS: c.lease_ttl,
    etcdTimeoutMs: ms(c.etcd_timeout),
  };
}

// Multi-host mode (issue 13)
const CLUSTER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ETCD_URL_PATTERN = /^https?:\/\/[^\s/]+(:\d+)?\/?$/;

function crossCheckCluster(p: ParsedConfig, add: (path: (string | number)[], message: string) => void): void {
  const c = p.cluster;
  if (c == null) return;
  if (!CLUSTER_NAME_PATTERN.test(c.name)) {
    add(["cluster", "name"], `must be a host name (letters, digits, ".", "_" or "-"), found ${JSON.stringify(c.name)}`);
  }
  const seen = new Set<string>();
  c.etcd.forEach((url, i) => {
    const urlProblem = ETCD_URL_PATTERN.test(url) ? httpUrlProblem(url) : null;
    if (!ETCD_URL_PATTERN.test(url)) add(["cluster", "etcd", i], `expected an etcd client URL like "http://10.0.0.1:2379", found ${JSON.stringify(url)}`);
    else if (urlProblem !== null) add(["cluster", "etcd", i], urlProblem);
    else if (seen.has(url.replace(/\/+$/, ""))) add(["cluster", "etcd", i], `${JSON.stringify(url)} is listed twice`);
    seen.add(url.replace(/\/+$/, ""));
  });
  if (!c.prefix.startsWith("/") || c.prefix.replace(/\/+$/, "") === "") {
    add(["cluster", "prefix"], `must be a key path starting with "/", e.g. "/jorm-master/my-pool", found ${JSON.stringify(c.prefix)}`);
  }
  // One call must fit well inside the lease, or a single slow answer outlives the signer's allowance
  if (c.etcd_timeout * 2 > c.lease_ttl) {
    add(
      ["cluster", "etcd_timeout"],
      `must be at most half of lease_ttl (${c.etcd_timeout} s > ${c.lease_ttl} s / 2): the signer renews its lease several times per TTL, each call within etcd_timeout`,
    );
  }
}

/** Rules that span several keys, or that zod cannot say precisely enough. */
function crossCheck(p: ParsedConfig): Problem[] {
  const problems: Problem[] = [];
  const add = (path: (string | number)[], message: string) => problems.push({ path, message });

  // Per-runner templates: without {id}, every runner would share one file, directory or unit.
  const templates: [(string | number)[], string][] = [
    [["runner_binary"], p.runner_binary],
    [["runner_config"], p.runner_config],
    [["runner_storage"], p.runner_storage],
    [["systemd", "runner_unit"], p.systemd.runner_unit],
  ];
  for (const [path, template] of templates) {
    const unknown = (template.match(PLACEHOLDER_PATTERN) ?? []).filter((m) => m !== ID_PLACEHOLDER);
    if (unknown.length > 0) {
      add(path, `unknown placeholder ${unknown.join(", ")} in ${JSON.stringify(template)}; only {id} (the runner number) is replaced`);
    } else if (p.cnt_runners > 1 && !template.includes(ID_PLACEHOLDER)) {
      add(path, `must contain {id} when cnt_runners is ${p.cnt_runners}, or every runner would share ${JSON.stringify(template)}`);
    }
  }
  for (const [key, unit] of [["master_unit", p.systemd.master_unit], ["runner_unit", p.systemd.runner_unit]] as const) {
    // Judged with {id} expanded (to the widest id), as systemctl will see it
    const name = expandTemplate(unit, Math.max(0, p.cnt_runners - 1));
    if (!unit.endsWith(".service")) add(["systemd", key], `must be a unit name ending in ".service", found ${JSON.stringify(unit)}`);
    else if (!UNIT_NAME_PATTERN.test(name) || name.length > MAX_UNIT_NAME_CHARS) {
      add(
        ["systemd", key],
        `is not a valid systemd unit name (letters, digits and ":_.\\@-", at most ${MAX_UNIT_NAME_CHARS} characters), found ${JSON.stringify(unit)}`,
      );
    }
  }
  if (!USER_NAME_PATTERN.test(p.systemd.user)) {
    add(["systemd", "user"], `must be a user name (letters, digits, "_" or "-"), found ${JSON.stringify(p.systemd.user)}`);
  }

  // Ports
  if (p.rest_base_port == null && p.cnt_runners > MAX_RUNNERS_WITH_PREFIX) {
    add(
      ["cnt_runners"],
      `${p.cnt_runners} runners do not fit the rest_prefix port scheme (the runner number is the port's last digit, ` +
        `so at most ${MAX_RUNNERS_WITH_PREFIX}); set rest_base_port, e.g. rest_base_port: 3100 gives ports 3100..${3100 + p.cnt_runners - 1}`,
    );
  } else {
    const portKey = p.rest_base_port != null ? "rest_base_port" : "rest_prefix";
    const last = runnerPort(p, p.cnt_runners - 1);
    if (last > MAX_PORT) {
      add([portKey], `runner ${p.cnt_runners - 1} would listen on port ${last}, above ${MAX_PORT}`);
    }
  }
  // The REST host: an IP literal, as the node's --rest-listen (a Rust SocketAddr) takes no names.
  // Every runner's URL is built here exactly as the daemon builds it, so a value that would make
  // every tick throw "Invalid URL" never gets past `config check`.
  const restHost = checkHost(p.rest_host, { names: false });
  if (!restHost.ok) {
    add(["rest_host"], `${restHost.problem}, found ${JSON.stringify(p.rest_host)}`);
  } else if (isUnspecified(restHost.host)) {
    add(
      ["rest_host"],
      `${JSON.stringify(p.rest_host)} is the any-address: runners would offer their REST API (which can add and remove ` +
        "the leader key) to every network, and it is no address to connect to; use 127.0.0.1 or ::1",
    );
  } else if (p.cnt_runners <= MAX_RUNNERS_WITH_PREFIX || p.rest_base_port != null) {
    for (let id = 0; id < p.cnt_runners; id++) {
      const port = runnerPort(p, id);
      if (port > MAX_PORT) break; // reported with the ports above
      const problem = restUrlProblem(restListen(p.rest_host, port)!);
      if (problem !== null) {
        add(["rest_host"], `runner ${id}: ${problem}`);
        break;
      }
    }
  }

  const listen = p.metrics_listen === "" ? null : LISTEN_PATTERN.exec(p.metrics_listen);
  const metricsHost = listen === null ? null : checkHost(listen[1]!, { names: true });
  if (p.metrics_listen !== "" && listen === null) {
    add(["metrics_listen"], `expected "host:port" (e.g. "127.0.0.1:9310") or "" to switch metrics off, found ${JSON.stringify(p.metrics_listen)}`);
  } else if (metricsHost !== null && !metricsHost.ok) {
    add(["metrics_listen"], `the host ${metricsHost.problem} (write "host:port", IPv6 in brackets like "[::1]:9310"), found ${JSON.stringify(p.metrics_listen)}`);
  } else if (metricsHost !== null && metricsHost.kind === "ipv6" && !listen![1]!.startsWith("[")) {
    add(["metrics_listen"], `put an IPv6 host in brackets, e.g. "[${metricsHost.host}]:${listen![2]}", found ${JSON.stringify(p.metrics_listen)}`);
  } else if (listen) {
    const port = Number(listen[2]);
    if (port < 1 || port > MAX_PORT) {
      add(["metrics_listen"], `port ${port} is out of range 1..${MAX_PORT}`);
    } else if (p.cnt_runners <= MAX_RUNNERS_WITH_PREFIX || p.rest_base_port != null) {
      for (let id = 0; id < p.cnt_runners; id++) {
        if (runnerPort(p, id) === port) {
          add(["metrics_listen"], `port ${port} is also the REST port of runner ${id}; pick another port`);
          break;
        }
      }
    }
  }

  // Timing: the master acts event_action before a slot, so that must come before the slot's guarded
  // window opens, the loop must tick at least once inside it, and starting a runner must come earlier.
  if (p.event_action >= p.start_before_event) {
    add(
      ["event_action"],
      `must be less than start_before_event (${p.event_action} s ≥ ${p.start_before_event} s): ` +
        "a runner is started start_before_event before a slot and prepared event_action before it",
    );
  }
  if (p.event_action <= p.slot_guard) {
    add(
      ["event_action"],
      `must be more than slot_guard (${p.event_action} s ≤ ${p.slot_guard} s): the key must be in place before the slot's guarded window opens`,
    );
  }
  if (p.loop_period >= p.event_action) {
    add(
      ["loop_period"],
      `must be less than event_action (${p.loop_period} s ≥ ${p.event_action} s), or the loop could sleep through the moment to act`,
    );
  }

  // PoolTool: half-filled placeholders mean a forgotten edit, not a wish to stay off.
  const t = p.pooltool;
  if (t != null) {
    const poolIdSet = !POOLTOOL_PLACEHOLDER.test(t.pool_id);
    const userIdSet = !POOLTOOL_PLACEHOLDER.test(t.user_id);
    if (poolIdSet !== userIdSet) {
      const [missing, value] = poolIdSet ? ["user_id", t.user_id] : ["pool_id", t.pool_id];
      add(
        ["pooltool", missing],
        `is still the placeholder ${JSON.stringify(value)} while ${poolIdSet ? "pool_id" : "user_id"} is set; ` +
          "set both to use PoolTool, or remove the pooltool section",
      );
    }
    if (poolIdSet && userIdSet) {
      if (!HEX64_PATTERN.test(t.genesis)) {
        add(["pooltool", "genesis"], `expected the 64 hex digit genesis block hash, found ${JSON.stringify(t.genesis)}`);
      }
      // Parsed as the PoolTool client will parse them (new URL), so a bad one fails here, not per request
      for (const key of ["endp_tip", "endp_stats", "endp_slots"] as const) {
        const problem = httpUrlProblem(t[key]);
        if (problem !== null) add(["pooltool", key], problem);
      }
    }
  }
  crossCheckCluster(p, add);
  problems.push(...alertsProblems(p.alerts));
  return problems;
}
