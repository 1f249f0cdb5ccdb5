// The production ports, built from one configuration: REST over HTTP to each runner, the systemd
// service manager with the configured scope and unit names, PoolTool when configured, the wall
// clock, the node secret read at the moment of a promotion. The daemon builds them at start and
// again at every reload; the loop benchmark builds them here too, decorating transports and the
// systemctl spawner, so it measures exactly what the daemon runs.

import type { PoolToolConfig, ResolvedConfig } from "../config/types.ts";
import { ConfigError } from "../errors.ts";
import type { MasterDeps } from "../master/act.ts";
import { realClock, type Clock, type ListenerCheck, type PoolToolApi, type ServiceManager } from "../ports.ts";
import { createNodeApi, httpTransport } from "../node/client.ts";
import { readNodeSecret } from "../node/secret.ts";
import type { NodeApi, Transport } from "../node/types.ts";
import { createPoolTool } from "../pooltool/client.ts";
import { secretPath } from "../runner/secret-path.ts";
import type { ProcReader } from "../systemd/proc.ts";
import { restListenerCheck } from "../systemd/sockets.ts";
import { createSystemdServiceManager, type Spawner, type SystemdServiceManager } from "../systemd/systemctl.ts";

/** PoolTool gets at least this long per request, whatever rest_timeout says. */
export const POOLTOOL_MIN_TIMEOUT_MS = 2_000;

/** What a caller may swap or wrap; everything left out is production. */
export interface PortOptions {
  env?: Record<string, string | undefined>;
  clock?: Clock;
  /** Wraps each runner's HTTP transport (the benchmark counts and times requests) */
  transport?: (inner: Transport, id: number) => Transport;
  /** Runs systemctl (the benchmark without a user manager answers from its simulated world) */
  spawner?: Spawner;
  proc?: ProcReader;
  /** Environment of the systemctl processes (a user manager's XDG_RUNTIME_DIR, say) */
  systemctlEnv?: Record<string, string | undefined>;
  /** Wraps the service manager (the benchmark mirrors every action into its world) */
  services?: (inner: SystemdServiceManager) => ServiceManager;
  /** Who listens on a runner's REST port (the benchmark's simulated runners listen in its world
   *  host, not in the units' processes); default: the socket's owner read from /proc */
  listener?: ListenerCheck;
  /** Builds the PoolTool client (tests) */
  pooltool?: (config: PoolToolConfig, timeoutMs: number) => PoolToolApi;
}

/** The unit of runner `id`: the configured one, or the template's for ids beyond cnt_runners. */
export function unitName(config: ResolvedConfig, id: number): string {
  return config.runners[id]?.unit ?? config.systemd.runnerUnitTemplate.replaceAll("{id}", String(id));
}

export function buildPorts(config: ResolvedConfig, options: PortOptions = {}): MasterDeps {
  const env = options.env ?? process.env;
  const unreachable: NodeApi = new Proxy({} as NodeApi, {
    get: () => async () => ({ ok: false, error: { kind: "unreachable", reason: "other", message: "no REST address for this runner" } }),
  });
  // Built now, so a URL the HTTP client cannot use fails here (at start or reload), not every tick.
  const apis = config.runners.map((r) => {
    let http: Transport;
    try {
      http = httpTransport(r.restUrl, { timeoutMs: config.restTimeoutMs });
    } catch (e) {
      throw new ConfigError(`runner ${r.id}: REST address ${JSON.stringify(r.restUrl)} is not a usable URL (${e instanceof Error ? e.message : String(e)})`);
    }
    return createNodeApi(options.transport ? options.transport(http, r.id) : http);
  });
  const systemd = createSystemdServiceManager({
    scope: config.systemd.scope,
    unitFor: (id) => unitName(config, id),
    ...(options.spawner ? { run: options.spawner } : {}),
    ...(options.proc ? { proc: options.proc } : {}),
    ...(options.systemctlEnv ? { env: options.systemctlEnv } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const timeoutMs = Math.max(config.restTimeoutMs, POOLTOOL_MIN_TIMEOUT_MS);
  const pooltool = config.pooltool ? (options.pooltool ?? ((c, t) => createPoolTool(c, { timeoutMs: t })))(config.pooltool, timeoutMs) : null;
  const secret = () => secretPath(config, env);
  return {
    node: (id) => apis[id] ?? unreachable,
    services: options.services ? options.services(systemd) : systemd,
    clock: options.clock ?? realClock,
    pooltool,
    readSecret: () => readNodeSecret(secret()),
    // The key goes only to a listener proven to be the runner unit's main process.
    listener: options.listener ?? restListenerCheck((id) => config.runners[id]?.restUrl ?? null),
  };
}
