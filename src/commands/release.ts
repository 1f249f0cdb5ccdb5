import { defineCommand } from "citty";
import { configArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import { controlSocketPath } from "../control/paths.ts";
import { answerOf, runnerId, socketAsk } from "../ops/ask.ts";

export default defineCommand({
  meta: {
    name: "release",
    description:
      "End a hold (jorm-master hold): the daemon supervises the runner again, and starts it if stopped.\n" +
      "Example: jorm-master release 2",
  },
  args: {
    ...configArgs,
    runner: { type: "positional", description: "Runner id", required: true, valueHint: "N" },
  },
  async run({ args }) {
    const id = runnerId(args.runner, "release");
    const config = await loadConfig(args.config);
    const r = answerOf(await socketAsk(controlSocketPath(config.systemd.scope))({ cmd: "release", id }), `release #${id}`);
    process.stdout.write(`${r.message}\n`);
  },
});
