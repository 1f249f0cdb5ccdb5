import { defineCommand } from "citty";
import { configArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import { controlSocketPath } from "../control/paths.ts";
import { answerOf, runnerId, socketAsk } from "../ops/ask.ts";

export default defineCommand({
  meta: {
    name: "hold",
    description:
      "Take a runner out of supervision for maintenance, through the running daemon.\n" +
      "A held runner is never promoted nor given the key at the boundary, and is not started, restarted\n" +
      "or killed by housekeeping: one you stop by hand stays stopped. It is still fenced if it could\n" +
      "sign beside the signer. Holding the signer first moves the key to a standby at the next safe gap.\n" +
      "Holds survive a daemon restart (holds.json in the state dir); `status` and the metric\n" +
      "jorm_master_runner_held show them. `jorm-master release N` ends one.\n" +
      'Example: jorm-master hold 2 --reason "disk swap" && systemctl stop jormungandr_runner_2',
  },
  args: {
    ...configArgs,
    runner: { type: "positional", description: "Runner id", required: true, valueHint: "N" },
    reason: { type: "string", description: "Why (shown in status and logs)", valueHint: "TEXT" },
  },
  async run({ args }) {
    const id = runnerId(args.runner, "hold");
    const config = await loadConfig(args.config);
    const r = answerOf(await socketAsk(controlSocketPath(config.systemd.scope))({ cmd: "hold", id, reason: args.reason ?? "" }), `hold #${id}`);
    process.stdout.write(`${r.message}\n`);
  },
});
