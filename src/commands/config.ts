import { defineCommand } from "citty";
import { existsSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { stringify } from "yaml";
import { configArgs } from "../config/args.ts";
import { DEFAULT_CONFIG_YAML } from "../config/default-text.ts";
import { configPath, loadConfigWithNotes, type LoadedConfig } from "../config/load.ts";
import { UserError } from "../errors.ts";
import { confirmSteps, terminalPrompt } from "../ui/confirm.ts";

const seconds = (ms: number) => `${ms / 1000} s`;

/** The short summary `config check` prints: what the daemon will do with this file. */
export function checkSummary({ config: c, notes }: LoadedConfig): string {
  const out: string[] = [];
  out.push(`${c.source ?? "built-in defaults"}: OK`);
  const keyHow =
    c.keyMode === "boot"
      ? "boot (runners start with --secret and compute their leader schedule after bootstrap)"
      : "rest (runners start passive; the master adds the key over REST)";
  out.push(`runners:   ${c.cntRunners}, key mode ${keyHow}`);
  for (const r of c.runners) {
    out.push(`  #${r.id}  ${r.restListen.padEnd(21)} ${r.unit.padEnd(26)} ${r.nodeConfig}  ${r.storage}  ${r.binary}`);
  }
  out.push(`secret:    ${c.nodeSecretPath}   genesis hash: ${c.genesisHashPath}`);
  out.push(
    `systemd:   ${c.systemd.scope} scope, master ${c.systemd.masterUnit}, runners ${c.systemd.runnerUnitTemplate}, run as ${c.systemd.user}`,
  );
  out.push(
    `timing:    loop ${seconds(c.loopPeriodMs)}, REST timeout ${seconds(c.restTimeoutMs)}, act ${seconds(c.eventActionMs)} before events, ` +
      `start runners ${seconds(c.startBeforeEventMs)} before, slot window -${seconds(c.slotGuardMs)}/+${seconds(c.slotMarginMs)}`,
  );
  out.push(
    `health:    restart after ${c.maxOffset} blocks behind (grace ${seconds(c.bootCatchUpMs)} after boot), or ${seconds(c.maxBootMs)} bootstrapping`,
  );
  out.push(`metrics:   ${c.metricsListen === null ? "off" : `http://${c.metricsListen}/metrics`}`);
  out.push(
    `PoolTool:  ${c.pooltool === null ? "off" : `on (pool ${c.pooltool.poolId}, tip every ${seconds(c.pooltool.sendWaitMs)}, majority max every ${seconds(c.pooltool.recvWaitMs)})`}`,
  );
  out.push(`log level: ${c.logLevel}`);
  if (notes.length > 0) {
    out.push("notes:");
    for (const note of notes) out.push(`  - ${note}`);
  }
  return `${out.join("\n")}\n`;
}

const init = defineCommand({
  meta: {
    name: "init",
    description:
      "Write the commented default configuration (3 runners, the seed's paths and ports 3100-3102).\n" +
      "Refuses to overwrite an existing file unless --force (which asks first, or needs --yes without a\n" +
      "terminal); creates the parent directory.\n" +
      "Example: jorm-master config init --config /etc/cardano/jorm_master.yaml",
  },
  args: {
    ...configArgs,
    force: { type: "boolean", description: "Overwrite an existing file (asks first; --yes without a terminal)", default: false },
    yes: { type: "boolean", description: "With --force: overwrite without asking", default: false },
  },
  async run({ args }) {
    const file = configPath(args.config);
    const exists = existsSync(file);
    if (exists && !args.force) {
      throw new UserError(
        `${file} already exists; not overwriting it.\n` +
          `Check it with: jorm-master config check --config ${file}\n` +
          `Or replace it with the defaults: jorm-master config init --force --config ${file}`,
      );
    }
    if (exists) await confirmSteps([`replace ${file} with the defaults (its settings are lost)`], args.yes, terminalPrompt());
    await mkdir(dirname(file), { recursive: true });
    // Write beside it and rename, so a crash never leaves a truncated config behind
    const temporary = `${file}.tmp-${process.pid}`;
    await writeFile(temporary, DEFAULT_CONFIG_YAML, { mode: 0o644 });
    await rename(temporary, file);
    process.stdout.write(`Wrote ${file}\nEdit it, then run: jorm-master config check --config ${file}\n`);
  },
});

const check = defineCommand({
  meta: {
    name: "check",
    description:
      "Validate the configuration and print a short summary of what the daemon will run\n" +
      "(runners with ports and units, key mode, PoolTool on/off, notes). Exit 0 when valid, 78 when not.\n" +
      "Example: jorm-master config check --config /etc/cardano/jorm_master.yaml",
  },
  args: { ...configArgs },
  async run({ args }) {
    process.stdout.write(checkSummary(await loadConfigWithNotes(args.config)));
  },
});

const print = defineCommand({
  meta: {
    name: "print",
    description:
      "Print the resolved configuration as YAML: defaults filled in, durations in ms, paths expanded per runner.\n" +
      "The node secret appears as its path only, never its content.\n" +
      "Example: jorm-master config print | less",
  },
  args: { ...configArgs },
  async run({ args }) {
    const { config } = await loadConfigWithNotes(args.config);
    process.stdout.write(`# resolved from ${config.source ?? "built-in defaults"}; durations in ms\n${stringify(config)}`);
  },
});

export default defineCommand({
  meta: {
    name: "config",
    description:
      "Create, validate and show the configuration.\n" +
      "Default /etc/cardano/jorm_master.yaml, or $JORM_MASTER_CONFIG, or --config PATH. The seed master's\n" +
      "files are accepted unchanged.\n" +
      "Example: jorm-master config init && jorm-master config check",
  },
  subCommands: { init, check, print },
});
