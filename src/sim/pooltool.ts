// A fake PoolTool on loopback, serving the majority max from the world's network tip and recording
// shared tips in the world's journal. Shapes (plausible, after what the old Python master used):
//
//   GET  …/stats.json  (endp_stats, e.g. /stats/stats.json)
//        → {"majoritymax": 219845, "pooltoolmax": 219845, "syncd": 412, "samples": 450}
//        The old tool read int(json["majoritymax"]); the other keys are decoration.
//   GET|POST …/sharemytip (endp_tip, e.g. /v0/sharemytip)
//        query or form/JSON body: poolid, userid, genesispref, mytip, platform
//        → {"success": true, "confirmed": true, "message": "tip shared"}; 400 without a numeric mytip.

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

export interface FakePoolTool {
  url: string;
  port: number;
  stop(): void;
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
      return new Response("not found\n", { status: 404 });
    },
  });
  const port = server.port ?? 0;
  return { url: `http://${opts.hostname ?? "127.0.0.1"}:${port}`, port, stop: () => void server.stop(true) };
}
