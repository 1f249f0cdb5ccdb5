// Reads what `leaders` shows, read-only: every configured runner's leader log in parallel (each call
// bounded by the client's deadline) and the chain's settings from the first runner that has them.

import type { ResolvedConfig } from "../config/types.ts";
import type { NodeApi, Settings } from "../node/types.ts";
import type { LeadersInput } from "./model.ts";

export interface LeadersDeps {
  node(id: number): NodeApi;
  now(): number;
}

export async function gatherLeaders(config: ResolvedConfig, deps: LeadersDeps): Promise<Omit<LeadersInput, "daemon" | "history">> {
  const ids = Array.from({ length: config.cntRunners }, (_, id) => id);
  const runners = await Promise.all(ids.map(async (id) => ({ id, logs: await deps.node(id).leaderLogs() })));
  let settings: Settings | null = null;
  // Settings answer only when Running; try the runners whose log answered first.
  const order = [...runners.filter((r) => r.logs.ok), ...runners.filter((r) => !r.logs.ok)];
  for (const r of order) {
    const s = await deps.node(r.id).settings();
    if (s.ok) {
      settings = s.value;
      break;
    }
  }
  return { nowMs: deps.now(), settings, cntRunners: config.cntRunners, runners };
}
