// PoolTool slots (`pooltool.send_slots`): at each epoch start, upload the number of leader slots
// the pool was assigned, with the hash-based validation PoolTool offers (after the send_slots
// scripts of papacarp/pooltool.io, hash method): each upload carries the SHA-256 of this epoch's
// slot list and the previous epoch's list itself, so PoolTool can check the count it was told a
// epoch ago against the slots. POST {endp_slots} (default https://api.pooltool.io/v0/sendlogs),
// JSON body:
//   currentepoch, poolid, genesispref, userid, assigned_slots (decimal strings, as the scripts send),
//   this_epoch_hash (hex SHA-256 of the list text), last_epoch_slots (the previous list's text, or "")
//
// The list is the epoch's schedule as the runners' leader logs show it (the daemon's memory of the
// events, complete once a runner that computed the epoch, the signer at the boundary, reported its
// logs): a canonical JSON text of {scheduled_at_date, scheduled_at_time} per slot, in slot order.
// Being derived from the chain's dates and not from one node's log entries (creation times, enclave
// ids and statuses differ between runners and change during the epoch), it hashes the same after a
// failover or a daemon restart, so a restarted daemon can still send the previous epoch's proof.
//
// planSlotsUpload is pure; SlotsUploader sends fire-and-forget (never blocking a tick) with a
// deadline, retrying a failed epoch after SLOTS_RETRY_MS.

import { createHash } from "node:crypto";
import type { PoolToolConfig, ResolvedConfig } from "../config/types.ts";
import type { TickReport } from "../master/loop.ts";
import { epochClock, type EpochClock } from "../master/schedule.ts";
import type { Memory } from "../master/types.ts";
import type { Settings } from "../node/types.ts";
import { readCapped } from "../node/http.ts";

/** A reply is only quoted (a few dozen characters) or checked for {"success": false} */
export const SLOTS_REPLY_MAX_BYTES = 64 * 1024;
export const DEFAULT_SLOTS_ENDPOINT = "https://api.pooltool.io/v0/sendlogs";
/** A failed upload is tried again this much later (within the same epoch) */
export const SLOTS_RETRY_MS = 60_000;
export const SLOTS_TIMEOUT_MS = 10_000;

export interface SlotsPayload {
  currentepoch: string;
  poolid: string;
  genesispref: string;
  userid: string;
  assigned_slots: string;
  this_epoch_hash: string;
  last_epoch_slots: string;
}

export interface SlotsState {
  /** The last epoch whose upload PoolTool accepted */
  sentEpoch: number | null;
  /** The list text hashed for an epoch (this one and the previous), as uploaded */
  lists: Record<number, string>;
  /** No new attempt before this time (after a failure) */
  retryAtMs: number;
}

export const emptySlotsState = (): SlotsState => ({ sentEpoch: null, lists: {}, retryAtMs: 0 });

export const sha256Hex = (text: string) => createHash("sha256").update(text).digest("hex");

/** The canonical list text of `epoch` from the absolute slots in `events`. */
export function epochSlotsText(events: readonly number[], clock: EpochClock, epoch: number): string {
  const slots = events
    .filter((abs) => clock.epochOf(abs) === epoch)
    .sort((a, b) => a - b)
    .map((abs) => ({ scheduled_at_date: `${epoch}.${abs - clock.abs(epoch, 0)}`, scheduled_at_time: new Date(clock.slotStartMs(abs)).toISOString() }));
  return JSON.stringify(slots);
}

/** What to upload now, if anything, and the state after it (pure). */
export function planSlotsUpload(
  memory: Memory,
  settings: Settings | null,
  cfg: PoolToolConfig,
  now: number,
  prev: SlotsState,
): { payload: SlotsPayload | null; epoch: number | null; state: SlotsState } {
  const none = { payload: null, epoch: null, state: prev };
  if (!cfg.sendSlots || !settings || now < prev.retryAtMs) return none;
  const clock = epochClock(settings);
  const epoch = clock.epochAt(now);
  if (prev.sentEpoch === epoch || !memory.knownEpochs.includes(epoch)) return none;
  const list = epochSlotsText(memory.events, clock, epoch);
  // The previous epoch's proof: the text hashed a epoch ago, or the same text re-derived (a daemon
  // restarted since) when that epoch's schedule is still known whole; else no validation.
  const last = prev.lists[epoch - 1] ?? (memory.knownEpochs.includes(epoch - 1) ? epochSlotsText(memory.events, clock, epoch - 1) : "");
  const payload: SlotsPayload = {
    currentepoch: String(epoch),
    poolid: cfg.poolId,
    genesispref: cfg.genesis,
    userid: cfg.userId,
    assigned_slots: String((JSON.parse(list) as unknown[]).length),
    this_epoch_hash: sha256Hex(list),
    last_epoch_slots: last,
  };
  const lists: Record<number, string> = { [epoch]: list };
  if (prev.lists[epoch - 1] !== undefined) lists[epoch - 1] = prev.lists[epoch - 1]!;
  return { payload, epoch, state: { ...prev, lists } };
}

export interface SlotsLog {
  info(msg: string): void;
  warn(msg: string): void;
}

/** The shell: folds each tick in, POSTs what planSlotsUpload says, never awaited by the tick. */
export class SlotsUploader {
  private state = emptySlotsState();
  private inFlight = false;
  private failing = false;
  constructor(
    private readonly log: SlotsLog,
    private readonly doFetch: typeof fetch = fetch,
  ) {}

  onTick(r: TickReport, config: ResolvedConfig): void {
    const cfg = config.pooltool;
    if (!cfg?.sendSlots || this.inFlight) return;
    const now = r.startedMs + r.durationMs;
    let planned: ReturnType<typeof planSlotsUpload>;
    try {
      planned = planSlotsUpload(r.memory, r.observation.settings, cfg, now, this.state);
    } catch (e) {
      // A bug here must cost an upload, never a tick of supervision.
      this.log.warn(`PoolTool slots: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const { payload, epoch, state } = planned;
    this.state = state;
    if (!payload || epoch === null) return;
    this.inFlight = true;
    void this.send(cfg.endpSlots ?? DEFAULT_SLOTS_ENDPOINT, payload).then((error) => {
      this.inFlight = false;
      if (error === null) {
        this.state = { ...this.state, sentEpoch: epoch };
        const proof = payload.last_epoch_slots ? `, epoch ${epoch - 1}'s ${(JSON.parse(payload.last_epoch_slots) as unknown[]).length} slots as proof` : ", no proof (the previous epoch's schedule is unknown)";
        this.log.info(`PoolTool slots: epoch ${epoch}, ${payload.assigned_slots} assigned${proof}`);
        this.failing = false;
      } else {
        this.state = { ...this.state, retryAtMs: now + SLOTS_RETRY_MS };
        if (!this.failing) this.log.warn(`PoolTool slots: uploading epoch ${epoch} failed: ${error} (retried every ${SLOTS_RETRY_MS / 1000} s; told once)`);
        this.failing = true;
      }
    });
  }

  private async send(url: string, payload: SlotsPayload): Promise<string | null> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), SLOTS_TIMEOUT_MS);
    try {
      const res = await this.doFetch(url, {
        method: "POST",
        headers: { accept: "application/json", "content-type": "application/json" },
        body: JSON.stringify(payload),
        signal: controller.signal,
      });
      // Only a snippet of the reply is used: read at most SLOTS_REPLY_MAX_BYTES, never the whole of an endless one
      const text = (await readCapped(res, SLOTS_REPLY_MAX_BYTES).catch(() => "")) ?? "";
      let success: unknown = true;
      try {
        success = (JSON.parse(text) as { success?: unknown }).success ?? true;
      } catch {
        // a non-JSON 2xx answer counts as accepted
      }
      if (res.ok && success !== false) return null;
      return `HTTP ${res.status}${text ? ` ${text.trim().replace(/\s+/g, " ").slice(0, 120)}` : ""}`;
    } catch (e) {
      if (controller.signal.aborted) return `no answer within ${SLOTS_TIMEOUT_MS} ms`;
      return (e as { code?: string }).code ?? (e as Error)?.message ?? String(e);
    } finally {
      clearTimeout(timer);
    }
  }
}
