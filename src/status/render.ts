// The status model as text for a terminal (a header and a table) or as JSON for scripts. Pure.

import { formatDuration, renderTable } from "../ui/table.ts";
import type { ClusterSection } from "./cluster.ts";
import { mayHoldKey } from "./cluster.ts";
import type { HostRunner } from "../master/registry.ts";
import type { StatusModel, StatusRow } from "./model.ts";

const dash = "-";
const num = (n: number | null) => (n === null ? dash : String(n));

function unitCell(r: StatusRow): string {
  if (r.unitState === null) return dash;
  const base = r.unitSubState ? `${r.unitState}/${r.unitSubState}` : r.unitState;
  return r.frozen ? `${base} frozen` : base;
}

function nodeCell(r: StatusRow): string {
  if (r.frozen && r.nodeState === null) return "frozen";
  if (r.nodeState === "Booting" && r.restError) return r.restError;
  return r.nodeState ?? r.restError ?? dash;
}

function keyCell(r: StatusRow, signer: number | null): string {
  // A recognised boundary co-holder, whatever its /leaders said (it may be locked by the computation).
  if (r.handout) return "hand-out";
  if (r.keyHeld === null) return "?";
  if (!r.keyHeld) return "no";
  return r.id === signer ? "SIGNER" : "yes";
}

/** A runner of another host in a few words, as its daemon last saw it. */
function hostRunnerCell(r: HostRunner, atMs: number): string {
  if (r.signer) return `#${r.id} signer`;
  if (r.coHolderUntilMs !== null && !mayHoldKey(r, atMs)) return `#${r.id} hand-out`;
  const what: Record<HostRunner["cap"], string> = { stopped: "stopped", frozen: "frozen", keyless: "key-less", holder: "HOLDS KEY", "booting-holder": "BOOTS WITH KEY", unknown: "KEY UNKNOWN" };
  return `#${r.id} ${what[r.cap]}`;
}

/** The cluster section: the signing host and its lease, then one row per host of the registry. */
export function renderCluster(c: ClusterSection, atMs: number): string {
  const k = c.signer;
  const head =
    k === null
      ? "cluster: no host holds the signer key"
      : `cluster: ${k.host} holds the signer key (lease ${k.lease}, create revision ${k.createRevision}` +
        `${k.seenForMs === null ? "" : `, held at least ${formatDuration(k.seenForMs)}: first read by ${k.seenBy}`}` +
        `${k.ttl === null ? "" : `; TTL ${k.ttl.grantedS} s, ${k.ttl.leftS} s left`})`;
  const rows = [
    ["HOST", "ROLE", "SIGNER", "RUNNERS", "HEIGHT", "ETCD", "ENTRY"],
    ...c.hosts.map((h) => {
      const heights = h.runners.map((r) => r.height).filter((x): x is number => x !== null);
      return [
        h.self ? `${h.host} (this host)` : h.host,
        h.role,
        h.signer === null ? dash : `#${h.signer}`,
        h.runners.length === 0 ? dash : h.runners.map((r) => hostRunnerCell(r, atMs)).join(", "),
        heights.length === 0 ? dash : String(Math.max(...heights)),
        h.etcdOk === null ? dash : h.etcdOk ? "ok" : "FAILING",
        h.entryAgeMs === null ? "missing" : `${formatDuration(h.entryAgeMs)} ago${h.stale ? " (STALE)" : ""}`,
      ];
    }),
  ];
  return [head, renderTable(rows)].join("\n");
}

export function renderStatus(m: StatusModel): string {
  const head: string[] = [];
  if (m.epoch !== null) {
    head.push(`epoch ${m.epoch} · slot ${m.slot}/${m.slotsPerEpoch} · next epoch in ${formatDuration(m.toBoundaryMs)}`);
  } else {
    head.push("epoch unknown (no runner is Running)");
  }
  const tip = [`best height ${num(m.bestHeight)}`];
  if (m.pooltool) tip.push(m.pooltool.majorityMax !== null ? `PoolTool majority max ${m.pooltool.majorityMax}` : `PoolTool: ${m.pooltool.error ?? "unknown"}`);
  head.push(tip.join(" · "));
  if (m.systemdError) head.push(`systemd: ${m.systemdError}`);
  if (m.handout) {
    const who = m.handout.coHolders.map((id) => `#${id}`).join(", ");
    head.push(
      `boundary hand-out: ${who} hold${m.handout.coHolders.length === 1 ? "s" : ""} the key to compute epoch ${m.handout.epoch}'s schedule; ` +
        `dead-man switch${m.handout.coHolders.length === 1 ? "" : "es"} freeze ${m.handout.coHolders.length === 1 ? "it" : "them"} in ${formatDuration(Math.max(0, m.handout.switchesFireByMs - m.atMs))} at the latest`,
    );
  }
  head.push(...m.notes);
  const rows = [
    ["RUNNER", "UNIT", "NODE", "HEIGHT", "LAG", "KEY", "WARM", "EVENTS LEFT", "NEXT EVENT", "UPTIME", "RESTARTS"],
    ...m.rows.map((r) => [
      r.leftover ? `#${r.id} (extra)` : `#${r.id}`,
      unitCell(r),
      nodeCell(r),
      num(r.height),
      num(r.lag),
      keyCell(r, m.signer),
      r.warm === null ? "?" : r.warm ? "yes" : "no",
      num(r.eventsLeft),
      r.nextEventInMs === null ? dash : `in ${formatDuration(r.nextEventInMs)}`,
      formatDuration(r.uptimeMs),
      num(r.restarts),
    ]),
  ];
  const verdict = `${m.state}: ${m.verdict}`;
  const cluster = m.cluster ? ["", renderCluster(m.cluster, m.atMs)] : [];
  return [...head, "", renderTable(rows), ...cluster, "", verdict].join("\n");
}

/** The model as JSON (times as ms since epoch and ms durations), one object. */
export function statusJson(m: StatusModel): string {
  return JSON.stringify(m);
}
