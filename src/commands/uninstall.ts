import { defineCommand } from "citty";
import { homedir, userInfo } from "node:os";

export default defineCommand({
  meta: {
    name: "uninstall",
    description:
      "Remove exactly what `jorm-master install` created (from its manifest).\n" +
      "Stops and disables the master and runner units, removes units, configs, symlinks and the binary\n" +
      "it copied. Runner storage, the node secret and the run-as user stay unless --purge; files changed\n" +
      "since install stay unless --force. --purge and --force ask first on a terminal; without one they need --yes.\n" +
      "Example: sudo jorm-master uninstall --dry-run",
  },
  args: {
    scope: { type: "string", description: "system or user, as given to install (default system)", valueHint: "system|user" },
    root: { type: "string", description: "The staging dir given to install --root", valueHint: "DIR" },
    "state-dir": { type: "string", description: "Where install put its manifest, if you moved it with --state-dir", valueHint: "DIR" },
    purge: { type: "boolean", description: "Also remove runner storage, the node secret and the user install created", default: false },
    force: { type: "boolean", description: "Also remove files changed since install", default: false },
    "dry-run": { type: "boolean", description: "Print the plan, change nothing", default: false },
    yes: { type: "boolean", description: "Do what cannot be undone (--purge, --force) without asking; needed without a terminal", default: false },
  },
  async run({ args }) {
    const { realInstallDeps } = await import("../install/deps.ts");
    const { runUninstall } = await import("../install/install.ts");
    await runUninstall(
      { scope: args.scope, root: args.root, purge: args.purge, force: args.force, dryRun: args["dry-run"], yes: args.yes, stateDir: args["state-dir"] },
      realInstallDeps({ home: homedir(), currentUser: userInfo().username }),
    );
  },
});
