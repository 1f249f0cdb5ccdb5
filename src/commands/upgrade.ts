import { defineCommand } from "citty";
import { resolve } from "node:path";
import { z } from "zod";
import { configArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import { askDaemon } from "../control/client.ts";
import { SWITCHOVER_WAIT_MS } from "../control/index.ts";
import { controlSocketPath } from "../control/paths.ts";
import { daemonViewSchema } from "../control/protocol.ts";
import { unitName } from "../daemon/ports.ts";
import { EXIT_FAILURE, EXIT_USAGE, UserError } from "../errors.ts";
import { WARM_COMPUTE_ALLOWANCE_MS } from "../master/coverage.ts";
import { answerOf, socketAsk } from "../ops/ask.ts";
import { binaryVersion, readLink, relink } from "../ops/links.ts";
import { planLines, runUpgrade, type UpgradeSpec } from "../ops/upgrade.ts";
import { createSystemdServiceManager } from "../systemd/systemctl.ts";
import { confirmSteps, terminalPrompt } from "../ui/confirm.ts";

export default defineCommand({
  meta: {
    name: "upgrade",
    description:
      "Rolling upgrade of the runners' jormungandr, with no slot lost and never a second signer.\n" +
      "Checks the new binary (`PATH --version`), then one standby at a time: hold it, stop it, point its\n" +
      "jormungandr_runner_N link at PATH, release it (the daemon starts it; in key mode boot it boots\n" +
      "with --secret per its boot permit and computes the current epoch) and wait until it is Running,\n" +
      "in sync and warm; then a switchover to an upgraded runner; then the old signer the same way.\n" +
      "A runner not back healthy within max_boot (plus the schedule's computation) is rolled back to\n" +
      "its old link and the upgrade stops. Needs the daemon running.\n" +
      "Example: jorm-master upgrade --jormungandr /opt/jormungandr-0.8.14/jormungandr --dry-run\n" +
      "Example: jorm-master upgrade --jormungandr /opt/jormungandr-0.8.14/jormungandr --runners 1,2 --yes",
  },
  args: {
    ...configArgs,
    jormungandr: { type: "string", description: "The new jormungandr executable", valueHint: "PATH", required: true },
    runners: { type: "string", description: "Only these runners, comma-separated (default: all)", valueHint: "0,1,2" },
    "dry-run": { type: "boolean", description: "Print the plan and change nothing", default: false },
    yes: { type: "boolean", description: "Do not ask", default: false },
  },
  async run({ args }) {
    const config = await loadConfig(args.config);
    const newTarget = resolve(args.jormungandr);
    const version = binaryVersion(newTarget);
    if (!version.ok) throw new UserError(`upgrade: the new binary is not usable: ${version.error}`, EXIT_FAILURE);
    const all = config.runners.map((r) => r.id);
    const runners = args.runners === undefined ? all : args.runners.split(",").map((t) => t.trim());
    const ids = runners.map((t) => {
      const n = typeof t === "number" ? t : /^\d+$/.test(t) ? Number(t) : NaN;
      if (!all.includes(n)) throw new UserError(`upgrade: --runners: ${JSON.stringify(t)} is not a runner (0..${all.length - 1})`, EXIT_USAGE);
      return n;
    });
    const oldTargets: Record<number, string> = {};
    for (const id of ids) {
      const link = config.runners[id]!.binary;
      try {
        oldTargets[id] = readLink(link);
      } catch (e) {
        throw new UserError(`upgrade: ${link} is not a link to roll back to (${(e as NodeJS.ErrnoException).code ?? String(e)}); install made it, or make it by hand`, EXIT_FAILURE);
      }
    }
    const socket = controlSocketPath(config.systemd.scope);
    const st = await askDaemon(socket, { cmd: "status" }, daemonViewSchema);
    if (st.kind !== "answer") throw new UserError(`upgrade: ${st.kind === "no-daemon" ? `no daemon is running (${st.reason}); the upgrade needs it` : `cannot ask the daemon: ${st.error}`}`, EXIT_FAILURE);
    const spec: UpgradeSpec = {
      runners: ids,
      newTarget,
      oldTargets,
      signer: st.result.signer,
      healthyWithinMs: config.maxBootMs + WARM_COMPUTE_ALLOWANCE_MS,
      maxOffset: config.maxOffset,
    };
    process.stderr.write(`new binary: ${newTarget} (${version.version})\n`);
    const plan = planLines(spec);
    if (args["dry-run"]) {
      process.stdout.write(`${plan.join("\n")}\n`);
      return;
    }
    await confirmSteps(plan, args.yes, terminalPrompt());
    const ask = socketAsk(socket);
    const services = createSystemdServiceManager({ scope: config.systemd.scope, unitFor: (id) => unitName(config, id) });
    const t0 = Date.now();
    // The daemon records the upgrade in its event log and alerts on it; best effort: an upgrade is
    // never held back because the report could not be told.
    const tell = async (ok: boolean, title: string, text: string) => {
      await askDaemon(socket, { cmd: "report", kind: "upgrade", ok, title, text: text.slice(0, 2000) }, z.unknown()).catch(() => undefined);
    };
    await tell(true, `upgrade started: runners ${ids.map((i) => `#${i}`).join(", ")}`, `to ${newTarget} (${version.version})`);
    const end = await runUpgrade(spec, {
      now: () => Date.now(),
      progress: (line) => process.stderr.write(`[${String(Math.round((Date.now() - t0) / 1000)).padStart(4)} s] ${line}\n`),
      run: async (cmd) => {
        try {
          switch (cmd.kind) {
            case "hold":
            case "release": {
              const a = await ask(cmd.kind === "hold" ? { cmd: "hold", id: cmd.id, reason: cmd.reason } : { cmd: "release", id: cmd.id });
              return a.kind === "answer" ? { ok: true } : { ok: false, error: a.kind === "no-daemon" ? a.reason : a.error };
            }
            case "switchover": {
              const a = answerOf(await ask({ cmd: "switchover", target: cmd.target, force: false, check: false }, SWITCHOVER_WAIT_MS), "switchover");
              return { ok: true, signer: a.target ?? null };
            }
            case "stop":
              await services.stop(cmd.id);
              return { ok: true };
            case "relink":
              relink(config.runners[cmd.id]!.binary, cmd.target);
              return { ok: true };
            case "status": {
              await Bun.sleep(cmd.afterMs);
              const a = await askDaemon(socket, { cmd: "status" }, daemonViewSchema);
              return a.kind === "answer" ? { ok: true, view: a.result } : { ok: false, error: a.kind === "no-daemon" ? a.reason : a.error };
            }
          }
        } catch (e) {
          return { ok: false, error: e instanceof Error ? e.message : String(e) };
        }
      },
    });
    await tell(end.kind !== "failed", end.kind === "failed" ? "upgrade stopped" : "upgrade done", end.message);
    if (end.kind === "failed") throw new UserError(`upgrade: ${end.message}`, EXIT_FAILURE);
    process.stdout.write(`${end.message}\n`);
  },
});
