import { defineCommand } from "citty";
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
import { restListenerCheck } from "../systemd/sockets.ts";
import { READY_TIMEOUT_MS, bootPermitDir } from "../master/bootpolicy.ts";
import { bootPermits, clearBootPermits, writeBootPermits } from "../master/bootpermits.ts";
import { realClock } from "../master/ports.ts";
import { MasterMetrics } from "../metrics/master.ts";
import { serveMetrics, type MetricsServer } from "../metrics/server.ts";
import { VERSION } from "../version.ts";
import { summarizingLog } from "../log-summary.ts";
import { createAlerts } from "../alerts/index.ts";
import { SlotsUploader } from "../pooltool/slots.ts";
import { startControl } from "../control/index.ts";
import { controlSocketPath, stateDir } from "../control/paths.ts";
import { createHistory } from "../history/index.ts";
// One rule for where the secret is, shared with the runner: $CREDENTIALS_DIRECTORY first.
import { secretPath } from "./runner.ts";

/** Test-only: after this many ticks the loop blocks forever, so tests can watch systemd's watchdog act. */
export const STALL_AFTER_TICKS_ENV = "JORM_MASTER_TEST_STALL_AFTER_TICKS";

/** The tick count after which the test hook stalls the loop, or null (the hook is off). */
export function stallAfterTicks(env: Record<string, string | undefined> = process.env): number | null {
  const v = env[STALL_AFTER_TICKS_ENV];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
}

/** Longest a healthy tick may take beyond loop_period: a REST deadline, a systemctl show, fences,
 *  a promotion and systemctl jobs (each bounded by its own timeout) one after the other. */
export const TICK_STALL_LIMIT_MS = 60_000;
/** Ticks come up to 20 a second; systemd needs a ping only every WatchdogSec/2 */
const WATCHDOG_MIN_GAP_MS = 1_000;
/** The parting fences (one observation, SIGSTOPs, demotions) get this long before the daemon exits. */
const PART_TIMEOUT_MS = 10_000;
/** The "daemon stopping" alert gets this long to go out (systemd's stop timeout is 90 s) */
const ALERTS_FLUSH_MS = 5_000;

/**
 * Whether the watchdog may be pinged between ticks: only while the last tick ended recently. Every
 * tick pings too; this covers a loop_period longer than half of WatchdogSec. A loop stuck in an
 * await stops being vouched for after loop_period + TICK_STALL_LIMIT_MS; a blocked thread
 * pings nothing at all.
 */
export function loopLooksAlive(nowMs: number, lastTickEndMs: number, loopPeriodMs: number): boolean {
  return nowMs - lastTickEndMs <= loopPeriodMs + TICK_STALL_LIMIT_MS;
}

/** Blocks this thread for good without spinning: nothing runs any more, timers and sockets included. */
function stallForever(): never {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(cell, 0, 0);
}

/** Test hook: a shorter bound on the first observation than READY_TIMEOUT_MS (never longer). */
export const READY_TIMEOUT_ENV = "JORM_MASTER_TEST_READY_TIMEOUT_MS";
export function readyTimeoutMs(env: Record<string, string | undefined> = process.env): number {
  const v = Number(env[READY_TIMEOUT_ENV]);
  return Number.isSafeInteger(v) && v > 0 && v < READY_TIMEOUT_MS ? v : READY_TIMEOUT_MS;
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
    readSecret: () => readNodeSecret(secretPath(getConfig(), process.env)),
    listener: restListenerCheck((id) => getConfig().runners[id]?.restUrl ?? null),
  };
}

export default defineCommand({
  meta: {
    name: "daemon",
    description:
      "Supervise the runners: exactly one signs, and nothing that might sign twice is left unfenced.\n" +
      "Fails over within a slot. Run by systemd as jorm_master.service; stopping it leaves the signer as it is\n" +
      "and first fences any standby that would sign without it (one booting with --secret); a restarted\n" +
      "daemon adopts the runners without restarting a healthy one.\n" +
      "SIGHUP (systemctl reload jorm_master) re-reads the config; an invalid one is refused and the old kept.\n" +
      "Example: jorm-master daemon --config /etc/cardano/jorm_master.yaml",
  },
  args: { ...configArgs, ...logLevelArgs },
  async run({ args }) {
    let config = await loadConfig(args.config);
    setupLogging(args["log-level"], config.logLevel);
    const log = logger("master");
    // Before the lock: a missing alert token is a config error (exit 78) like any other.
    const alerts = createAlerts(config, logger("alerts"));
    const lock = acquireLock(defaultLockPath(config.systemd.scope));
    const deps = realDeps(() => config);
    const control = await startControl({ path: controlSocketPath(config.systemd.scope), version: VERSION, log: logger("control") });
    const history = createHistory(stateDir(config.systemd.scope), logger("history"));
    const notifier = createNotifier();
    // A failing action is retried every tick: its line is summarised, not repeated 20 times a second.
    const masterLog = summarizingLog(
      {
        info: (m) => log.info(m),
        warn: (m) => log.warn(m),
        error: (m) => log.error(m),
        debug: (m) => log.debug(m),
      } satisfies MasterLog,
      realClock,
    );
    const metrics = new MasterMetrics({ version: VERSION, alerts: alerts.counts });
    const slotsUploader = new SlotsUploader(logger("pooltool"));
    let metricsServer: MetricsServer | null = null;
    const listenMetrics = (listen: string | null) => {
      metricsServer?.stop();
      metricsServer = null;
      if (listen === null) return;
      metricsServer = serveMetrics(listen, () => metrics.render());
      log.info(`metrics at ${metricsServer.url}`);
    };
    try {
      listenMetrics(config.metricsListen);
    } catch (e) {
      lock.release();
      await control.close();
      throw e;
    }
    const stallAfter = stallAfterTicks();
    let ready = false;
    // Runners boot with --secret only on a fresh permit from a daemon that observes (bootpolicy.ts).
    const bootDir = bootPermitDir(config.systemd.scope);
    let permitsFailing = false;
    // An activating master that never completes an observation fences nobody: bounded, then exit
    // non-zero so systemd restarts it (TimeoutStartSec= is just above the bound).
    const readyBound = readyTimeoutMs();
    const readyTimer = setTimeout(() => {
      if (ready) return;
      log.error(`no complete observation within ${readyBound / 1000} s of starting; exiting so systemd restarts the daemon`);
      clearBootPermits(bootDir);
      lock.release();
      process.exit(1);
    }, readyBound);
    let ticks = 0;
    let lastTickEndMs = Date.now();
    let lastPingMs = 0;
    let lastStatus = "";
    const ping = (now: number) => {
      if (now - lastPingMs < WATCHDOG_MIN_GAP_MS) return;
      lastPingMs = now;
      notifier.watchdog();
    };
    let watchdogTimer: ReturnType<typeof setInterval> | null = null;
    if (notifier.watchdogIntervalMs !== null) {
      log.info(`systemd watchdog: ${notifier.watchdogUsec! / 1e6} s; pinged from the loop while ticks keep coming`);
      watchdogTimer = setInterval(() => {
        const now = Date.now();
        if (ready && loopLooksAlive(now, lastTickEndMs, config.loopPeriodMs)) ping(now);
      }, notifier.watchdogIntervalMs);
    }
    const onTick = (r: TickReport) => {
      lastTickEndMs = Date.now();
      if (!ac.signal.aborted) {
        try {
          writeBootPermits(bootDir, bootPermits(config.cntRunners, config.keyMode, r.observation.atMs, r.plan.bootModes));
          if (permitsFailing) log.info(`boot permits written again in ${bootDir}`);
          permitsFailing = false;
        } catch (e) {
          if (!permitsFailing) log.error(`cannot write boot permits in ${bootDir} (runners restarted meanwhile boot passive): ${e instanceof Error ? e.message : String(e)}`);
          permitsFailing = true;
        }
      }
      metrics.update(r, config, { poolToolFailures: master.poolToolFailures });
      alerts.onTick(r, config);
      void control.onTick(r);
      slotsUploader.onTick(r, config);
      masterLog.sweep();
      const line = statusLine(r.observation, r.views, r.memory, config, Date.now());
      if (!ready) {
        ready = true;
        clearTimeout(readyTimer);
        notifier.ready(line);
        log.info(`first observation done: ${line}`);
        alerts.started(line);
        history.started(line);
      } else if (line !== lastStatus) {
        notifier.status(line);
      }
      lastStatus = line;
      history.onTick(r, config);
      ping(lastTickEndMs);
      if (stallAfter !== null && ++ticks >= stallAfter) {
        log.warn(`${STALL_AFTER_TICKS_ENV}=${stallAfter}: stalling the loop on purpose (test hook)`);
        stallForever();
      }
    };
    const master = new Master({ deps, config, log: masterLog, onTick });
    log.info(
      `supervising ${config.cntRunners} runners (${runnerIds(config).length - config.cntRunners} more ids watched for leftovers), key mode ${config.keyMode}, lock ${lock.path}`,
    );

    const ac = new AbortController();
    let stopSignal = "a signal";
    const stop = (sig: string) => {
      if (ac.signal.aborted) return;
      stopSignal = sig;
      log.info(`${sig}: stopping; the signer is left as it is, standbys that would sign without a daemon are fenced`);
      notifier.stopping();
      ac.abort();
      // No runner restarted from now on boots with the key: nobody would demote it.
      clearBootPermits(bootDir);
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGHUP", () => {
      void (async () => {
        try {
          const next = await loadConfig(args.config);
          const changes = configChanges(config, next);
          if (next.metricsListen !== config.metricsListen) {
            try {
              listenMetrics(next.metricsListen);
            } catch (e) {
              log.error(`SIGHUP: ${e instanceof Error ? e.message : String(e)}; metrics are off until the next reload`);
            }
          }
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
      // Told to stop: a standby booting with --secret would become a second signer while no daemon
      // runs (an operator's stop, a restart into a broken config). Bounded: systemd waits for us.
      const parted = await Promise.race([master.part().then(() => true), Bun.sleep(PART_TIMEOUT_MS).then(() => false)]).catch((e) => {
        log.error(`fencing before exit failed: ${e instanceof Error ? e.message : String(e)}`);
        return true;
      });
      if (!parted) log.error(`fencing before exit took over ${PART_TIMEOUT_MS / 1000} s; exiting anyway`);
      await alerts.stopping(`stopped by ${stopSignal}; ${lastStatus}`, ALERTS_FLUSH_MS);
      await history.stopping(`stopped by ${stopSignal}; ${lastStatus}`, ALERTS_FLUSH_MS);
    } finally {
      clearBootPermits(bootDir);
      lock.release();
      await control.close();
      (metricsServer as MetricsServer | null)?.stop();
      if (watchdogTimer !== null) clearInterval(watchdogTimer);
      notifier.close();
    }
    process.exit(0);
  },
});
