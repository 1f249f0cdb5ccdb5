import { defineCommand } from "citty";
import { configArgs } from "../config/args.ts";
import { loadConfig } from "../config/load.ts";
import type { ResolvedConfig } from "../config/types.ts";
import { askDaemon, type AskResult } from "../control/client.ts";
import { controlSocketPath, stateDirsToRead } from "../control/paths.ts";
import { daemonViewSchema, type DaemonView } from "../control/protocol.ts";
import { EXIT_FAILURE, EXIT_USAGE, UserError } from "../errors.ts";
import type { HistoryRecord } from "../history/events.ts";
import { historyDir, readHistory } from "../history/log.ts";
import { gatherLeaders, type LeadersDeps } from "../leaders/gather.ts";
import { leadersModel, type LeadersModel } from "../leaders/model.ts";
import { leadersJson, renderLeaders } from "../leaders/render.ts";
import { httpNodeApi } from "../node/client.ts";

export interface LeadersRunOptions {
  epoch: number | null;
  json: boolean;
  write(text: string): void;
  /** Asks the running daemon for its view; absent: not asked */
  daemon?: () => Promise<AskResult<DaemonView>>;
  /** The event log's settled slots; absent: not read */
  history?: () => HistoryRecord[];
  /** Local time zone offset for the table (tests fix it) */
  offsetMin?: number;
  warn?(text: string): void;
}

export async function runLeaders(config: ResolvedConfig, deps: LeadersDeps, o: LeadersRunOptions): Promise<LeadersModel> {
  const [input, asked] = await Promise.all([gatherLeaders(config, deps), o.daemon ? o.daemon() : Promise.resolve(null)]);
  if (asked && (asked.kind === "failed" || asked.kind === "refused")) o.warn?.(`daemon: cannot ask it: ${asked.error}\n`);
  let history: HistoryRecord[] = [];
  try {
    history = o.history?.() ?? [];
  } catch (e) {
    o.warn?.(`event log: ${e instanceof Error ? e.message : String(e)}\n`);
  }
  let model: LeadersModel;
  try {
    model = leadersModel({ ...input, daemon: asked?.kind === "answer" ? asked.result : null, history }, o.epoch);
  } catch (e) {
    throw new UserError(`leaders: ${e instanceof Error ? e.message : String(e)}`, EXIT_FAILURE);
  }
  o.write(o.json ? `${leadersJson(model)}\n` : `${renderLeaders(model, o.offsetMin)}\n`);
  return model;
}

export default defineCommand({
  meta: {
    name: "leaders",
    description:
      "Show the pool's leader slots of an epoch and what became of each.\n" +
      "For the current epoch (or --epoch N): slot, time (UTC and local), the runners that have it in their\n" +
      "schedule, its status (pending; produced, with the block hash and the runner that produced it;\n" +
      "rejected, with the node's reason; missed; unknown when no readable log shows its outcome).\n" +
      "Reads every runner's GET /leaders/logs directly (read-only, works without the daemon), adds what a\n" +
      "running daemon remembers and the slots its event log settled (they outlive a runner's restart).\n" +
      "A runner's log lists only the epochs it computed: an earlier epoch comes from the event log.\n" +
      "Example: jorm-master leaders\n" +
      "Example: jorm-master leaders --epoch 231 --json | jq '.rows[] | select(.status==\"missed\")'",
  },
  args: {
    ...configArgs,
    epoch: { type: "string", description: "Epoch number (default: the current epoch)", valueHint: "N" },
    json: { type: "boolean", description: "One JSON object on stdout", default: false },
  },
  async run({ args }) {
    let epoch: number | null = null;
    if (args.epoch !== undefined) {
      if (!/^\d+$/.test(args.epoch)) throw new UserError(`--epoch: expected an epoch number, found ${JSON.stringify(args.epoch)}`, EXIT_USAGE);
      epoch = Number(args.epoch);
    }
    const config = await loadConfig(args.config);
    const apis = config.runners.map((r) => httpNodeApi(r.restUrl, { timeoutMs: config.restTimeoutMs }));
    await runLeaders(
      config,
      { node: (id) => apis[id]!, now: Date.now },
      {
        epoch,
        json: args.json,
        write: (t) => process.stdout.write(t),
        warn: (t) => process.stderr.write(t),
        daemon: () => askDaemon(controlSocketPath(config.systemd.scope), { cmd: "status" }, daemonViewSchema),
        history: () => readHistory(historyDir(stateDirsToRead(config.systemd.scope)), { kinds: ["slot_produced", "slot_rejected", "slot_missed"] }).records,
      },
    );
  },
});
