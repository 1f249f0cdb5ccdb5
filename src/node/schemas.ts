// zod schemas of the REST bodies, each transforming the wire shape into the normalised types of
// types.ts. Extra fields are tolerated everywhere (z.object strips them): every Jormungandr release
// adds stats keys (v0.8.19: peerConnectedCnt) and the master must not break on them.

import { z } from "zod";
import { NODE_STATES } from "./types.ts";
import type { LeaderLog, LeaderStatus, NodeStats, Settings } from "./types.ts";
import { parseBlockDate, parseRfc3339Ms } from "./time.ts";

const MS_PER_S = 1000;

/** RFC 3339 timestamp (+00:00 or Z, 0–9 fraction digits) → epoch ms */
export const timeMs = z.string().transform((text, ctx) => {
  const ms = parseRfc3339Ms(text);
  if (ms === null) {
    ctx.addIssue({ code: "custom", message: `expected an RFC 3339 time like 2020-03-06T12:37:57+00:00, got ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return ms;
});

/** "84.13650" → {epoch, slot} */
export const blockDate = z.string().transform((text, ctx) => {
  const date = parseBlockDate(text);
  if (date === null) {
    ctx.addIssue({ code: "custom", message: `expected a block date like "84.13650", got ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return date;
});

const count = z.number().int().nonnegative();

/** v0.8.x writes lastBlockHeight as a string (chain_length().to_string()); the OpenAPI says number. */
export const height = z.union([
  count,
  z
    .string()
    .regex(/^\d+$/, "expected a decimal block height")
    .transform((s) => Number(s))
    .pipe(z.number().int().max(Number.MAX_SAFE_INTEGER)),
], { error: "expected a block height (a non-negative integer or a decimal string)" });

const hex = z.string().regex(/^[0-9a-fA-F]+$/, "expected hex");

export const nodeStatsSchema = z
  .object({
    state: z.enum(NODE_STATES),
    version: z.string(),
    // Only present once Running (NodeStatsDto flattens an Option)
    lastBlockHeight: height.optional(),
    lastBlockDate: blockDate.optional(),
    lastBlockTime: timeMs.nullish(),
    // null until the first block arrives from the network
    lastReceivedBlockTime: timeMs.nullish(),
    uptime: count.nullish(),
    nodeId: z.string().nullish(),
  })
  .transform(
    (s): NodeStats => ({
      state: s.state,
      version: s.version,
      height: s.lastBlockHeight ?? null,
      lastBlockDate: s.lastBlockDate ?? null,
      lastBlockTimeMs: s.lastBlockTime ?? null,
      lastReceivedBlockTimeMs: s.lastReceivedBlockTime ?? null,
      uptimeS: s.uptime ?? null,
      nodeId: s.nodeId ?? null,
    }),
  );

export const settingsSchema = z
  .object({
    block0Hash: hex,
    block0Time: timeMs,
    // Whole seconds on the wire; zero would make the epoch arithmetic divide by zero
    slotDuration: z.number().int().positive(),
    slotsPerEpoch: z.number().int().positive(),
    consensusVersion: z.string(),
    currSlotStartTime: timeMs.nullish(),
  })
  .transform(
    (s): Settings => ({
      block0Hash: s.block0Hash.toLowerCase(),
      block0TimeMs: s.block0Time,
      slotDurationMs: s.slotDuration * MS_PER_S,
      slotsPerEpoch: s.slotsPerEpoch,
      consensusVersion: s.consensusVersion,
      currSlotStartTimeMs: s.currSlotStartTime ?? null,
    }),
  );

export const leaderIdsSchema = z.array(count);
export const leaderIdSchema = count;

// serde's externally tagged enum: a unit variant is a bare string, the others a one-key object.
// The OpenAPI schema text names the block variant "InABlock"; its example and the node say "Block".
export const leaderStatusSchema = z.union([
  z.literal("Pending").transform((): LeaderStatus => ({ kind: "pending" })),
  z
    .object({ Rejected: z.object({ reason: z.string() }) })
    .transform((s): LeaderStatus => ({ kind: "rejected", reason: s.Rejected.reason })),
  z
    .object({
      Block: z.object({
        block: hex,
        // Only from v0.8.14 on
        parent: hex.nullish(),
        chain_length: height,
      }),
    })
    .transform(
      (s): LeaderStatus => ({
        kind: "block",
        block: s.Block.block.toLowerCase(),
        parent: s.Block.parent?.toLowerCase() ?? null,
        chainLength: s.Block.chain_length,
      }),
    ),
], { error: 'expected "Pending", {"Rejected":{"reason"}} or {"Block":{"block","parent","chain_length"}}' });

export const leaderLogSchema = z
  .object({
    created_at_time: timeMs,
    scheduled_at_time: timeMs,
    scheduled_at_date: blockDate,
    wake_at_time: timeMs.nullish(),
    finished_at_time: timeMs.nullish(),
    status: leaderStatusSchema,
    enclave_leader_id: count,
  })
  .transform(
    (l): LeaderLog => ({
      createdAtMs: l.created_at_time,
      scheduledAtMs: l.scheduled_at_time,
      scheduledAt: l.scheduled_at_date,
      wakeAtMs: l.wake_at_time ?? null,
      finishedAtMs: l.finished_at_time ?? null,
      status: l.status,
      enclaveLeaderId: l.enclave_leader_id,
    }),
  );

export const leaderLogsSchema = z.array(leaderLogSchema);

/** GET /tip answers text/plain: the 64-hex block id */
export const tipSchema = z
  .string()
  .transform((s) => s.trim())
  .pipe(z.string().regex(/^[0-9a-fA-F]{64}$/, "expected 64 hex characters"))
  .transform((s) => s.toLowerCase());
