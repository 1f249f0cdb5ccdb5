// A fake PoolTool on loopback, serving the majority max from the world's network tip and recording
// shared tips in the world's journal. Shapes (plausible, after what the old Python master used):
//
//   GET  …/stats.json  (endp_stats, e.g. /stats/stats.json)
//        → {"majoritymax": 219845, "pooltoolmax": 219845, "syncd": 412, "samples": 450}
//        The old tool read int(json["majoritymax"]); the other keys are decoration.
//   GET|POST …/sharemytip (endp_tip, e.g. /v0/sharemytip)
//        query or form/JSON body: poolid, userid, genesispref, mytip, platform
//        → {"success": true, "confirmed": true, "message": "tip shared"}; 400 without a numeric mytip.
//   POST …/sendlogs (endp_slots, e.g. /v0/sendlogs): the epoch's assigned slots, hash validation
//        JSON: currentepoch, poolid, genesispref, userid, assigned_slots, this_epoch_hash,
//        last_epoch_slots (see src/pooltool/slots.ts). Checked: every field's shape; the count
//        against the world's schedule; the previous epoch's list against the hash it was told then
//        (a mismatch is refused with 400, as PoolTool refuses uploads that fail validation) and
//        against the world's schedule of that epoch. Every upload is kept in `slots`.

import { createHash } from "node:crypto";
import { Chain } from "./chain.ts";
import { RealScheduler, type Scheduler } from "./clock.ts";
import type { Journal } from "./journal.ts";
import type { ChainParams } from "./chain.ts";

export interface FakePoolToolOptions {
  chain: ChainParams;
  journal: Journal;
  hostname?: string;
  port?: number;
  clock?: Scheduler;
  /** The majority max lags the tip by this many blocks */
  lagBlocks?: number;
}

export interface SlotsReceipt {
  poolid: string;
  epoch: number;
  assigned: number;
  /** The world's count of the pool's leader slots in that epoch */
  expected: number;
  /** The previous epoch's list matched the hash sent then (and the world's slots); null: no list sent or no hash to check against */
  validated: boolean | null;
  accepted: boolean;
  message: string;
}

export interface FakePoolTool {
  url: string;
  port: number;
  /** Every slot upload, in order */
  slots: SlotsReceipt[];
  stop(): void;
}

const SLOTS_FIELDS = ["currentepoch", "poolid", "genesispref", "userid", "assigned_slots", "this_epoch_hash", "last_epoch_slots"] as const;

/** Checks one slot upload against what this fake was told before and the world's schedule. */
function checkSlots(body: unknown, chain: Chain, hashes: Map<string, string>): SlotsReceipt {
  const b = (body ?? {}) as Record<string, unknown>;
  const bad = (message: string): SlotsReceipt => ({ poolid: String(b.poolid ?? ""), epoch: Number(b.currentepoch), assigned: Number(b.assigned_slots), expected: -1, validated: null, accepted: false, message });
  for (const f of SLOTS_FIELDS) if (typeof b[f] !== "string") return bad(`${f} missing or not a string`);
  const f = b as Record<(typeof SLOTS_FIELDS)[number], string>;
  if (!/^\d+$/.test(f.currentepoch) || !/^\d+$/.test(f.assigned_slots)) return bad("currentepoch and assigned_slots must be decimal strings");
  if (!f.poolid || !f.userid || !f.genesispref) return bad("poolid, userid and genesispref are required");
  if (!/^[0-9a-f]{64}$/.test(f.this_epoch_hash)) return bad("this_epoch_hash must be a hex SHA-256");
  const epoch = Number(f.currentepoch);
  const expected = chain.leaderSlots(epoch).length;
  let validated: boolean | null = null;
  if (f.last_epoch_slots !== "") {
    const told = hashes.get(`${f.poolid}/${epoch - 1}`);
    if (told !== undefined) {
      if (createHash("sha256").update(f.last_epoch_slots).digest("hex") !== told) return { ...bad(`last_epoch_slots do not match the hash sent for epoch ${epoch - 1}`), expected };
      validated = true;
    }
    let dates: string[];
    try {
      dates = (JSON.parse(f.last_epoch_slots) as { scheduled_at_date: string }[]).map((x) => x.scheduled_at_date);
    } catch {
      return { ...bad("last_epoch_slots is not a JSON list"), expected };
    }
    const world = chain.leaderSlots(epoch - 1).map((slot) => `${epoch - 1}.${slot}`);
    if (JSON.stringify(dates) !== JSON.stringify(world)) validated = false;
  }
  hashes.set(`${f.poolid}/${epoch}`, f.this_epoch_hash);
  return { poolid: f.poolid, epoch, assigned: Number(f.assigned_slots), expected, validated, accepted: true, message: "slots received" };
}

async function tipFrom(request: Request, url: URL): Promise<string | null> {
  const fromQuery = url.searchParams.get("mytip");
  if (fromQuery !== null) return fromQuery;
  if (request.method !== "POST") return null;
  const text = await request.text();
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    return body.mytip === undefined ? null : String(body.mytip);
  } catch {
    return new URLSearchParams(text).get("mytip");
  }
}

export function serveFakePoolTool(opts: FakePoolToolOptions): FakePoolTool {
  const chain = new Chain(opts.chain);
  const clock = opts.clock ?? new RealScheduler();
  const lag = opts.lagBlocks ?? 0;
  const slots: SlotsReceipt[] = [];
  const hashes = new Map<string, string>();
  const server = Bun.serve({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port ?? 0,
    async fetch(request) {
      const url = new URL(request.url);
      if (request.method === "GET" && /stats(\.json)?$/.test(url.pathname)) {
        const max = Math.max(0, chain.tipHeight(clock.now()) - lag);
        return Response.json({ majoritymax: max, pooltoolmax: max, syncd: 412, samples: 450 });
      }
      if ((request.method === "GET" || request.method === "POST") && url.pathname.endsWith("/sharemytip")) {
        const tip = await tipFrom(request, url);
        if (tip === null || !/^\d+$/.test(tip)) return Response.json({ success: false, message: "mytip missing or not a number" }, { status: 400 });
        opts.journal.append({ t: clock.now(), kind: "tip_shared", height: Number(tip) });
        return Response.json({ success: true, confirmed: true, message: "tip shared" });
      }
      if (request.method === "POST" && url.pathname.endsWith("/sendlogs")) {
        const body = await request.json().catch(() => null);
        const r = checkSlots(body, chain, hashes);
        slots.push(r);
        return Response.json({ success: r.accepted, message: r.message }, { status: r.accepted ? 200 : 400 });
      }
      return new Response("not found\n", { status: 404 });
    },
  });
  const port = server.port ?? 0;
  return { url: `http://${opts.hostname ?? "127.0.0.1"}:${port}`, port, slots, stop: () => void server.stop(true) };
}
