import { defineCommand } from "citty";
import { configArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import { SWITCHOVER_WAIT_MS } from "../control/index.ts";
import { controlSocketPath } from "../control/paths.ts";
import { EXIT_FAILURE, EXIT_USAGE, UserError } from "../errors.ts";
import { answerOf, runnerId, socketAsk } from "../ops/ask.ts";
import { followHandover } from "../ops/handover.ts";
import { confirmSteps, terminalPrompt } from "../ui/confirm.ts";

export default defineCommand({
  meta: {
    name: "switchover",
    description:
      "Move the key to runner N (or the best standby) at the next safe gap between leader-slot windows.\n" +
      "The running daemon does it inside its loop: the signer is demoted first, the target promoted only\n" +
      "if that was verified before the next window, then checked like a failover. Only to a runner that\n" +
      "has the coming slots in its schedule; --force allows one without (the prompt says how many slots\n" +
      "that loses). Waits until done and prints the gap it used.\n" +
      "Cluster mode: --host HOST hands signing to another host instead. Run it on the host that signs\n" +
      "(elsewhere the daemon says which host that is). At a gap with room for the whole hand-over, this\n" +
      "host fences its runners (each proven key-less), then in one etcd transaction gives the signer key\n" +
      "up and names HOST, which takes it at once without the takeover wait and promotes its best standby\n" +
      "(it holds the epoch's schedule only if this host granted the boundary hand-out; without that the\n" +
      "hand-over waits for the next boundary, --force goes now and loses the epoch's remaining slots).\n" +
      "Other hosts hold off for 4 s.\n" +
      "Example: jorm-master switchover 1 --yes\n" +
      "Example: jorm-master switchover --host host-b --yes",
  },
  args: {
    ...configArgs,
    runner: { type: "positional", description: "Runner id to move the key to (default: the best standby)", required: false, valueHint: "N" },
    host: { type: "string", description: "Cluster mode: hand signing to this host (its cluster name) instead", valueHint: "HOST" },
    force: { type: "boolean", description: "Allow a target lacking some of the coming slots (they are lost); with --host: a target host whose standbys hold no schedule", default: false },
    yes: { type: "boolean", description: "Do not ask", default: false },
  },
  async run({ args }) {
    const host = typeof args.host === "string" ? args.host.trim() : undefined;
    if (host !== undefined && (host === "" || args.runner !== undefined)) {
      throw new UserError("switchover: --host needs a host name and takes no runner id (that host's daemon picks its runner)", EXIT_USAGE);
    }
    const target = args.runner === undefined ? null : runnerId(args.runner, "switchover");
    const config = await loadConfig(args.config);
    const socket = controlSocketPath(config.systemd.scope);
    const ask = socketAsk(socket);
    if (host !== undefined) return handOver(ask, socket, host, args.force, args.yes);
    const plan = answerOf(await ask({ cmd: "switchover", target, force: args.force, check: true }), "switchover");
    const lost = plan.lostSlots ?? 0;
    if (lost > 0 && !args.force) {
      throw new UserError(`switchover: ${plan.message}; pass --force to accept losing them`, EXIT_FAILURE);
    }
    process.stderr.write(`${plan.message}\n`);
    await confirmSteps([`move the key to #${plan.target}${lost > 0 ? ` (LOSES ${lost} slot${lost === 1 ? "" : "s"})` : ""} at the next safe gap`], args.yes, terminalPrompt());
    process.stderr.write("waiting for the daemon (the next gap between windows, then a verifying tick)…\n");
    const done = answerOf(await ask({ cmd: "switchover", target, force: args.force, check: false }, SWITCHOVER_WAIT_MS), "switchover");
    process.stdout.write(`${done.message}\n`);
  },
});

async function handOver(ask: ReturnType<typeof socketAsk>, socket: string, host: string, force: boolean, yes: boolean): Promise<void> {
  const plan = answerOf(await ask({ cmd: "switchover", target: null, force, check: true, host }), "switchover");
  process.stderr.write(`${plan.message}\n`);
  const forced = force ? ` (--force: even if ${host}'s standbys hold no schedule for this epoch, LOSING its remaining slots)` : "";
  await confirmSteps([`hand signing over from this host to ${host} at the next safe gap (this host's runners are fenced first)${forced}`], yes, terminalPrompt());
  const started = Date.now();
  const ac = new AbortController();
  const progress = followHandover(socket, ac.signal, (line) => process.stderr.write(`${line}\n`));
  try {
    const done = answerOf(await ask({ cmd: "switchover", target: null, force, check: false, host }, SWITCHOVER_WAIT_MS), "switchover");
    process.stdout.write(`${done.message} (${((Date.now() - started) / 1000).toFixed(1)} s in all)\n`);
  } finally {
    ac.abort();
    await progress;
  }
}
