// The imperative shell's hands: carries out a Plan and verifies each step. A fence counts only when
// its effect is read back (keys listed empty, process seen stopped, pid gone); the promotion runs
// only when every fence of the tick was verified.

import type { NodeApi, NodeSecret } from "../node/types.ts";
import type { Clock, ListenerCheck, PoolToolApi, ServiceManager, UnitState } from "../ports.ts";
import type { Action, Memory, Outcome, Plan } from "./types.ts";

/** How long a SIGKILL may take to show in systemd before the fence counts as failed. */
export const KILL_CONFIRM_MS = 1_500;
const KILL_POLL_MS = 25;
/** A key removal not answered within this time is queued behind a schedule computation. */
export const QUEUED_REMOVAL_MS = 50;

export interface MasterDeps {
  node(id: number): NodeApi;
  services: ServiceManager;
  clock: Clock;
  pooltool: PoolToolApi | null;
  /** Reads node_secret.yaml at the moment of the call; never cached, never logged. */
  readSecret(): Promise<NodeSecret>;
  /** Checks that the runner unit's main process holds its REST port before the key is posted there.
   *  Without one, no key is ever posted (status and other readers need none). */
  listener?: ListenerCheck;
  /** Cluster mode only: what the etcd signer lease allows this host, read at each observation */
  cluster?: () => ClusterObs;
}

import type { ClusterObs } from "./cluster.ts";

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

function describe(r: { ok: false; error: { kind: string } & Record<string, unknown> }): string {
  const e = r.error;
  return `${e.kind}${"reason" in e ? ` (${String(e.reason)})` : ""}${"status" in e ? ` ${String(e.status)}` : ""}`;
}

async function demote(deps: MasterDeps, a: Extract<Action, { kind: "demote" }>): Promise<Outcome> {
  const api = deps.node(a.id);
  let ids = a.leaderIds;
  if (ids.length === 0) {
    const cur = await api.leaders();
    if (!cur.ok) {
      // The enclave is locked (a schedule is being computed) or the node is unwell. Queue the
      // removal of id 1, the id an empty enclave hands out, and report the fence unverified.
      await api.removeLeader(1);
      return { action: a, ok: false, transient: true, detail: `cannot list its keys (${describe(cur)}); removal of id 1 sent, will confirm` };
    }
    ids = cur.value;
  }
  const removing = Promise.all(ids.map((id) => api.removeLeader(id)));
  // A removal still pending after a moment waits behind a schedule computation: the enclave will
  // apply it before any event of the new schedule, so the boundary dead-man switch can go now.
  const early = await Promise.race([removing, deps.clock.sleep(QUEUED_REMOVAL_MS).then(() => null)]);
  if (early === null) {
    // Queued: the enclave applies it before any event. Waiting for its answer (or a read-back)
    // would hold the whole tick for a REST deadline; the next tick confirms it.
    await disarm(deps, a.id);
    return { action: a, ok: false, transient: true, detail: "removal queued behind the schedule computation (applied before any event); confirming next tick" };
  }
  const removed = early;
  const failed = removed.find((r) => !r.ok);
  const after = await api.leaders();
  if (after.ok && after.value.length === 0) {
    await disarm(deps, a.id);
    return { action: a, ok: true, detail: "keys read back: none" };
  }
  if (!after.ok) {
    const why = failed && !failed.ok ? describe(failed) : describe(after);
    return { action: a, ok: false, detail: `not confirmed key-less: ${why}` };
  }
  return { action: a, ok: false, detail: `still lists keys ${JSON.stringify(after.value)}` };
}

async function disarm(deps: MasterDeps, id: number): Promise<void> {
  // Best effort: an armed switch that stays armed freezes a key-less runner, which costs a restart, not safety.
  await deps.services.disarmFreeze?.(id).catch(() => {});
}

/**
 * null when the process listening on runner `id`'s REST port is the unit's main process, read from
 * systemd right now (the runner may have restarted since the tick's observation); otherwise why not.
 */
async function whyNotRunner(deps: MasterDeps, id: number): Promise<string | null> {
  if (!deps.listener) return "no way to check who listens on its port";
  let pid: number;
  try {
    pid = (await deps.services.showAll([id])).get(id)?.mainPid ?? 0;
  } catch (e) {
    return `cannot read its unit's main pid: ${errText(e)}`;
  }
  if (pid <= 0) return "its unit has no main process";
  try {
    return await deps.listener.whyNotRunner(id, pid);
  } catch (e) {
    return `cannot check who listens on its port: ${errText(e)}`;
  }
}

async function promote(deps: MasterDeps, a: Extract<Action, { kind: "promote" }>): Promise<Outcome> {
  const api = deps.node(a.id);
  // The whole secret goes over this connection: only to the runner itself, never to a process that
  // bound its port meanwhile (another local user while it restarted).
  const notRunner = await whyNotRunner(deps, a.id);
  if (notRunner !== null) return { action: a, ok: false, detail: `key not sent, the listener is not proven to be the runner: ${notRunner}` };
  if (a.leaseAtMs !== undefined) {
    // No switch, no hand-out: without it a daemon killed now would leave two signers.
    if (!deps.services.armFreeze) return { action: a, ok: false, detail: "the service manager cannot arm a dead-man switch; no hand-out" };
    let atMs = a.leaseAtMs;
    if (a.switchStays && deps.cluster) {
      // The cluster signer: the lease's deadline read again now (a monotonic instant told in the wall
      // clock of this moment), not the observation's, which a wall-clock step back since would make
      // late; and no promotion once the allowance is gone (lost, or a hand-over begun).
      const lease = deps.cluster();
      if (!lease.maySign || lease.mustStopByMs === null) return { action: a, ok: false, detail: "the signer lease no longer allows signing; no promotion" };
      atMs = Math.min(atMs, lease.mustStopByMs);
    }
    try {
      await deps.services.armFreeze(a.id, atMs);
    } catch (e) {
      return { action: a, ok: false, detail: `cannot arm the dead-man switch: ${errText(e)}` };
    }
  }
  let secret: NodeSecret;
  try {
    secret = await deps.readSecret();
  } catch (e) {
    return { action: a, ok: false, detail: `cannot read the node secret: ${errText(e)}` };
  }
  const added = await api.addLeader(secret);
  if (!added.ok) {
    if (a.leaseAtMs !== undefined && !a.switchStays) await disarm(deps, a.id);
    return { action: a, ok: false, detail: `POST /leaders failed: ${describe(added)}` };
  }
  const back = await api.leaders();
  if (!back.ok) return { action: a, ok: false, detail: `key posted (id ${added.value}) but not read back: ${describe(back)}`, leaderId: added.value };
  if (!back.value.includes(added.value)) {
    return { action: a, ok: false, detail: `key posted (id ${added.value}) but /leaders lists ${JSON.stringify(back.value)}`, leaderId: added.value };
  }
  return { action: a, ok: true, detail: `holds the key (enclave id ${added.value})`, leaderId: added.value };
}

/** The unit as systemd shows it now; null when systemctl show fails (a fence then stays unverified). */
async function unitNow(deps: MasterDeps, id: number): Promise<UnitState | null> {
  try {
    return (await deps.services.showAll([id])).get(id) ?? null;
  } catch {
    return null;
  }
}

async function freeze(deps: MasterDeps, a: Extract<Action, { kind: "freeze" }>): Promise<Outcome> {
  try {
    await deps.services.kill(a.id, "SIGSTOP");
  } catch (e) {
    return { action: a, ok: false, detail: `SIGSTOP failed: ${errText(e)}` };
  }
  const u = await unitNow(deps, a.id);
  if (u && (u.frozen === true || (u.mainPid === 0 && u.activeState !== "active"))) {
    return { action: a, ok: true, detail: u.frozen ? "process stopped (SIGSTOP verified)" : "no process" };
  }
  return { action: a, ok: false, detail: `not verified frozen (state ${u?.activeState ?? "?"}, frozen ${String(u?.frozen)})` };
}

async function kill(deps: MasterDeps, a: Extract<Action, { kind: "kill" }>): Promise<Outcome> {
  try {
    await deps.services.kill(a.id, "SIGKILL");
  } catch (e) {
    return { action: a, ok: false, detail: `SIGKILL failed: ${errText(e)}` };
  }
  const until = deps.clock.now() + KILL_CONFIRM_MS;
  for (;;) {
    const u = await unitNow(deps, a.id);
    if (u && u.mainPid !== a.pid) return { action: a, ok: true, detail: `pid ${a.pid} gone` };
    if (deps.clock.now() >= until) return { action: a, ok: false, detail: `pid ${a.pid} still there after SIGKILL` };
    await deps.clock.sleep(KILL_POLL_MS);
  }
}

async function retire(deps: MasterDeps, a: Extract<Action, { kind: "retire" }>): Promise<Outcome> {
  try {
    await deps.services.kill(a.id, "SIGKILL").catch(() => {}); // may have no process: stop decides
    await deps.services.stop(a.id);
  } catch (e) {
    return { action: a, ok: false, detail: `stop failed: ${errText(e)}` };
  }
  const u = await unitNow(deps, a.id);
  if (u && u.mainPid === 0 && u.activeState !== "active") return { action: a, ok: true, detail: "killed and stopped" };
  return { action: a, ok: false, detail: `still ${u?.activeState ?? "?"} with pid ${u?.mainPid ?? "?"}` };
}

async function simple(deps: MasterDeps, a: Extract<Action, { kind: "disarm" | "thaw" | "start" | "stop" | "restart" | "reportTip" }>): Promise<Outcome> {
  try {
    switch (a.kind) {
      case "disarm":
        if (!deps.services.disarmFreeze) return { action: a, ok: true, detail: "no dead-man switches here" };
        await deps.services.disarmFreeze(a.id);
        return { action: a, ok: true, detail: "dead-man switch disarmed" };
      case "thaw":
        await deps.services.kill(a.id, "SIGCONT");
        return { action: a, ok: true, detail: "SIGCONT sent" };
      case "start":
        await deps.services.start(a.id);
        return { action: a, ok: true, detail: "started" };
      case "stop":
        await deps.services.stop(a.id);
        return { action: a, ok: true, detail: "stopped" };
      case "restart":
        await deps.services.restart(a.id);
        return { action: a, ok: true, detail: "restarted" };
      case "reportTip": {
        const pt = deps.pooltool;
        if (!pt) return { action: a, ok: false, detail: "PoolTool is off" };
        // Never block a tick on PoolTool: send in the background and count it sent.
        pt.shareTip(a.height).catch(() => {});
        return { action: a, ok: true, detail: "sent" };
      }
    }
  } catch (e) {
    return { action: a, ok: false, detail: errText(e) };
  }
}

function perform(deps: MasterDeps, a: Action): Promise<Outcome> {
  switch (a.kind) {
    case "demote":
      return demote(deps, a);
    case "promote":
      return promote(deps, a);
    case "freeze":
      return freeze(deps, a);
    case "kill":
      return kill(deps, a);
    case "retire":
      return retire(deps, a);
    case "disarm":
    case "thaw":
    case "start":
    case "stop":
    case "restart":
    case "reportTip":
      return simple(deps, a);
    default: {
      // A new kind of action must be carried out somewhere: this stops compiling until it is.
      const unhandled: never = a;
      return Promise.resolve({ action: unhandled, ok: false, detail: "unknown action" });
    }
  }
}

/** Carries out one action. Never throws: a port that throws (a `systemctl show` timing out while a
 *  fence is read back, say) is that action's failure with its reason, not the whole tick's, so the
 *  other outcomes of the tick are kept and folded into memory. */
export async function run(deps: MasterDeps, a: Action): Promise<Outcome> {
  try {
    return await perform(deps, a);
  } catch (e) {
    return { action: a, ok: false, detail: `failed: ${errText(e)}` };
  }
}

/** Executes a plan: fences in parallel, the promotion only if they all held, then the rest. */
export async function act(deps: MasterDeps, plan: Plan, signal?: AbortSignal): Promise<Outcome[]> {
  const outcomes = await Promise.all(plan.fences.map((a) => run(deps, a)));
  // Told to stop: leave everything as it is now; the next daemon re-observes and carries on.
  if (signal?.aborted) return outcomes;
  const fenceFailed = outcomes.some((o) => !o.ok);
  if (plan.promote) {
    if (fenceFailed) {
      outcomes.push({ action: plan.promote, ok: false, detail: "not attempted: a fence was not verified" });
    } else if (plan.fences.length > 0 && plan.promote.fencedByMs !== undefined && deps.clock.now() > plan.promote.fencedByMs) {
      // The fenced runner could sign until its fence held, and that was inside the next window.
      outcomes.push({ action: plan.promote, ok: false, transient: true, detail: "not attempted: the fences held only after the next window opened" });
    } else {
      outcomes.push(await run(deps, plan.promote));
    }
  }
  if (signal?.aborted) return outcomes;
  const failedIds = new Set(outcomes.filter((o) => !o.ok && "id" in o.action).map((o) => (o.action as { id: number }).id));
  const rest = plan.other.filter((a) => !("id" in a) || !failedIds.has(a.id));
  outcomes.push(...(await Promise.all(rest.map((a) => run(deps, a)))));
  return outcomes;
}
