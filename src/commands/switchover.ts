import { defineCommand } from "citty";
import { configArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import { SWITCHOVER_WAIT_MS } from "../control/index.ts";
import { controlSocketPath } from "../control/paths.ts";
import { EXIT_FAILURE, UserError } from "../errors.ts";
import { answerOf, runnerId, socketAsk } from "../ops/ask.ts";
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
      "Example: jorm-master switchover 1 --yes",
  },
  args: {
    ...configArgs,
    runner: { type: "positional", description: "Runner id to move the key to (default: the best standby)", required: false, valueHint: "N" },
    force: { type: "boolean", description: "Allow a target lacking some of the coming slots (they are lost)", default: false },
    yes: { type: "boolean", description: "Do not ask", default: false },
  },
  async run({ args }) {
    const target = args.runner === undefined ? null : runnerId(args.runner, "switchover");
    const config = await loadConfig(args.config);
    const ask = socketAsk(controlSocketPath(config.systemd.scope));
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
