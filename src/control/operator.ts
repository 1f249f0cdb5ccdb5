// The daemon's keeper of operator intent: holds (persisted in holds.json in the state dir, so they
// survive a restart) and the switchover under way. Requests are applied inside the loop (the control
// inbox drains after a tick); decide reads the intent with the next observation. A switchover is
// answered once a tick verified the new signer holds the key (as a failover is), with the gap it used.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ControlAnswer, MutatingRequest, OperatorResult } from "./protocol.ts";
import { isHeld, lostSlots, NO_INTENT, parseHolds, provenKeyless, type Hold, type OperatorIntent, type SwitchoverIntent } from "../master/intent.ts";
import type { TickReport } from "../master/loop.ts";
import type { RegistryRound } from "../master/registry.ts";
import { epochClock } from "../master/schedule.ts";

export const HOLDS_FILE = "holds.json";
/** A switchover not done within this long is dropped and answered as failed. */
export const SWITCHOVER_TIMEOUT_MS = 10 * 60_000;

/** Fencing for a hand-over must prove every runner key-less within this, or it is abandoned (the host signs on). */
export const HANDOVER_FENCE_TIMEOUT_MS = 15_000;
/** Once the key is given up, the target host should hold it within this (grace 4 s, polls 0.25 s). */
export const HANDOVER_TAKEUP_TIMEOUT_MS = 30_000;

/** The cluster lease shell's hand-over side (daemon/lease.ts SignerLease), as the operator drives it. */
export interface HandoverPort {
  /** This host's name in the cluster */
  readonly candidate: string;
  beginHandover(to: string): string | null;
  abortHandover(why: string): void;
  commitHandover(fencedAtMs: number): Promise<{ kind: string; error?: { message: string }; reason?: string }>;
  /** Who holds the signer key as last learnt (null: unknown, or nobody) */
  holder(): string | null;
  /** The runner `host` signs with, as its host-registry entry read after `sinceMs` says (null: not
   *  known yet); absent: no registry, the answer names the host only */
  signingRunnerOf?(host: string, sinceMs: number): number | null;
}

/** Once the target holds the key, the answer waits this long for its registry entry to name the runner. */
export const HANDOVER_RUNNER_WAIT_MS = 10_000;

/** From the host registry's last round: the runner `host` signs with, if an entry read after
 *  `sinceMs` shows it may sign and keeps a signer. Pure. */
export function signingRunnerIn(last: RegistryRound | null, host: string, sinceMs: number): number | null {
  if (last === null || last.atMs <= sinceMs) return null;
  const e = last.read.entries.find((x) => x.host === host);
  return e !== undefined && e.maySign && e.signer !== null ? e.signer : null;
}

export interface OperatorLog {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

interface Waiter {
  resolve(a: ControlAnswer): void;
}

export class Operator {
  intent: OperatorIntent = NO_INTENT;
  private waiters: Waiter[] = [];
  private last: TickReport | null = null;
  /** When the switchover's promotion went out (its tick's start) */
  private movedAtMs: number | null = null;
  /** Cross-host switchover: when fencing began, and when the key was handed over */
  private xh: { beganMs: number | null; handedMs: number | null; fencedAtMs: number | null; heldSeenMs: number | null } = { beganMs: null, handedMs: null, fencedAtMs: null, heldSeenMs: null };

  constructor(
    private readonly o: {
      stateDir: string | null;
      log: OperatorLog;
      /** cnt_runners now (a reload may change it); ids beyond it are leftovers, not runners */
      cntRunners: () => number;
      now?: () => number;
      onChange?: (i: OperatorIntent) => void;
      switchoverTimeoutMs?: number;
      /** What was applied, for the event log */
      onEvent?: (e: { kind: "hold" | "release" | "switchover"; runner?: number; title: string; text: string }) => void;
      /** Cluster mode: the lease shell, for switchover --host (absent: one host, --host refused) */
      handover?: HandoverPort | null;
    },
  ) {
    this.intent = { holds: this.load(), switchover: null };
    for (const [id, h] of Object.entries(this.intent.holds)) o.log.info(`runner #${id} is held (${h.reason || "no reason given"}), since ${new Date(h.sinceMs).toISOString()}`);
  }

  private get now(): number {
    return (this.o.now ?? Date.now)();
  }

  private load(): Record<number, Hold> {
    if (this.o.stateDir === null) return {};
    const path = join(this.o.stateDir, HOLDS_FILE);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      return {};
    }
    try {
      return parseHolds(JSON.parse(text));
    } catch (e) {
      // Fail closed would be "hold everything"; a hold only stops promotion and housekeeping, so an
      // unreadable file is told loudly and the runners are supervised as usual.
      this.o.log.error(`${path} cannot be read (${e instanceof Error ? e.message : String(e)}); no runner is held`);
      return {};
    }
  }

  private save(): void {
    if (this.o.stateDir === null) return;
    mkdirSync(this.o.stateDir, { recursive: true });
    const path = join(this.o.stateDir, HOLDS_FILE);
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ holds: this.intent.holds }, null, 2)}\n`, { mode: 0o640 });
    renameSync(tmp, path);
  }

  private set(i: OperatorIntent): void {
    this.intent = i;
    this.o.onChange?.(i);
  }

  /** Inside the loop, between ticks. */
  apply(req: MutatingRequest): ControlAnswer {
    const r = this.last;
    if (!r) return { ok: false, error: "the daemon has not completed a tick yet; try again in a moment" };
    const cnt = this.o.cntRunners();
    const known = (id: number) => r.views.some((v) => v.id === id) && id < cnt;
    const res = (result: OperatorResult): ControlAnswer => ({ ok: true, result });
    switch (req.cmd) {
      case "hold": {
        if (!known(req.id)) return { ok: false, error: `no runner #${req.id}` };
        if (isHeld(this.intent, req.id)) return res({ message: `#${req.id} is already held (${this.intent.holds[req.id]!.reason || "no reason given"})` });
        const holds = { ...this.intent.holds, [req.id]: { reason: req.reason, sinceMs: this.now } };
        this.set({ ...this.intent, holds });
        this.save();
        const signer = r.memory.signer === req.id;
        this.o.log.warn(`hold #${req.id}${req.reason ? ` (${req.reason})` : ""}: not promoted, started or restarted until released${signer ? "; it signs, so the key moves to a standby at the next gap" : ""}`);
        this.o.onEvent?.({ kind: "hold", runner: req.id, title: `hold #${req.id}`, text: req.reason || "no reason given" });
        return res({ message: `#${req.id} held${signer ? "; it signs: the key moves to the best standby at the next safe gap (see status)" : ""}` });
      }
      case "release": {
        if (!isHeld(this.intent, req.id)) return res({ message: `#${req.id} was not held` });
        const holds = { ...this.intent.holds };
        delete holds[req.id];
        this.set({ ...this.intent, holds });
        this.save();
        this.o.log.info(`release #${req.id}: supervised again (started or restarted as needed)`);
        this.o.onEvent?.({ kind: "release", runner: req.id, title: `release #${req.id}`, text: "supervised again" });
        return res({ message: `#${req.id} released; the daemon supervises it again` });
      }
      case "switchover": {
        if (req.host !== undefined) return this.applyHostSwitchover(req, r);
        const signer = r.memory.signer;
        if (signer === null) return { ok: false, error: "no runner signs: there is nothing to switch over (the daemon fails over on its own)" };
        if (req.target !== null && !known(req.target)) return { ok: false, error: `no runner #${req.target}` };
        if (req.target === signer) return { ok: false, error: `#${signer} already signs` };
        if (req.target !== null && isHeld(this.intent, req.target)) return { ok: false, error: `#${req.target} is held; release it first` };
        if (this.intent.switchover) return { ok: false, error: "a switchover is already under way" };
        const clock = r.observation.settings ? epochClock(r.observation.settings) : null;
        const ahead = (id: number) => (r.memory.runners[id]?.pendingSlots ?? []).filter((abs) => !clock || clock.slotStartMs(abs) > r.observation.atMs);
        const candidates = req.target !== null ? [req.target] : r.views.filter((v) => v.id !== signer && v.id < cnt && v.cap === "keyless" && v.running && !isHeld(this.intent, v.id)).map((v) => v.id);
        if (candidates.length === 0) return { ok: false, error: "no healthy key-less standby to take the key" };
        const lossOf = (id: number) => lostSlots(ahead(signer), ahead(id)).length;
        const target = req.target ?? [...candidates].sort((a, b) => lossOf(a) - lossOf(b) || a - b)[0]!;
        const lost = lossOf(target);
        if (req.check) return res({ message: `the key would move from #${signer} to #${target}${lost > 0 ? `, losing ${lost} of the coming slots` : ""}`, target, lostSlots: lost });
        if (lost > 0 && !req.force) return { ok: false, error: `#${target} lacks ${lost} of #${signer}'s coming slots; --force moves the key anyway and loses them` };
        this.set({ ...this.intent, switchover: { target: req.target, force: req.force, requestedMs: this.now, from: signer } });
        this.o.log.warn(`switchover asked: the key moves from #${signer} to ${req.target === null ? "the best standby" : `#${req.target}`} at the next safe gap`);
        return res({ message: "accepted", target, lostSlots: lost });
      }
    }
  }

  /** switchover --host: checks, then the intent decide turns into a release at a safe gap. */
  private applyHostSwitchover(req: Extract<MutatingRequest, { cmd: "switchover" }>, r: TickReport): ControlAnswer {
    const h = this.o.handover;
    const host = req.host!;
    if (!h) return { ok: false, error: "--host needs cluster mode (a cluster section in the config); this daemon runs one host" };
    if (req.target !== null) return { ok: false, error: "--host hands signing to another host, whose daemon picks its runner; do not name a runner as well" };
    if (host === h.candidate) return { ok: false, error: `${host} is this host; to move the key between its runners: jorm-master switchover [N]` };
    const holder = h.holder();
    if (holder !== h.candidate) {
      return {
        ok: false,
        error: holder
          ? `this host (${h.candidate}) does not sign; ${holder} does: run "jorm-master switchover --host ${host}" on ${holder}`
          : `this host (${h.candidate}) does not sign, and no signing host is known now; run the command on the host that signs (see jorm-master status)`,
      };
    }
    if (this.intent.switchover) return { ok: false, error: "a switchover is already under way" };
    if (req.check) {
      const clock = r.observation.settings ? epochClock(r.observation.settings) : null;
      const granted = clock !== null && r.observation.cluster?.grantedEpoch === clock.epochAt(r.observation.atMs);
      const cold = granted ? "" : `; no boundary hand-out was granted for this epoch, so ${host}'s standbys hold no schedule for it: the hand-over ${req.force ? "goes now and loses this epoch's remaining slots (--force)" : "waits for the next boundary (--force: now, losing this epoch's remaining slots)"}`;
      return { ok: true, result: { message: `this host (${h.candidate}) would hand signing over to ${host} at the next safe gap; ${host}'s daemon promotes its best standby${cold}`, target: null, host } };
    }
    this.xh = { beganMs: null, handedMs: null, fencedAtMs: null, heldSeenMs: null };
    this.set({ ...this.intent, switchover: { target: null, force: req.force, requestedMs: this.now, from: r.memory.signer, host, phase: "waiting" } });
    this.o.log.warn(`switchover asked: signing moves from this host (${h.candidate}) to ${host} at the next safe gap`);
    return { ok: true, result: { message: "accepted", target: null, host } };
  }

  private setPhase(so: SwitchoverIntent, phase: NonNullable<SwitchoverIntent["phase"]>): void {
    this.set({ ...this.intent, switchover: { ...so, phase } });
  }

  /** One tick of a cross-host switchover: the phases waiting → fencing → committing → handed. */
  private onHostTick(r: TickReport, so: SwitchoverIntent, h: HandoverPort): void {
    const host = so.host!;
    const elapsed = this.now - so.requestedMs;
    if (so.phase === "waiting" || so.phase === undefined) {
      const d = r.plan.switchover;
      if (d?.kind === "refuse") return this.finish({ ok: false, error: d.why });
      if (d?.kind === "release") {
        const err = h.beginHandover(host);
        if (err !== null) return this.finish({ ok: false, error: `cannot hand over: ${err}` });
        this.xh.beganMs = this.now;
        return this.setPhase(so, "fencing");
      }
      if (elapsed > (this.o.switchoverTimeoutMs ?? SWITCHOVER_TIMEOUT_MS)) return this.finish({ ok: false, error: `not done within ${Math.round(elapsed / 1000)} s: ${d?.why ?? "no gap came"}` });
      return;
    }
    if (so.phase === "fencing") {
      const began = this.xh.beganMs ?? 0;
      // Only an observation made after fencing began proves anything (a promotion could precede it).
      const proof = provenKeyless(r.views);
      if (r.startedMs > began && proof.ok && r.memory.signer === null && !r.outcomes.some((o) => o.action.kind === "promote")) {
        this.xh.fencedAtMs = r.observation.atMs;
        this.setPhase(so, "committing");
        void h.commitHandover(r.observation.atMs).then((c) => this.onCommitted(c, host));
        return;
      }
      if (this.now - began > HANDOVER_FENCE_TIMEOUT_MS) {
        const why = proof.ok ? "a runner still signed" : proof.why;
        h.abortHandover(why);
        return this.finish({ ok: false, error: `this host's runners were not proven key-less within ${HANDOVER_FENCE_TIMEOUT_MS / 1000} s (${why}); nothing was handed over and this host signs on` });
      }
      return;
    }
    if (so.phase === "handed") {
      const holder = h.holder();
      const since = this.xh.handedMs ?? this.now;
      if (holder === host) {
        this.xh.heldSeenMs ??= this.now;
        const runner = h.signingRunnerOf?.(host, this.xh.handedMs ?? so.requestedMs) ?? null;
        // With a registry, the answer names the runner too (its entry comes every couple of seconds).
        if (runner === null && h.signingRunnerOf && this.now - this.xh.heldSeenMs < HANDOVER_RUNNER_WAIT_MS) return;
        const ms = this.now - so.requestedMs;
        const gap = this.xh.heldSeenMs - (this.xh.beganMs ?? so.requestedMs);
        const who = runner !== null ? `${holder}'s #${runner} signs now` : `${holder} signs now (its daemon promotes its best standby; see jorm-master status there)`;
        const text = `${who}: ${(gap / 1000).toFixed(1)} s from fencing this host to ${holder} holding the key, ${(ms / 1000).toFixed(1)} s since asked`;
        this.o.log.info(`switchover done: ${text}`);
        this.o.onEvent?.({ kind: "switchover", title: `switchover: ${h.candidate} → ${holder}${runner !== null ? ` #${runner}` : ""}`, text });
        return this.finish({ ok: true, result: { message: text, target: runner, host: holder, handoverMs: gap } });
      }
      if (holder !== null) {
        // The grace ended without the target: whoever campaigned next won, with the full takeover wait.
        return this.finish({ ok: false, error: `the key was handed over, but ${host} did not take it up in time; ${holder === h.candidate ? "this host" : holder} holds it now (after the full takeover wait)` });
      }
      if (this.now - since > HANDOVER_TAKEUP_TIMEOUT_MS) {
        return this.finish({ ok: false, error: `the key was handed over, but ${host} has not taken it up within ${HANDOVER_TAKEUP_TIMEOUT_MS / 1000} s; any host now campaigns with the full takeover wait (this host's runners stay key-less until one wins)` });
      }
    }
  }

  private onCommitted(c: { kind: string; error?: { message: string }; reason?: string }, host: string): void {
    const so = this.intent.switchover;
    if (!so || so.host !== host) return;
    if (c.kind === "handed-over") {
      this.xh.handedMs = this.now;
      this.o.log.info(`switchover: the signer key is handed over to ${host}; waiting for it to take the key up`);
      return this.setPhase(so, "handed");
    }
    const why =
      c.kind === "not-started"
        ? `nothing was handed over (${c.error?.message ?? "etcd refused"}); this host signs on`
        : c.kind === "unknown"
          ? `the hand-over txn's answer was lost (${c.error?.message ?? "no answer"}); this host's lease was revoked and its runners stay key-less: another host takes over (${host} at once if the txn committed, else any host after the full takeover wait)`
          : c.kind === "lost"
            ? `the signer key was no longer this host's (${c.reason ?? "unknown"}); its runners stay key-less`
            : "this host no longer held the signer key";
    this.o.log.warn(`switchover to ${host} failed: ${why}`);
    this.finish({ ok: false, error: why });
  }

  /** Resolves when the switchover under way is done, refused by decide or timed out. */
  waitSwitchover(): Promise<ControlAnswer> {
    return new Promise((resolve) => this.waiters.push({ resolve }));
  }

  private finish(a: ControlAnswer): void {
    this.set({ ...this.intent, switchover: null });
    this.movedAtMs = null;
    const w = this.waiters;
    this.waiters = [];
    for (const x of w) x.resolve(a);
  }

  /** After every tick (before the inbox is drained). */
  onTick(r: TickReport): void {
    this.last = r;
    const so = this.intent.switchover;
    if (!so) return;
    if (so.host) {
      if (this.o.handover) this.onHostTick(r, so, this.o.handover);
      else this.finish({ ok: false, error: "--host needs cluster mode" });
      return;
    }
    if (r.outcomes.some((o) => o.ok && o.action.kind === "promote" && o.action.purpose === "sign")) this.movedAtMs = r.startedMs;
    const signer = r.memory.signer;
    const sv = r.views.find((v) => v.id === signer);
    // Verified: a tick after the promotion saw the new signer hold the key.
    if (signer !== null && signer !== so.from && sv?.cap === "holder" && (so.target === null || so.target === signer)) {
      const gap = this.gapOf(r, so.requestedMs);
      this.o.log.info(`switchover done: #${so.from} → #${signer} (${gapText(gap)})`);
      this.o.onEvent?.({ kind: "switchover", runner: signer, title: `switchover: #${so.from} → #${signer}`, text: gapText(gap) });
      return this.finish({ ok: true, result: { message: `the key moved from #${so.from} to #${signer} (${gapText(gap)})`, target: signer, gap } });
    }
    // The key went elsewhere (a failover while it was under way): told, not waited for.
    if (signer !== null && signer !== so.from && so.target !== null && signer !== so.target && sv?.cap === "holder") {
      this.o.log.warn(`switchover dropped: the key went to #${signer} instead (a failover)`);
      return this.finish({ ok: false, error: `the key went to #${signer} instead of #${so.target} (a failover happened meanwhile)` });
    }
    if (r.plan.switchover?.kind === "refuse") {
      this.o.log.warn(`switchover dropped: ${r.plan.switchover.why}`);
      return this.finish({ ok: false, error: r.plan.switchover.why });
    }
    if (this.now - so.requestedMs > (this.o.switchoverTimeoutMs ?? SWITCHOVER_TIMEOUT_MS)) {
      const why = r.plan.switchover?.why ?? "no gap came";
      this.o.log.warn(`switchover dropped after ${Math.round((this.now - so.requestedMs) / 1000)} s: ${why}`);
      return this.finish({ ok: false, error: `not done within ${Math.round((this.now - so.requestedMs) / 1000)} s: ${why}` });
    }
  }

  /** The daemon stops: a waiting switchover is answered. */
  close(): void {
    if (this.intent.switchover?.host && this.intent.switchover.phase === "fencing") this.o.handover?.abortHandover("the daemon is stopping");
    if (this.intent.switchover) this.finish({ ok: false, error: "the daemon is stopping" });
  }

  private gapOf(r: TickReport, sinceMs: number): { afterSlot: string | null; beforeSlot: string | null; atMs: number } {
    // When the promotion went out (a tick's start is close enough to name the gap).
    const at = this.movedAtMs ?? Math.max(sinceMs, r.startedMs);
    const clock = r.observation.settings ? epochClock(r.observation.settings) : null;
    if (!clock) return { afterSlot: null, beforeSlot: null, atMs: at };
    const name = (abs: number | undefined) => (abs === undefined ? null : `${clock.epochOf(abs)}.${abs % clock.slotsPerEpoch}`);
    const ev = r.memory.events;
    return { afterSlot: name([...ev].reverse().find((a) => clock.slotStartMs(a) < at)), beforeSlot: name(ev.find((a) => clock.slotStartMs(a) >= at)), atMs: at };
  }
}

export function gapText(g: { afterSlot: string | null; beforeSlot: string | null; atMs: number }): string {
  return `in the gap ${g.afterSlot ? `after slot ${g.afterSlot}` : "before any known slot"}${g.beforeSlot ? `, before slot ${g.beforeSlot}` : ""}, at ${new Date(g.atMs).toISOString()}`;
}
