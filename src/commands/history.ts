import { defineCommand } from "citty";
import { configArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import { stateDirsToRead } from "../control/paths.ts";
import { EXIT_FAILURE, UserError } from "../errors.ts";
import { HISTORY_KINDS } from "../history/events.ts";
import { HISTORY_FILE, historyDir, readHistory } from "../history/log.ts";
import { historyJsonLines, parseKinds, parseSince, renderHistory } from "../history/render.ts";

export default defineCommand({
  meta: {
    name: "history",
    description:
      "Show what the daemon did and saw, from the event log in its state directory.\n" +
      "Failovers, fences, starts, stops and restarts, boundary hand-outs, produced, rejected and missed\n" +
      "slots, no-signer and two-holder alarms, daemon start and stop; oldest first, in local time.\n" +
      `Reads <state dir>/${HISTORY_FILE} and its rotated files (works without a daemon).\n` +
      `Kinds: ${HISTORY_KINDS.join(", ")}.\n` +
      "A prefix names a family: --kind slot is every slot_* kind.\n" +
      "Example: jorm-master history --since 6h --kind failover,fence\n" +
      "Example: jorm-master history --since 2026-11-29T00:00Z --json | jq -c 'select(.kind==\"slot_missed\")'",
  },
  args: {
    ...configArgs,
    since: { type: "string", description: "Only events after this: 90s, 15m, 1h, 2d, or an ISO date/time", valueHint: "WHEN" },
    kind: { type: "string", description: "Only these kinds, comma-separated (repeatable)", valueHint: "KIND" },
    json: { type: "boolean", description: "One JSON object per line, as in the file", default: false },
    "state-dir": { type: "string", description: "Read the log here instead of the configured scope's state directory", valueHint: "DIR" },
  },
  async run({ args, rawArgs }) {
    const sinceMs = parseSince(args.since, Date.now());
    // citty keeps the last of a repeated option: read every --kind from the raw arguments.
    const kinds = parseKinds(repeated(rawArgs, "kind"));
    const dir = args["state-dir"] ?? historyDir(stateDirsToRead((await loadConfig(args.config)).systemd.scope));
    let read: ReturnType<typeof readHistory>;
    try {
      read = readHistory(dir, { sinceMs, kinds });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === "EACCES" || code === "EPERM" ? "permission denied (the log is the daemon's: run as root)" : e instanceof Error ? e.message : String(e);
      throw new UserError(`cannot read the event log in ${dir}: ${why}`, EXIT_FAILURE);
    }
    const { records, skipped, files } = read;
    if (skipped > 0) process.stderr.write(`${skipped} line${skipped === 1 ? "" : "s"} in the log could not be read and ${skipped === 1 ? "was" : "were"} skipped\n`);
    if (files.length === 0) {
      process.stderr.write(`no event log in ${dir} yet (the daemon writes ${HISTORY_FILE} there once it runs)\n`);
      return;
    }
    if (args.json) return void process.stdout.write(historyJsonLines(records));
    if (records.length === 0) return void process.stderr.write("no events match\n");
    process.stdout.write(`${renderHistory(records)}\n`);
  },
});

function repeated(rawArgs: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === `--${name}` && i + 1 < rawArgs.length) out.push(rawArgs[++i]!);
    else if (a.startsWith(`--${name}=`)) out.push(a.slice(name.length + 3));
  }
  return out;
}
