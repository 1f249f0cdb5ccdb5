// `status` across the hosts of a cluster (issue 13 point 6): the signing host (the etcd signer key),
// how long its lease has been seen, and one row per host from the registry (`<prefix>/hosts/<name>`,
// master/registry.ts) with its runners as its own daemon last saw them. Pure.
//
// Fail closed, as on one host: a host that does not hold the signer key and reports a runner that
// may hold the pool's key (a holder, one booting with it, one whose keys are unknown) is CRITICAL,
// unless it is a boundary co-holder of a granted hand-out whose dead-man switch has not fired yet;
// so are two hosts claiming to sign. A host whose entry is missing or stale, or nobody signing for
// a short while (a takeover), is a WARNING; nobody signing for longer is CRITICAL. This host's own
// runners are judged from what status read itself (model.ts), fresher than its entry.

import { entryStale, type HostEntry, type HostRunner } from "../master/registry.ts";

/** What status read of the registry, in one range read of `<prefix>/`, plus the signer lease's TTL. */
export interface StatusRegistry {
  signer: { host: string; lease: string; createRevision: number } | null;
  /** The signer lease as etcd says (`/v3/lease/timetolive`): granted TTL and seconds left; null: unread */
  leaseTtl: { grantedS: number; leftS: number } | null;
  entries: HostEntry[];
  /** Entries that did not parse, "key: why" */
  invalid: string[];
  /** How long nobody signing is a takeover (WARNING) rather than an outage (CRITICAL) */
  noSignerGraceMs: number;
}

export interface ClusterHostRow {
  host: string;
  self: boolean;
  /** "signs", "lease held, not signing", "standby", "no entry" */
  role: string;
  /** How long ago its entry was published (its clock vs ours); null: no entry */
  entryAgeMs: number | null;
  stale: boolean;
  maySign: boolean | null;
  signer: number | null;
  runners: HostRunner[];
  /** Runners that may hold the key outside a granted hand-out */
  mayHold: number[];
  etcdOk: boolean | null;
  version: string | null;
}

export interface ClusterSection {
  self: string;
  signer: {
    host: string;
    createRevision: number;
    lease: string;
    /** The lease has been held at least this long: since the earliest time a host's registry first read
     *  this create revision (null: no entry has read it yet) */
    seenForMs: number | null;
    seenBy: string | null;
    ttl: { grantedS: number; leftS: number } | null;
  } | null;
  hosts: ClusterHostRow[];
  invalid: string[];
  critical: string[];
  warnings: string[];
  /** Nobody signing on this host is not its own verdict to give: no host holds the signer key, or this
   *  host holds it and its daemon says it may not sign yet (its takeover wait); the cluster's
   *  "nobody signs" (WARNING for a short while, then CRITICAL) stands for it */
  deferNoSigner: boolean;
}

const MAY_HOLD = new Set<HostRunner["cap"]>(["holder", "booting-holder", "unknown"]);
const list = (ids: readonly number[]) => ids.map((id) => `#${id}`).join(", ");
const secs = (ms: number) => `${Math.round(ms / 1000)} s`;

/** A runner that may hold the key and is not a co-holder of a granted hand-out still before its switch. */
export function mayHoldKey(r: HostRunner, nowMs: number): boolean {
  return MAY_HOLD.has(r.cap) && !(r.coHolderUntilMs !== null && nowMs < r.coHolderUntilMs);
}

/** What this host's own runners look like, from status's own reads (model.ts) */
export interface LocalView {
  /** Runners that may sign here (holders, unknown keys), not boundary co-holders */
  able: number[];
  /** The one runner here that holds the key and is Running */
  signer: number | null;
}

export function clusterSection(self: string, reg: StatusRegistry, local: LocalView, nowMs: number): ClusterSection {
  const critical: string[] = [];
  const warnings: string[] = [];
  const byHost = new Map(reg.entries.map((e) => [e.host, e]));
  const isStale = (e: HostEntry) => entryStale(e, nowMs);
  const fresh = reg.entries.filter((e) => !isStale(e));
  const key = reg.signer;
  const signerHost = key?.host ?? null;

  // Since when the signer key (or its absence) has been read as it is now: the earliest host to read it.
  let since: { atMs: number; by: string } | null = null;
  for (const e of fresh) {
    const s = e.signerSeen;
    if (s === null || s.createRevision !== (key?.createRevision ?? null)) continue;
    if (since === null || s.sinceMs < since.atMs) since = { atMs: s.sinceMs, by: e.host };
  }

  // Every host known to any fresh entry, this one and the signing one: each should have an entry.
  const names = new Set<string>([self, ...reg.entries.map((e) => e.host), ...fresh.flatMap((e) => e.peers)]);
  if (signerHost !== null) names.add(signerHost);
  const hosts: ClusterHostRow[] = [];
  for (const host of [...names].sort()) {
    const e = byHost.get(host);
    if (e === undefined) {
      const who = fresh.filter((f) => f.peers.includes(host)).map((f) => f.host);
      const why = host === self ? "the daemon on this host does not publish it" : host === signerHost ? "it holds the signer key" : `seen by ${who.join(", ")} since their daemons started`;
      warnings.push(`${host} has no registry entry (${why})`);
      hosts.push({ host, self: host === self, role: "no entry", entryAgeMs: null, stale: true, maySign: null, signer: null, runners: [], mayHold: [], etcdOk: null, version: null });
      continue;
    }
    const stale = isStale(e);
    const mayHold = e.runners.filter((r) => mayHoldKey(r, nowMs)).map((r) => r.id);
    const role = e.maySign && e.signer !== null ? "signs" : host === signerHost ? "lease held, not signing" : "standby";
    hosts.push({ host, self: host === self, role, entryAgeMs: nowMs - e.publishedAtMs, stale, maySign: e.maySign, signer: e.signer, runners: e.runners, mayHold, etcdOk: e.etcd.ok, version: e.version });
    if (stale) {
      const obsAge = e.observedAtMs === null ? "no observation yet" : `its runners observed ${secs(nowMs - e.observedAtMs)} ago`;
      warnings.push(`${host}'s registry entry is stale (published ${secs(nowMs - e.publishedAtMs)} ago, ${obsAge})`);
    }
    // This host's runners are judged from status's own reads below, not from its daemon's entry.
    if (host !== self && host !== signerHost && mayHold.length > 0) {
      const caps = e.runners.filter((r) => mayHold.includes(r.id)).map((r) => `#${r.id} ${r.cap}`);
      critical.push(`${host} does not hold the signer key (${signerHost ?? "no host"} does), yet its ${caps.join(", ")} may hold the pool's key: two hosts may sign the same slot`);
    }
    // The signing host (another one): a second holder there is two signers, as on one server; a key
    // state unknown there is a WARNING, as on one server.
    if (host !== self && host === signerHost) {
      const extra = e.runners.filter((r) => mayHold.includes(r.id) && r.id !== e.signer);
      const holders = extra.filter((r) => r.cap !== "unknown");
      if (holders.length > 0) critical.push(`${host} reports ${holders.map((r) => `#${r.id} ${r.cap}`).join(", ")} besides its signer${e.signer === null ? "" : ` #${e.signer}`}: they may sign the same slot`);
      for (const r of extra.filter((x) => x.cap === "unknown")) warnings.push(`${host}'s #${r.id} key state is unknown: it may sign`);
    }
  }
  if (signerHost === null && local.able.length > 0) {
    critical.push(`no host holds the signer key, yet ${list(local.able)} on this host may sign`);
  }

  // Who claims to sign: fresh entries whose lease lets them sign (this host: its entry, as its daemon says).
  const claims = fresh.filter((e) => e.maySign).map((e) => e.host);
  if (claims.length > 1) critical.push(`${claims.join(" and ")} both say the signer lease lets them sign`);
  else if (claims.length === 1 && claims[0] !== signerHost) critical.push(`${claims[0]} says the signer lease lets it sign, but the signer key names ${signerHost ?? "no host"}`);

  // Does anybody sign? This host, when it holds the key and may sign, is judged by model.ts from its own reads.
  const se = signerHost === null ? undefined : byHost.get(signerHost);
  const seFresh = se !== undefined && !isStale(se);
  let nobody: string | null = null;
  if (signerHost === null) nobody = "no host holds the signer key";
  else if (seFresh && !se.maySign) nobody = `${signerHost} holds the signer key but may not sign yet (its takeover wait, or its allowance ran out)`;
  else if (seFresh && se.signer === null && signerHost !== self) nobody = `${signerHost} holds the signer key but keeps no signer`;
  if (nobody !== null) {
    const forMs = since === null ? null : nowMs - since.atMs;
    if (forMs !== null && forMs > reg.noSignerGraceMs) critical.push(`nobody signs: ${nobody}, for ${secs(forMs)}`);
    else warnings.push(`nobody signs yet: ${nobody}${forMs === null ? "" : ` (for ${secs(forMs)}; CRITICAL after ${secs(reg.noSignerGraceMs)})`}`);
  }
  for (const i of reg.invalid) warnings.push(`unreadable registry entry ${i}`);

  return {
    self,
    signer: key === null ? null : { host: key.host, createRevision: key.createRevision, lease: key.lease, seenForMs: since === null ? null : nowMs - since.atMs, seenBy: since?.by ?? null, ttl: reg.leaseTtl },
    hosts,
    invalid: reg.invalid,
    critical,
    warnings,
    deferNoSigner: signerHost === null || (signerHost === self && seFresh && !se.maySign),
  };
}
