// The daemon's side of the cluster mode (issue 13): it campaigns for `<prefix>/signer`, keeps the
// lease alive, tells decide what the lease allows (master/cluster.ts: maySign, mustStopBy,
// takeoverSafeAt) and keeps the signer's dead-man switch armed to fire at mustStopBy.
//
// Fencing that needs no network: the switch is the same transient systemd timer as the boundary
// co-holders' (a SIGSTOP from the service manager, which fires whether this daemon lives or not).
// It is re-armed only after a keep-alive proved the lease alive and the key ours, to the deadline
// that keep-alive bought (counted from its SEND time, deadline.ts). So a host cut off from etcd, a
// hung daemon or a dead one has its signer frozen before the lease can end in etcd and another
// host take over. If re-arming fails, the signer is frozen at once and decide fences it.

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { HANDOVER_GRACE_S, type Election, type HandOverOutcome } from "../cluster/election.ts";
import { leaseSafety, type LeaseSafety, renewIntervalMs, takeoverSafeAtMs, DEFAULT_TIME_BOUNDS, type TimeBounds } from "../cluster/deadline.ts";
import type { ClusterObs } from "../master/cluster.ts";
import type { MasterLog } from "../master/loop.ts";
import type { Clock, ServiceManager } from "../ports.ts";

/** What a restarted daemon needs to take its predecessor's lease up again (see LeaseStore). */
export const savedLeaseSchema = z.strictObject({
  prefix: z.string(),
  lease: z.string().regex(/^\d+$/),
  createRevision: z.number().int().positive(),
  /** The takeover wait of the win was over: a resumed holder need not wait again */
  takeoverSafe: z.boolean(),
  /** The TTL whose allowance the takeover wait counts (the previous holder's, if longer): a
   *  daemon resuming during the wait waits anew with it */
  waitTtlS: z.number().positive().optional(),
  /** The kernel's boot id when saved: only a daemon of the same boot takes the lease up (a copied
   *  state dir, a cloned VM or a reboot, which outlasts any lease anyway, campaign afresh) */
  bootId: z.string(),
});
export type SavedLease = z.infer<typeof savedLeaseSchema>;

/** Where the lease is remembered across daemon restarts (this host only: another host that knew it
 *  could keep it alive too). */
export interface LeaseStore {
  load(): Omit<SavedLease, "bootId"> | null;
  save(s: Omit<SavedLease, "bootId"> | null): void;
}

/** This boot's id (Linux), or null when it cannot be read: then no lease is ever taken up. */
export function readBootId(path = "/proc/sys/kernel/random/boot_id"): string | null {
  try {
    const id = readFileSync(path, "utf8").trim();
    return id === "" ? null : id;
  } catch {
    return null;
  }
}

/** A JSON file (the daemon's state dir), written atomically; anything unreadable is no lease, and
 *  so is a lease saved in another boot (or on another machine whose disk this is a copy of). */
export function fileLeaseStore(path: string, bootId: string | null = readBootId()): LeaseStore {
  return {
    load() {
      if (bootId === null) return null;
      try {
        const r = savedLeaseSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
        return r.success && r.data.bootId === bootId ? r.data : null;
      } catch {
        return null;
      }
    },
    save(s) {
      if (s === null || bootId === null) return rmSync(path, { force: true });
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      const tmp = `${path}.tmp`;
      writeFileSync(tmp, `${JSON.stringify({ ...s, bootId })}\n`, { mode: 0o600 });
      renameSync(tmp, path);
    },
  };
}

export interface SignerLeaseOptions {
  election: Election;
  /** The service manager in use now (a reload may replace it) */
  services: () => ServiceManager;
  /** The clock decide uses (ms since epoch) */
  clock: Clock;
  /** Monotonic ms: the election's clock (performance.now() in production) */
  mono: () => number;
  /** The runner that signs now on this host (its switch is kept armed), or null */
  signer: () => number | null;
  log: MasterLog;
  bounds?: TimeBounds;
  /** Key prefix (what the saved lease is for) */
  prefix?: string;
  /** Remembers the lease across restarts; none: a restarted daemon campaigns afresh */
  store?: LeaseStore | null;
  /** Boundary co-holders whose switches follow the allowance too, and the latest they may fire (decide's clock) */
  coHolders?: () => { ids: number[]; untilMs: number } | null;
  /** The epoch whose boundary hand-out this host settled (done, or no standby to hand to): once the
   *  signing host has settled it, it grants the other hosts theirs (master/cluster.ts grantedHandout) */
  handoutSettled?: () => number | null;
}

/** The master's memory → the epoch whose hand-out is settled: done, or skipped for want of a
 *  standby (every other check passed, so the last window before the boundary has closed). */
export function settledHandoutEpoch(h: { epoch: number; why: string } | undefined | null): number | null {
  if (!h) return null;
  return h.why === "done" || h.why.startsWith("no_standby") ? h.epoch : null;
}

/** A host not holding the key reads the hand-over record this often, so a hand-over naming it is
 *  taken up within this (one range read per poll; the full campaign stays at the renew interval). */
export const HANDOVER_POLL_MS = 250;

/**
 * Hand-over branch of the takeover wait (kept apart from takeoverSafeAtMs, which the lead owns): a
 * host that won on a hand-over record naming it need not wait for the old holder's allowance, which
 * proved its runners key-less and gave the key up in one txn. The window rule stays: windows that
 * opened before the win (so before the record's fenced-at, which was written before it) stay the
 * old host's, so the win's confirmation instant is returned, not -Infinity.
 */
export function handoverSafeAtMs(confirmedAtMs: number): number {
  return confirmedAtMs;
}

/** A planned hand-over under way on the signing host (switchover --host). */
interface HandingOver {
  to: string;
  /** The runner that signed when it began: its switch is disarmed once the key is handed over */
  signer: number | null;
}

export class SignerLease {
  private readonly opts: SignerLeaseOptions;
  private takeoverSafeAtMono: number | null = null;
  /** Re-arming the switch failed: no signing until an arm succeeds again */
  private armFailed = false;
  private holderName: string | null = null;
  private lastError: string | null = null;
  private resumeTried = false;
  private savedSafe = false;
  /** The last boundary grant written (holder) or read (other hosts) */
  private grantedEpoch: number | null = null;
  private grantRead: number | null = null;
  /** This host is handing the key over (its runners are being fenced): no signing, no grants */
  private handingOver: HandingOver | null = null;
  /** Having handed the key over, this host does not campaign before this (monotonic ms) */
  private holdOffUntilMono: number | null = null;
  /** A hand-over record names this host: campaign at the next poll, not the next round */
  private handoverForUs = false;
  private heldOffBy: string | null = null;

  constructor(opts: SignerLeaseOptions) {
    this.opts = opts;
  }

  /** Monotonic instant → decide's clock, read now (both clocks advance together between reads). */
  private toClock(monoMs: number): number {
    return this.opts.clock.now() + (monoMs - this.opts.mono());
  }

  /** What the lease allows this host, for decide (read at each observation). */
  observe(): ClusterObs {
    const { election } = this.opts;
    const h = election.holding();
    return {
      maySign: h !== null && !this.armFailed && this.handingOver === null && election.maySign(this.opts.mono()),
      handingOverTo: h !== null ? (this.handingOver?.to ?? null) : null,
      grantedEpoch: h !== null ? this.grantedEpoch : null,
      mustStopByMs: h?.signUntilMs != null ? this.toClock(h.signUntilMs) : null,
      takeoverSafeAtMs: h !== null && this.takeoverSafeAtMono !== null ? this.toClock(this.takeoverSafeAtMono) : null,
      holder: h !== null ? election.candidate : this.holderName,
      handoutGrant: h === null && this.grantRead !== null ? { epoch: this.grantRead } : null,
    };
  }

  /** One round: campaign when not holding, else one keep-alive; then the signer's switch. */
  async step(): Promise<void> {
    const { election, log } = this.opts;
    if (election.holding() === null && !this.resumeTried) {
      this.resumeTried = true;
      if (await this.resume()) return;
    }
    if (election.holding() === null) {
      // Just handed the key over: the target goes first (and learn who took it, for the command).
      if (this.holdOffUntilMono !== null && this.opts.mono() < this.holdOffUntilMono) {
        const who = await election.holder();
        this.holderName = who.ok ? (who.value?.value ?? null) : null;
        return;
      }
      this.holdOffUntilMono = null;
      this.handoverForUs = false;
      const c = await election.campaign();
      if (c.kind === "won") {
        const bounds = this.opts.bounds ?? DEFAULT_TIME_BOUNDS;
        // The previous holder's allowance was bought with ITS lease's TTL (lease_ttl may differ
        // between hosts); unknown: ours (README: the same lease_ttl on every host).
        const theirTtlS = Math.max(c.ttlS, c.previous?.ttlS ?? 0);
        // The full wait first: observe() during the version read below must not allow signing yet.
        this.takeoverSafeAtMono = takeoverSafeAtMs(c.confirmedAtMs, theirTtlS, bounds);
        this.holderName = election.candidate;
        this.heldOffBy = null;
        const h = election.holding();
        this.savedSafe = c.handover !== undefined;
        if (c.handover) {
          // Hand-over branch: see handoverSafeAtMs (the takeover wait below otherwise).
          this.takeoverSafeAtMono = handoverSafeAtMs(c.confirmedAtMs);
          if (h !== null) this.save({ lease: h.lease, createRevision: h.createRevision, takeoverSafe: true });
          log.info(`cluster: this host holds ${election.key} (lease ${c.lease}, ${c.ttlS} s), handed over by ${c.handover.from} whose runners were proven key-less: signing at once`);
        } else {
          if (h !== null) this.save({ lease: h.lease, createRevision: h.createRevision, takeoverSafe: false, waitTtlS: theirTtlS });
          // Asked at the win, not remembered: a member that cannot be asked NOW may be the stuck old
          // leader that revoked the lease early.
          const safety = await this.earlyEnd(c.previous?.lease ?? null);
          this.takeoverSafeAtMono = takeoverSafeAtMs(c.confirmedAtMs, theirTtlS, bounds, safety.earlyEndPossible);
          const waitS = Math.max(0, (this.takeoverSafeAtMono - this.opts.mono()) / 1000).toFixed(1);
          log.info(
            safety.earlyEndPossible
              ? `cluster: this host holds ${election.key} (lease ${c.lease}, ${c.ttlS} s); signing from ${waitS} s on, once the previous holder has stopped for sure: ${safety.why}`
              : `cluster: this host holds ${election.key} (lease ${c.lease}, ${c.ttlS} s); the previous holder's lease ran its TTL out, so it has stopped: signing now (${safety.why})`,
          );
        }
        this.reportOk();
        await this.rearm();
      } else if (c.kind === "lost") {
        if (this.holderName !== c.holder.value) log.info(`cluster: ${c.holder.value} holds ${election.key}; this host stays key-less`);
        this.holderName = c.holder.value;
        this.reportOk();
        await this.readGrant();
      } else if (c.kind === "held-off") {
        if (this.heldOffBy !== c.record.to) log.info(`cluster: ${c.record.from} hands ${election.key} over to ${c.record.to}; this host holds off until that hand-over ends`);
        this.heldOffBy = c.record.to;
        this.holderName = null;
        this.grantRead = null;
        this.reportOk();
      } else {
        this.grantRead = null;
        // Who signs is not known any more (nobody may, for all this host can tell)
        this.holderName = null;
        this.reportError(`cannot campaign for ${election.key}: ${c.error.message}`);
      }
      return;
    }
    const r = await election.renew();
    if (r.kind === "renewed") {
      this.reportOk();
      await this.rearm();
      await this.grant();
      const h = election.holding();
      // Once the takeover wait is over, a restarted daemon resuming this lease need not wait again.
      if (h !== null && !this.savedSafe && (this.takeoverSafeAtMono === null || this.opts.mono() >= this.takeoverSafeAtMono)) {
        this.savedSafe = true;
        this.save({ lease: h.lease, createRevision: h.createRevision, takeoverSafe: true });
      }
    } else if (r.kind === "lost") {
      this.save(null);
      log.error(`cluster: the signer lease is lost (${r.reason}): this host's runners are fenced`);
      this.takeoverSafeAtMono = null;
      this.holderName = null;
    } else if (r.kind === "error") {
      this.reportError(`keep-alive failed (${r.error.message}); the signer stops at its dead-man switch unless one succeeds in time`);
    }
  }

  /**
   * Could the key we just won have been freed before its holder's allowance ran out? Yes unless
   * every etcd member has the lease fixes (asked now: a member that cannot be asked may be the
   * stuck old leader of etcd #15247) and the lease the key was created under before ours (read in
   * the winning txn: election.ts holderLeaseKey) is gone (a key deleted by hand while its holder's
   * lease lives on frees it early too). Not known (no record, or the win read back after a lost
   * answer): the full wait. What this host saw on its own rounds is no proof: its daemon may have
   * stalled, or etcd gone unanswered, while another host won and had its key deleted.
   */
  private async earlyEnd(previousLease: string | null): Promise<LeaseSafety> {
    const { election } = this.opts;
    const versions = await election.memberVersions();
    const safety = leaseSafety(versions.ok ? versions.value : null);
    if (safety.earlyEndPossible) return safety;
    if (previousLease === null) return { earlyEndPossible: true, why: "the lease that held the key before is not known (no record of it in etcd)" };
    const alive = await election.leaseAlive(previousLease);
    if (!alive.ok) return { earlyEndPossible: true, why: `the previous holder's lease ${previousLease} could not be read (${alive.error.message})` };
    if (alive.value) return { earlyEndPossible: true, why: `the previous holder's lease ${previousLease} is still alive: its key was deleted, not expired` };
    return safety;
  }

  /** Takes up the lease the previous daemon of this host left (a restart), if it is still ours. */
  private async resume(): Promise<boolean> {
    const { election, log } = this.opts;
    const saved = this.load();
    if (saved === null) return false;
    const r = await election.resume(saved.lease, saved.createRevision);
    if (r.kind === "error") {
      // etcd unreachable: try again next round rather than campaign against our own key.
      this.resumeTried = false;
      this.reportError(`cannot take up lease ${saved.lease} again: ${r.error.message}`);
      return true;
    }
    if (r.kind !== "renewed") {
      this.save(null);
      return false;
    }
    // The key was ours all along; if the previous daemon's takeover wait was not over, wait anew.
    const waitTtlS = Math.max(r.ttlS, saved.waitTtlS ?? 0);
    this.takeoverSafeAtMono = saved.takeoverSafe ? null : takeoverSafeAtMs(this.opts.mono(), waitTtlS, this.opts.bounds ?? DEFAULT_TIME_BOUNDS);
    this.savedSafe = saved.takeoverSafe;
    this.holderName = election.candidate;
    log.info(`cluster: this host still holds ${election.key} (lease ${saved.lease}, taken up from the previous daemon)`);
    this.reportOk();
    await this.rearm();
    return true;
  }

  // --- Planned hand-over to another host (switchover --host; the operator drives the phases) ------

  /** Starts fencing for a hand-over to `to`: from the next observation on, nobody here may sign.
   *  Returns why not, or null. */
  beginHandover(to: string): string | null {
    const { election } = this.opts;
    if (election.holding() === null) return `this host does not hold ${election.key}${this.holderName ? ` (${this.holderName} does)` : ""}`;
    if (to === election.candidate) return `${to} is this host`;
    if (this.takeoverSafeAtMono !== null && this.opts.mono() < this.takeoverSafeAtMono) return "this host's own takeover wait is not over";
    if (this.handingOver !== null) return `a hand-over to ${this.handingOver.to} is under way`;
    this.handingOver = { to, signer: this.opts.signer() };
    this.opts.log.warn(`cluster: handing ${election.key} over to ${to}: fencing this host's runners first`);
    return null;
  }

  /** Gives the hand-over up before its txn: the host may sign again (re-promoted by the normal path). */
  abortHandover(why: string): void {
    if (this.handingOver === null) return;
    this.opts.log.warn(`cluster: hand-over to ${this.handingOver.to} abandoned (${why}); this host signs on`);
    this.handingOver = null;
  }

  /** This host's name in the cluster. */
  get candidate(): string {
    return this.opts.election.candidate;
  }

  /** Who holds the signer key, as last learnt (null: unknown or nobody). */
  holder(): string | null {
    return this.holderName;
  }

  /** The txn, once the caller proved every runner here key-less at `fencedAtMs` (decide's clock). */
  async commitHandover(fencedAtMs: number): Promise<HandOverOutcome> {
    const { election, log } = this.opts;
    const h = this.handingOver;
    if (h === null) return { kind: "not-holding" };
    const r = await election.handOver(h.to, fencedAtMs);
    if (r.kind === "not-started") {
      this.abortHandover(`cannot start it: ${r.error.message}`);
      return r;
    }
    this.handingOver = null;
    this.save(null);
    this.takeoverSafeAtMono = null;
    this.holderName = null;
    this.grantedEpoch = null;
    // Not campaigning for the grace, whatever the txn answered: the target goes first.
    this.holdOffUntilMono = this.opts.mono() + HANDOVER_GRACE_S * 1000;
    if (r.kind === "handed-over") {
      log.info(`cluster: handed ${election.key} over to ${h.to} (revision ${r.revision}); this host holds off campaigning for ${HANDOVER_GRACE_S} s`);
      // The old signer was proven key-less: its dead-man switch has nothing left to stop.
      const services = this.opts.services();
      if (h.signer !== null && services.disarmFreeze) await services.disarmFreeze(h.signer).catch(() => {});
    } else if (r.kind === "unknown") {
      log.error(`cluster: the hand-over txn's answer was lost (${r.error.message}); lease ${r.revoked ? "revoked" : "revoke failed, it ends by its TTL"}: no runner here signs`);
    } else if (r.kind === "lost") {
      log.error(`cluster: the signer key was not ours at the hand-over (${r.reason}): this host's runners stay fenced`);
    }
    return r;
  }

  /** A host not holding the key: is there a hand-over record naming it? (cheap poll between rounds) */
  private async pollHandover(): Promise<void> {
    const { election } = this.opts;
    if (election.holding() !== null || this.handoverForUs) return;
    if (this.holdOffUntilMono !== null && this.opts.mono() < this.holdOffUntilMono) return;
    const r = await election.handoverRecord();
    this.handoverForUs = r.ok && r.value !== null && r.value.to === election.candidate;
  }

  /** The signing host: grants the other hosts the boundary hand-out it has settled (once per epoch). */
  private async grant(): Promise<void> {
    if (this.handingOver !== null) return;
    const epoch = this.opts.handoutSettled?.() ?? null;
    if (epoch === null || epoch === this.grantedEpoch) return;
    // Not during a takeover wait: the previous holder's windows are not ours to vouch for.
    if (this.takeoverSafeAtMono !== null && this.opts.mono() < this.takeoverSafeAtMono) return;
    const r = await this.opts.election.grantHandout(epoch);
    if (r.ok) {
      this.grantedEpoch = epoch;
      this.opts.log.info(`cluster: granted the other hosts the boundary hand-out for epoch ${epoch}`);
    } else this.reportError(`cannot grant the boundary hand-out for epoch ${epoch}: ${r.error.message}`);
  }

  /** Another host: the latest grant under the signer's lease; unreadable is no grant (do nothing). */
  private async readGrant(): Promise<void> {
    const r = await this.opts.election.handoutGrants();
    this.grantRead = r.ok && r.value.length > 0 ? Math.max(...r.value) : null;
  }

  private load(): Omit<SavedLease, "bootId"> | null {
    const saved = this.opts.store?.load() ?? null;
    return saved !== null && saved.prefix === (this.opts.prefix ?? "") ? saved : null;
  }

  private save(s: Omit<SavedLease, "prefix" | "bootId"> | null): void {
    try {
      this.opts.store?.save(s === null ? null : { ...s, prefix: this.opts.prefix ?? "" });
    } catch (e) {
      // Only a restart's continuity depends on it: the next daemon campaigns afresh.
      this.opts.log.warn(`cluster: cannot remember the lease for a restart: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Re-arms the signer's switch to the deadline the last keep-alive bought; fences now on failure. */
  private async rearm(): Promise<void> {
    const until = this.opts.election.holding()?.signUntilMs ?? null;
    if (until === null) return;
    const at = this.toClock(until);
    const id = this.opts.signer();
    const targets: { id: number; atMs: number }[] = id === null ? [] : [{ id, atMs: at }];
    const co = this.opts.coHolders?.() ?? null;
    if (co !== null) for (const c of co.ids) if (c !== id) targets.push({ id: c, atMs: Math.min(at, co.untilMs) });
    if (targets.length === 0) {
      // Nothing holds the key here by this daemon's word (decide fenced the runner whose arm failed):
      // nothing is left unarmed, and a promotion arms its own switch first (act.ts), so the host may
      // sign again. Kept failed, it would hold the lease and never sign, and no other host could.
      if (this.armFailed) this.opts.log.info("cluster: no runner left whose dead-man switch failed to arm; this host may sign again");
      this.armFailed = false;
      return;
    }
    const services = this.opts.services();
    let failed = false;
    for (const t of targets) {
      try {
        if (services.rearmFreeze) await services.rearmFreeze(t.id, t.atMs);
        else if (services.armFreeze) await services.armFreeze(t.id, t.atMs);
        else throw new Error("the service manager cannot arm a dead-man switch");
      } catch (e) {
        failed = true;
        this.opts.log.error(`cluster: cannot re-arm #${t.id}'s dead-man switch (${e instanceof Error ? e.message : String(e)}): freezing it now`);
        await services.kill(t.id, "SIGSTOP").catch(() => {});
      }
    }
    if (this.armFailed && !failed) this.opts.log.info("cluster: the dead-man switches are armed again");
    this.armFailed = failed;
  }

  private reportOk(): void {
    if (this.lastError !== null) this.opts.log.info("cluster: etcd answers again");
    this.lastError = null;
  }

  private reportError(message: string): void {
    if (this.lastError !== message) this.opts.log.warn(`cluster: ${message}`);
    this.lastError = message;
  }

  /** Rounds every third of the TTL until `signal` aborts; `sleep` is the clock's. */
  async run(signal: AbortSignal, ttlS: number): Promise<void> {
    const every = renewIntervalMs(ttlS);
    let nextRoundMono = -Infinity;
    while (!signal.aborted) {
      if (this.opts.mono() >= nextRoundMono || this.handoverForUs) {
        nextRoundMono = this.opts.mono() + every;
        await this.step();
      } else await this.pollHandover();
      // Between rounds a host not holding the key polls for a hand-over naming it.
      const untilRound = Math.max(0, nextRoundMono - this.opts.mono());
      const wait = this.opts.election.holding() === null && !this.handoverForUs ? Math.min(untilRound, HANDOVER_POLL_MS) : this.handoverForUs ? 0 : untilRound;
      await this.opts.clock.sleep(wait, signal);
    }
  }

  /** Gives the lease up: the signer's switch still fires at its deadline. */
  async resign(): Promise<void> {
    this.save(null);
    await this.opts.election.resign();
  }
}
