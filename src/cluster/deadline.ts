// Pure time arithmetic of the signer lease: until when the holder may sign, when to renew, and when
// a host that has just taken the lease over may start. All instants are this host's monotonic
// milliseconds (performance.now()), never wall-clock time, which NTP may step.
//
// Why the holder counts from the moment the keep-alive was SENT: etcd's leader resets the lease's
// expiry to (when it processed the keep-alive) + TTL, and it processed it after we sent it, so
// sent + TTL is a lower bound on the expiry whatever the network did to the request or the answer.
// Counting from the answer would overstate the bound by the answer's delay, which is unbounded.
//
// What the bound assumes (the README repeats it):
//  - Clock rates: this host's and the etcd leader's monotonic clocks each run within
//    MAX_CLOCK_RATE_ERROR of true time. The TTL the leader measures then lasts at least
//    TTL / (1 + ρ) of real time, and a local interval D lasts at most D / (1 - ρ) of real time, so
//    a local allowance of TTL·(1 - ρ)/(1 + ρ) never outlives the lease.
//  - Scheduling: stopping the signer takes at most SCHEDULING_MARGIN_MS after the local deadline
//    (timer latency, the freeze of a loaded machine), so the deadline is that much earlier.
//  - etcd: a leader that lost its quorum may still answer keep-alives until it steps down (at most
//    one election timeout later); a new leader extends every lease by an election timeout on
//    taking over for exactly that reason (etcd PR #4778), so no extra margin is taken for it here.
//    An etcd without the fix of PR #16822 (Debian's 3.4.23 among them) can also revoke leases EARLY
//    from a stuck old leader (etcd issue #15247), which the holder cannot see coming, and one
//    without PR #20616 can answer a keep-alive as a success for a lease being revoked. On such an
//    etcd, takeoverSafeAt makes the new holder wait out the longest allowance the old one could
//    still be using. On an etcd where every member has both fixes (leaseFixesIn), a lease ends
//    only when its TTL has run out on the leader's clock, after the holder's allowance: a host that
//    won the key may sign at once (the window rule still gives the old host its open window).

import type { MemberVersion } from "./etcd.ts";

/** ρ: 1 %. NTP-disciplined clocks stay within 500 ppm and free-running crystals within ~100 ppm; VMs have been seen worse, hence the factor of 20. */
export const MAX_CLOCK_RATE_ERROR = 0.01;
/** From the local deadline to the signer actually stopped: timer latency plus a freeze on a loaded host. */
export const SCHEDULING_MARGIN_MS = 500;
/** etcd's default election timeout (--election-timeout 1000): how long a deposed leader may still answer. */
export const ETCD_ELECTION_TIMEOUT_MS = 1_000;
/** Renew three times per TTL, as etcd's own Go client does: two keep-alives can fail before the allowance runs out. */
export const RENEWALS_PER_TTL = 3;

export interface TimeBounds {
  clockRateError: number;
  schedulingMarginMs: number;
  etcdElectionTimeoutMs: number;
}

export const DEFAULT_TIME_BOUNDS: TimeBounds = {
  clockRateError: MAX_CLOCK_RATE_ERROR,
  schedulingMarginMs: SCHEDULING_MARGIN_MS,
  etcdElectionTimeoutMs: ETCD_ELECTION_TIMEOUT_MS,
};

/** The local allowance one TTL buys: what survives the worst clock rates, minus the stop margin (ms, may be ≤ 0). */
export function allowanceMs(ttlS: number, bounds: TimeBounds = DEFAULT_TIME_BOUNDS): number {
  const rho = bounds.clockRateError;
  return (ttlS * 1000 * (1 - rho)) / (1 + rho) - bounds.schedulingMarginMs;
}

/**
 * The instant (local monotonic ms) by which the holder must have stopped signing, given a
 * keep-alive (or the grant) SENT at `sentAtMs` that etcd answered with `ttlS`. null: the answer buys
 * no time at all (the lease is gone, or the TTL is shorter than the margins), so stop now.
 */
export function signUntilMs(sentAtMs: number, ttlS: number, bounds: TimeBounds = DEFAULT_TIME_BOUNDS): number | null {
  if (!(ttlS > 0)) return null;
  const allowance = allowanceMs(ttlS, bounds);
  return allowance > 0 ? sentAtMs + allowance : null;
}

/**
 * The holder's deadline after a successful keep-alive: never earlier than before (a reordered older
 * answer must not shorten it, and every answer is a valid lower bound on the expiry), and null once
 * etcd says the lease is gone (ttlS 0), whatever the previous deadline was.
 */
export function extendSignUntil(previousMs: number | null, sentAtMs: number, ttlS: number, bounds: TimeBounds = DEFAULT_TIME_BOUNDS): number | null {
  const next = signUntilMs(sentAtMs, ttlS, bounds);
  if (next === null) return null;
  return previousMs === null ? next : Math.max(previousMs, next);
}

/** May the holder sign at `nowMs`? Only strictly before its deadline; no deadline, no signing. */
export function maySign(signUntil: number | null, nowMs: number): boolean {
  return signUntil !== null && nowMs < signUntil;
}

/** How long to wait between keep-alives for a lease of `ttlS`. */
export function renewIntervalMs(ttlS: number): number {
  return (ttlS * 1000) / RENEWALS_PER_TTL;
}

/**
 * The first release of each etcd line with both lease fixes: old leaders' revocations ignored
 * (PR #16822: 3.4.31, 3.5.13, 3.6.0) and no keep-alive success for a revoked lease (PR #20616 and
 * its backports: 3.4.38, 3.5.23, 3.6.5). Lines before 3.4 never got them; lines after 3.6 have them.
 */
export const ETCD_LEASE_FIXED_PATCH: Readonly<Record<string, number>> = { "3.4": 38, "3.5": 23, "3.6": 5 };

/** Does this etcd server version have both lease fixes? Unknown or unparsable: no. A pre-release of
 *  a line with no fixed release known is a development build (etcd's main branch reports the next
 *  line's x.y.0-alpha.0 for months, from before the fixes merged): no. */
export function leaseFixesIn(version: string | null): boolean {
  const m = /^v?(\d+)\.(\d+)\.(\d+)([-+].*)?$/.exec(version?.trim() ?? "");
  if (!m) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const preRelease = m[4]?.startsWith("-") ?? false;
  const fixed = major === 3 ? ETCD_LEASE_FIXED_PATCH[`${major}.${minor}`] : undefined;
  if (fixed !== undefined) return patch >= fixed;
  if (preRelease) return false;
  return major > 3 || (major === 3 && minor > 6);
}

export interface LeaseSafety {
  /** Could etcd have ended the old holder's lease before its TTL ran out (so a taker must wait)? */
  earlyEndPossible: boolean;
  /** One line for the log and `config check` */
  why: string;
}

/**
 * From the member list with versions (null: it could not be read): a lease can end early unless
 * every member was asked and runs a version with the fixes. A member that cannot be asked may be
 * exactly the stuck old leader the bug is about, so it counts as unfixed.
 */
export function leaseSafety(members: readonly MemberVersion[] | null): LeaseSafety {
  const fixedIn = Object.entries(ETCD_LEASE_FIXED_PATCH).map(([line, patch]) => `${line}.${patch}`).join(", ");
  if (members === null) return { earlyEndPossible: true, why: "the etcd members' versions could not be read" };
  if (members.length === 0) return { earlyEndPossible: true, why: "etcd listed no members" };
  const unknown = members.find((m) => m.version === null);
  if (unknown) return { earlyEndPossible: true, why: `member ${unknown.name}'s version is unknown (${unknown.problem ?? "no answer"})` };
  const old = members.find((m) => !leaseFixesIn(m.version));
  if (old) return { earlyEndPossible: true, why: `member ${old.name} runs etcd ${old.version}, which can end a lease early (etcd #15247; fixed in ${fixedIn})` };
  return { earlyEndPossible: false, why: `every etcd member runs a version with the lease fixes (${members.map((m) => `${m.name} ${m.version}`).join(", ")})` };
}

/**
 * A host whose create-if-absent succeeded may let a runner sign from the returned instant on;
 * `confirmedAtMs` is when (local) the answer confirming the key arrived, an upper bound on when the
 * old lease was already gone in etcd. The previous holder's last successful keep-alive was sent
 * before that, or at most one election timeout after it (a deposed leader answering), so it stops
 * at the latest one election timeout + its allowance + its stop margin later, each stretched by the
 * worst clock rates (both ways, so conservatively). This holds even when etcd revoked the old lease
 * early, and costs one TTL plus about 1.5 s of signing at a takeover. `earlyEndPossible` false
 * (leaseSafety: every member has the lease fixes): the instant itself.
 */
export function takeoverSafeAtMs(confirmedAtMs: number, ttlS: number, bounds: TimeBounds = DEFAULT_TIME_BOUNDS, earlyEndPossible = true): number {
  // Without an early end the old lease ran its TTL out before our create: the old holder's
  // allowance (which ends before that, with its stop margin) is over already.
  if (!earlyEndPossible) return confirmedAtMs;
  const rho = bounds.clockRateError;
  const theirs = bounds.etcdElectionTimeoutMs + Math.max(0, allowanceMs(ttlS, bounds)) + bounds.schedulingMarginMs;
  return confirmedAtMs + Math.ceil((theirs * (1 + rho)) / (1 - rho));
}
