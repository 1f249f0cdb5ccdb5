// One logger for the whole program, tagged per subsystem: `logger("master").warn(...)`.
// Under systemd (JOURNAL_STREAM set) or whenever stderr is not a terminal, every line is plain text
// prefixed with its syslog priority (<3> error, <4> warn, <6> info, <7> debug): journald strips the
// prefix and files the line at that priority, so `journalctl -p warning` shows exactly the warnings.
// On a terminal the output is consola's coloured one. Logs always go to stderr: stdout is for
// command output (`config print`, `status --json`).

import { formatWithOptions } from "node:util";
import { createConsola, LogLevels, type ConsolaInstance, type ConsolaReporter, type LogObject } from "consola";
import { ConfigError, EXIT_USAGE, UserError } from "./errors.ts";

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_LEVEL_ENV = "JORM_MASTER_LOG_LEVEL";

const CONSOLA_LEVEL: Record<LogLevel, number> = {
  error: LogLevels.error,
  warn: LogLevels.warn,
  info: LogLevels.info,
  debug: LogLevels.debug,
};

/** syslog priority for a consola level: fatal→2 crit, error→3, warn→4, log/info/success→6, debug/trace→7 */
export function syslogPriority(consolaLevel: number): number {
  if (consolaLevel < 0) return 2;
  if (consolaLevel === LogLevels.error) return 3;
  if (consolaLevel === LogLevels.warn) return 4;
  if (consolaLevel <= LogLevels.info) return 6;
  return 7;
}

/** Plain journal lines for one log call: each line carries the priority, so a stack trace stays at its level. */
export function formatJournal(logObj: Pick<LogObject, "level" | "tag" | "args" | "message">): string {
  const priority = syslogPriority(logObj.level);
  const args = logObj.message !== undefined ? [logObj.message, ...logObj.args] : logObj.args;
  const text = formatWithOptions({ colors: false, depth: 4, breakLength: Infinity }, ...args);
  const tag = logObj.tag ? `[${logObj.tag}] ` : "";
  return text
    .split("\n")
    .map((line) => `<${priority}>${tag}${line}\n`)
    .join("");
}

/** Journal-style output when systemd captures it or when nobody is watching a terminal. */
export function wantsJournalFormat(env: Record<string, string | undefined>, stderrIsTTY: boolean): boolean {
  return (env.JOURNAL_STREAM !== undefined && env.JOURNAL_STREAM !== "") || !stderrIsTTY;
}

/** A bad --log-level is a usage error (64); a bad environment value is configuration (78). */
function parseLevel(value: string, origin: "flag" | "env"): LogLevel {
  const level = value.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel;
  const where = origin === "flag" ? "--log-level" : LOG_LEVEL_ENV;
  const message = `${where}: expected one of ${LOG_LEVELS.join(", ")}, found ${JSON.stringify(value)}`;
  throw origin === "flag" ? new UserError(message, EXIT_USAGE) : new ConfigError(message);
}

/** --log-level > $JORM_MASTER_LOG_LEVEL > the config's log_level > info */
export function effectiveLogLevel(
  flag: string | undefined,
  configLevel: LogLevel | undefined,
  env: Record<string, string | undefined> = process.env,
): LogLevel {
  if (flag !== undefined && flag !== "") return parseLevel(flag, "flag");
  const fromEnv = env[LOG_LEVEL_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return parseLevel(fromEnv, "env");
  return configLevel ?? "info";
}

// One threshold shared by every tagged logger (consola copies `level` into each child, so the
// filtering happens here and the instances themselves let everything through).
let threshold: number = CONSOLA_LEVEL.info;

function filtered(inner: ConsolaReporter): ConsolaReporter {
  return { log: (logObj, ctx) => (logObj.level <= threshold ? inner.log(logObj, ctx) : undefined) };
}

const journalReporter: ConsolaReporter = {
  log: (logObj) => {
    process.stderr.write(formatJournal(logObj));
  },
};

function createRoot(): ConsolaInstance {
  const journal = wantsJournalFormat(process.env, process.stderr.isTTY === true);
  if (journal) {
    return createConsola({ level: LogLevels.verbose, reporters: [filtered(journalReporter)] });
  }
  // Fancy (coloured) reporter, also under `bun test` where consola would pick the basic one
  // (`fancy` is a runtime option of consola's createConsola that its types omit)
  const fancyOption = { fancy: true };
  const fancy = createConsola({ level: LogLevels.verbose, ...fancyOption });
  const [reporter] = fancy.options.reporters;
  return createConsola({
    level: LogLevels.verbose,
    stdout: process.stderr,
    stderr: process.stderr,
    reporters: reporter ? [filtered(reporter)] : [],
  });
}

const root = createRoot();
threshold = CONSOLA_LEVEL[envLevelOrInfo()];

function envLevelOrInfo(): LogLevel {
  try {
    return effectiveLogLevel(undefined, undefined);
  } catch {
    return "info"; // reported properly when a command calls setupLogging
  }
}

const tagged = new Map<string, ConsolaInstance>();

/** The logger of one subsystem, e.g. logger("master"), logger("node"), logger("install"). */
export function logger(tag: string): ConsolaInstance {
  let instance = tagged.get(tag);
  if (!instance) {
    instance = root.withTag(tag);
    tagged.set(tag, instance);
  }
  return instance;
}

export function setLogLevel(level: LogLevel): void {
  threshold = CONSOLA_LEVEL[level];
}

export function getLogLevel(): LogLevel {
  return LOG_LEVELS.find((l) => CONSOLA_LEVEL[l] === threshold) ?? "info";
}

/** Call once a command knows its config: applies --log-level > env > config and returns the level used. */
export function setupLogging(flag: string | undefined, configLevel?: LogLevel): LogLevel {
  const level = effectiveLogLevel(flag, configLevel);
  setLogLevel(level);
  return level;
}
