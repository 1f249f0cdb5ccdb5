import { defineCommand } from "citty";
import { homedir, userInfo } from "node:os";

export const installArgs = {
  runners: { type: "string", description: "Number of runners (default: the existing config's cnt_runners; asked in a terminal)", valueHint: "N" },
  jormungandr: { type: "string", description: "jormungandr executable the runner symlinks jormungandr_runner_N point to", valueHint: "PATH" },
  "genesis-hash": { type: "string", description: "Genesis block hash (64 hex), written to the genesis hash file", valueHint: "HASH" },
  "genesis-file": { type: "string", description: "File holding the genesis block hash (instead of --genesis-hash)", valueHint: "FILE" },
  "node-config": {
    type: "string",
    description: "jormungandr config template for the runners; each gets its own rest.listen, storage and p2p port (template's port + N). Default: a minimal local config",
    valueHint: "TEMPLATE",
  },
  secret: { type: "string", description: "Node secret YAML, copied to the configured node_secret path with mode 0600", valueHint: "FILE" },
  user: { type: "string", description: "User the runners run as, created when missing (system scope; default cardano)", valueHint: "NAME" },
  scope: { type: "string", description: "system (systemctl, /etc, /usr/local/bin) or user (systemctl --user, paths under $HOME); default system", valueHint: "system|user" },
  "key-mode": { type: "string", description: "For a new config: boot (runners start with --secret) or rest (key added over REST); default boot", valueHint: "boot|rest" },
  cluster: {
    type: "string",
    description: "Multi-host mode: write the config's cluster section (keys given replace those in an existing config, others are kept): name=THIS_HOST,etcd=URL[,URL...][,prefix=P][,lease_ttl=S][,etcd_timeout=S]",
    valueHint: "name=H,etcd=URL,...",
  },
  root: { type: "string", description: "Stage everything under DIR (packaging, tests): no systemctl, no useradd, no chown", valueHint: "DIR" },
  "config-dir": { type: "string", description: "Config dir (system: /etc/cardano; user: ~/.config/jorm-master)", valueHint: "DIR" },
  "bin-dir": { type: "string", description: "Where jorm-master and the runner symlinks go (system: /usr/local/bin; user: ~/.local/bin)", valueHint: "DIR" },
  "storage-dir": { type: "string", description: "Parent of the runners' storage dirs (system: /home/<user>; user: ~/.local/share/jorm-master)", valueHint: "DIR" },
  "unit-dir": { type: "string", description: "Unit file dir (system: /etc/systemd/system; user: ~/.config/systemd/user)", valueHint: "DIR" },
  "state-dir": { type: "string", description: "Where the install manifest goes (system: /var/lib/jorm-master; user: ~/.local/state/jorm-master)", valueHint: "DIR" },
  "dry-run": { type: "boolean", description: "Print the plan, change nothing", default: false },
  start: { type: "boolean", description: "Enable and start the master (--no-start: only install)", default: true, negativeDescription: "Install, but do not enable or start the master" },
  force: { type: "boolean", description: "Overwrite files changed since install (the plan shows the difference; asks first)", default: false },
  yes: { type: "boolean", description: "Do what cannot be undone (fewer runners, --force) without asking; needed without a terminal", default: false },
} as const;

export default defineCommand({
  meta: {
    name: "install",
    description:
      "Install jorm-master and its runners on this server (idempotent; prints its plan first).\n" +
      "Places the binary, jorm_master.yaml (an existing one is kept, only cnt_runners updated), one node\n" +
      "config, storage dir and jormungandr symlink per runner, the units jorm_master.service and\n" +
      "jorm_runner@.service; then daemon-reload and enable --now the master.\n" +
      "A second run says \"nothing to do\". Files you changed\n" +
      "are kept unless --force. Fewer runners than before: the extra runner units are stopped and disabled.\n" +
      "What cannot be undone (fewer runners, --force) is asked for on a terminal; without one it needs --yes.\n" +
      "Example: sudo jorm-master install --runners 3 --jormungandr /usr/local/bin/jormungandr_546497fc \\\n" +
      "           --genesis-hash 8e4d2a34...b676 --secret ./node_secret.yaml --node-config ./itn.yaml\n" +
      "Cluster (each host its own name, the same etcd): sudo jorm-master install --runners 2 \\\n" +
      "           --cluster name=host-a,etcd=http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379",
  },
  args: installArgs,
  async run({ args }) {
    const { realInstallDeps } = await import("../install/deps.ts");
    const { runInstall } = await import("../install/install.ts");
    await runInstall(
      {
        runners: args.runners,
        jormungandr: args.jormungandr,
        genesisHash: args["genesis-hash"],
        genesisFile: args["genesis-file"],
        nodeConfig: args["node-config"],
        secret: args.secret,
        user: args.user,
        scope: args.scope,
        keyMode: args["key-mode"],
        cluster: args.cluster,
        root: args.root,
        dryRun: args["dry-run"],
        start: args.start,
        force: args.force,
        yes: args.yes,
        dirs: {
          configDir: args["config-dir"],
          binDir: args["bin-dir"],
          storageDir: args["storage-dir"],
          unitDir: args["unit-dir"],
          stateDir: args["state-dir"],
        },
      },
      realInstallDeps({ home: homedir(), currentUser: userInfo().username }),
    );
  },
});
