// Helpers the decide table tests share: a plan in short form, and decide run over a sequence of
// observations as if every action succeeded.
import { applyOutcomes } from "../../src/master/memory.ts";
import { decide, emptyMemory } from "../../src/master/decide.ts";
import type { OperatorIntent } from "../../src/master/intent.ts";
import type { TickReport } from "../../src/master/loop.ts";
import type { Action, Memory, Observation, Outcome, Plan } from "../../src/master/types.ts";
import type { config } from "./fixtures.ts";

/** Disarming a signer's dead-man switch accompanies every adoption; tests about it look at it directly. */
export const summary = (p: Plan) => ({
  fences: p.fences.map((a) => `${a.kind}#${"id" in a ? a.id : ""}`),
  promote: p.promote ? `promote#${p.promote.id}` : null,
  other: p.other.filter((a) => a.kind !== "disarm").map((a) => `${a.kind}${"id" in a ? `#${a.id}` : ""}`),
});

export const allOk = (p: Plan): Outcome[] =>
  [...p.fences, ...(p.promote ? [p.promote] : []), ...p.other].map((action: Action) => ({
    action,
    ok: true,
    detail: "",
    ...(action.kind === "promote" ? { leaderId: 1 } : {}),
  }));

/** Runs decide over a sequence of observations, assuming every action succeeds. */
export function run(cfg: ReturnType<typeof config>, obs: Observation[], memory: Memory = emptyMemory()) {
  let m = memory;
  let last: ReturnType<typeof decide> | null = null;
  for (const o of obs) {
    last = decide(o, m, cfg, o.atMs);
    m = applyOutcomes(last.memory, allOk(last.plan), o.atMs);
  }
  return { result: last!, memory: m };
}

/** One tick of the real decide with the operator's intent, every action succeeding: what the loop reports. */
export function tickWithIntent(cfg: ReturnType<typeof config>, obs: Observation, memory: Memory, intent: OperatorIntent): TickReport {
  const o = { ...obs, intent };
  const d = decide(o, memory, cfg, obs.atMs);
  const outcomes = allOk(d.plan);
  return { startedMs: obs.atMs, durationMs: 1, observation: o, views: d.views, plan: d.plan, outcomes, memory: applyOutcomes(d.memory, outcomes, obs.atMs) };
}
