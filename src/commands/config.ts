import { defineCommand } from "citty";
import { createElection } from "../cluster/election.ts";
import { createGatewayClient } from "../cluster/gateway.ts";
import { leaseSafety, takeoverSafeAtMs } from "../cluster/deadline.ts";
import type { MemberVersion } from "../cluster/etcd.ts";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { configArgs } from "../config/args.ts";
import { DEFAULT_CONFIG_YAML } from "../config/default-text.ts";
import { configPath, loadConfigWithNotes, type LoadedConfig } from "../config/load.ts";
import { UserError } from "../errors.ts";
import { layoutFor } from "../install/layout.ts";
import { installedUnitWarnings } from "../systemd/units.ts";
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
  if (c.cluster !== null) {
    const k = c.cluster;
    out.push(`cluster:   this host is ${k.name}; signer key ${k.prefix}/signer, lease ${k.leaseTtlS} s; etcd ${k.etcdEndpoints.join(", ")} (deadline ${seconds(k.etcdTimeoutMs)})`);
  }
  if (notes.length > 0) {
    out.push("notes:");
    for (const note of notes) out.push(`  - ${note}`);
  }
  return `${out.join("\n")}\n`;
}

/** What `config check` found in etcd, one line. */
export function etcdFinding(self: string, r: { holder: string | null; endpoint: string } | { error: string }): string {
  if ("error" in r) return `etcd:      unreachable (${r.error}); the daemon runs, but this host signs only once it holds the lease`;
  const who = r.holder === null ? "no host holds the signer key" : r.holder === self ? "this host holds the signer key" : `${r.holder} holds the signer key`;
  return `etcd:      reached at ${r.endpoint}; ${who}`;
}

/** What `config check` found about etcd's versions: whether a takeover waits for an early lease end. */
export function takeoverFinding(members: readonly MemberVersion[] | null, ttlS: number): string {
  const safety = leaseSafety(members);
  if (!safety.earlyEndPossible) return `takeover:  a host that takes the signer key over signs at once: ${safety.why}`;
  const waitS = (takeoverSafeAtMs(0, ttlS) / 1000).toFixed(1);
  return `takeover:  a host that takes the signer key over waits ${waitS} s first: ${safety.why}`;
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
      "Warns (stderr, still exit 0) when the installed master unit contradicts it, e.g. PoolTool on while\n" +
      "the unit, rendered when PoolTool was off, denies IP traffic beyond localhost.\n" +
      "Example: jorm-master config check --config /etc/cardano/jorm_master.yaml",
  },
  args: {
    ...configArgs,
    "unit-dir": { type: "string", description: "Where the units are installed (default: the scope's, as install uses)", valueHint: "DIR" },
  },
  async run({ args }) {
    const loaded = await loadConfigWithNotes(args.config);
    process.stdout.write(checkSummary(loaded));
    for (const w of unitWarnings(loaded.config, args["unit-dir"])) process.stderr.write(`warning: ${w}\n`);
    const k = loaded.config.cluster;
    if (k !== null) {
      // The file is valid either way (exit 0); what etcd says is reported, an unreachable one warned of.
      const etcd = createGatewayClient({ endpoints: k.etcdEndpoints, callTimeoutMs: k.etcdTimeoutMs });
      const r = await createElection({ etcd, prefix: k.prefix, candidate: k.name, ttlS: k.leaseTtlS }).holder();
      const line = etcdFinding(k.name, r.ok ? { holder: r.value?.value ?? null, endpoint: r.endpoint } : { error: r.error.message });
      if (r.ok) process.stdout.write(`${line}\n`);
      else process.stderr.write(`warning: ${line}\n`);
      if (r.ok) {
        const versions = await etcd.memberVersions();
        process.stdout.write(`${takeoverFinding(versions.ok ? versions.value : null, k.leaseTtlS)}\n`);
      }
    }
  },
});

/** Contradictions between the installed master unit (if any) and the configuration. */
export function unitWarnings(config: LoadedConfig["config"], unitDir?: string): string[] {
  const dir = unitDir ?? layoutFor(config.systemd.scope, homedir(), config.systemd.user).unitDir;
  const path = join(dir, config.systemd.masterUnit);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return []; // not installed (yet): nothing to contradict
  }
  return installedUnitWarnings(config, text, path);
}

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
