import { defineCommand } from "citty";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { configArgs, logLevelArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import type { ResolvedConfig } from "../config/types.ts";
import { logger, setupLogging } from "../log.ts";
import type { MasterDeps } from "../master/act.ts";
import { runnerIds } from "../master/observe.ts";
import { acquireLock, defaultLockPath } from "../master/lock.ts";
import { Master, type MasterLog, type TickReport } from "../master/loop.ts";
import { configChanges, statusLine } from "../master/summary.ts";
import { httpNodeApi } from "../node/client.ts";
import { readNodeSecret } from "../node/secret.ts";
import type { NodeApi } from "../node/types.ts";
import { createPoolTool } from "../pooltool/client.ts";
import { createSystemdServiceManager } from "../systemd/systemctl.ts";
import { createNotifier } from "../systemd/notify.ts";
import { realClock } from "../master/ports.ts";

/** With LoadCredential=node_secret:… systemd hands the secret over in $CREDENTIALS_DIRECTORY. */
export function secretPath(config: ResolvedConfig, env: Record<string, string | undefined> = process.env): string {
  const dir = env.CREDENTIALS_DIRECTORY;
  if (dir && existsSync(join(dir, "node_secret"))) return join(dir, "node_secret");
  return config.nodeSecretPath;
}

/** The production ports: REST over HTTP, systemd, PoolTool, the wall clock. */
export function realDeps(getConfig: () => ResolvedConfig): MasterDeps {
  const config = getConfig();
  const apis = new Map<string, NodeApi>();
  const unreachable: NodeApi = new Proxy({} as NodeApi, {
    get: () => async () => ({ ok: false, error: { kind: "unreachable", reason: "other", message: "no REST address for this runner" } }),
  });
  return {
    node(id) {
      const r = getConfig().runners[id];
      if (!r) return unreachable;
      const key = `${r.restUrl}|${getConfig().restTimeoutMs}`;
      let api = apis.get(key);
      if (!api) apis.set(key, (api = httpNodeApi(r.restUrl, { timeoutMs: getConfig().restTimeoutMs })));
      return api;
    },
    services: createSystemdServiceManager({
      scope: config.systemd.scope,
      unitFor: (id) => config.runners[id]?.unit ?? config.systemd.runnerUnitTemplate.replaceAll("{id}", String(id)),
    }),
    clock: realClock,
    pooltool: config.pooltool ? createPoolTool(config.pooltool, { timeoutMs: Math.max(getConfig().restTimeoutMs, 2_000) }) : null,
    readSecret: () => readNodeSecret(secretPath(getConfig())),
  };
}

export default defineCommand({
  meta: {
    name: "daemon",
    description:
      "Supervise the runners: keep exactly one of them signing, fence anything that might sign twice,\n" +
      "fail over within a slot. Run by systemd as jorm_master.service; stopping it leaves the runners as\n" +
      "they are, and a restarted daemon adopts them without restarting any.\n" +
      "SIGHUP (systemctl reload jorm_master) re-reads the config; an invalid one is refused and the old kept.\n" +
      "Example: jorm-master daemon --config /etc/cardano/jorm_master.yaml",
  },
  args: { ...configArgs, ...logLevelArgs },
  async run({ args }) {
    let config = await loadConfig(args.config);
    setupLogging(args["log-level"], config.logLevel);
    const log = logger("master");
    const lock = acquireLock(defaultLockPath(config.systemd.scope));
    const deps = realDeps(() => config);
    const notifier = createNotifier();
    const masterLog: MasterLog = {
      info: (m) => log.info(m),
      warn: (m) => log.warn(m),
      error: (m) => log.error(m),
      debug: (m) => log.debug(m),
    };
    let ready = false;
    const onTick = (r: TickReport) => {
      const line = statusLine(r.observation, r.views, r.memory, config, Date.now());
      if (!ready) {
        ready = true;
        notifier.ready(line);
        log.info(`first observation done: ${line}`);
      } else {
        notifier.status(line);
      }
      notifier.watchdog();
    };
    const master = new Master({ deps, config, log: masterLog, onTick });
    log.info(
      `supervising ${config.cntRunners} runners (${runnerIds(config).length - config.cntRunners} more ids watched for leftovers), key mode ${config.keyMode}, lock ${lock.path}`,
    );

    const ac = new AbortController();
    const stop = (sig: string) => {
      if (ac.signal.aborted) return;
      log.info(`${sig}: stopping; the runners are left as they are`);
      notifier.stopping();
      ac.abort();
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGHUP", () => {
      void (async () => {
        try {
          const next = await loadConfig(args.config);
          const changes = configChanges(config, next);
          config = next;
          master.config = next;
          setupLogging(args["log-level"], next.logLevel);
          log.info(changes.length === 0 ? "SIGHUP: config re-read, nothing changed" : `SIGHUP: config re-read: ${changes.join("; ")}`);
        } catch (e) {
          log.error(`SIGHUP: the new config is invalid, keeping the old one:\n${e instanceof Error ? e.message : String(e)}`);
        }
      })();
    });
    try {
      await master.run(ac.signal);
    } finally {
      lock.release();
      notifier.close();
    }
    process.exit(0);
  },
});
