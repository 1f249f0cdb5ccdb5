// Unit files rendered from the configuration. The templates live in systemd/ and are embedded in the
// binary as text, so an installed jorm-master can always write the units that match its version.

import masterTemplateText from "../../systemd/jorm_master.service" with { type: "text" };
import runnerTemplateText from "../../systemd/jorm_runner@.service" with { type: "text" };
import { isIP } from "node:net";
import { ConfigError } from "../errors.ts";
import type { ResolvedConfig, Scope } from "../config/types.ts";

export const MASTER_TEMPLATE: string = masterTemplateText;
export const RUNNER_TEMPLATE: string = runnerTemplateText;

/** Credential name under which systemd hands the node secret to a unit ($CREDENTIALS_DIRECTORY/node_secret). */
export const SECRET_CREDENTIAL = "node_secret";

export interface UnitInput {
  config: ResolvedConfig;
  /** The configuration file the units pass with --config (its final path, not a staging path) */
  configPath: string;
  /** The installed jorm-master executable */
  execPath: string;
  /**
   * The runners' group (system scope): the runner user's primary group. Default: a group named like
   * the user, which is what install's `useradd --user-group` creates.
   */
  runnerGroup?: string;
}

/** A group name systemd accepts in Group= (and nothing a unit file would read as more). */
const GROUP_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/;

export interface RenderedUnit {
  /** File name, e.g. jorm_runner@.service */
  name: string;
  text: string;
}

export interface RenderedUnits {
  master: RenderedUnit;
  runner: RenderedUnit;
}

const RUNNER_UNIT_TEMPLATE = /^([A-Za-z0-9:_.\\-]+)@\{id\}\.service$/;
const MASTER_UNIT_NAME = /^[A-Za-z0-9:_.\\-]+\.service$/;

/** `jorm_runner@{id}.service` → `jorm_runner@.service`; anything else cannot be a systemd template. */
export function runnerTemplateName(runnerUnit: string): string {
  const m = RUNNER_UNIT_TEMPLATE.exec(runnerUnit);
  if (!m) {
    throw new ConfigError(
      `systemd.runner_unit: "${runnerUnit}" cannot be installed as a systemd template unit; ` +
        `use the form name@{id}.service, e.g. jorm_runner@{id}.service`,
    );
  }
  return `${m[1]}@.service`;
}

export function renderUnits(input: UnitInput): RenderedUnits {
  const { config } = input;
  const scope = config.systemd.scope;
  if (!MASTER_UNIT_NAME.test(config.systemd.masterUnit)) {
    throw new ConfigError(`systemd.master_unit: "${config.systemd.masterUnit}" is not a service unit name like jorm_master.service`);
  }
  const exec = unitPath(input.execPath, "the jorm-master executable");
  const configPath = unitPath(input.configPath, "the configuration file");
  const user = scope === "system" ? `User=${config.systemd.user}` : "";
  // User managers here cannot provide credentials (the file never appears), so the user scope reads the path.
  const credential = scope === "system" ? `LoadCredential=${SECRET_CREDENTIAL}:${unitPath(config.nodeSecretPath, "node_secret")}` : "";
  const common = { EXEC: exec, CONFIG: configPath, USER: user, WANTED_BY: scope === "system" ? "multi-user.target" : "default.target" };

  const master = fill(MASTER_TEMPLATE, scope, {
    ...common,
    // The master runs as root so it may start system units; as a user unit it runs as that user.
    USER: "",
    // Its primary group is the runners' group: the control socket is born with it (README).
    GROUP: scope === "system" ? `Group=${runnerGroup(input)}` : "",
    CREDENTIAL: credential,
    IP_ADDRESS: ipAddressLines(config),
  });
  const runner = fill(RUNNER_TEMPLATE, scope, {
    ...common,
    CREDENTIAL: config.keyMode === "boot" ? credential : "",
    READ_WRITE_PATHS: readWritePaths(config),
  });
  return {
    master: { name: config.systemd.masterUnit, text: master },
    runner: { name: runnerTemplateName(config.systemd.runnerUnitTemplate), text: runner },
  };
}

function runnerGroup(input: UnitInput): string {
  const group = input.runnerGroup ?? input.config.systemd.user;
  if (!GROUP_NAME.test(group)) throw new ConfigError(`the runners' group "${group}" is not a group name a unit file can carry`);
  return group;
}

/**
 * Fill {{NAME}} placeholders and keep `@system:`/`@user:` lines only for their scope. A line that is
 * only a placeholder and renders empty disappears, so optional settings leave no blank line.
 */
export function fill(template: string, scope: Scope, values: Record<string, string>): string {
  const out: string[] = [];
  for (const raw of template.split("\n")) {
    let line = raw;
    const scoped = /^@(system|user):(.*)$/.exec(line);
    if (scoped) {
      if (scoped[1] !== scope) continue;
      line = scoped[2]!;
    }
    const onlyPlaceholder = /^\{\{[A-Z_]+\}\}$/.test(line.trim());
    line = line.replace(/\{\{([A-Z_]+)\}\}/g, (_, name: string) => {
      const value = values[name];
      if (value === undefined) throw new Error(`unit template placeholder {{${name}}} has no value`);
      return value;
    });
    if (onlyPlaceholder && line.trim() === "") continue;
    out.push(line);
  }
  return out.join("\n");
}

/** Paths go into unit files verbatim: `%` starts a specifier and whitespace splits arguments. */
export function unitPath(path: string, what: string): string {
  if (!path.startsWith("/")) throw new ConfigError(`${what} must be an absolute path for a unit file, found "${path}"`);
  if (/[\s"'\\]/.test(path)) {
    throw new ConfigError(`${what} "${path}" contains whitespace, a quote or a backslash; unit files need a plain path`);
  }
  return path.replaceAll("%", "%%");
}

/**
 * Each runner may write only its own storage: one ReadWritePaths= with %i when the storage paths
 * follow one pattern in the runner id, else every runner's directory. `-` tolerates a missing dir
 * (the runner creates it, which then fails with a clear message instead of 226/NAMESPACE).
 */
function readWritePaths(config: ResolvedConfig): string {
  const storages = config.runners.map((r) => unitPath(r.storage, `runner_storage of runner ${r.id}`));
  const pattern = idPattern(config.runners.map((r) => ({ id: r.id, value: r.storage })));
  if (pattern !== null) return `ReadWritePaths=-${pattern.before.replaceAll("%", "%%")}%i${pattern.after.replaceAll("%", "%%")}`;
  return `ReadWritePaths=${storages.map((s) => `-${s}`).join(" ")}`;
}

/** Find a split `before + id + after` that produces every value from its runner id. */
export function idPattern(values: { id: number; value: string }[]): { before: string; after: string } | null {
  const first = values[0];
  if (!first) return null;
  const idText = String(first.id);
  for (let at = first.value.lastIndexOf(idText); at >= 0; at = at === 0 ? -1 : first.value.lastIndexOf(idText, at - 1)) {
    const before = first.value.slice(0, at);
    const after = first.value.slice(at + idText.length);
    if (values.every((v) => v.value === `${before}${v.id}${after}`)) return { before, after };
  }
  return null;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$/;

/**
 * The master only talks to its runners' REST ports and its alert channels, unless PoolTool is on
 * (internet) or metrics are served beyond loopback (a remote Prometheus): then it keeps the network
 * open. IPAddressAllow= takes addresses, not host names: a runner or an alert channel on an IP
 * literal is allowed by address; one behind a host name (api.telegram.org, hooks.slack.com) opens
 * the network, as PoolTool does, since its addresses are unknown and change.
 */
function ipAddressLines(config: ResolvedConfig): string {
  if (config.pooltool !== null) return "";
  const metricsHost = config.metricsListen === null ? null : hostOf(config.metricsListen);
  if (metricsHost !== null && !LOOPBACK.test(metricsHost)) return "";
  const hosts = [...config.runners.map((r) => hostOf(r.restListen)), ...alertChannelHosts(config).map((c) => c.host)];
  const remote = [...new Set(hosts)].filter((h) => !LOOPBACK.test(h));
  if (remote.some((h) => isIP(h) === 0)) return ""; // a host name: addresses unknown
  return ["IPAddressDeny=any", `IPAddressAllow=localhost${remote.map((h) => ` ${h}`).join("")}`].join("\n");
}

/** Each alert channel's host as IPAddressAllow= would name it (an IPv6 literal without brackets). */
function alertChannelHosts(config: ResolvedConfig): { name: string; host: string }[] {
  return (config.alerts?.channels ?? []).map((c) => {
    const url = c.type === "webhook" ? c.url : c.apiUrl;
    let host: string;
    try {
      host = new URL(url).hostname;
    } catch {
      host = url; // config validation rejects such a URL; a non-address keeps the network open
    }
    return { name: c.name, host: /^\[(.*)\]$/.exec(host)?.[1] ?? host };
  });
}

function hostOf(listen: string): string {
  const m = /^\[(.*)\]:\d+$/.exec(listen) ?? /^(.*):\d+$/.exec(listen);
  return m ? m[1]! : listen;
}

/**
 * Where an installed master unit contradicts the configuration the daemon reads: its IP allow/deny
 * lines were rendered from the configuration at install time, so a feature turned on later (PoolTool,
 * alert channels, metrics beyond loopback, a runner on another host) is silently blocked by systemd. One line per
 * contradiction, each saying how to fix it; none when the unit matches.
 */
export function installedUnitWarnings(config: ResolvedConfig, installedMasterText: string, unitPath: string): string[] {
  const ipLines = (text: string) =>
    text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^IPAddress(Deny|Allow)=/.test(l))
      .sort();
  const installed = ipLines(installedMasterText);
  const wanted = ipLines(ipAddressLines(config));
  if (installed.join("\n") === wanted.join("\n")) return [];
  const denies = installed.some((l) => /^IPAddressDeny=\s*\S/.test(l));
  if (!denies) return [];
  const why: string[] = [];
  if (config.pooltool !== null) why.push("PoolTool is on, but the unit lets the daemon reach only localhost: PoolTool is unreachable");
  const metricsHost = config.metricsListen === null ? null : hostOf(config.metricsListen);
  if (metricsHost !== null && !LOOPBACK.test(metricsHost)) why.push(`metrics listen on ${config.metricsListen}, but the unit denies traffic beyond localhost`);
  const allowed = installed.filter((l) => l.startsWith("IPAddressAllow=")).flatMap((l) => l.slice("IPAddressAllow=".length).split(/\s+/).filter((t) => t !== ""));
  const reachable = (host: string) => allowed.includes("any") || allowed.includes(host) || (LOOPBACK.test(host) && allowed.includes("localhost"));
  const blocked = alertChannelHosts(config).filter((c) => !reachable(c.host));
  if (blocked.length > 0) {
    const names = blocked.map((c) => `"${c.name}" (${c.host})`).join(", ");
    why.push(`alerts go to ${names}, but the unit lets the daemon reach only ${allowed.join(" ") || "nothing"}: those alerts cannot leave the host`);
  }
  if (why.length === 0) why.push(`its ${installed.join(" ")} differs from what this configuration needs (${wanted.join(" ") || "no IP restriction"})`);
  return why.map((w) => `${unitPath}: ${w}; re-run jorm-master install (or add a drop-in) so the unit matches the configuration`);
}
