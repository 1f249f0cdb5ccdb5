import { defineCommand } from "citty";
import { renewIntervalMs, takeoverSafeAtMs } from "../cluster/deadline.ts";
import type { Etcd } from "../cluster/etcd.ts";
import { createGatewayClient } from "../cluster/gateway.ts";
import type { ClusterConfig } from "../config/types.ts";
import { parseRegistry, REGISTRY_PUBLISH_INTERVAL_MS } from "../master/registry.ts";
import type { StatusRegistry } from "../status/cluster.ts";
import { configArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import type { ResolvedConfig } from "../config/types.ts";
import { EXIT_USAGE, UserError } from "../errors.ts";
import { realClock } from "../ports.ts";
import { httpNodeApi } from "../node/client.ts";
import type { Settings } from "../node/types.ts";
import { createPoolTool } from "../pooltool/client.ts";
import { gatherStatus, type StatusDeps } from "../status/gather.ts";
import { EXIT_UNKNOWN, statusModel, type StatusInput, type StatusModel } from "../status/model.ts";
import { renderStatus, statusJson } from "../status/render.ts";
import { createSystemdServiceManager } from "../systemd/systemctl.ts";
import { redraw } from "../ui/table.ts";
import { askDaemon, type AskResult } from "../control/client.ts";
import { controlSocketPath } from "../control/paths.ts";
import { daemonViewSchema, type DaemonView } from "../control/protocol.ts";
import { daemonStatus } from "../control/status.ts";

export const DEFAULT_WATCH_INTERVAL_MS = 2_000;
/** PoolTool is on the internet: bounded like the daemon's calls, never below this */
const POOLTOOL_MIN_TIMEOUT_MS = 2_000;

/** Nobody signing is a takeover, not an outage, for this long: the old lease's TTL, a campaign round,
 *  the takeover wait, a promotion's slot window and two registry rounds (hosts republish what they see). */
export function noSignerGraceMs(ttlS: number): number {
  return ttlS * 1000 + renewIntervalMs(ttlS) + takeoverSafeAtMs(0, ttlS) + 2 * REGISTRY_PUBLISH_INTERVAL_MS + NO_SIGNER_SLOT_SLACK_MS;
}
/** A promotion waits for the next slot window to pass: a few seconds on ITN-like chains */
const NO_SIGNER_SLOT_SLACK_MS = 5_000;

/**
 * Cluster mode: one range read of `<prefix>/` (the signer key and every host entry at one revision),
 * then the signer lease's TTL as etcd says (`/v3/lease/timetolive`; unreadable: left out, not fatal).
 * Each call is bounded by the configured etcd deadline.
 */
export async function readClusterRegistry(etcd: Etcd, c: ClusterConfig): Promise<StatusRegistry | { error: string }> {
  const read = await etcd.range(`${c.prefix.replace(/\/+$/, "")}/`, { prefix: true });
  if (!read.ok) return { error: read.error.message };
  const parsed = parseRegistry(c.prefix, read.value.kvs);
  let leaseTtl: StatusRegistry["leaseTtl"] = null;
  if (parsed.signer !== null && parsed.signer.lease !== "0") {
    const t = await etcd.leaseTimeToLive(parsed.signer.lease);
    if (t.ok && t.value.ttlS >= 0) leaseTtl = { grantedS: t.value.grantedTtlS, leftS: t.value.ttlS };
  }
  return { signer: parsed.signer, leaseTtl, entries: parsed.entries, invalid: parsed.invalid, noSignerGraceMs: noSignerGraceMs(c.leaseTtlS) };
}

/** The real, read-only ports: REST with the configured deadline, systemctl show, PoolTool. */
export function statusDeps(config: ResolvedConfig, opts: { restOnly: boolean }): StatusDeps {
  const apis = config.runners.map((r) => httpNodeApi(r.restUrl, { timeoutMs: config.restTimeoutMs }));
  const services = opts.restOnly
    ? null
    : createSystemdServiceManager({
        scope: config.systemd.scope,
        unitFor: (id) => config.runners[id]?.unit ?? config.systemd.runnerUnitTemplate.replaceAll("{id}", String(id)),
      });
  return {
    node: (id) => {
      const api = apis[id];
      if (!api) throw new Error(`no REST address for runner ${id}`);
      return api;
    },
    services,
    // The boundary hand-out is recognised by the co-holders' armed dead-man switches (lease timers).
    switches: services ? (ids) => services.showFreezeSwitches(ids) : null,
    pooltool: config.pooltool ? createPoolTool(config.pooltool, { timeoutMs: Math.max(config.restTimeoutMs, POOLTOOL_MIN_TIMEOUT_MS) }) : null,
    now: realClock.now,
    // Cluster mode: who holds the signer key and every host's registry entry, read from etcd within the configured deadline.
    clusterRegistry: config.cluster
      ? () => {
          const c = config.cluster!;
          return readClusterRegistry(createGatewayClient({ endpoints: c.etcdEndpoints, callTimeoutMs: c.etcdTimeoutMs }), c);
        }
      : null,
  };
}

/**
 * A check that could not evaluate is UNKNOWN (3), whatever went wrong: a broken config (which every
 * other command reports as 78) or an unexpected error. Its message goes to stderr, with no stack.
 */
export function statusUnknown(error: unknown): UserError {
  const message = error instanceof Error ? error.message : String(error);
  return new UserError(`UNKNOWN: status could not evaluate: ${message}`, EXIT_UNKNOWN);
}

export interface StatusRunOptions {
  json: boolean;
  watch: boolean;
  intervalMs: number;
  isTTY: boolean;
  write(text: string): void;
  /** Ends --watch */
  signal?: AbortSignal;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Asks the running daemon for its view (a header line, `daemon` in --json); absent: not asked */
  daemon?: () => Promise<AskResult<DaemonView>>;
}

/** One look (or, with watch, one per interval until the signal): returns the last exit code. */
export async function runStatus(config: ResolvedConfig, deps: StatusDeps, o: StatusRunOptions): Promise<number> {
  const sleep = o.sleep ?? realClock.sleep;
  let settings: Settings | null = null;
  let pooltool: { majorityMax: number | null; error: string | null } | undefined;
  let pooltoolAtMs = -Infinity;
  let lines = 0;
  let model: StatusModel;
  for (;;) {
    // In --watch, PoolTool is asked as often as the daemon asks it (recv_wait), not every frame.
    const askPoolTool = !o.watch || config.pooltool === null || deps.now() - pooltoolAtMs >= config.pooltool.recvWaitMs;
    const [input, asked]: [StatusInput, AskResult<DaemonView> | null] = await Promise.all([gatherStatus(config, deps, { settings, pooltool: askPoolTool ? undefined : pooltool }), o.daemon ? o.daemon() : Promise.resolve(null)]);
    const daemon = asked && daemonStatus(asked, deps.now());
    if (askPoolTool) pooltoolAtMs = deps.now();
    settings = input.settings;
    pooltool = input.pooltool ?? undefined;
    model = statusModel(input);
    if (o.json) {
      o.write(`${daemon ? JSON.stringify({ ...model, daemon: daemon.json }) : statusJson(model)}\n`);
    } else {
      const head = o.watch ? `jorm-master status · ${new Date(model.atMs).toISOString().slice(11, 19)} UTC · every ${o.intervalMs / 1000} s (Ctrl-C to stop)\n\n` : "";
      const frame = `${head}${daemon ? `${daemon.line}\n` : ""}${renderStatus(model)}\n`;
      o.write(o.watch && o.isTTY ? `${redraw(lines)}${frame}` : o.watch ? `${frame}\n` : frame);
      lines = frame.split("\n").length - 1;
    }
    if (!o.watch || o.signal?.aborted) return model.exitCode;
    await sleep(o.intervalMs, o.signal);
    if (o.signal?.aborted) return model.exitCode;
  }
}

export default defineCommand({
  meta: {
    name: "status",
    description:
      "Show every runner at a glance: unit and node state, height and lag, who holds the key, who is warm (holds\n" +
      "this epoch's remaining leader slots, so it could take over and sign them), leader events left this epoch\n" +
      "and the next one, uptime, restarts; epoch, slot and time to the next epoch above.\n" +
      "Reads REST and systemd directly (read-only), so it works with or without the daemon; a running daemon is\n" +
      "asked too (its control socket) for what only it knows, e.g. a boundary hand-out in progress: one line above.\n" +
      "Exit code, as a monitoring check (Nagios/Icinga plugin convention): 0 OK (one signer, every other\n" +
      "runner proven unable to sign or a boundary co-holder with its dead-man switch armed), 1 WARNING (a key\n" +
      "state unknown, no warm standby (none holds the epoch's remaining slots), a unit failed, PoolTool\n" +
      "unreachable), 2 CRITICAL (no signer, or two that may sign outside a hand-out), 3 UNKNOWN (status could\n" +
      "not evaluate, e.g. a broken config).\n" +
      "Cluster mode: a cluster section below (the signing host, its lease's age and TTL, every host's runners from\n" +
      "the etcd registry <prefix>/hosts/); CRITICAL also when another host reports a key holder while not signing or\n" +
      "two hosts claim to sign, WARNING for a host's entry missing or stale, UNKNOWN when etcd cannot be read.\n" +
      "Example: jorm-master status --watch",
  },
  args: {
    ...configArgs,
    json: { type: "boolean", description: "One JSON object on stdout (with --watch: one per line)", default: false },
    watch: { type: "boolean", description: "Redraw every --interval seconds until Ctrl-C", default: false },
    interval: { type: "string", description: "Seconds between --watch frames (default 2)", valueHint: "SECONDS" },
    "rest-only": { type: "boolean", description: "Do not ask systemd (unit columns show -)", default: false },
  },
  async run({ args }) {
    let intervalMs = DEFAULT_WATCH_INTERVAL_MS;
    if (args.interval !== undefined) {
      const s = Number(args.interval);
      if (!(s > 0) || !Number.isFinite(s)) throw new UserError(`--interval: expected a positive number of seconds, found ${JSON.stringify(args.interval)}`, EXIT_USAGE);
      intervalMs = s * 1000;
    }
    let config: ResolvedConfig;
    try {
      config = await loadConfig(args.config);
    } catch (e) {
      throw statusUnknown(e);
    }
    const ac = new AbortController();
    if (args.watch) {
      process.once("SIGINT", () => ac.abort());
      process.once("SIGTERM", () => ac.abort());
    }
    let code: number;
    try {
      code = await runStatus(config, statusDeps(config, { restOnly: args["rest-only"] }), {
        json: args.json,
        watch: args.watch,
        intervalMs,
        isTTY: process.stdout.isTTY === true,
        write: (t) => process.stdout.write(t),
        signal: ac.signal,
        daemon: () => askDaemon(controlSocketPath(config.systemd.scope), { cmd: "status" }, daemonViewSchema),
      });
    } catch (e) {
      throw statusUnknown(e);
    }
    // Let stdout drain before the exit code ends the process (a pipe may still hold the output).
    await new Promise<void>((resolve) => (process.stdout.write("") ? resolve() : process.stdout.once("drain", () => resolve())));
    process.exit(code);
  },
});
