import { defineCommand } from "citty";
import { configArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import { BOOT_PERMIT_WAIT_MS } from "../master/bootpolicy.ts";
import { decideBootMode, prepareRunner, shellQuote } from "../runner/prepare.ts";

// ExecStart of jorm_runner@.service: src/runner/prepare.ts checks everything the node needs and
// builds its command line; this command prints it or becomes the node (execve).

export default defineCommand({
  meta: {
    name: "runner",
    description:
      "Start runner N's Jormungandr node (the ExecStart of jorm_runner@.service).\n" +
      "Checks the runner's symlink, the genesis hash, its node config, its storage and (key mode boot) the\n" +
      "secret, each failing with one line and exit 78, then replaces itself with the node, so the unit's\n" +
      "MainPID is jormungandr. The node gets --genesis-block-hash, --config, --rest-listen, --storage\n" +
      "and, in key mode boot only, --secret ($CREDENTIALS_DIRECTORY/node_secret under systemd).\n" +
      "Example: jorm-master runner 0 --print",
  },
  args: {
    id: { type: "positional", description: "Runner number, 0 .. cnt_runners-1", required: true, valueHint: "N" },
    ...configArgs,
    print: { type: "boolean", description: "Print the node's command line instead of starting it (changes nothing on disk)", default: false },
  },
  async run({ args }) {
    const config = await loadConfig(args.config);
    // --print shows what would run now; it does not wait for a starting master.
    const boot = config.keyMode === "boot" ? await decideBootMode(config, String(args.id), { waitMs: args.print ? 0 : BOOT_PERMIT_WAIT_MS }) : null;
    const masterActive = boot === null || boot.key;
    // --print only prints: nothing is created (the storage dir included)
    const command = prepareRunner(config, String(args.id), process.env, masterActive, !args.print);
    if (command.passive) {
      process.stderr.write(
        `${config.systemd.masterUnit} ${boot?.masterRunning === false ? "is not active" : `runs but ${boot?.why ?? "?"}`}: starting runner ${String(args.id)} without --secret, so no second signer can appear while nobody demotes it; the master gives it the key when it runs\n`,
      );
    }
    if (args.print) {
      const runner = config.runners.find((r) => String(r.id) === String(args.id));
      if (command.storageMissing && runner) process.stderr.write(`storage dir ${runner.storage} does not exist yet; starting the runner creates it\n`);
      process.stdout.write(`${command.argv.map(shellQuote).join(" ")}\n`);
      return;
    }
    process.execve!(command.file, command.argv, process.env as Record<string, string>);
  },
});
