import { join } from "node:path";
import { defineCommand } from "citty";
import { createAlerts } from "../alerts/index.ts";
import { reportAlert } from "../alerts/events.ts";
import { configArgs, logLevelArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import { expectedSocketGid } from "../control/group.ts";
import { startControl, type DaemonControl } from "../control/index.ts";
import { Operator, signingRunnerIn, type HandoverPort } from "../control/operator.ts";
import { controlSocketPath, stateDir } from "../control/paths.ts";
import { Daemon, readyTimeoutMs, stallAfterTicks } from "../daemon/daemon.ts";
import { createHistory } from "../history/index.ts";
import { logger, setupLogging } from "../log.ts";
import { summarizingLog } from "../log-summary.ts";
import { bootPermitDir } from "../master/bootpolicy.ts";
import { defaultLockPath } from "../master/lock.ts";
import type { MasterLog } from "../master/loop.ts";
import { MasterMetrics } from "../metrics/master.ts";
import { realClock } from "../ports.ts";
import { SlotsUploader } from "../pooltool/slots.ts";
import { createNotifier } from "../systemd/notify.ts";
import { VERSION } from "../version.ts";

export {
  loopLooksAlive,
  READY_TIMEOUT_ENV,
  readyTimeoutMs,
  stallAfterTicks,
  STALL_AFTER_TICKS_ENV,
  TICK_STALL_LIMIT_MS,
} from "../daemon/daemon.ts";

/** The "daemon stopping" alert gets this long to go out (systemd's stop timeout is 90 s) */
const ALERTS_FLUSH_MS = 5_000;

export default defineCommand({
  meta: {
    name: "daemon",
    description:
      "Supervise the runners: exactly one signs, and nothing that might sign twice is left unfenced.\n" +
      "Fails over within a slot. Run by systemd as jorm_master.service; stopping it leaves the signer as it is\n" +
      "and first fences any standby that would sign without it (one booting with --secret); a restarted\n" +
      "daemon adopts the runners without restarting a healthy one. Exits 1 when its ticks keep failing.\n" +
      "SIGHUP (systemctl reload jorm_master) re-reads the config and rebuilds every connection from it; an\n" +
      "invalid one, or one changing systemd.scope or systemd.user (restart for those), is refused and the old kept.\n" +
      "Example: jorm-master daemon --config /etc/cardano/jorm_master.yaml",
  },
  args: { ...configArgs, ...logLevelArgs },
  async run({ args }) {
    const config = await loadConfig(args.config);
    setupLogging(args["log-level"], config.logLevel);
    const log = logger("master");
    // Before the lock: a missing alert token is a config error (exit 78) like any other.
    const alerts = createAlerts(config, logger("alerts"));
    const talk: MasterLog = {
      info: (m) => log.info(m),
      warn: (m) => log.warn(m),
      error: (m) => log.error(m),
      debug: (m) => log.debug(m),
    };
    // A failing action is retried every tick: its line is summarised, not repeated 20 times a second.
    const loopLog = summarizingLog(talk, realClock);
    const slotsUploader = new SlotsUploader(logger("pooltool"));
    const history = createHistory(stateDir(config.systemd.scope), logger("history"));
    let control: DaemonControl | null = null;
    let operator: Operator | null = null;
    const daemon: Daemon = new Daemon({
      config,
      load: () => loadConfig(args.config),
      log: talk,
      loopLog,
      notifier: createNotifier(),
      metrics: new MasterMetrics({ version: VERSION, alerts: alerts.counts }),
      lockPath: defaultLockPath(config.systemd.scope),
      bootPermitDir: bootPermitDir(config.systemd.scope),
      // Cluster mode: a restarted daemon takes its predecessor's etcd lease up again.
      leaseFile: join(stateDir(config.systemd.scope), "cluster-lease.json"),
      // An activating master that never completes an observation fences nobody: bounded, then exit
      // non-zero so systemd restarts it (TimeoutStartSec= is just above the bound).
      readyTimeoutMs: readyTimeoutMs(),
      // The control socket belongs to the daemon holding the lock.
      onStart: async () => {
        // Holds are read before the first tick: a held runner is not started by it.
        operator = new Operator({ stateDir: stateDir(config.systemd.scope), log: logger("operator"), cntRunners: () => daemon.config.cntRunners, onEvent: (e) => history.operator(e), onChange: (i) => (daemon.master.intent = i), handover: handoverPort(daemon) });
        daemon.master.intent = operator.intent;
        control = await startControl({
          path: controlSocketPath(config.systemd.scope),
          version: VERSION,
          log: logger("control"),
          operator,
          // A rolling upgrade (run by the CLI) tells its start and result: event log and alerts.
          onReport: (rep) => {
            history.operator({ kind: rep.kind, title: rep.title, text: rep.text });
            alerts.notify(reportAlert(rep, Date.now()));
          },
          // System scope: root and the runners' group may use it (the unit's Group=); user scope: the user's own.
          runnersGid: config.systemd.scope === "system" ? () => expectedSocketGid(config.systemd.user, process.getgid?.() ?? 0) : undefined,
        });
      },
      onTick: (r) => {
        alerts.onTick(r, daemon.config);
        operator?.onTick(r);
        void control?.onTick(r);
        slotsUploader.onTick(r, daemon.config);
        loopLog.sweep();
        history.onTick(r, daemon.config);
      },
      // Cluster mode: the signing host changing, another host's entry going or coming back.
      onRegistry: (r) => alerts.onRegistry(r),
      onReady: (line) => {
        alerts.started(line);
        history.started(line);
      },
      beforeExit: async (why, lastStatus) => {
        await alerts.stopping(`${why}; ${lastStatus}`, ALERTS_FLUSH_MS);
        await history.stopping(`${why}; ${lastStatus}`, ALERTS_FLUSH_MS);
      },
      onClose: async () => {
        operator?.close();
        await control?.close();
      },
      onConfig: (next) => setupLogging(args["log-level"], next.logLevel),
      stallAfterTicks: stallAfterTicks(),
    });
    process.on("SIGTERM", () => daemon.stop("SIGTERM"));
    process.on("SIGINT", () => daemon.stop("SIGINT"));
    process.on("SIGHUP", () => void daemon.reload());
    process.exit(await daemon.start());
  },
});

/** switchover --host's way into the daemon: its signer lease, and its host registry for naming the
 *  runner the target signs with (cluster mode; null otherwise). */
function handoverPort(daemon: Daemon): HandoverPort | null {
  const lease = daemon.lease;
  if (lease === null) return null;
  return {
    candidate: lease.candidate,
    beginHandover: (to) => lease.beginHandover(to),
    abortHandover: (why) => lease.abortHandover(why),
    commitHandover: (at) => lease.commitHandover(at),
    holder: () => lease.holder(),
    signingRunnerOf: (host, sinceMs) => signingRunnerIn(daemon.registry?.last ?? null, host, sinceMs),
  };
}
