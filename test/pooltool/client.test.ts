// PoolTool: the old tool's query parameters, numeric-or-string majoritymax, bounded calls and short
// typed errors that the master can catch and count.

import { describe, expect, test } from "bun:test";
import type { PoolToolConfig } from "../../src/config/types.ts";
import { createPoolTool, DEFAULT_POOLTOOL_TIMEOUT_MS, MAX_POOLTOOL_BODY_BYTES, PoolToolError, tipQuery } from "../../src/pooltool/client.ts";

const CFG: PoolToolConfig = {
  poolId: "ea830e5d9647af89a5e9a4d4089e6e855891a533316adf4a42b7bf1372389b74",
  userId: "user-123",
  genesis: "8e4d2a343f3dcf9330ad9035b3e8d168e6728904262f2c434a4f8f934ec7b676",
  sendWaitMs: 30_000,
  recvWaitMs: 30_000,
  endpTip: "https://api.pooltool.io/v0/sharemytip",
  endpStats: "https://pooltool.s3-us-west-2.amazonaws.com/stats/stats.json",
};

/** A fetch that answers from a function and records the URLs it was asked for. */
function fakeFetch(answer: (url: URL) => Response | Promise<Response>) {
  const urls: URL[] = [];
  const fn = (async (input: string | URL | Request) => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
    urls.push(url);
    return answer(url);
  }) as unknown as typeof fetch;
  return { fetch: fn, urls };
}

async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    expect(error).toBeInstanceOf(PoolToolError);
    return error as Error;
  }
  throw new Error("expected a rejection");
}

describe("majorityMax", () => {
  test("reads majoritymax from the stats endpoint, number or string", async () => {
    for (const value of [219845, "219845"]) {
      const fake = fakeFetch(() => Response.json({ majoritymax: value, syncd: 100, other: "x" }));
      const pt = createPoolTool(CFG, { fetch: fake.fetch });
      expect(await pt.majorityMax()).toBe(219845);
      expect(fake.urls.map((u) => u.href)).toEqual([CFG.endpStats]);
    }
  });

  test("a missing or malformed majoritymax is a short error naming the field", async () => {
    const missing = createPoolTool(CFG, { fetch: fakeFetch(() => Response.json({ syncd: 1 })).fetch });
    expect((await rejectionOf(missing.majorityMax())).message).toStartWith("PoolTool stats: majoritymax: ");
    const bad = createPoolTool(CFG, { fetch: fakeFetch(() => Response.json({ majoritymax: "lots" })).fetch });
    expect((await rejectionOf(bad.majorityMax())).message).toBe(
      "PoolTool stats: majoritymax: expected a non-negative integer or a decimal string",
    );
    const html = createPoolTool(CFG, { fetch: fakeFetch(() => new Response("<html>")).fetch });
    expect((await rejectionOf(html.majorityMax())).message).toBe('PoolTool stats: not JSON: "<html>"');
  });

  test("an HTTP error status is an error with the status", async () => {
    const pt = createPoolTool(CFG, { fetch: fakeFetch(() => new Response("Access Denied", { status: 403 })).fetch });
    expect((await rejectionOf(pt.majorityMax())).message).toBe("PoolTool stats: HTTP 403 Access Denied");
  });

  test("a network failure is an error, not a hang", async () => {
    const failing = (async () => {
      throw Object.assign(new Error("Unable to connect"), { code: "ECONNREFUSED" });
    }) as unknown as typeof fetch;
    expect((await rejectionOf(createPoolTool(CFG, { fetch: failing }).majorityMax())).message).toBe("PoolTool stats: ECONNREFUSED");
  });

  test("no answer: rejected at the deadline even if fetch ignores the abort", async () => {
    const never = (() => new Promise<Response>(() => {})) as unknown as typeof fetch;
    const started = performance.now();
    const error = await rejectionOf(createPoolTool(CFG, { fetch: never, timeoutMs: 100 }).majorityMax());
    expect(error.message).toBe("PoolTool stats: no answer within 100 ms");
    expect(performance.now() - started).toBeLessThan(100 + 200);
  });

  test("the default deadline is bounded", () => {
    expect(DEFAULT_POOLTOOL_TIMEOUT_MS).toBeLessThanOrEqual(10_000);
  });
});

describe("shareTip", () => {
  test("GETs endp_tip with poolid, userid, genesispref, mytip and platform=jorm-master", async () => {
    const fake = fakeFetch(() => Response.json({ success: true }));
    await createPoolTool(CFG, { fetch: fake.fetch }).shareTip(219845);
    expect(fake.urls).toHaveLength(1);
    const url = fake.urls[0]!;
    expect(`${url.origin}${url.pathname}`).toBe(CFG.endpTip);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      poolid: CFG.poolId,
      userid: CFG.userId,
      genesispref: CFG.genesis,
      mytip: "219845",
      platform: "jorm-master",
    });
  });

  test("keeps query parameters already in endp_tip", async () => {
    const fake = fakeFetch(() => new Response("ok"));
    await createPoolTool({ ...CFG, endpTip: "http://127.0.0.1:9/tip?v=1" }, { fetch: fake.fetch }).shareTip(5);
    expect(fake.urls[0]?.searchParams.get("v")).toBe("1");
    expect(fake.urls[0]?.searchParams.get("mytip")).toBe("5");
  });

  test("an HTTP error is an error; an invalid height is refused before any request", async () => {
    const fake = fakeFetch(() => new Response("", { status: 500 }));
    const pt = createPoolTool(CFG, { fetch: fake.fetch });
    expect((await rejectionOf(pt.shareTip(1))).message).toBe("PoolTool sharemytip: HTTP 500");
    expect((await rejectionOf(pt.shareTip(-1))).message).toBe("PoolTool sharemytip: invalid height -1");
    expect(fake.urls).toHaveLength(1);
  });

  test("tipQuery keeps the old tool's parameter order", () => {
    expect([...tipQuery(CFG, 7).keys()]).toEqual(["poolid", "userid", "genesispref", "mytip", "platform"]);
  });
});

describe("over real HTTP (127.0.0.1)", () => {
  test("stats and tip against a local server, with the global fetch", async () => {
    const tips: string[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const url = new URL(req.url);
        if (url.pathname === "/stats/stats.json") return Response.json({ majoritymax: "1234" });
        if (url.pathname === "/v0/sharemytip") {
          tips.push(url.searchParams.get("mytip") ?? "");
          return Response.json({ success: true });
        }
        if (url.pathname === "/hang") return new Promise<Response>(() => {});
        if (url.pathname === "/endless") {
          const chunk = new Uint8Array(64 * 1024).fill(0x20);
          return new Response(new ReadableStream({ pull: (c) => c.enqueue(chunk) }), { headers: { "content-type": "application/json" } });
        }
        return new Response("", { status: 404 });
      },
    });
    try {
      const origin = `http://127.0.0.1:${server.port}`;
      const pt = createPoolTool({ ...CFG, endpStats: `${origin}/stats/stats.json`, endpTip: `${origin}/v0/sharemytip` }, { timeoutMs: 2000 });
      expect(await pt.majorityMax()).toBe(1234);
      await pt.shareTip(1234);
      expect(tips).toEqual(["1234"]);
      const hung = createPoolTool({ ...CFG, endpStats: `${origin}/hang` }, { timeoutMs: 150 });
      const started = performance.now();
      expect((await rejectionOf(hung.majorityMax())).message).toBe("PoolTool stats: no answer within 150 ms");
      expect(performance.now() - started).toBeLessThan(150 + 200);
      // An endless body is cut off at the cap, well before the deadline
      const endless = createPoolTool({ ...CFG, endpStats: `${origin}/endless` }, { timeoutMs: 2000 });
      const t0 = performance.now();
      expect((await rejectionOf(endless.majorityMax())).message).toBe(`PoolTool stats: answer body larger than ${MAX_POOLTOOL_BODY_BYTES / 1024 / 1024} MiB, refused unread`);
      expect(performance.now() - t0).toBeLessThan(2000);
    } finally {
      server.stop(true);
    }
  });
});
